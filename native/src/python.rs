//! The PyO3 boundary: the functions of `auditrecv._native` (stub with signatures and docs:
//! `native/python/auditrecv/_native.pyi`).
//!
//! Every function runs its Rust work inside [`guard`]: a panic becomes `NativePanic` (a
//! `RuntimeError`, so `except Exception` catches it and the caller can dead-letter the record) instead
//! of PyO3's `PanicException` (a `BaseException`) or an abort.

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::boundary::{Panicked, guard};
use crate::bsm::json::record_json;
use crate::bsm::record::{Limits, decode_record_with};
use crate::bsm::trail::{Item, Walk, looks_like_bsm};
use crate::json::JsonError;
use crate::linux;

create_exception!(
    auditrecv._native,
    NativePanic,
    PyRuntimeError,
    "A bug in the native decoder (a Rust panic) while handling one input: dead-letter that input."
);

const ITEM_RECORD: u8 = 0;
const ITEM_FILE: u8 = 1;
const ITEM_SKIPPED: u8 = 2;

fn panic_error(p: Panicked) -> PyErr {
    NativePanic::new_err(p.0)
}

/// What orjson raises for the same value (its JSONEncodeError is a TypeError).
fn json_error(e: JsonError) -> PyErr {
    PyTypeError::new_err(e.0)
}

fn limits(max_tokens: usize, max_array_items: usize) -> Limits {
    Limits { max_tokens, max_array_items }
}

/// The record's JSON line and its errors, as `auditrecv decode --raw` does it.
fn raw_json(payload: &[u8], offset: u64, lim: Limits, fault: bool) -> PyResult<(Vec<u8>, Vec<String>)> {
    let out = guard(|| {
        let rec = decode_record_with(payload, 0, true, lim, fault);
        record_json(&rec, Some(offset)).map(|json| (json, rec.errors))
    })
    .map_err(panic_error)?;
    out.map_err(json_error)
}

/// `decode_record(payload)` with its offset set to `offset`, as one JSON line (what
/// `auditrecv decode --raw` writes for a BSM record at file position `offset`).
#[pyfunction]
#[pyo3(signature = (payload, offset=0, *, max_tokens=1000, max_array_items=10_000))]
fn bsm_decode_raw_json<'py>(
    py: Python<'py>,
    payload: &[u8],
    offset: u64,
    max_tokens: usize,
    max_array_items: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let (json, _) = raw_json(payload, offset, limits(max_tokens, max_array_items), false)?;
    Ok(PyBytes::new(py, &json))
}

/// Like `bsm_decode_raw_json`, also returning the record's errors (what the CLI prints on stderr).
#[pyfunction]
#[pyo3(signature = (payload, offset=0, *, max_tokens=1000, max_array_items=10_000))]
fn bsm_decode_raw<'py>(
    py: Python<'py>,
    payload: &[u8],
    offset: u64,
    max_tokens: usize,
    max_array_items: usize,
) -> PyResult<(Bound<'py, PyBytes>, Vec<String>)> {
    let (json, errors) = raw_json(payload, offset, limits(max_tokens, max_array_items), false)?;
    Ok((PyBytes::new(py, &json), errors))
}

/// `decode_record(data, offset, whole=whole).to_dict()` as one JSON line.
#[pyfunction]
#[pyo3(signature = (data, offset=0, whole=true, *, max_tokens=1000, max_array_items=10_000))]
fn bsm_decode_record_json<'py>(
    py: Python<'py>,
    data: &[u8],
    offset: usize,
    whole: bool,
    max_tokens: usize,
    max_array_items: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let lim = limits(max_tokens, max_array_items);
    let out = guard(|| record_json(&decode_record_with(data, offset, whole, lim, false), None)).map_err(panic_error)?;
    Ok(PyBytes::new(py, &out.map_err(json_error)?))
}

/// Test hook: decode with a panic injected into the token decoder (the boundary must turn it into
/// `NativePanic`).
#[pyfunction]
fn _bsm_decode_with_fault<'py>(py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let (json, _) = raw_json(payload, 0, Limits::default(), true)?;
    Ok(PyBytes::new(py, &json))
}

/// Split a stream or trail (bytes, or any buffer such as an mmap: copied) into `(kind, offset,
/// length)` items in order, `kind` being ITEM_RECORD, ITEM_FILE (a standalone file token) or
/// ITEM_SKIPPED (bytes that start no record). Offsets include `base_offset`. The same split as the
/// Python `iter_stream`.
#[pyfunction]
#[pyo3(signature = (data, base_offset=0))]
fn bsm_split_trail(data: &Bound<'_, PyAny>, base_offset: u64) -> PyResult<Vec<(u8, u64, usize)>> {
    let py = data.py();
    let split = |bytes: &[u8]| {
        guard(|| {
            Walk::new(bytes, base_offset, Limits::default(), true)
                .map(|item| {
                    let kind = match item {
                        Item::Record(_) => ITEM_RECORD,
                        Item::File(_) => ITEM_FILE,
                        Item::Skipped(_) => ITEM_SKIPPED,
                    };
                    (kind, item.offset(), item.length())
                })
                .collect::<Vec<_>>()
        })
    };
    let out = if let Ok(b) = data.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        py.detach(|| split(bytes))
    } else {
        let copy = PyBuffer::<u8>::get(data)?.to_vec(py)?;
        py.detach(|| split(&copy))
    };
    out.map_err(panic_error)
}

