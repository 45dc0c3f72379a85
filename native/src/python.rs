//! The PyO3 boundary: the functions of `auditrecv._native` (stub with signatures and docs:
//! `native/python/auditrecv/_native.pyi`).
//!
//! Every function runs its Rust work inside [`guard`]: a panic becomes `NativePanic` (a
//! `RuntimeError`, so `except Exception` catches it and the caller can dead-letter the record) instead
//! of PyO3's `PanicException` (a `BaseException`) or an abort.

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyMemoryView, PyString, PyTuple};

use crate::boundary::{Panicked, guard};
use crate::bsm::json::record_json;
use crate::bsm::record::{Limits, decode_record_with};
use crate::bsm::trail::{Item, Walk, looks_like_bsm};
use crate::bulk_body::{BulkBody, body_view};
use crate::ecs::batch::{
    Batch, BodyLayout, Built, Fallback, IndexNaming, Prepared, Schema, build_bsm, bulk_body, holds_marks,
    unencodable_json,
};
use crate::ecs::common::{OBSERVER_KEYS, Observer, Parties, Source, set_errno_messages};
use crate::ecs::deadletter::{dead_letter_bsm, dead_letter_linux};
use crate::ecs::enrich::{Enrichment, ZoneInfo};
use crate::ecs::limits::{DocLimits, cut_document, within_limits};
use crate::ecs::linux_batch;
use crate::journal;
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
    with_buffer(data, |bytes| py.detach(|| split(bytes)))?.map_err(panic_error)
}

/// `run` over the bytes of `data`: a `bytes` object's own, or a copy of any other buffer's (a memoryview,
/// an mmap, a bytearray: PyO3 lends no slice of a buffer Python could change while it is read).
fn with_buffer<R>(data: &Bound<'_, PyAny>, run: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(run(b.as_bytes()));
    }
    Ok(run(&PyBuffer::<u8>::get(data)?.to_vec(data.py())?))
}

/// gzip of a `_bulk` body (src/gzip.rs), without the GIL: the sink compresses big bodies in a thread.
/// `bytes` or any buffer (a native body is a memoryview, copied here first: a copy costs a few % of the
/// compression).
#[pyfunction]
#[pyo3(signature = (data, level=1))]
fn gzip<'py>(py: Python<'py>, data: &Bound<'py, PyAny>, level: i32) -> PyResult<Bound<'py, PyBytes>> {
    let packed = with_buffer(data, |bytes| py.detach(|| guard(|| crate::gzip::gzip(bytes, level))))?;
    Ok(PyBytes::new(py, &packed.map_err(panic_error)?))
}

/// True when the bytes start like a BSM trail (a plausible header, or a file token then one).
#[pyfunction]
fn bsm_looks_like(head: &[u8]) -> PyResult<bool> {
    guard(|| looks_like_bsm(head)).map_err(panic_error)
}

// ------------------------------------------------------------------------------------ documents

fn schema_of(schema: &str) -> PyResult<Schema> {
    match schema {
        "ecs" => Ok(Schema::Ecs),
        "auditrecv-v1" => Ok(Schema::V1),
        other => Err(PyValueError::new_err(format!("unknown schema {other:?} (ecs or auditrecv-v1)"))),
    }
}

/// Python's `str(value)` for a truthy value, None for a falsy one.
fn truthy_text(value: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if !value.is_truthy()? {
        return Ok(None);
    }
    Ok(Some(value.str()?.to_cow()?.into_owned()))
}

fn text_field(d: &Bound<'_, PyDict>, key: &str) -> PyResult<String> {
    Ok(match d.get_item(key)? {
        Some(v) if !v.is_none() => v.str()?.to_cow()?.into_owned(),
        _ => String::new(),
    })
}

/// `Source.to_dict()` (or any mapping with its keys) -> Source.
fn source_of(d: &Bound<'_, PyDict>) -> PyResult<Source> {
    Ok(Source {
        transport: text_field(d, "transport")?,
        peer: text_field(d, "peer")?,
        peer_port: match d.get_item("peer_port")? {
            Some(v) if !v.is_none() => v.extract()?,
            _ => 0,
        },
        mech: text_field(d, "mech")?,
        principal: text_field(d, "principal")?,
        authenticated: match d.get_item("authenticated")? {
            Some(v) => v.is_truthy()?,
            None => false,
        },
        listener: text_field(d, "listener")?,
    })
}

/// The pipeline's observer dict -> Observer (values as `observer_fields` reads them).
fn observer_of(d: &Bound<'_, PyDict>) -> PyResult<Observer> {
    let mut fields = Vec::with_capacity(6);
    for key in OBSERVER_KEYS {
        if let Some(v) = d.get_item(key)? {
            fields.push((key, truthy_text(&v)?));
        }
    }
    let ips = match d.get_item("ip")? {
        Some(v) if v.is_instance_of::<pyo3::types::PyString>() => Some(vec![v.extract::<String>()?]),
        Some(v) if v.is_instance_of::<PyList>() => {
            // only strings can be addresses (valid_ip of anything else is None)
            Some(v.cast::<PyList>()?.iter().filter_map(|ip| ip.extract::<String>().ok()).collect())
        }
        _ => None,
    };
    Ok(Observer { fields, ips })
}

fn pairs(d: Option<Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(d) = d.filter(|d| !d.is_none()) else { return Ok(Vec::new()) };
    let d = d.cast::<PyDict>()?;
    d.iter().map(|(k, v)| Ok((k.str()?.to_cow()?.into_owned(), v.str()?.to_cow()?.into_owned()))).collect()
}

/// The per-sender enrichment dict (see `_native.pyi`) -> Enrichment.
fn enrichment_of(d: &Bound<'_, PyDict>) -> PyResult<Enrichment> {
    let hostname = match d.get_item("hostname")? {
        Some(v) if !v.is_none() => Some(v.extract::<String>()?),
        _ => None,
    };
    let labels = pairs(d.get_item("labels")?)?;
    let mut zone_labels = Vec::new();
    if let Some(z) = d.get_item("zone_labels")?.filter(|z| !z.is_none()) {
        for (name, labels) in z.cast::<PyDict>()?.iter() {
            zone_labels.push((name.extract::<String>()?.to_lowercase(), pairs(Some(labels))?));
        }
    }
    let mut zones = Vec::new();
    if let Some(z) = d.get_item("zones")?.filter(|z| !z.is_none()) {
        for (key, info) in z.cast::<PyDict>()?.iter() {
            let info = info.cast::<PyDict>()?;
            zones.push((
                key.extract::<String>()?,
                ZoneInfo {
                    uuid: text_field(info, "uuid")?,
                    alias: text_field(info, "alias")?,
                    owner_uuid: text_field(info, "owner_uuid")?,
                    owner_login: text_field(info, "owner_login")?,
                    brand: text_field(info, "brand")?,
                    server_uuid: text_field(info, "server_uuid")?,
                    tags: pairs(info.get_item("tags")?)?,
                },
            ));
        }
    }
    Ok(Enrichment { hostname, labels, zone_labels, zones })
}

#[allow(clippy::too_many_arguments)]
fn batch_of(
    schema: &str,
    source: &Bound<'_, PyDict>,
    observer: &Bound<'_, PyDict>,
    enrichment: Option<&Bound<'_, PyDict>>,
    max_document_bytes: u64,
    max_tokens: u64,
    max_array_items: u64,
    max_string_chars: u64,
) -> PyResult<Batch> {
    let limits = DocLimits { max_document_bytes, max_tokens, max_array_items, max_string_chars };
    let enrichment = enrichment.map(enrichment_of).transpose()?;
    Ok(Batch::new(schema_of(schema)?, source_of(source)?, observer_of(observer)?, limits, enrichment))
}

/// One arrival time for all, or one per payload.
fn arrivals(received_ns: &Bound<'_, PyAny>, count: usize) -> PyResult<Vec<u64>> {
    if let Ok(one) = received_ns.extract::<u64>() {
        return Ok(vec![one]);
    }
    let each: Vec<u64> = received_ns.extract()?;
    if each.len() != count {
        return Err(PyValueError::new_err(format!("{} arrival times for {count} payloads", each.len())));
    }
    Ok(each)
}

fn fallback_text(why: &Fallback) -> String {
    match why {
        Fallback::Unencodable(e) => format!("unencodable: {e}"),
        Fallback::Panicked(m) => format!("native_error: {m}"),
    }
}

