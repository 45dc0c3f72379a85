//! Documents: the ECS and `auditrecv-v1` shapes, document ids, dead letters, enrichment and the bulk
//! body (the Rust port of `auditrecv/schema/` and of the pipeline's per-record work; issue 12 point 3).
//!
//! * [`value`]: the document model (ordered objects, the Python helpers' write rules) -> orjson bytes.
//! * [`common`]: pieces every document shares whatever its kind (time, addresses, source, host,
//!   observer, related.user, message); a Linux mapper builds on these too.
//! * [`bsm`] / [`v1`]: a decoded BSM record as an ECS / `auditrecv-v1` document.
//! * [`linux`]: a Linux event as an ECS document, written straight as JSON (the few sections written
//!   from several places held as [`slots`] until then); [`linux_batch`]: spooled lines -> documents.
//! * [`ids`], [`deadletter`], [`limits`], [`flat`], [`tables`], [`enrich`].
//! * [`batch`]: spooled raw records -> documents -> the `_bulk` body.

pub mod batch;
pub mod bsm;
pub mod common;
pub mod deadletter;
pub mod enrich;
pub mod flat;
pub mod ids;
pub mod limits;
pub mod linux;
pub mod linux_batch;
pub mod parse;
pub mod slots;
pub mod tables;
pub mod v1;
pub mod value;