/// True when the bytes start like a BSM trail (a plausible header, or a file token then one).
#[pyfunction]
fn bsm_looks_like(head: &[u8]) -> PyResult<bool> {
    guard(|| looks_like_bsm(head)).map_err(panic_error)
}

/// What the Python decoder raises where the native one fails.
fn linux_error(e: linux::DecodeError) -> PyErr {
    match e {
        linux::DecodeError::Json(e) => json_error(e),
        linux::DecodeError::Digits(e) => PyValueError::new_err(e.to_string()),
        linux::DecodeError::Overflow => PyOverflowError::new_err(e.to_string()),
    }
}

/// `auditrecv decode --raw` of Linux audit input: `data` is a whole log (bytes or any buffer, split
/// into lines as `auditrecv decode` reads a file) or a list of lines (one record each, as
/// `read_input` yields them or audisp-remote sends them). Returns the JSON lines of the events, in
/// completion order; `source` is their `source`. Raises what the Python decoder raises (TypeError for
/// an integer beyond 64 bits, ValueError for a header number of more than 4300 digits).
#[pyfunction]
#[pyo3(signature = (data, source="", *, grace_seconds=2.0, max_age_seconds=30.0, max_records=4096, max_in_flight=10000))]
fn linux_decode_raw<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    source: &str,
    grace_seconds: f64,
    max_age_seconds: f64,
    max_records: usize,
    max_in_flight: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let settings = linux::Settings { grace_seconds, max_age_seconds, max_records, max_in_flight, max_bytes: None };
    let out = if let Ok(list) = data.cast::<PyList>() {
        // one buffer and the line ends, so that the work runs without the GIL
        let mut joined = Vec::new();
        let mut ends = Vec::with_capacity(list.len());
        for item in list.iter() {
            joined.extend_from_slice(item.cast::<PyBytes>()?.as_bytes());
            ends.push(joined.len());
        }
        py.detach(|| {
            guard(|| {
                let mut start = 0;
                let lines = ends.iter().map(|&end| {
                    let line = &joined[start..end];
                    start = end;
                    line
                });
                linux::decode_raw(lines, source, settings)
            })
        })
    } else if let Ok(b) = data.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        py.detach(|| guard(|| linux::decode_raw(linux::log_lines(bytes), source, settings)))
    } else {
        let copy = PyBuffer::<u8>::get(data)?.to_vec(py)?;
        py.detach(|| guard(|| linux::decode_raw(linux::log_lines(&copy), source, settings)))
    };
    let json = out.map_err(panic_error)?.map_err(linux_error)?;
    Ok(PyBytes::new(py, &json))
}

/// Like `linux_decode_raw`, handing the output to `write` (e.g. a binary file's `write`) in pieces of
/// whole lines of about `chunk_bytes`, as `auditrecv decode --raw` writes while it reads: memory stays
/// bounded by the chunk. The decoding runs without the GIL; `write` is called with it. Returns the
/// number of lines written; on an error, the lines before it have been written.
#[pyfunction]
#[pyo3(signature = (data, write, source="", *, chunk_bytes=1 << 20, grace_seconds=2.0, max_age_seconds=30.0,
                    max_records=4096, max_in_flight=10000))]
#[allow(clippy::too_many_arguments)]
fn linux_decode_raw_into(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    write: &Bound<'_, PyAny>,
    source: &str,
    chunk_bytes: usize,
    grace_seconds: f64,
    max_age_seconds: f64,
    max_records: usize,
    max_in_flight: usize,
) -> PyResult<u64> {
    let settings = linux::Settings { grace_seconds, max_age_seconds, max_records, max_in_flight, max_bytes: None };
    let write = write.clone().unbind();
    let sink = |chunk: Vec<u8>| Python::attach(|py| write.call1(py, (PyBytes::new(py, &chunk),)).map(|_| chunk));
    let run = |bytes: &[u8]| {
        py.detach(|| guard(|| linux::decode_raw_chunked(linux::log_lines(bytes), source, settings, chunk_bytes, sink)))
    };
    let out = if let Ok(b) = data.cast::<PyBytes>() {
        run(b.as_bytes())
    } else {
        run(&PyBuffer::<u8>::get(data)?.to_vec(py)?)
    };
    match out.map_err(panic_error)? {
        Ok(n) => Ok(n),
        Err(linux::ChunkError::Decode(e)) => Err(linux_error(e)),
        Err(linux::ChunkError::Sink(e)) => Err(e),
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn auditrecv_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativePanic", m.py().get_type::<NativePanic>())?;
    m.add("ITEM_RECORD", ITEM_RECORD)?;
    m.add("ITEM_FILE", ITEM_FILE)?;
    m.add("ITEM_SKIPPED", ITEM_SKIPPED)?;
    let defaults = Limits::default();
    m.add("DEFAULT_MAX_TOKENS", defaults.max_tokens)?;
    m.add("DEFAULT_MAX_ARRAY_ITEMS", defaults.max_array_items)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bsm_decode_raw_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_decode_raw, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_decode_record_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_split_trail, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_looks_like, m)?)?;
    m.add_function(wrap_pyfunction!(_bsm_decode_with_fault, m)?)?;
    m.add_function(wrap_pyfunction!(linux_decode_raw, m)?)?;
    m.add_function(wrap_pyfunction!(linux_decode_raw_into, m)?)?;
    Ok(())
}
