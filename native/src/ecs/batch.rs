//! A batch of spooled raw BSM records -> documents, and the `_bulk` body the sink sends for them
//! (`auditrecv/pipeline.py` `DocumentBuilder._bsm`, `auditrecv/sink/naming.py` `index_for`,
//! `auditrecv/sink/bulk.py` `encode`): decode, map (ECS or `auditrecv-v1`), dead-letter what has no
//! header or makes the mapper fail, id, enrich, serialize: one pass, no per-field objects in Python.
//!
//! Documents over the document caps are cut (`limits::cut_document`, as the Python `limit_document`);
//! a record that hits a bug here (a caught panic) becomes a dead letter with its bytes, built in a guard
//! of its own. Left to the caller ([`Fallback`]): a document holding an integer beyond 64 bits (written
//! by [`unencodable_json`] for the sink to refuse, as it refused the Python document) and a record
//! whose dead letter cannot be built either.

use super::bsm::{MapError, bsm_to_ecs};
use super::common::{Observer, Parties, Source, civil};
use super::deadletter::dead_letter_bsm;
use super::deadletter::{holds_unencodable, put_raw};
use super::enrich::{Enrichment, enrich, zone_refs};
use super::ids::document_id;
use super::limits::{DocLimits, cut_document, within_limits, within_limits_fast};
use super::v1::bsm_to_v1;
use super::value::{Obj, Value};
use crate::boundary::guard;
use crate::bsm::record::{Limits, decode_record};
use crate::json::{INTEGER_RANGE, JsonWriter, allowing_big_integers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Ecs,
    V1,
}

/// Where documents go (`search.mode`, `search.index`, `search.data_stream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexNaming {
    /// A strftime pattern of the document's `@timestamp` (UTC), lower-cased.
    Daily(String),
    DataStream(String),
}

/// Directives [`IndexNaming::Daily`] patterns may use.
const DIRECTIVES: &[u8] = b"YmdjyHMS%";

