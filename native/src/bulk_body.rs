//! A `_bulk` body handed to Python without a copy: the bytes the native core wrote, owned by a small
//! object that exports them read-only through the buffer protocol, and seen from Python as a
//! `memoryview` (what aiohttp sends and `b"".join` takes as they are).
//!
//! Copying a batch's body into a `bytes` object was ~10 % of the Linux documents path (1-3 MiB a batch,
//! memcpy'd onto pages the C allocator had just given back to the kernel, so each one faulted and was
//! zeroed first: /tmp A/B of the same build with and without the copy, docs/performance.md).
//!
//! The crate denies `unsafe`; the buffer protocol has no safe PyO3 API, so this module is the second
//! exception (after `mapped.rs`): one call, `PyBuffer_FillInfo`, whose soundness is argued below.
#![allow(unsafe_code)]

use std::os::raw::c_int;

use pyo3::prelude::*;
use pyo3::types::PyMemoryView;

/// The owner of a body's bytes. Frozen, and `bytes` is never changed after creation: a view handed out
/// can never see them move or change.
#[pyclass(frozen, module = "auditrecv._native")]
pub struct BulkBody {
    bytes: Vec<u8>,
}

#[pymethods]
impl BulkBody {
    fn __len__(&self) -> usize {
        self.bytes.len()
    }

    /// # Safety
    /// `view` is the `Py_buffer` that Python passes to `bf_getbuffer`, ours to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut pyo3::ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let bytes = &slf.get().bytes;
        let len = pyo3::ffi::Py_ssize_t::try_from(bytes.len())?;
        // SAFETY: PyBuffer_FillInfo fills `view` with a pointer into `bytes` and stores a new reference
        // to `slf`, the object that owns them, in `view.obj`: the bytes live as long as any view of them,
        // and they never change (see the struct). `readonly = 1`: a request for a writable buffer is
        // refused with BufferError (the only failure, and then the error is set), so the `*mut` pointer
        // it takes is never written through.
        let filled = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(view, slf.as_ptr(), bytes.as_ptr().cast_mut().cast(), len, 1, flags)
        };
        if filled == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }
}

/// `bytes` as a read-only `memoryview`, no copy.
///
/// The view keeps the whole allocation for as long as the sink holds the body, so room reserved for
/// documents that were never written is given back first: a timed-out poll reserves for every event in
/// flight and may write a few. Where little is spare (a batch's body, sized for its lines), nothing is
/// done; where much is, `shrink_to_fit` copies what was written, which is then little.
pub fn body_view(py: Python<'_>, mut bytes: Vec<u8>) -> PyResult<Bound<'_, PyMemoryView>> {
    if bytes.capacity() - bytes.len() > bytes.len() / 2 {
        bytes.shrink_to_fit();
    }
    PyMemoryView::from(Bound::new(py, BulkBody { bytes })?.as_any())
}