/// The dead letter of raw input that has no document (`kind` "bsm": one record; "linux": the lines of
/// an event, joined by newlines), with its bytes: the one dead-letter builder, also used by the Python
/// side when a whole native call fails.
#[pyfunction]
#[pyo3(signature = (raw, *, kind, error, received_ns, source, observer))]
fn dead_letter_json<'py>(
    py: Python<'py>,
    raw: &[u8],
    kind: &str,
    error: &str,
    received_ns: u64,
    source: &Bound<'py, PyDict>,
    observer: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyBytes>> {
    let parties = Parties::new(source_of(source)?, observer_of(observer)?);
    let doc = guard(|| match kind {
        "bsm" => dead_letter_bsm(raw, &parties, error, received_ns),
        _ => dead_letter_linux(raw, &parties, error, received_ns),
    })
    .map_err(panic_error)?
    .map_err(|e| PyValueError::new_err(e.0))?;
    let json = guard(|| doc.to_json()).map_err(panic_error)?.map_err(json_error)?;
    Ok(PyBytes::new(py, &json))
}

/// `document_id(kind, source, parts)`: the document id of raw input , e.g. of a BSM
/// record (`parts` = `[payload]`) or a line dead-lettered alone.
#[pyfunction]
#[pyo3(signature = (kind, source, parts))]
fn document_id(kind: &str, source: &Bound<'_, PyDict>, parts: Vec<Vec<u8>>) -> PyResult<String> {
    let identity = crate::ecs::ids::host_identity(&source_of(source)?);
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    guard(|| crate::ecs::ids::document_id(kind, &identity, &refs)).map_err(panic_error)
}

/// `limit_document(doc, raw, kind, limits)` of a document given as its JSON: the same bytes when within
/// the limits, else the cut document's JSON (what the document entry points write for documents over
/// them). ValueError if `doc` is not a JSON object.
#[pyfunction]
#[pyo3(signature = (doc, raw, kind, *, max_document_bytes=4_194_304, max_tokens=1000, max_array_items=10_000,
    max_string_chars=262_144))]
#[allow(clippy::too_many_arguments)]
fn limit_document_json<'py>(
    py: Python<'py>,
    doc: &[u8],
    raw: &[u8],
    kind: &str,
    max_document_bytes: u64,
    max_tokens: u64,
    max_array_items: u64,
    max_string_chars: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let limits = DocLimits { max_document_bytes, max_tokens, max_array_items, max_string_chars };
    let kind: &'static str = if kind == "bsm" { "bsm" } else { "linux" };
    let out = guard(|| {
        if within_limits(doc, &limits) {
            return Some(doc.to_vec());
        }
        cut_document(doc, raw, kind, &limits)?.to_json().ok()
    })
    .map_err(panic_error)?
    .ok_or_else(|| PyValueError::new_err("not a JSON object"))?;
    Ok(PyBytes::new(py, &out))
}

/// One payload's result: document id, document JSON (None for a fallback), fallback reason.
type DocumentRow<'py> = (String, Option<Bound<'py, PyBytes>>, Option<String>);
/// One payload's place in a bulk body: id, index, start, end, fallback reason ("" if none).
type LayoutRow = (String, String, usize, usize, String);

fn payload_slices<'a>(payloads: &'a [Bound<'_, PyBytes>]) -> Vec<&'a [u8]> {
    payloads.iter().map(|p| p.as_bytes()).collect()
}

/// The documents of a batch of spooled BSM records from one sender: `(doc_id, document JSON or None,
/// fallback reason or None)` per payload, in order.
#[pyfunction]
#[pyo3(signature = (payloads, *, schema, received_ns, source, observer, enrichment=None,
    max_document_bytes=4_194_304, max_tokens=1000, max_array_items=10_000, max_string_chars=262_144))]
#[allow(clippy::too_many_arguments)]
fn ecs_bsm_documents<'py>(
    py: Python<'py>,
    payloads: Vec<Bound<'py, PyBytes>>,
    schema: &str,
    received_ns: &Bound<'py, PyAny>,
    source: &Bound<'py, PyDict>,
    observer: &Bound<'py, PyDict>,
    enrichment: Option<&Bound<'py, PyDict>>,
    max_document_bytes: u64,
    max_tokens: u64,
    max_array_items: u64,
    max_string_chars: u64,
) -> PyResult<Vec<DocumentRow<'py>>> {
    let batch = batch_of(
        schema,
        source,
        observer,
        enrichment,
        max_document_bytes,
        max_tokens,
        max_array_items,
        max_string_chars,
    )?;
    let times = arrivals(received_ns, payloads.len())?;
    let slices = payload_slices(&payloads);
    let built = py.detach(|| {
        slices
            .iter()
            .enumerate()
            .map(|(i, p)| build_bsm(p, times.get(i).copied().unwrap_or(times[0]), &batch))
            .collect::<Vec<_>>()
    });
    Ok(built
        .into_iter()
        .map(|b| match b {
            Built::Doc { id, json, .. } => (id, Some(PyBytes::new(py, &json)), None),
            Built::Fallback { id, why } => (id, None, Some(fallback_text(&why))),
        })
        .collect())
}

/// The document of a spooled BSM record (mapped, not enriched nor cut) as JSON with integers beyond 64
/// bits written, for the records handed back as "unencodable": `json.loads` of it is the dict the Python
/// mappers made. None if it cannot be made.
#[pyfunction]
#[pyo3(signature = (payload, *, schema, received_ns, source, observer,
    max_document_bytes=4_194_304, max_tokens=1000, max_array_items=10_000, max_string_chars=262_144))]
#[allow(clippy::too_many_arguments)]
fn bsm_unencodable_json<'py>(
    py: Python<'py>,
    payload: &[u8],
    schema: &str,
    received_ns: u64,
    source: &Bound<'py, PyDict>,
    observer: &Bound<'py, PyDict>,
    max_document_bytes: u64,
    max_tokens: u64,
    max_array_items: u64,
    max_string_chars: u64,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let batch =
        batch_of(schema, source, observer, None, max_document_bytes, max_tokens, max_array_items, max_string_chars)?;
    let json = py.detach(|| unencodable_json(payload, received_ns, &batch));
    Ok(json.map(|j| PyBytes::new(py, &j)))
}

/// The `_bulk` body for a batch of spooled BSM records from one sender, and where each record's lines
/// are: `(doc_id, index, start, end, fallback)` per payload (`fallback` "" for records in the body;
/// otherwise the reason, with `start == end` where the record's lines belong).
#[pyfunction]
#[pyo3(signature = (payloads, *, schema, received_ns, source, observer, index="auditrecv-%Y.%m.%d",
    data_stream=None, enrichment=None, max_document_bytes=4_194_304, max_tokens=1000,
    max_array_items=10_000, max_string_chars=262_144))]
#[allow(clippy::too_many_arguments)]
fn ecs_bsm_bulk_body<'py>(
    py: Python<'py>,
    payloads: Vec<Bound<'py, PyBytes>>,
    schema: &str,
    received_ns: &Bound<'py, PyAny>,
    source: &Bound<'py, PyDict>,
    observer: &Bound<'py, PyDict>,
    index: &str,
    data_stream: Option<&str>,
    enrichment: Option<&Bound<'py, PyDict>>,
    max_document_bytes: u64,
    max_tokens: u64,
    max_array_items: u64,
    max_string_chars: u64,
) -> PyResult<(Bound<'py, PyMemoryView>, Vec<LayoutRow>)> {
    let batch = batch_of(
        schema,
        source,
        observer,
        enrichment,
        max_document_bytes,
        max_tokens,
        max_array_items,
        max_string_chars,
    )?;
    let naming = naming_of(index, data_stream)?;
    let times = arrivals(received_ns, payloads.len())?;
    let slices = payload_slices(&payloads);
    let (body, layout) = py.detach(|| guard(|| bulk_body(&slices, &times, &batch, &naming))).map_err(panic_error)?;
    Ok((body_view(py, body)?, layout_rows(layout)))
}

fn naming_of(index: &str, data_stream: Option<&str>) -> PyResult<IndexNaming> {
    let naming = match data_stream {
        Some(name) => IndexNaming::DataStream(name.to_owned()),
        None => IndexNaming::Daily(index.to_owned()),
    };
    naming.check().map_err(PyValueError::new_err)?;
    Ok(naming)
}