impl IndexNaming {
    /// An error names a directive this strftime does not know (the caller then uses Python's).
    pub fn check(&self) -> Result<(), String> {
        let IndexNaming::Daily(pattern) = self else { return Ok(()) };
        let mut chars = pattern.bytes();
        while let Some(c) = chars.next() {
            if c == b'%' {
                match chars.next() {
                    Some(d) if DIRECTIVES.contains(&d) => {}
                    other => {
                        return Err(format!(
                            "index pattern {pattern:?}: %{} is not supported natively",
                            other.map_or(String::new(), |d| char::from(d).to_string())
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `index_for(settings, doc)` of a document whose `@timestamp` is `stamp` (as `iso_ns` writes it).
    pub fn index(&self, stamp: &str) -> String {
        let pattern = match self {
            IndexNaming::DataStream(name) => return name.clone(),
            IndexNaming::Daily(p) => p,
        };
        let num = |a: usize, b: usize| stamp.get(a..b).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
        let (hour, minute, second) = (num(11, 13), num(14, 16), num(17, 19));
        let days = days_since_epoch(year, month, day);
        let yday = civil((days * 86_400).max(0) as u128).map_or(1, |c| c.yday);
        let mut out = String::with_capacity(pattern.len() + 8);
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&year.to_string()),
                Some('m') => out.push_str(&format!("{month:02}")),
                Some('d') => out.push_str(&format!("{day:02}")),
                Some('j') => out.push_str(&format!("{yday:03}")),
                Some('y') => out.push_str(&format!("{:02}", year % 100)),
                Some('H') => out.push_str(&format!("{hour:02}")),
                Some('M') => out.push_str(&format!("{minute:02}")),
                Some('S') => out.push_str(&format!("{second:02}")),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out.to_lowercase()
    }
}

/// [`IndexNaming::index`] remembered for the stamp's part the pattern reads (its date, for the
/// daily default): the documents of a batch mostly share it, and formatting it was ~2 % of a Linux
/// document's instructions.
pub struct IndexNames<'n> {
    naming: &'n IndexNaming,
    /// How much of a stamp the pattern reads (`%S` ends at byte 19).
    reads: usize,
    last: Option<(String, String)>,
}

impl<'n> IndexNames<'n> {
    pub fn new(naming: &'n IndexNaming) -> Self {
        let reads = match naming {
            IndexNaming::DataStream(_) => 0,
            IndexNaming::Daily(pattern) => {
                let mut reads = 0;
                let mut chars = pattern.bytes();
                while let Some(c) = chars.next() {
                    if c == b'%' {
                        let end = match chars.next() {
                            Some(b'Y' | b'y') => 4,
                            Some(b'm') => 7,
                            Some(b'd' | b'j') => 10,
                            Some(b'H') => 13,
                            Some(b'M') => 16,
                            Some(b'S') => 19,
                            _ => 0,
                        };
                        reads = reads.max(end);
                    }
                }
                reads
            }
        };
        IndexNames { naming, reads, last: None }
    }

    /// `naming.index(stamp)`. The part read is the stamp's first `reads` bytes, or the whole stamp when
    /// shorter (or not cut there at a character boundary): the index depends on nothing else.
    pub fn index(&mut self, stamp: &str) -> &str {
        let key = stamp.get(..self.reads).unwrap_or(stamp);
        let hit = matches!(&self.last, Some((k, _)) if k == key);
        if !hit {
            self.last = Some((key.to_owned(), self.naming.index(stamp)));
        }
        self.last.as_ref().map_or("", |(_, index)| index)
    }
}

fn days_since_epoch(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Everything about a batch that is the same for each of its records: one sender, one receiver.
#[derive(Debug, Clone)]
pub struct Batch {
    pub schema: Schema,
    pub parties: Parties,
    pub doc_limits: DocLimits,
    pub decode_limits: Limits,
    /// None: no enrichment configured (documents are left as mapped).
    pub enrichment: Option<Enrichment>,
}

impl Batch {
    pub fn new(
        schema: Schema,
        source: Source,
        observer: Observer,
        doc_limits: DocLimits,
        enrichment: Option<Enrichment>,
    ) -> Self {
        // The decoder keeps what the document caps allow; a record beyond them falls back anyway.
        let decode_limits = Limits {
            max_tokens: usize::try_from(doc_limits.max_tokens).unwrap_or(usize::MAX),
            max_array_items: usize::try_from(doc_limits.max_array_items).unwrap_or(usize::MAX),
        };
        Batch { schema, parties: Parties::new(source, observer), doc_limits, decode_limits, enrichment }
    }
}

/// Why a record has no document of its own: handed back (unencodable) or made a dead letter (`dead_letter_reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The document holds a value orjson refuses (an integer beyond 64 bits).
    Unencodable(String),
    /// A bug here (a caught panic), with its message.
    Panicked(String),
}

/// One record's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    Doc { id: String, json: Vec<u8>, timestamp: String },
    Fallback { id: String, why: Fallback },
}

/// The mapped document (or dead letter), the token count `within_limits_fast` takes, and whether the
/// decoder's `limits` left something out.
fn mapped(payload: &[u8], received_ns: u64, batch: &Batch, limits: Limits) -> (Result<Obj, MapError>, u64, bool) {
    let rec = decode_record(payload, 0, true, limits);
    let tokens = rec.truncation.as_ref().map_or(rec.tokens.len() as u64, |t| t.tokens_seen);
    let cut = rec.truncation.is_some();
    if rec.event_id.is_none() {
        let doc = dead_letter_bsm(payload, &batch.parties, &rec.errors.join("; "), received_ns);
        return (doc.map_err(MapError::Internal), 0, cut);
    }
    let doc = match batch.schema {
        Schema::Ecs => bsm_to_ecs(&rec, &batch.parties, received_ns),
        Schema::V1 => bsm_to_v1(&rec, &batch.parties.source.peer, received_ns),
    };
    let doc = doc.map(|doc| keep_damaged_payload(doc, &rec, payload, batch.schema));
    let doc = doc.map(|doc| keep_out_of_range_time(doc, &rec, payload, batch.schema));
    let doc = match doc {
        Err(MapError::Internal(e)) => {
            let error = format!("internal error: {}", e.0);
            dead_letter_bsm(payload, &batch.parties, &error, received_ns).map_err(MapError::Internal)
        }
        other => other,
    };
    (doc, tokens, cut)
}

/// A damaged record's document keeps the whole payload, bytes after the record's end included (a second
/// record glued to it is in no other document): ECS `event.original` (hex), v1 `auditrecv.raw_base64`
/// (v1 kept no raw bytes at all).
fn keep_damaged_payload(mut doc: Obj, rec: &crate::bsm::Record<'_>, payload: &[u8], schema: Schema) -> Obj {
    if rec.errors.is_empty() {
        return doc;
    }
    match schema {
        Schema::Ecs if rec.raw.len() != payload.len() => doc.put("event.original", crate::json::hex_string(payload)),
        Schema::Ecs => {}
        Schema::V1 => put_raw(&mut doc, payload, "bsm"),
    }
    doc
}

/// A record whose time is beyond what `@timestamp` (date_nanos) holds is mapped at its arrival time: the
/// document is tagged `value_out_of_range` and keeps the record's bytes (ECS `event.original`, hex; v1
/// `auditrecv.raw_base64`), where its time is.
fn keep_out_of_range_time(mut doc: Obj, rec: &crate::bsm::Record<'_>, payload: &[u8], schema: Schema) -> Obj {
    if rec.time_ns.is_none_or(|t| t <= super::linux::LATEST_DATE_NS) {
        return doc;
    }
    doc.add_unique("tags", [Some(Value::from(super::linux::OUT_OF_RANGE_TAG))]);
    match schema {
        Schema::Ecs if doc.get_path("event.original").is_none() => {
            doc.put("event.original", crate::json::hex_string(payload))
        }
        Schema::Ecs => {}
        Schema::V1 => put_raw(&mut doc, payload, "bsm"),
    }
    doc
}

/// The mapped document of one spooled BSM record (not enriched), cut to `[limits]` as the pipeline's
/// `limit_document` cuts it, or why it has none.
fn mapped_document(payload: &[u8], received_ns: u64, batch: &Batch) -> Result<Obj, Fallback> {
    let (mut doc, mut tokens, decoder_cut) = mapped(payload, received_ns, batch, batch.decode_limits);
    if decoder_cut {
        // over the caps anyway: mapped whole, as the Python decoder (which has no caps) did, then cut
        (doc, tokens, _) =
            mapped(payload, received_ns, batch, Limits { max_tokens: usize::MAX, max_array_items: usize::MAX });
    }
    let doc = match doc {
        Ok(doc) => doc,
        Err(MapError::Unencodable(e)) => return Err(Fallback::Unencodable(e.0.to_owned())),
        // a dead letter that cannot be made (a receive time past year 9999): Python raises too
        Err(MapError::Internal(e)) => return Err(Fallback::Panicked(e.0)),
    };
    if holds_unencodable(&doc) {
        return Err(Fallback::Unencodable(INTEGER_RANGE.0.to_owned()));
    }
    if !decoder_cut && within_limits_fast(payload.len() as u64, tokens, &batch.doc_limits) {
        return Ok(doc);
    }
    // the pipeline's limit_document, before enrichment as there: kept whole if within the caps
    let json = doc.to_json().map_err(|e| Fallback::Unencodable(e.0.to_owned()))?;
    if within_limits(&json, &batch.doc_limits) {
        return Ok(doc);
    }
    cut_document(&json, payload, "bsm", &batch.doc_limits)
        .ok_or_else(|| Fallback::Panicked("the document could not be cut to [limits]".into()))
}

/// `mapped_document`, or the dead letter of a record that hits a bug here (a caught panic), built in a
/// guard of its own. A document holding an integer orjson refuses is left to the caller (see
/// [`unencodable_json`]), as is a record whose dead letter cannot be built either.
fn document_or_dead_letter(payload: &[u8], received_ns: u64, batch: &Batch) -> Result<Obj, Fallback> {
    let why = match guard(|| mapped_document(payload, received_ns, batch)) {
        Ok(Ok(doc)) => return Ok(doc),
        Ok(Err(why @ Fallback::Unencodable(_))) => return Err(why),
        Ok(Err(why)) => why,
        Err(p) => Fallback::Panicked(p.0),
    };
    let error = dead_letter_reason(&why);
    match guard(|| dead_letter_bsm(payload, &batch.parties, &error, received_ns)) {
        Ok(Ok(doc)) => Ok(doc),
        _ => Err(why),
    }
}

/// The document of a record that holds an integer beyond 64 bits, as JSON with those integers written
/// (`mapped_document` inside `allowing_big_integers`, not enriched nor cut): what the Python mapper made
/// of it, for the caller to read with Python's `json` and hand to the sink, which refuses it as it
/// refused the Python document (a `serialization_error` dead letter). None if it cannot be made.
pub fn unencodable_json(payload: &[u8], received_ns: u64, batch: &Batch) -> Option<Vec<u8>> {
    guard(|| {
        allowing_big_integers(|| {
            let (mut doc, _, cut) = mapped(payload, received_ns, batch, batch.decode_limits);
            if cut {
                let whole = Limits { max_tokens: usize::MAX, max_array_items: usize::MAX };
                (doc, _, _) = mapped(payload, received_ns, batch, whole);
            }
            doc.ok()?.to_json().ok()
        })
    })
    .ok()
    .flatten()
}

/// The reason a dead letter gives for a record handed over to it.
pub(crate) fn dead_letter_reason(why: &Fallback) -> String {
    match why {
        Fallback::Unencodable(e) => format!("unencodable: {e}"),
        Fallback::Panicked(m) => format!("internal error: native: {m}"),
    }
}

/// The mapped and enriched document of one spooled BSM record, or why it is handed back.
fn document(payload: &[u8], received_ns: u64, batch: &Batch) -> Result<Obj, Fallback> {
    let mut doc = document_or_dead_letter(payload, received_ns, batch)?;
    if let Some(e) = &batch.enrichment {
        enrich(&mut doc, e, Some(&batch.parties));
    }
    Ok(doc)
}

fn timestamp(doc: &Obj) -> &str {
    doc.get("@timestamp").and_then(Value::as_str).unwrap_or_default()
}

/// One spooled BSM record -> its document (or the reason it has none).
pub fn build_bsm(payload: &[u8], received_ns: u64, batch: &Batch) -> Built {
    let id = document_id("bsm", &batch.parties.identity, &[payload]);
    let built = guard(|| {
        let doc = document(payload, received_ns, batch)?;
        let mut w = JsonWriter::with_capacity(payload.len() * 6 + 1024);
        doc.write(&mut w).map_err(|e| Fallback::Unencodable(e.0.to_owned()))?;
        Ok((w.into_bytes(), timestamp(&doc).to_owned()))
    });
    match built {
        Ok(Ok((json, timestamp))) => Built::Doc { id, json, timestamp },
        Ok(Err(why)) => Built::Fallback { id, why },
        Err(p) => Built::Fallback { id, why: Fallback::Panicked(p.0) },
    }
}

/// What a dead letter's document says first (`event.kind`), as the pipeline looks for it in a body.
pub const DEAD_LETTER_MARK: &[u8] = br#""event":{"kind":"pipeline_error""#;
/// What a document cut to `[limits]` says ([`super::limits::cut_document`]), as the pipeline looks for it.
pub const TRUNCATED_MARK: &[u8] = br#""truncated":true,"truncation":{"document_bytes":"#;

/// Whether a body holds a dead letter or a cut document: such a batch goes to the pipeline document by
/// document (each one counted, the cut ones logged), not whole. Looked for here because a body reaches
/// Python as a memoryview, which has no substring search.
pub fn holds_marks(body: &[u8]) -> bool {
    memchr::memmem::find(body, DEAD_LETTER_MARK).is_some() || memchr::memmem::find(body, TRUNCATED_MARK).is_some()
}

/// Where each record's lines are in a bulk body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyLayout {
    /// The record's action and document lines are `body[start..end]`.
    Lines { id: String, index: String, start: usize, end: usize },
    /// Not in the body (no document, not even a dead letter); its lines belong at `body[at]`.
    Fallback { id: String, why: Fallback, at: usize },
}

/// A batch mapped but not yet enriched nor serialized: what enrichment needs to look up is known
/// ([`Prepared::zone_refs`]) before the values are given ([`Prepared::bulk_body`]).
#[derive(Debug)]
pub struct Prepared {
    docs: Vec<(String, Result<Obj, Fallback>)>,
}

impl Prepared {
    /// Map every payload (`received_ns`: one arrival time for all, or one per payload).
    pub fn new(payloads: &[&[u8]], received_ns: &[u64], batch: &Batch) -> Self {
        let docs = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let received = received_ns.get(i).or(received_ns.last()).copied().unwrap_or(0);
                let id = document_id("bsm", &batch.parties.identity, &[payload]);
                let doc = document_or_dead_letter(payload, received, batch);
                (id, doc)
            })
            .collect();
        Prepared { docs }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The distinct zone names and zlogin targets enrichment would look up, in first-seen order.
    pub fn zone_refs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, doc) in &self.docs {
            if let Ok(doc) = doc {
                for r in zone_refs(doc) {
                    if !out.contains(&r) {
                        out.push(r);
                    }
                }
            }
        }
        out
    }

