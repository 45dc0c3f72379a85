//! auditrecv's per-record work, compiled: the Python extension module `auditrecv._native`
//! (issue 12). Python keeps sockets, GSS, the spool, configuration, enrichment and orchestration;
//! decoding and documents move here, one module per concept (`bsm/`, `linux/`, `ecs/`).
//!
//! The decoders are plain Rust (tested with `cargo test`, no Python needed); `python.rs` is the PyO3
//! boundary (feature `python`, turned on by maturin), where every call runs inside
//! [`boundary::guard`] so that a panic becomes a Python exception, never an abort.
//!
//! "The Python decoder" and "the Python mapper" in comments are the implementation this one replaced
//! (deleted in issue 12): the goldens (`tests/golden`) and recorded outcomes (`tests/native/recorded`)
//! hold what it produced, and explain why some behaviour is as it is.

pub mod boundary;
pub mod bsm;
#[cfg(feature = "python")]
mod bulk_body;
pub mod ecs;
pub mod gzip;
pub mod journal;
pub mod json;
pub mod linux;
pub mod mapped;

#[cfg(feature = "python")]
mod python;

/// The extension allocates through mimalloc: decoding and documents make and free many small strings
/// and vectors (measured: `decode --raw` of a Linux log ~8 % and Linux documents ~15 % less CPU than
/// with glibc's malloc). Only Rust's own allocations use it; what Python gets is copied into its objects.
#[cfg(feature = "python")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