fn layout_rows(layout: Vec<BodyLayout>) -> Vec<LayoutRow> {
    layout
        .into_iter()
        .map(|l| match l {
            BodyLayout::Lines { id, index, start, end } => (id, index, start, end, String::new()),
            BodyLayout::Fallback { id, why, at } => (id, String::new(), at, at, fallback_text(&why)),
        })
        .collect()
}

/// A batch of spooled BSM records from one sender, mapped (decode, ECS or v1, ids, dead letters) but not
/// yet enriched nor serialized: `zone_refs()` says what enrichment would look up, then `bulk_body()`
/// takes the values looked up and writes the body. The documents stay in Rust in between.
#[pyclass(module = "auditrecv._native", name = "BsmDocuments")]
struct BsmDocuments {
    batch: Batch,
    prepared: Option<Prepared>,
}

#[pymethods]
impl BsmDocuments {
    #[new]
    #[pyo3(signature = (payloads, *, schema, received_ns, source, observer,
        max_document_bytes=4_194_304, max_tokens=1000, max_array_items=10_000, max_string_chars=262_144))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        payloads: Vec<Bound<'_, PyBytes>>,
        schema: &str,
        received_ns: &Bound<'_, PyAny>,
        source: &Bound<'_, PyDict>,
        observer: &Bound<'_, PyDict>,
        max_document_bytes: u64,
        max_tokens: u64,
        max_array_items: u64,
        max_string_chars: u64,
    ) -> PyResult<Self> {
        let batch = batch_of(
            schema,
            source,
            observer,
            None,
            max_document_bytes,
            max_tokens,
            max_array_items,
            max_string_chars,
        )?;
        let times = arrivals(received_ns, payloads.len())?;
        let slices = payload_slices(&payloads);
        let prepared = py.detach(|| guard(|| Prepared::new(&slices, &times, &batch))).map_err(panic_error)?;
        Ok(BsmDocuments { batch, prepared: Some(prepared) })
    }

    fn __len__(&self) -> usize {
        self.prepared.as_ref().map_or(0, Prepared::len)
    }

    /// The distinct zone names and zlogin targets enrichment would look up, in first-seen order.
    fn zone_refs(&self) -> PyResult<Vec<String>> {
        let prepared = self.prepared.as_ref().ok_or_else(|| PyValueError::new_err("already serialized"))?;
        guard(|| prepared.zone_refs()).map_err(panic_error)
    }

    /// Enrich with the per-sender values and write the `_bulk` body (once): as `ecs_bsm_bulk_body`.
    #[pyo3(signature = (*, index="auditrecv-%Y.%m.%d", data_stream=None, enrichment=None))]
    fn bulk_body<'py>(
        &mut self,
        py: Python<'py>,
        index: &str,
        data_stream: Option<&str>,
        enrichment: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<(Bound<'py, PyMemoryView>, Vec<LayoutRow>)> {
        let (body, layout) = self.write(py, index, data_stream, enrichment)?;
        Ok((body_view(py, body)?, layout_rows(layout)))
    }

    /// `bulk_body` in columns, so that the caller builds nothing per document: the body, where each
    /// document's lines end, the ids, the indexes (one string object per run of equal names), the
    /// fallback reason by position of the documents not in the body (their lines belong at the previous
    /// end), and whether the body holds a dead letter or a cut document ([`holds_marks`]).
    #[pyo3(signature = (*, index="auditrecv-%Y.%m.%d", data_stream=None, enrichment=None))]
    fn bulk_columns<'py>(
        &mut self,
        py: Python<'py>,
        index: &str,
        data_stream: Option<&str>,
        enrichment: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<BulkColumns<'py>> {
        let (body, layout) = self.write(py, index, data_stream, enrichment)?;
        bulk_columns(py, body, layout)
    }
}

impl BsmDocuments {
    /// Enrich and serialize the prepared documents (once).
    fn write(
        &mut self,
        py: Python<'_>,
        index: &str,
        data_stream: Option<&str>,
        enrichment: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Vec<u8>, Vec<BodyLayout>)> {
        let naming = naming_of(index, data_stream)?;
        self.batch.enrichment = enrichment.map(enrichment_of).transpose()?;
        let prepared = self.prepared.take().ok_or_else(|| PyValueError::new_err("already serialized"))?;
        let batch = &self.batch;
        py.detach(|| guard(|| prepared.bulk_body(batch, &naming))).map_err(panic_error)
    }
}

/// A bulk body in columns: body, end offset per document, ids, indexes, fallback reason by position,
/// whether a dead letter or a cut document is in it.
type BulkColumns<'py> = (
    Bound<'py, PyMemoryView>,
    Vec<usize>,
    Vec<String>,
    Vec<Bound<'py, PyString>>,
    std::collections::BTreeMap<usize, String>,
    bool,
);

fn bulk_columns<'py>(py: Python<'py>, body: Vec<u8>, layout: Vec<BodyLayout>) -> PyResult<BulkColumns<'py>> {
    let mut ends = Vec::with_capacity(layout.len());
    let mut ids = Vec::with_capacity(layout.len());
    let mut indexes = Vec::with_capacity(layout.len());
    let mut fallbacks = std::collections::BTreeMap::new();
    let no_index = PyString::new(py, "");
    let mut last_index: Option<(String, Bound<'py, PyString>)> = None;
    for (position, row) in layout.into_iter().enumerate() {
        match row {
            BodyLayout::Lines { id, index, end, .. } => {
                let text = match &last_index {
                    Some((name, text)) if *name == index => text.clone(),
                    _ => {
                        let text = PyString::new(py, &index);
                        last_index = Some((index, text.clone()));
                        text
                    }
                };
                ends.push(end);
                ids.push(id);
                indexes.push(text);
            }
            BodyLayout::Fallback { id, why, at } => {
                ends.push(at);
                ids.push(id);
                indexes.push(no_index.clone());
                fallbacks.insert(position, fallback_text(&why));
            }
        }
    }
    let marked = holds_marks(&body);
    Ok((body_view(py, body)?, ends, ids, indexes, fallbacks, marked))
}

// ------------------------------------------------------------------------------- Linux documents

/// One completed event: doc id ("" for none), document JSON (None: no document, or handed back),
/// spool ids of its lines, reason (None for a document; "no_document" for an orphan EOE; else the
/// hand-back reason), the event's `decode --raw` JSON for the Python path (hand-backs only), and the
/// arrival time of its first line.
type LinuxRow<'py> =
    (String, Option<Bound<'py, PyBytes>>, Vec<i64>, Option<String>, Option<Bound<'py, PyBytes>>, Option<u64>);
/// One completed event's place in a bulk body: id, index, start, end, reason ("" if in the body; with
/// `start == end` where its lines belong), spool ids, `decode --raw` JSON of hand-backs, arrival time.
type LinuxLayoutRow<'py> = (
    String,
    Bound<'py, PyString>,
    usize,
    usize,
    Bound<'py, PyString>,
    Vec<i64>,
    Option<Bound<'py, PyBytes>>,
    Option<u64>,
);

const NO_DOCUMENT: &str = "no_document";

fn wall_clock() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The Linux documents of one sender, as the pipeline's `DocumentBuilder` makes them: spooled lines
/// go in with their arrival times and spool ids (`add`), the assembler keeps the open events across
/// calls, and every call returns the events it completed as documents (`poll`: timed out; `flush`:
/// everything open). The `*_bulk` variants return the `_bulk` body instead, as `ecs_bsm_bulk_body`.
#[pyclass(module = "auditrecv._native", name = "LinuxDocuments")]
struct LinuxDocuments {
    builder: linux_batch::LinuxBuilder,
}

impl LinuxDocuments {
    fn set_enrichment(&mut self, enrichment: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.builder.enrichment = enrichment.map(enrichment_of).transpose()?;
        Ok(())
    }