    /// Enrich (`batch.enrichment`, given now) and serialize: the `_bulk` body and its layout.
    pub fn bulk_body(self, batch: &Batch, naming: &IndexNaming) -> (Vec<u8>, Vec<BodyLayout>) {
        let mut w = JsonWriter::with_capacity(self.docs.len() * 3072);
        let mut layout = Vec::with_capacity(self.docs.len());
        for (id, doc) in self.docs {
            let start = w.buf.len();
            let written = doc.and_then(|mut doc| {
                let enriched = guard(|| {
                    if let Some(e) = &batch.enrichment {
                        enrich(&mut doc, e, Some(&batch.parties));
                    }
                    let index = naming.index(timestamp(&doc));
                    write_lines(&mut w, &index, &id, &doc)?;
                    Ok(index)
                })
                .unwrap_or_else(|p| Err(Fallback::Panicked(p.0)));
                enriched.or_else(|why| {
                    // a bug in enrichment or writing: the document as far as it got, rather than none
                    w.buf.truncate(start);
                    let index = naming.index(timestamp(&doc));
                    guard(|| write_lines(&mut w, &index, &id, &doc)).map_err(|_| why.clone())?.map_err(|_| why)?;
                    Ok(index)
                })
            });
            match written {
                Ok(index) => layout.push(BodyLayout::Lines { id, index, start, end: w.buf.len() }),
                Err(why) => {
                    w.buf.truncate(start);
                    layout.push(BodyLayout::Fallback { id, why, at: start });
                }
            }
        }
        (w.into_bytes(), layout)
    }
}