    /// The lines of one `add`/`add_bulk` call, checked; their documents written to `body` if given.
    #[allow(clippy::too_many_arguments)]
    fn lines_in(
        &mut self,
        py: Python<'_>,
        lines: &[Bound<'_, PyBytes>],
        received_ns: &Bound<'_, PyAny>,
        spool_ids: Option<Vec<i64>>,
        source: &Bound<'_, PyDict>,
        now: Option<f64>,
        body: Option<&mut linux_batch::Body<'_>>,
    ) -> PyResult<Vec<linux_batch::LinuxBuilt>> {
        let times = arrivals(received_ns, lines.len())?;
        let ids = spool_ids.unwrap_or_else(|| (1..=lines.len() as i64).collect());
        if ids.len() != lines.len() {
            return Err(PyValueError::new_err(format!("{} spool ids for {} lines", ids.len(), lines.len())));
        }
        let source = source_of(source)?;
        let slices = payload_slices(lines);
        let builder = &mut self.builder;
        py.detach(|| {
            guard(|| match body {
                Some(body) => builder.add_bulk(&slices, &times, &ids, &source, now, body),
                None => builder.add(&slices, &times, &ids, &source, now),
            })
        })
        .map_err(panic_error)
    }

    fn rows<'py>(&self, py: Python<'py>, built: Vec<linux_batch::LinuxBuilt>) -> Vec<LinuxRow<'py>> {
        let builder = &self.builder;
        let done: Vec<_> = py.detach(|| {
            built
                .into_iter()
                .map(|mut b| {
                    let result = match &b.outcome {
                        linux_batch::Outcome::Doc(_) => builder.serialize(&mut b).map_err(|why| (why, None)),
                        linux_batch::Outcome::NoDocument => Err((Fallback::Panicked(String::new()), None)),
                        linux_batch::Outcome::Fallback(why, json) => Err((why.clone(), json.clone())),
                        // only the *_bulk calls place documents in a body
                        linux_batch::Outcome::Placed { .. } => {
                            Err((Fallback::Panicked("written to a body".into()), None))
                        }
                    };
                    (b, result)
                })
                .collect()
        });
        done.into_iter()
            .map(|(b, result)| {
                let (json, why, event) = match result {
                    Ok(json) => (Some(PyBytes::new(py, &json)), None, None),
                    Err(_) if b.outcome == linux_batch::Outcome::NoDocument => {
                        (None, Some(NO_DOCUMENT.to_owned()), None)
                    }
                    Err((why, event)) => (None, Some(fallback_text(&why)), event.map(|e| PyBytes::new(py, &e))),
                };
                (b.id, json, b.spool_ids, why, event, b.received_ns)
            })
            .collect()
    }

    /// The `_bulk` body the documents of `built` were written to, and where each one is in it. A batch's
    /// rows share their index name (one per date) and their empty reason as Python strings, made once.
    fn bulk<'py>(
        py: Python<'py>,
        (built, body): (Vec<linux_batch::LinuxBuilt>, Vec<u8>),
    ) -> PyResult<(Bound<'py, PyMemoryView>, Vec<LinuxLayoutRow<'py>>)> {
        let no_reason = PyString::new(py, "");
        let mut last_index: Option<(String, Bound<'py, PyString>)> = None;
        let mut at = 0;
        let rows = built
            .into_iter()
            .map(|b| match b.outcome {
                linux_batch::Outcome::Placed { start, end, index } => {
                    at = end;
                    let index = match &last_index {
                        Some((name, text)) if *name == index => text.clone(),
                        _ => {
                            let text = PyString::new(py, &index);
                            last_index = Some((index, text.clone()));
                            text
                        }
                    };
                    (b.id, index, start, end, no_reason.clone(), b.spool_ids, None, b.received_ns)
                }
                other => {
                    let (why, event) = match other {
                        linux_batch::Outcome::Fallback(why, event) => (fallback_text(&why), event),
                        _ => (NO_DOCUMENT.to_owned(), None),
                    };
                    let (index, why) = (no_reason.clone(), PyString::new(py, &why));
                    (b.id, index, at, at, why, b.spool_ids, event.map(|e| PyBytes::new(py, &e)), b.received_ns)
                }
            })
            .collect();
        Ok((body_view(py, body)?, rows))
    }

    /// The body and results of `add_bulk`/`add_columns`: the lines' completed events written to one body,
    /// sized for the lines (a full batch is mostly complete events).
    #[allow(clippy::too_many_arguments)]
    fn add_body(
        &mut self,
        py: Python<'_>,
        lines: &[Bound<'_, PyBytes>],
        received_ns: &Bound<'_, PyAny>,
        source: &Bound<'_, PyDict>,
        spool_ids: Option<Vec<i64>>,
        enrichment: Option<&Bound<'_, PyDict>>,
        now: Option<f64>,
        naming: (&str, Option<&str>),
    ) -> PyResult<(Vec<linux_batch::LinuxBuilt>, Vec<u8>)> {
        let naming = naming_of(naming.0, naming.1)?;
        self.set_enrichment(enrichment)?;
        let mut body = linux_batch::Body::new(&naming, lines.len() * BODY_BYTES_PER_EVENT / 2);
        let built = self.lines_in(py, lines, received_ns, spool_ids, source, now, Some(&mut body))?;
        Ok((built, body.into_bytes()))
    }

    /// The body and results of `poll_bulk`/`poll_columns` (`now`: Some) or `flush_bulk`/`flush_columns`.
    fn timed_out_body(
        &mut self,
        py: Python<'_>,
        poll: Option<Option<f64>>,
        enrichment: Option<&Bound<'_, PyDict>>,
        naming: (&str, Option<&str>),
    ) -> PyResult<(Vec<linux_batch::LinuxBuilt>, Vec<u8>)> {
        let naming = naming_of(naming.0, naming.1)?;
        self.set_enrichment(enrichment)?;
        let builder = &mut self.builder;
        let mut body = linux_batch::Body::new(&naming, builder.in_flight() * BODY_BYTES_PER_EVENT);
        let built = py
            .detach(|| {
                guard(|| match poll {
                    Some(now) => builder.poll(now, wall_clock(), Some(&mut body)),
                    None => builder.flush(Some(&mut body)),
                })
            })
            .map_err(panic_error)?;
        Ok((built, body.into_bytes()))
    }
}

/// A Linux bulk body in columns (`LinuxDocuments.*_columns`): the body (a read-only memoryview, not copied:
/// `bulk_body.rs`); the end offset, id, index (one string object per run of equal names) and spool ids of
/// each event in it; the positions of those cut to `[limits]`; and each event not in it: how many of the
/// body's events come before it, its id, spool ids, reason and JSON.
type LinuxColumns<'py> = (
    Bound<'py, PyMemoryView>,
    Vec<usize>,
    Vec<String>,
    Vec<Bound<'py, PyString>>,
    Vec<Vec<i64>>,
    Vec<usize>,
    Vec<(usize, String, Vec<i64>, String, Option<Bound<'py, PyBytes>>)>,
);

fn linux_columns<'py>(
    py: Python<'py>,
    (built, body): (Vec<linux_batch::LinuxBuilt>, Vec<u8>),
) -> PyResult<LinuxColumns<'py>> {
    let columns = guard(|| linux_batch::Columns::of(built)).map_err(panic_error)?;
    let mut last: Option<(&str, Bound<'py, PyString>)> = None;
    let mut indexes = Vec::with_capacity(columns.indexes.len());
    for name in &columns.indexes {
        let text = match &last {
            Some((previous, text)) if previous == name => text.clone(),
            _ => {
                let text = PyString::new(py, name);
                last = Some((name, text.clone()));
                text
            }
        };
        indexes.push(text);
    }
    let others = columns
        .others
        .into_iter()
        .map(|(before, other)| {
            let (why, json) = match other.why {
                linux_batch::HandedBack::NoDocument => (NO_DOCUMENT.to_owned(), None),
                linux_batch::HandedBack::Fallback(why, json) => (fallback_text(&why), json),
            };
            (before, other.id, other.spool_ids, why, json.map(|j| PyBytes::new(py, &j)))
        })
        .collect();
    let (ends, ids, spool_ids, cut) = (columns.ends, columns.ids, columns.spool_ids, columns.cut);
    Ok((body_view(py, body)?, ends, ids, indexes, spool_ids, cut, others))
}

/// Room for a body: most Linux documents take 2-4 KiB.
const BODY_BYTES_PER_EVENT: usize = 4096;

#[pymethods]
impl LinuxDocuments {
    #[new]
    #[pyo3(signature = (*, schema, observer, record_clock=false, grace_seconds=2.0, max_age_seconds=10.0,
        max_records=1000, max_in_flight=10_000, max_linux_event_bytes=1_048_576, max_document_bytes=4_194_304,
        max_tokens=1000, max_array_items=10_000, max_string_chars=262_144))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        schema: &str,
        observer: &Bound<'_, PyDict>,
        record_clock: bool,
        grace_seconds: f64,
        max_age_seconds: f64,
        max_records: usize,
        max_in_flight: usize,
        max_linux_event_bytes: Option<usize>,
        max_document_bytes: u64,
        max_tokens: u64,
        max_array_items: u64,
        max_string_chars: u64,
    ) -> PyResult<Self> {
        let limits = DocLimits { max_document_bytes, max_tokens, max_array_items, max_string_chars };
        let settings = linux::Settings {
            grace_seconds,
            max_age_seconds,
            max_records,
            max_in_flight,
            max_bytes: max_linux_event_bytes,
        };
        let builder =
            linux_batch::LinuxBuilder::new(schema_of(schema)?, observer_of(observer)?, limits, settings, record_clock);
        Ok(LinuxDocuments { builder })
    }

    /// Number of events still open.
    fn __len__(&self) -> usize {
        self.builder.in_flight()
    }

    /// `DocumentBuilder.stats`' Linux counters for this builder: linux_lines, linux_events, dead_letters.
    fn stats(&self) -> std::collections::HashMap<&'static str, u64> {
        std::collections::HashMap::from([
            ("linux_lines", self.builder.lines),
            ("linux_events", self.builder.events),
            ("dead_letters", self.builder.dead_letters),
        ])
    }

    /// Spooled lines of `source` (without their newline) -> the documents of the events they completed
    /// or that timed out since (`DocumentBuilder.add`); `now` (tests) overrides the clock.
    #[pyo3(signature = (lines, *, received_ns, source, spool_ids=None, enrichment=None, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn add<'py>(
        &mut self,
        py: Python<'py>,
        lines: Vec<Bound<'py, PyBytes>>,
        received_ns: &Bound<'py, PyAny>,
        source: &Bound<'py, PyDict>,
        spool_ids: Option<Vec<i64>>,
        enrichment: Option<&Bound<'py, PyDict>>,
        now: Option<f64>,
    ) -> PyResult<Vec<LinuxRow<'py>>> {
        self.set_enrichment(enrichment)?;
        let built = self.lines_in(py, &lines, received_ns, spool_ids, source, now, None)?;
        Ok(self.rows(py, built))
    }

    /// The documents of events whose grace window or maximum age has passed (`DocumentBuilder.poll`).
    #[pyo3(signature = (now=None, *, enrichment=None))]
    fn poll<'py>(
        &mut self,
        py: Python<'py>,
        now: Option<f64>,
        enrichment: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Vec<LinuxRow<'py>>> {
        self.set_enrichment(enrichment)?;
        let builder = &mut self.builder;
        let built = guard(|| builder.poll(now, wall_clock(), None)).map_err(panic_error)?;
        Ok(self.rows(py, built))
    }

    /// The documents of every event still open (end of input, shutdown).
    #[pyo3(signature = (*, enrichment=None))]
    fn flush<'py>(&mut self, py: Python<'py>, enrichment: Option<&Bound<'py, PyDict>>) -> PyResult<Vec<LinuxRow<'py>>> {
        self.set_enrichment(enrichment)?;
        let builder = &mut self.builder;
        let built = guard(|| builder.flush(None)).map_err(panic_error)?;
        Ok(self.rows(py, built))
    }

    /// `add`, returning the `_bulk` body of the completed events and where each one is.
    #[pyo3(signature = (lines, *, received_ns, source, spool_ids=None, enrichment=None, now=None,
        index="auditrecv-%Y.%m.%d", data_stream=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_bulk<'py>(
        &mut self,
        py: Python<'py>,
        lines: Vec<Bound<'py, PyBytes>>,
        received_ns: &Bound<'py, PyAny>,
        source: &Bound<'py, PyDict>,
        spool_ids: Option<Vec<i64>>,
        enrichment: Option<&Bound<'py, PyDict>>,
        now: Option<f64>,
        index: &str,
        data_stream: Option<&str>,
    ) -> PyResult<(Bound<'py, PyMemoryView>, Vec<LinuxLayoutRow<'py>>)> {
        let naming = (index, data_stream);
        let written = self.add_body(py, &lines, received_ns, source, spool_ids, enrichment, now, naming)?;
        Self::bulk(py, written)
    }

    /// `poll`, returning the `_bulk` body.
    #[pyo3(signature = (now=None, *, enrichment=None, index="auditrecv-%Y.%m.%d", data_stream=None))]
    fn poll_bulk<'py>(
        &mut self,
        py: Python<'py>,
        now: Option<f64>,
        enrichment: Option<&Bound<'py, PyDict>>,
        index: &str,
        data_stream: Option<&str>,
    ) -> PyResult<(Bound<'py, PyMemoryView>, Vec<LinuxLayoutRow<'py>>)> {
        Self::bulk(py, self.timed_out_body(py, Some(now), enrichment, (index, data_stream))?)
    }

    /// `flush`, returning the `_bulk` body.
    #[pyo3(signature = (*, enrichment=None, index="auditrecv-%Y.%m.%d", data_stream=None))]
    fn flush_bulk<'py>(
        &mut self,
        py: Python<'py>,
        enrichment: Option<&Bound<'py, PyDict>>,
        index: &str,
        data_stream: Option<&str>,
    ) -> PyResult<(Bound<'py, PyMemoryView>, Vec<LinuxLayoutRow<'py>>)> {
        Self::bulk(py, self.timed_out_body(py, None, enrichment, (index, data_stream))?)
    }

    /// `add_bulk` in columns (as `BsmDocuments.bulk_columns`), so that the caller builds nothing per
    /// document: see `LinuxColumns`.
    #[pyo3(signature = (lines, *, received_ns, source, spool_ids=None, enrichment=None, now=None,
        index="auditrecv-%Y.%m.%d", data_stream=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_columns<'py>(
        &mut self,
        py: Python<'py>,
        lines: Vec<Bound<'py, PyBytes>>,
        received_ns: &Bound<'py, PyAny>,
        source: &Bound<'py, PyDict>,
        spool_ids: Option<Vec<i64>>,
        enrichment: Option<&Bound<'py, PyDict>>,
        now: Option<f64>,
        index: &str,
        data_stream: Option<&str>,
    ) -> PyResult<LinuxColumns<'py>> {
        let naming = (index, data_stream);
        let written = self.add_body(py, &lines, received_ns, source, spool_ids, enrichment, now, naming)?;
        linux_columns(py, written)
    }

    /// `poll_bulk` in columns.
    #[pyo3(signature = (now=None, *, enrichment=None, index="auditrecv-%Y.%m.%d", data_stream=None))]
    fn poll_columns<'py>(
        &mut self,
        py: Python<'py>,
        now: Option<f64>,
        enrichment: Option<&Bound<'py, PyDict>>,
        index: &str,
        data_stream: Option<&str>,
    ) -> PyResult<LinuxColumns<'py>> {
        linux_columns(py, self.timed_out_body(py, Some(now), enrichment, (index, data_stream))?)
    }

    /// `flush_bulk` in columns.
    #[pyo3(signature = (*, enrichment=None, index="auditrecv-%Y.%m.%d", data_stream=None))]
    fn flush_columns<'py>(
        &mut self,
        py: Python<'py>,
        enrichment: Option<&Bound<'py, PyDict>>,
        index: &str,
        data_stream: Option<&str>,
    ) -> PyResult<LinuxColumns<'py>> {
        linux_columns(py, self.timed_out_body(py, None, enrichment, (index, data_stream))?)
    }
}

/// `os.strerror(getattr(errno, name))` for every errno name this Python knows: what `errno_message`
/// reads, so error.message is the platform's text as in Python.
fn load_errno_messages(py: Python<'_>) -> PyResult<()> {
    let errno = py.import("errno")?;
    let os = py.import("os")?;
    let mut table = std::collections::HashMap::new();
    for (name, value) in errno.dict().iter() {
        let Ok(name) = name.extract::<String>() else { continue };
        if !name.starts_with('E') {
            continue;
        }
        let Ok(number) = value.extract::<i64>() else { continue };
        let message: String = os.call_method1("strerror", (number,))?.extract()?;
        table.insert(name, message);
    }
    set_errno_messages(table);
    Ok(())
}