/// `{"create":{"_index":...,"_id":...}}` and the document, each line ending in a newline, appended to
/// `w` (written straight into the body: no per-document buffer).
pub(crate) fn write_lines(w: &mut JsonWriter, index: &str, id: &str, doc: &Obj) -> Result<(), Fallback> {
    write_action(w, index, id);
    doc.write(w).map_err(|e| Fallback::Unencodable(e.0.to_owned()))?;
    w.newline();
    Ok(())
}

/// A document's action line (`create` into `index` with `id`), its newline included.
pub(crate) fn write_action(w: &mut JsonWriter, index: &str, id: &str) {
    w.begin_obj();
    w.key("create");
    w.begin_obj();
    w.key("_index");
    w.str(index);
    w.key("_id");
    w.str(id);
    w.end_obj();
    w.end_obj();
    w.newline();
}

/// The `_bulk` body of a batch (`received_ns`: one arrival time for all, or one per payload).
pub fn bulk_body(
    payloads: &[&[u8]],
    received_ns: &[u64],
    batch: &Batch,
    naming: &IndexNaming,
) -> (Vec<u8>, Vec<BodyLayout>) {
    let mut w = JsonWriter::with_capacity(payloads.iter().map(|p| p.len() * 16 + 1024).sum());
    let mut layout = Vec::with_capacity(payloads.len());
    let mut names = IndexNames::new(naming);
    for (i, payload) in payloads.iter().enumerate() {
        let received = received_ns.get(i).or(received_ns.last()).copied().unwrap_or(0);
        let id = document_id("bsm", &batch.parties.identity, &[payload]);
        let start = w.buf.len();
        let written = guard(|| {
            let doc = document(payload, received, batch)?;
            let index = names.index(timestamp(&doc));
            write_lines(&mut w, index, &id, &doc)?;
            Ok(index.to_owned())
        });
        let why = match written {
            Ok(Ok(index)) => {
                layout.push(BodyLayout::Lines { id, index, start, end: w.buf.len() });
                continue;
            }
            Ok(Err(why)) => why,
            Err(p) => Fallback::Panicked(p.0),
        };
        w.buf.truncate(start); // nothing of a record handed back stays in the body
        layout.push(BodyLayout::Fallback { id, why, at: start });
    }
    (w.into_bytes(), layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_as_strftime_writes_them() {
        let stamp = "2013-11-04T18:36:20.381000000Z";
        assert_eq!(IndexNaming::Daily("auditrecv-%Y.%m.%d".into()).index(stamp), "auditrecv-2013.11.04");
        assert_eq!(IndexNaming::Daily("AUDIT-%Y.%j-%H%%".into()).index(stamp), "audit-2013.308-18%");
        assert_eq!(IndexNaming::DataStream("logs-x".into()).index(stamp), "logs-x");
        assert!(IndexNaming::Daily("a-%b".into()).check().is_err());
        assert!(IndexNaming::Daily("a-%Y.%m".into()).check().is_ok());
    }

    #[test]
    fn remembered_index_names_are_the_pattern_s() {
        let stamps = [
            "2013-11-04T18:36:20.381000000Z",
            "2013-11-04T18:36:21.000000000Z",
            "2013-11-04T19:00:00.000000000Z",
            "2013-11-05T00:00:00.000000000Z",
            "2013-11-05",
            "2013-11",
            "2013-11-0é",
            "",
        ];
        for pattern in ["auditrecv-%Y.%m.%d", "a-%Y.%j-%H%%", "a-%y%m", "a-%S", "plain", "a-%M%%"] {
            let naming = IndexNaming::Daily(pattern.into());
            let mut names = IndexNames::new(&naming);
            for stamp in stamps.iter().chain(stamps.iter().rev()) {
                assert_eq!(names.index(stamp), naming.index(stamp), "{pattern} {stamp}");
            }
        }
        let naming = IndexNaming::DataStream("logs-x".into());
        assert_eq!(IndexNames::new(&naming).index("2013"), "logs-x");
    }

    #[test]
    fn a_record_without_header_is_a_dead_letter() {
        let batch = Batch::new(
            Schema::Ecs,
            Source { transport: "file".into(), peer: "h".into(), ..Source::default() },
            Observer::default(),
            DocLimits::default(),
            None,
        );
        let Built::Doc { json, timestamp, .. } = build_bsm(b"\x00junk", 1_700_000_000_000_000_000, &batch) else {
            panic!("no document");
        };
        let text = String::from_utf8(json).unwrap();
        assert!(text.contains(r#""raw_base64":"AGp1bms=""#), "{text}");
        assert!(text.contains(r#""tags":["decode_error","dead_letter"]"#), "{text}");
        assert_eq!(timestamp, "2023-11-14T22:13:20.000000000Z");
        assert!(holds_marks(text.as_bytes()));
    }

    #[test]
    fn the_marks_of_dead_letters_and_cut_documents() {
        let body = br#"{"create":{}}
{"event":{"kind":"event"},"auditrecv":{"schema":"ecs"}}
"#;
        assert!(!holds_marks(body));
        assert!(!holds_marks(b""));
        let mut marked = body.to_vec();
        marked.extend_from_slice(br#"{"auditrecv":{"truncated":true,"truncation":{"document_bytes":9}}}"#);
        assert!(holds_marks(&marked));
        // a mark inside a JSON string is escaped, so it is not one
        assert!(!holds_marks(br#"{"message":"\"event\":{\"kind\":\"pipeline_error\""}"#));
    }
}