/// What the Python decoder raises where the native one fails.
fn linux_error(e: linux::DecodeError) -> PyErr {
    match e {
        linux::DecodeError::Json(e) => json_error(e),
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
    } else {
        with_buffer(data, |bytes| py.detach(|| guard(|| linux::decode_raw(linux::log_lines(bytes), source, settings))))?
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
    match with_buffer(data, run)?.map_err(panic_error)? {
        Ok(n) => Ok(n),
        Err(linux::ChunkError::Decode(e)) => Err(linux_error(e)),
        Err(linux::ChunkError::Sink(e)) => Err(e),
    }
}

// ------------------------------------------------------------------------------- ack journal

/// An `OSError` with the errno (so Python sees `FileNotFoundError`, `errno.ENOSPC`, ...).
fn os_error(e: std::io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(code) => PyOSError::new_err((code, e.to_string())),
        None => PyOSError::new_err(e.to_string()),
    }
}

/// One ack journal file of the spool (`src/journal.rs`; `auditrecv/spool/journal.py` reads it back).
/// Not thread-safe by contract (the spool writer's lock guards every call); PyO3's borrow check turns
/// a concurrent call into an error, never a race.
#[pyclass(module = "auditrecv._native", name = "JournalFile")]
struct PyJournalFile {
    file: Option<journal::JournalFile>,
}

impl PyJournalFile {
    fn open(&mut self) -> PyResult<&mut journal::JournalFile> {
        self.file.as_mut().ok_or_else(|| PyValueError::new_err("ack journal file is closed"))
    }
}

fn too_long(e: journal::TooLong) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The copy into the mapped file and, with `sync`, its `msync` without the GIL (a sync takes 0.1-10 ms);
/// a plain copy (no system call) keeps it: letting go would invite the fold thread in, and getting it back
/// can take a switch interval (5 ms).
fn write_staged(py: Python<'_>, file: &mut journal::JournalFile, sync: bool) -> PyResult<()> {
    let outcome = if sync { py.detach(|| guard(|| file.write(true))) } else { guard(|| file.write(false)) };
    outcome.map_err(panic_error)?.map_err(os_error)
}

#[pymethods]
impl PyJournalFile {
    /// Create (or empty) the file at `path`: mode 0600, its room preallocated and mapped (if it can be:
    /// else the first append allocates it, or raises as a write on a full filesystem would). `map`
    /// false: never mapped, every append a `pwrite(2)` (the tests' way to that path).
    #[new]
    #[pyo3(signature = (path, map=true))]
    fn new(path: std::path::PathBuf, map: bool) -> PyResult<Self> {
        let file = guard(|| journal::JournalFile::create_with(&path, map)).map_err(panic_error)?.map_err(os_error)?;
        Ok(Self { file: Some(file) })
    }

    /// Encode one entry and copy it into the file (no system call; then `msync` with `sync`). Durable as promised
    /// when this returns; on an error nothing of it stays in the file.
    #[pyo3(signature = (id, kind, source, received_ns, payload, sync=false))]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        py: Python<'_>,
        id: u64,
        kind: &str,
        source: &[u8],
        received_ns: i64,
        payload: &[u8],
        sync: bool,
    ) -> PyResult<()> {
        let file = self.open()?;
        guard(|| file.stage(id, received_ns, kind.as_bytes(), source, payload))
            .map_err(panic_error)?
            .map_err(too_long)?;
        write_staged(py, file, sync)
    }

    /// Encode one entry for the next `write` (several records of one append: one copy).
    fn stage(&mut self, id: u64, kind: &str, source: &[u8], received_ns: i64, payload: &[u8]) -> PyResult<()> {
        let file = self.open()?;
        let staged = guard(|| file.stage(id, received_ns, kind.as_bytes(), source, payload)).map_err(panic_error)?;
        if staged.is_err() {
            file.discard(); // the append is all or nothing
        }
        staged.map_err(too_long)
    }

    /// Drop the staged entries unwritten (an append that failed half-way through staging).
    fn discard(&mut self) -> PyResult<()> {
        let file = self.open()?;
        guard(|| file.discard()).map_err(panic_error)
    }

    /// Write the staged entries (and `msync` with `sync`); on an error none of them stays.
    #[pyo3(signature = (sync=false))]
    fn write(&mut self, py: Python<'_>, sync: bool) -> PyResult<()> {
        let file = self.open()?;
        write_staged(py, file, sync)
    }

    /// Empty the file: everything in it is in SQLite.
    fn clear(&mut self) -> PyResult<()> {
        let file = self.open()?;
        guard(|| file.clear()).map_err(panic_error)?.map_err(os_error)
    }

    /// Close the file (idempotent): unmapped, its unused room cut off (as far as that works: a file
    /// left with its room still ends its entries with the end mark).
    fn close(&mut self) -> PyResult<()> {
        if let Some(file) = self.file.take() {
            let _ = guard(|| file.close()).map_err(panic_error)?;
        }
        Ok(())
    }

    /// Bytes of whole entries in the file.
    #[getter]
    fn size(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.size)
    }

    /// The highest id written (0: none).
    #[getter]
    fn last_id(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.last_id)
    }

    /// How long the last `msync` took, in seconds.
    #[getter]
    fn last_sync_seconds(&self) -> f64 {
        self.file.as_ref().map_or(0.0, |f| f.last_sync_seconds)
    }
}

/// `JournalLedger.plan`: count, estimate, first (id, received_ns), distinct sources.
type FoldPlan<'py> = (usize, u64, Option<(u64, i64)>, Bound<'py, PyList>);

/// A journaled record's Python objects, kept for the fold's rows.
struct KeptRecord {
    kind: Py<PyAny>,
    payload: Py<PyAny>,
}

/// `JournalLedger.take_tally`: records, received_ns of the first, ack seconds' sum and max, the latest
/// latencies.
type TallyTuple = (u64, i64, f64, f64, Vec<f64>);

/// `JournalLedger.append_record`'s record: kind, payload, source, received_ns (checked there).
type RecordFields<'a, 'py> =
    (&'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>);

/// `JournalLedger.append_record`: declined (no room, too many kept): nothing written.
const APPEND_DECLINED: i64 = 0;
/// `JournalLedger.append_record`: the record's source is not the one `set_source` gave: nothing written.
const APPEND_NEW_SOURCE: i64 = -1;
/// `JournalLedger.append_record`: not plainly a record (payload not exactly `bytes`, kind not a `str`,
/// received_ns not an `int` of 64 bits): nothing written, the caller checks it (and raises or converts).
const APPEND_NOT_PLAIN: i64 = -2;
/// `JournalLedger.append_record`: not `open` (the writer is working on the journal, handing out ids or
/// stopping): nothing written, the caller takes the writer's lock and asks again.
const APPEND_CLOSED: i64 = -3;

/// One admitted record (`id`, its `estimate` of room) journaled and kept: its entry written to `file`
/// (and `msync`ed with `sync`), the room spent, the record kept; how many are kept now. An `OSError`
/// from the write leaves the file as it was and the room at 0 (appends go through group commits until a
/// fold looks again). The ledger's parts, not the ledger: `source_json` may be borrowed from it.
#[allow(clippy::too_many_arguments)]
fn journal_and_keep(
    py: Python<'_>,
    budget: &mut journal::Budget,
    ledger: &mut journal::Ledger<KeptRecord, Py<PyAny>>,
    file: &mut journal::JournalFile,
    id: u64,
    record: (&Bound<'_, PyString>, &[u8], &Bound<'_, PyAny>, i64, &Bound<'_, PyBytes>),
    estimate: i64,
    sync: bool,
) -> PyResult<usize> {
    let (kind, source_json, source, received_ns, payload) = record;
    let kind_text = kind.to_str()?;
    guard(|| file.stage(id, received_ns, kind_text.as_bytes(), source_json, payload.as_bytes()))
        .map_err(panic_error)?
        .map_err(too_long)?;
    if let Err(e) = write_staged(py, file, sync) {
        if e.is_instance_of::<PyOSError>(py) {
            budget.room = 0;
        }
        return Err(e);
    }
    budget.spend(id, estimate);
    let key = source.as_ptr() as usize;
    let item = KeptRecord { kind: kind.clone().into_any().unbind(), payload: payload.clone().into_any().unbind() };
    guard(move || {
        ledger.keep(id, received_ns, u64::try_from(estimate).unwrap_or(0), key, || source.clone().unbind(), item)
    })
    .map_err(panic_error)
}

/// The records acknowledged through the ack journal and not folded into SQLite yet (`src/journal.rs`,
/// `Ledger`): kept by one call per record, handed to the fold as a whole (`take`), and turned into the
/// fold's `INSERT` parameters natively. Guarded by the spool writer's lock like `JournalFile`, except
/// `append_record` (see there).
#[pyclass(module = "auditrecv._native", name = "JournalLedger")]
#[derive(Default)]
struct PyJournalLedger {
    ledger: journal::Ledger<KeptRecord, Py<PyAny>>,
    budget: journal::Budget,
    /// `append_record` may append (the writer closes it while it works on the journal in several steps).
    #[pyo3(get, set)]
    open: bool,
    /// The writer thread waits for work: an append that gives it some wakes it (once).
    #[pyo3(get, set)]
    writer_idle: bool,
    /// When the kept records are due for a fold, as `time.monotonic()` seconds (0: now).
    #[pyo3(get, set)]
    fold_at: f64,
    clock: Option<journal::MonotonicClock>,
    wake: Option<Py<PyAny>>,
    record_overhead: i64,
    latency_window: usize,
    /// `append_record` declines a record while this many are kept (the journal's record limit).
    #[pyo3(get, set)]
    max_records: usize,
    /// `fold_at` is this long after the first record kept ...
    #[pyo3(get, set)]
    fold_seconds: f64,
    /// ... or now once this many are kept.
    #[pyo3(get, set)]
    fold_records: usize,
    /// The journal file `append_record` writes to (the writer sets it, and again after a rotation).
    #[pyo3(get, set)]
    file: Option<Py<PyJournalFile>>,
    /// The last source given to `set_source` and its JSON (a connection's records share one object).
    source: Option<(Py<PyAny>, Vec<u8>)>,
    tally: journal::Tally,
}

impl PyJournalLedger {
    /// `append_record` while this ledger is borrowed: the outcome, and whom to wake once it is not.
    fn append_record_borrowed(
        &mut self,
        py: Python<'_>,
        record: RecordFields<'_, '_>,
    ) -> PyResult<(i64, Option<Py<PyAny>>)> {
        let (max_records, fold_seconds, fold_records) = (self.max_records, self.fold_seconds, self.fold_records);
        let (kind, payload, source, received) = record;
        let file = match (&self.file, self.open) {
            (Some(file), true) => file.clone_ref(py),
            _ => return Ok((APPEND_CLOSED, None)),
        };
        let (Ok(payload), Ok(kind)) = (payload.cast_exact::<PyBytes>(), kind.cast::<PyString>()) else {
            return Ok((APPEND_NOT_PLAIN, None));
        };
        let received_ns = match received.is_exact_instance_of::<PyInt>().then(|| received.extract::<i64>()) {
            Some(Ok(ns)) => ns,
            _ => return Ok((APPEND_NOT_PLAIN, None)),
        };
        let source_json = match &self.source {
            Some((known, json)) if known.is(source) => json,
            _ => return Ok((APPEND_NEW_SOURCE, None)),
        };
        let estimate = i64::try_from(payload.as_bytes().len()).unwrap_or(i64::MAX).saturating_add(self.record_overhead);
        let Some(id) = self.budget.admit(estimate, self.ledger.len(), max_records) else {
            return Ok((APPEND_DECLINED, None));
        };
        let started = std::time::Instant::now();
        let mut file = file.bind(py).try_borrow_mut()?;
        let record = (kind, source_json.as_slice(), source, received_ns, payload);
        let kept = journal_and_keep(py, &mut self.budget, &mut self.ledger, file.open()?, id, record, estimate, false)?;
        if kept == 1 {
            self.fold_at = self.clock.map_or(0.0, |c| c.seconds(started) + fold_seconds);
        }
        if kept >= fold_records {
            self.fold_at = 0.0;
        }
        let mut wake = None;
        if self.writer_idle && (kept == 1 || self.fold_at == 0.0) {
            self.writer_idle = false; // once: it says so again before it waits again
            wake = self.wake.as_ref().map(|w| w.clone_ref(py));
        }
        self.tally.note(received_ns, started.elapsed().as_secs_f64(), self.latency_window);
        Ok((i64::try_from(id).unwrap_or(i64::MAX), wake))
    }
}

#[pymethods]
impl PyJournalLedger {
    /// `now`: `time.monotonic()` (the clock of `fold_at`); `wake`: called, without arguments, when an
    /// `append_record` gives an idle writer work; `record_overhead`: bytes a record takes in the database
    /// besides its payload; `latency_window`: how many of the latest ack latencies the tally keeps;
    /// `max_records`, `fold_seconds`, `fold_records`: `append_record`'s limits, set once here rather than
    /// passed with every record (by default none, and a fold due at once).
    #[new]
    #[pyo3(signature = (
        *, now=None, wake=None, record_overhead=0, latency_window=0, max_records=usize::MAX, fold_seconds=0.0,
        fold_records=usize::MAX
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        now: Option<f64>,
        wake: Option<Py<PyAny>>,
        record_overhead: i64,
        latency_window: usize,
        max_records: usize,
        fold_seconds: f64,
        fold_records: usize,
    ) -> Self {
        Self {
            clock: now.map(journal::MonotonicClock::anchored),
            wake,
            record_overhead,
            latency_window,
            max_records,
            fold_seconds,
            fold_records,
            ..Self::default()
        }
    }

    /// A stop-and-wait sender's append of one record (a `SpoolRecord`'s fields) in one call, without the writer's lock (the
    /// GIL is held throughout, so it runs between two of the writer thread's calls, never during one;
    /// only the event loop's thread appends): if `open` with a `file`, the record plain, its source the one
    /// `set_source` gave and the budget allows it (twice its estimate in `room`, fewer than `max_records` kept), the
    /// next id, its entry written to `file` (no `msync`: for `synchronous = "normal"`), the record
    /// kept, `fold_at` set (`fold_seconds` after the first record kept, now at `fold_records`), the
    /// writer woken if it was idle and this gives it work, and the record counted in the tally. Returns
    /// the id (> 0), or 0 (declined), -1 (a new source), -2 (not plainly a record), -3 (not open): nothing
    /// written.
    /// `OSError`: the file as before and `room` 0.
    fn append_record(
        slf: &Bound<'_, Self>,
        kind: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        source: &Bound<'_, PyAny>,
        received_ns: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let py = slf.py();
        let record = (kind, payload, source, received_ns);
        let (outcome, wake) = slf.try_borrow_mut()?.append_record_borrowed(py, record)?;
        if let Some(wake) = wake {
            wake.call0(py)?;
        }
        Ok(outcome)
    }

    /// The source `append_record` takes (its identity) and its JSON for the journal.
    fn set_source(&mut self, source: Py<PyAny>, source_json: Vec<u8>) {
        self.source = Some((source, source_json));
    }

    /// What `append_record` counted since the last call (records, the first's received_ns, the ack
    /// latencies' sum and max, the latest latencies oldest first); the tally starts again.
    fn take_tally(&mut self) -> TallyTuple {
        let t = self.tally.take();
        (t.records, t.first_received_ns, t.ack_seconds_sum, t.ack_seconds_max, t.recent.into())
    }

    /// Records `append_record` counted since the last `take_tally`.
    #[getter]
    fn tally_records(&self) -> u64 {
        self.tally.records
    }

    /// Keep one journaled record (ids increase); returns how many are kept now.
    #[allow(clippy::too_many_arguments)]
    fn keep(
        &mut self,
        id: u64,
        kind: Bound<'_, PyAny>,
        source: Bound<'_, PyAny>,
        received_ns: i64,
        payload: Bound<'_, PyAny>,
        estimate: u64,
    ) -> PyResult<usize> {
        let key = source.as_ptr() as usize;
        let item = KeptRecord { kind: kind.unbind(), payload: payload.unbind() };
        guard(move || self.ledger.keep(id, received_ns, estimate, key, || source.unbind(), item)).map_err(panic_error)
    }

    /// Everything kept, as a ledger of its own (no budget); this one is left empty, its budget as it was.
    fn take(&mut self) -> Self {
        Self { ledger: self.ledger.take(), ..Self::default() }
    }

    /// A stop-and-wait sender's append in one call: if the budget's room and `max_records` allow it, the
    /// next id, the entry written to `file` (and `msync`ed with `sync`, without the GIL) and the
    /// record kept; its id, or None (declined: nothing written). An `OSError` from the write leaves the
    /// file as it was and the room at 0 (appends go through group commits until a fold looks again).
    #[pyo3(signature = (file, kind, source_json, source, received_ns, payload, estimate, max_records, sync=false))]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        py: Python<'_>,
        file: &Bound<'_, PyJournalFile>,
        kind: Bound<'_, PyString>,
        source_json: &[u8],
        source: Bound<'_, PyAny>,
        received_ns: i64,
        payload: Bound<'_, PyBytes>,
        estimate: i64,
        max_records: usize,
        sync: bool,
    ) -> PyResult<Option<u64>> {
        let Some(id) = self.budget.admit(estimate, self.ledger.len(), max_records) else {
            return Ok(None);
        };
        let mut file = file.borrow_mut();
        let record = (&kind, source_json, &source, received_ns, &payload);
        journal_and_keep(py, &mut self.budget, &mut self.ledger, file.open()?, id, record, estimate, sync)?;
        Ok(Some(id))
    }

    /// The highest id handed out (the journal's and the database's).
    #[getter]
    fn get_issued(&self) -> u64 {
        self.budget.issued
    }

    #[setter]
    fn set_issued(&mut self, issued: u64) {
        self.budget.issued = issued;
    }

    /// Bytes journal appends may still take before a group looks again (twice each record's estimate).
    #[getter]
    fn get_room(&self) -> i64 {
        self.budget.room
    }

    #[setter]
    fn set_room(&mut self, room: i64) {
        self.budget.room = room;
    }

    /// Put `earlier` (a fold's records that did not make it) back in front of what was kept since.
    fn put_back(&mut self, earlier: &Bound<'_, PyJournalLedger>) -> PyResult<()> {
        let earlier = earlier.borrow_mut().ledger.take();
        guard(move || self.ledger.put_back(earlier)).map_err(panic_error)
    }

    /// The number of records kept.
    fn __len__(&self) -> usize {
        self.ledger.len()
    }

    /// The highest id kept (0: none).
    #[getter]
    fn last_id(&self) -> u64 {
        self.ledger.last_id()
    }

    /// The sum of the kept records' estimates.
    #[getter]
    fn estimate(&self) -> u64 {
        self.ledger.estimate()
    }

    /// What a fold of the records with ids above `after_id` needs before its rows: their count, the
    /// sum of their estimates, the (id, received_ns) of the first of them, and their distinct sources
    /// (in order of first use: `rows` takes their source ids in that order).
    fn plan<'py>(&self, py: Python<'py>, after_id: u64) -> PyResult<FoldPlan<'py>> {
        let records = self.ledger.after(after_id);
        let estimate = records.iter().map(|r| r.estimate).sum();
        let first = records.first().map(|r| (r.id, r.received_ns));
        let sources = PyList::new(py, self.ledger.sources_of(records).into_iter().map(|s| s.bind(py)))?;
        Ok((records.len(), estimate, first, sources))
    }

    /// The fold's `INSERT` parameters for the records with ids above `after_id`, `source_ids` in the
    /// order `plan` gave the sources: each full chunk of `chunk` rows as one flat tuple (one multi-row
    /// `INSERT`), and the rest as one tuple per row (id, kind, source id, received_ns, payload;
    /// `executemany`). A chunk whose rows share their kind and source (a connection's records) is
    /// (kind, source id, then id, received_ns, payload per row): 2 + 3 x `chunk` values (`chunk` > 1), for an
    /// `INSERT` that binds the kind and the source id once (SQLite's insert ~11 % cheaper per row,
    /// measured alone); any other chunk is the five values per row (5 x `chunk`).
    fn rows<'py>(
        &self,
        py: Python<'py>,
        after_id: u64,
        source_ids: Vec<i64>,
        chunk: usize,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        let records = self.ledger.after(after_id);
        let positions = guard(|| self.ledger.source_positions(records)).map_err(panic_error)?;
        if positions.iter().any(|&p| p >= source_ids.len()) {
            return Err(PyValueError::new_err("rows: fewer source ids than the plan's sources"));
        }
        let chunk = chunk.max(1);
        let full = records.len() / chunk * chunk;
        let row = |i: usize| -> PyResult<[Bound<'py, PyAny>; 5]> {
            let r = &records[i];
            Ok([
                r.id.into_pyobject(py)?.into_any(),
                r.item.kind.bind(py).clone(),
                source_ids[positions[i]].into_pyobject(py)?.into_any(),
                r.received_ns.into_pyobject(py)?.into_any(),
                r.item.payload.bind(py).clone(),
            ])
        };
        let chunks = PyList::empty(py);
        for start in (0..full).step_by(chunk) {
            let span = start..start + chunk;
            let kind = records[start].item.kind.bind(py);
            let mut same = chunk > 1; // one row: five values either way, the plain form
            for i in span.clone() {
                let other = records[i].item.kind.bind(py);
                same = same
                    && source_ids[positions[i]] == source_ids[positions[start]]
                    && (other.is(kind) || other.eq(kind)?);
                if !same {
                    break;
                }
            }
            let flat = if same {
                let mut flat = Vec::with_capacity(2 + chunk * 3);
                flat.push(kind.clone());
                flat.push(source_ids[positions[start]].into_pyobject(py)?.into_any());
                for i in span {
                    let r = &records[i];
                    flat.push(r.id.into_pyobject(py)?.into_any());
                    flat.push(r.received_ns.into_pyobject(py)?.into_any());
                    flat.push(r.item.payload.bind(py).clone());
                }
                flat
            } else {
                let mut flat = Vec::with_capacity(chunk * 5);
                for i in span {
                    flat.extend(row(i)?);
                }
                flat
            };
            chunks.append(PyTuple::new(py, flat)?)?;
        }
        let rest = PyList::empty(py);
        for i in full..records.len() {
            rest.append(PyTuple::new(py, row(i)?)?)?;
        }
        Ok((chunks, rest))
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn auditrecv_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativePanic", m.py().get_type::<NativePanic>())?;
    m.add("ITEM_RECORD", ITEM_RECORD)?;
    m.add("ITEM_FILE", ITEM_FILE)?;
    m.add("ITEM_SKIPPED", ITEM_SKIPPED)?;
    m.add("DEAD_LETTER_MARK", PyBytes::new(m.py(), crate::ecs::batch::DEAD_LETTER_MARK))?;
    m.add("TRUNCATED_MARK", PyBytes::new(m.py(), crate::ecs::batch::TRUNCATED_MARK))?;
    let defaults = Limits::default();
    m.add("DEFAULT_MAX_TOKENS", defaults.max_tokens)?;
    m.add("DEFAULT_MAX_ARRAY_ITEMS", defaults.max_array_items)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bsm_decode_raw_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_decode_raw, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_decode_record_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_split_trail, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_looks_like, m)?)?;
    m.add_function(wrap_pyfunction!(gzip, m)?)?;
    m.add_function(wrap_pyfunction!(_bsm_decode_with_fault, m)?)?;
    m.add_function(wrap_pyfunction!(ecs_bsm_documents, m)?)?;
    m.add_function(wrap_pyfunction!(ecs_bsm_bulk_body, m)?)?;
    m.add_function(wrap_pyfunction!(dead_letter_json, m)?)?;
    m.add_function(wrap_pyfunction!(bsm_unencodable_json, m)?)?;
    m.add_function(wrap_pyfunction!(document_id, m)?)?;
    m.add_function(wrap_pyfunction!(limit_document_json, m)?)?;
    m.add_class::<BsmDocuments>()?;
    m.add_class::<LinuxDocuments>()?;
    m.add_class::<BulkBody>()?;
    m.add_class::<PyJournalFile>()?;
    m.add_class::<PyJournalLedger>()?;
    m.add("APPEND_DECLINED", APPEND_DECLINED)?;
    m.add("APPEND_NEW_SOURCE", APPEND_NEW_SOURCE)?;
    m.add("APPEND_NOT_PLAIN", APPEND_NOT_PLAIN)?;
    m.add("APPEND_CLOSED", APPEND_CLOSED)?;
    load_errno_messages(m.py())?;
    m.add_function(wrap_pyfunction!(linux_decode_raw, m)?)?;
    m.add_function(wrap_pyfunction!(linux_decode_raw_into, m)?)?;
    Ok(())
}
