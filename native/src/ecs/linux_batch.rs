//! Spooled Linux lines of one sender -> events -> documents, as `auditrecv/pipeline.py`
//! `DocumentBuilder` does it (`add`, `poll`, `flush`, `_linux`): the assembler is kept across batches,
//! each completed event becomes its document (ECS or v1, cut to `[limits]`), id or dead letter.

use std::borrow::Cow;
use std::sync::Arc;

use super::batch::{Fallback, IndexNames, IndexNaming, Schema, dead_letter_reason, write_action, write_lines};
use super::common::{Observer, Parties, PyError, Source};
use super::deadletter::{dead_letter_linux_lines, holds_unencodable, put_raw};
use super::enrich::{Enrichment, enrich};
use super::ids::IdBatch;
use super::limits::{DocLimits, cut_document, within_limits, within_limits_fast};
use super::linux::{
    MapError, WriteError, event_lines, event_time, linux_id_parts, linux_to_ecs, linux_to_v1, write_linux_ecs,
};
use super::value::{Obj, Value};
use crate::boundary::guard;
use crate::json::{INTEGER_RANGE, JsonWriter, allowing_big_integers};
use crate::linux::assemble::{Assembler, Complete, Event, Settings};
use crate::linux::parse::parse_line;
use crate::linux::pytext::decode_lossy;
use crate::linux::record::MSG_ID_ROOM;

/// What an event's lines carry through the assembler (`pipeline._LineTag`).
#[derive(Debug, Clone)]
pub struct Tag {
    pub spool_id: i64,
    /// Index into the builder's senders (one per distinct `Source`).
    pub sender: usize,
    pub received_ns: u64,
    /// The line as received when it is not valid UTF-8 (its text has `\xNN` escapes instead), else None.
    pub bytes: Option<Arc<[u8]>>,
}

/// One completed event's result.
#[derive(Debug, Clone, PartialEq)]
pub struct LinuxBuilt {
    /// The document id ("" for an event that makes no document).
    pub id: String,
    pub spool_ids: Vec<i64>,
    pub received_ns: Option<u64>,
    /// The builder's sender whose lines made it (None: no line tag, the `unknown` source).
    pub sender: Option<usize>,
    /// The document is a dead letter (the mapper failed on the event).
    pub dead_letter: bool,
    /// The document was cut to `[limits]` (it says so in `auditrecv.truncated`).
    pub cut: bool,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The mapped (and enriched) document, not yet serialized.
    Doc(Box<Obj>),
    /// The document's `_bulk` lines, written to the [`Body`] as soon as it was built: where they are
    /// in it, and the index they name.
    Placed { start: usize, end: usize, index: String },
    /// An orphan EOE (its event was already emitted): no document, the lines are simply done.
    NoDocument,
    /// No document, not even a dead letter: why, and the event as `interpret()` gives it (its
    /// `decode --raw` JSON), None where that cannot be written either.
    Fallback(Fallback, Option<Vec<u8>>),
}

/// A `_bulk` body being written: each completed event's lines go in as soon as its document is built,
/// and the document is dropped there, so a batch's documents are never all alive at once (holding them
/// until the body was written cost mimalloc fresh pages, and the kernel their faults, every batch).
pub struct Body<'n> {
    names: IndexNames<'n>,
    pub w: JsonWriter,
}

impl<'n> Body<'n> {
    pub fn new(naming: &'n IndexNaming, capacity: usize) -> Self {
        Body { names: IndexNames::new(naming), w: JsonWriter::with_capacity(capacity) }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }
}

/// The completed events of a body call as columns, so that the caller makes nothing per document: the
/// events in the body, in order (they follow each other from offset 0), each one's end offset, id, index
/// and spool ids, and which of them were cut to `[limits]`; then the few events not in it (orphan EOEs, hand-backs), each after the number of the
/// body's events that came before it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Columns {
    pub ends: Vec<usize>,
    pub ids: Vec<String>,
    pub indexes: Vec<String>,
    pub spool_ids: Vec<Vec<i64>>,
    /// The positions (among the body's events) of the documents cut to `[limits]`.
    pub cut: Vec<usize>,
    pub others: Vec<(usize, Other)>,
}

/// An event of a body call that is not in the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Other {
    pub id: String,
    pub spool_ids: Vec<i64>,
    pub why: HandedBack,
}

/// Why an event of a body call is not in the body.
#[derive(Debug, Clone, PartialEq)]
pub enum HandedBack {
    /// An orphan EOE: no document, its lines are done.
    NoDocument,
    /// No document, not even a dead letter (see [`Outcome::Fallback`]).
    Fallback(Fallback, Option<Vec<u8>>),
}

impl Columns {
    /// The columns of the results of a body call (`add_bulk`, `poll`/`flush` with a body), in order.
    pub fn of(built: Vec<LinuxBuilt>) -> Columns {
        let n = built.len();
        let mut c = Columns {
            ends: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            indexes: Vec::with_capacity(n),
            spool_ids: Vec::with_capacity(n),
            cut: Vec::new(),
            others: Vec::new(),
        };
        for b in built {
            let why = match b.outcome {
                Outcome::Placed { start, end, index } => {
                    // the body is only appended to, and cut back to where a failed document started
                    debug_assert_eq!(start, c.ends.last().copied().unwrap_or(0), "a document placed apart");
                    if b.cut {
                        c.cut.push(c.ends.len());
                    }
                    c.ends.push(end);
                    c.ids.push(b.id);
                    c.indexes.push(index);
                    c.spool_ids.push(b.spool_ids);
                    continue;
                }
                Outcome::NoDocument => HandedBack::NoDocument,
                Outcome::Fallback(why, json) => HandedBack::Fallback(why, json),
                // a body call places every document it builds: a bug, never seen
                Outcome::Doc(_) => HandedBack::Fallback(Fallback::Panicked("not written to the body".into()), None),
            };
            c.others.push((c.ends.len(), Other { id: b.id, spool_ids: b.spool_ids, why }));
        }
        c
    }
}

/// The per-sender state of the Linux documents: the open events and the clock they are timed on.
pub struct LinuxBuilder {
    pub schema: Schema,
    pub observer: Observer,
    pub doc_limits: DocLimits,
    pub enrichment: Option<Enrichment>,
    record_clock: bool,
    clock: f64,
    senders: Vec<Arc<Parties>>,
    assembler: Assembler<Tag>,
    /// `DocumentBuilder.stats` counters of this builder: linux_lines, linux_events, dead_letters.
    pub lines: u64,
    pub events: u64,
    pub dead_letters: u64,
    /// The framed id inputs of the events being built, kept between batches for its arena.
    id_batch: IdBatch,
}

impl LinuxBuilder {
    pub fn new(
        schema: Schema,
        observer: Observer,
        doc_limits: DocLimits,
        settings: Settings,
        record_clock: bool,
    ) -> Self {
        LinuxBuilder {
            schema,
            observer,
            doc_limits,
            enrichment: None,
            record_clock,
            clock: 0.0,
            senders: Vec::new(),
            assembler: Assembler::new(settings),
            lines: 0,
            events: 0,
            dead_letters: 0,
            id_batch: IdBatch::default(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.assembler.in_flight()
    }

    fn sender(&mut self, source: &Source) -> usize {
        if let Some(i) = self.senders.iter().position(|p| &p.source == source) {
            return i;
        }
        self.senders.push(Arc::new(Parties::new(source.clone(), self.observer.clone())));
        self.senders.len() - 1
    }

    /// `DocumentBuilder.add` for lines of one source: each line parsed and assembled on the clock,
    /// then what timed out; `now` (tests) overrides the clock.
    pub fn add(
        &mut self,
        lines: &[&[u8]],
        received_ns: &[u64],
        spool_ids: &[i64],
        source: &Source,
        now: Option<f64>,
    ) -> Vec<LinuxBuilt> {
        let events = self.events_of(lines, received_ns, spool_ids, source, now);
        self.all_built(&events, None)
    }

    /// [`LinuxBuilder::add`], each document written to `body` as soon as it is built ([`Outcome::Placed`]).
    pub fn add_bulk(
        &mut self,
        lines: &[&[u8]],
        received_ns: &[u64],
        spool_ids: &[i64],
        source: &Source,
        now: Option<f64>,
        body: &mut Body<'_>,
    ) -> Vec<LinuxBuilt> {
        let events = self.events_of(lines, received_ns, spool_ids, source, now);
        self.all_built(&events, Some(body))
    }

    /// The lines parsed and assembled on the clock, then the events completed and timed out.
    fn events_of(
        &mut self,
        lines: &[&[u8]],
        received_ns: &[u64],
        spool_ids: &[i64],
        source: &Source,
        now: Option<f64>,
    ) -> Vec<Event<Tag>> {
        let sender = self.sender(source);
        self.lines += lines.len() as u64;
        let mut events = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let received = received_ns.get(i).or(received_ns.last()).copied().unwrap_or(0);
            let spool_id = spool_ids.get(i).copied().unwrap_or(i as i64);
            let text = decode_lossy(line);
            let record = match parse_line(&text) {
                Ok(r) => r,
                // a header number Python refuses (> 4300 digits): its parse_line raises; an error record here
                Err(_) => crate::linux::Record::error_record(&text, "header number too long", false),
            };
            if self.record_clock {
                if let Some(t) = &record.time_ns {
                    let seconds = t.to_f64() / 1e9;
                    // a time beyond any float would stop the clock for good: it does not move it
                    if seconds.is_finite() && seconds > self.clock {
                        self.clock = seconds;
                    }
                }
            } else {
                let seconds = received as f64 / 1e9;
                if seconds > self.clock {
                    self.clock = seconds;
                }
            }
            let bytes = matches!(text, Cow::Owned(_)).then(|| Arc::from(*line));
            let tag = Tag { spool_id, sender, received_ns: received, bytes };
            self.assembler.add(record, now.unwrap_or(self.clock), tag, &mut events);
        }
        self.assembler.poll(now.unwrap_or(self.clock), &mut events);
        events
    }

    /// `DocumentBuilder.poll(now)`: events whose grace window or maximum age has passed. Without
    /// `now`: the records' clock, or (arrival clock) the later of it and `wall`.
    pub fn poll(&mut self, now: Option<f64>, wall: f64, body: Option<&mut Body<'_>>) -> Vec<LinuxBuilt> {
        let now = now.unwrap_or(if self.record_clock { self.clock } else { self.clock.max(wall) });
        let mut events = Vec::new();
        self.assembler.poll(now, &mut events);
        self.all_built(&events, body)
    }

    /// `DocumentBuilder.flush()`: everything still open (written to `body` if given, as `add_bulk`).
    pub fn flush(&mut self, body: Option<&mut Body<'_>>) -> Vec<LinuxBuilt> {
        let mut events = Vec::new();
        self.assembler.flush(&mut events);
        self.all_built(&events, body)
    }

    /// The events' results, their ids hashed [`ID_CHUNK`] events at a time ([`IdBatch`]) before their
    /// documents are built.
    fn all_built(&mut self, events: &[Event<Tag>], mut body: Option<&mut Body<'_>>) -> Vec<LinuxBuilt> {
        let mut built = Vec::with_capacity(events.len());
        let mut batch = std::mem::take(&mut self.id_batch);
        for chunk in events.chunks(ID_CHUNK) {
            for event in chunk {
                self.stage_id(event, &mut batch);
            }
            for (event, id) in chunk.iter().zip(batch.ids()) {
                let b = match body.as_deref_mut() {
                    // an ECS document is written straight into the body
                    Some(body) if self.schema == Schema::Ecs => self.written(event, body, id),
                    // written to a body, a document's integers beyond 64 bits are caught as it is written
                    Some(body) => self.built_and_placed(event, body, id),
                    None => self.built(event, true, id),
                };
                built.push(b);
            }
        }
        self.id_batch = batch;
        self.events += built.len() as u64;
        self.dead_letters += built.iter().filter(|b| b.dead_letter).count() as u64;
        built
    }

    /// An event's ECS document written straight into the body ([`write_linux_ecs`]: no document
    /// model), enriched as it is written. What that path does not take goes the way of the documents
    /// kept as values ([`LinuxBuilder::built`], then [`LinuxBuilder::place`]): a document over the fast
    /// limits proof (it may need a cut), a mapper error (a dead letter), a zone to merge, a panic.
    fn written(&self, event: &Event<Tag>, body: &mut Body<'_>, id: String) -> LinuxBuilt {
        let first = event.tags.first();
        let (Some(tag), false) = (first, event.complete == Complete::OrphanEoe || !self.fast_limits(event)) else {
            return self.built_and_placed(event, body, id);
        };
        if exact_input(event).is_some() {
            return self.built_and_placed(event, body, id);
        }
        let parties: &Parties = &self.senders[tag.sender];
        let received = tag.received_ns;
        let Ok(stamp) = event_time(event, received) else { return self.built_and_placed(event, body, id) };
        let w = &mut body.w;
        let start = w.buf.len();
        let names = &mut body.names;
        let written = guard(|| {
            let index = names.index(&stamp);
            write_action(w, index, &id);
            write_linux_ecs(w, event, parties, &stamp, self.enrichment.as_ref())?;
            w.newline();
            Ok::<_, WriteError>(index.to_owned())
        });
        let outcome = match written {
            Ok(Ok(index)) => Outcome::Placed { start, end: w.buf.len(), index },
            Ok(Err(WriteError::Unencodable(why))) => {
                w.buf.truncate(start);
                let json = self.unencodable_json(event, parties, received);
                Outcome::Fallback(Fallback::Unencodable(why.0.to_owned()), json)
            }
            Ok(Err(WriteError::Map(_) | WriteError::NeedsValues)) | Err(_) => {
                w.buf.truncate(start);
                return self.built_and_placed(event, body, id);
            }
        };
        LinuxBuilt {
            id,
            spool_ids: event.tags.iter().map(|t| t.spool_id).collect(),
            received_ns: Some(received),
            sender: Some(tag.sender),
            dead_letter: false,
            cut: false,
            outcome,
        }
    }

    fn built_and_placed(&self, event: &Event<Tag>, body: &mut Body<'_>, id: String) -> LinuxBuilt {
        let mut b = self.built(event, false, id);
        self.place(event, &mut b, body);
        b
    }

    /// Whether the document is within `[limits]` for sure, from its lines' length alone
    /// (`within_limits_fast` takes the length in characters, as Python's len(str); it only grows with
    /// that length, and characters are never more than bytes: counted only when the bytes fail).
    fn fast_limits(&self, event: &Event<Tag>) -> bool {
        let records = event.records.len() as u64;
        let raw_bytes: usize = event.records.iter().map(|r| r.raw.len()).sum();
        within_limits_fast(raw_bytes as u64, records, &self.doc_limits) || {
            let raw_chars: usize = event.records.iter().map(|r| r.raw.chars().count()).sum();
            within_limits_fast(raw_chars as u64, records, &self.doc_limits)
        }
    }

    /// Stages the event's document id input in `batch` ([`id_parts`]); an orphan EOE has no document,
    /// and no id.
    fn stage_id(&self, event: &Event<Tag>, batch: &mut IdBatch) {
        if event.complete == Complete::OrphanEoe {
            return batch.skip();
        }
        let parties = self.event_parties(event);
        id_parts(event, |parts| batch.push("linux", &parties.identity, parts));
    }
}

/// Events whose ids are hashed together ([`IdBatch`]): an `add_bulk` call's (~650 of them, ~300 KB
/// staged, in the cache still), so that `hash_many` runs out of inputs to pair once per call rather than
/// once per 64 events (1.5% faster, the inputs sorted longest first); bounded for a large flush.
const ID_CHUNK: usize = 1024;

/// The event's document id, one at a time (what [`IdBatch`] gives for [`id_parts`]).
#[cfg(test)]
fn id_of(event: &Event<Tag>, parties: &Parties) -> String {
    id_parts(event, |parts| super::ids::document_id("linux", &parties.identity, parts))
}

/// `with` the parts of the event's document id: those of [`linux_id_parts`], put together on the stack
/// (events of a few short records, nearly all of them), else as `linux_id_parts` makes them.
fn id_parts<R>(event: &Event<Tag>, with: impl FnOnce(&[&[u8]]) -> R) -> R {
    if let Some(mut exact) = exact_lines(event) {
        // the lines as received: 0xff and the four characters \xff are two inputs, two documents
        exact.sort_unstable();
        let (head, _) = linux_id_parts(event);
        let mut refs: Vec<&[u8]> = Vec::with_capacity(exact.len() + 1);
        refs.push(&head);
        refs.extend(exact);
        return with(&refs);
    }
    const FEW: usize = 16;
    let node = event.node.as_deref().unwrap_or("").as_bytes();
    let mut key = [0u8; MSG_ID_ROOM];
    let key_len = match event.records.first() {
        Some(first) => first.msg_id_small(&mut key),
        None => Some(0),
    };
    let mut head = [0u8; 128];
    let n = event.records.len();
    if let Some(key_len) = key_len.filter(|k| n < FEW && node.len() + 1 + k <= head.len()) {
        head[..node.len()].copy_from_slice(node);
        head[node.len()] = b'|';
        let head_len = node.len() + 1 + key_len;
        head[node.len() + 1..head_len].copy_from_slice(&key[..key_len]);
        let mut refs: [&[u8]; FEW] = [&[]; FEW];
        refs[0] = &head[..head_len];
        for (part, record) in refs[1..].iter_mut().zip(&event.records) {
            *part = record.raw.as_bytes();
        }
        refs[1..=n].sort_unstable();
        return with(&refs[..=n]);
    }
    let (head, lines) = linux_id_parts(event);
    let mut refs: Vec<&[u8]> = Vec::with_capacity(lines.len() + 1);
    refs.push(&head);
    refs.extend(lines);
    with(&refs)
}

impl LinuxBuilder {
    /// `DocumentBuilder._linux(event)`; `check_unencodable`: look for integers beyond 64 bits now (a
    /// document kept as values), rather than when it is written ([`LinuxBuilder::place`]).
    fn built(&self, event: &Event<Tag>, check_unencodable: bool, id: String) -> LinuxBuilt {
        let spool_ids: Vec<i64> = event.tags.iter().map(|t| t.spool_id).collect();
        let first = event.tags.first();
        let received_ns = first.map(|t| t.received_ns);
        if event.complete == Complete::OrphanEoe {
            return LinuxBuilt {
                id: String::new(),
                spool_ids,
                received_ns,
                sender: None,
                dead_letter: false,
                cut: false,
                outcome: Outcome::NoDocument,
            };
        }
        let parties = self.event_parties(event);
        let parties: &Parties = &parties;
        let received = received_ns.unwrap_or(0);
        let dead_letter;
        let mut cut = false;
        let mapped = guard(|| self.document(event, parties, received, check_unencodable))
            .unwrap_or_else(|p| Err(Fallback::Panicked(p.0)));
        let outcome = match mapped {
            Ok((doc, dead, was_cut)) => {
                dead_letter = dead;
                cut = was_cut;
                Outcome::Doc(Box::new(doc))
            }
            Err(why @ Fallback::Unencodable(_)) => {
                dead_letter = false;
                Outcome::Fallback(why, self.unencodable_json(event, parties, received))
            }
            Err(why) => {
                let outcome = self.dead_letter(event, parties, received, why);
                dead_letter = matches!(outcome, Outcome::Doc(_));
                outcome
            }
        };
        LinuxBuilt { id, spool_ids, received_ns, sender: first.map(|t| t.sender), dead_letter, cut, outcome }
    }

    /// The sender whose lines made the event (the `unknown` source for an event without line tags).
    fn event_parties(&self, event: &Event<Tag>) -> Cow<'_, Parties> {
        match event.tags.first() {
            Some(t) => Cow::Borrowed(&*self.senders[t.sender]),
            None => Cow::Owned(Parties::new(
                Source { transport: "unknown".into(), ..Source::default() },
                self.observer.clone(),
            )),
        }
    }

    /// The document of an event that holds an integer beyond 64 bits, as JSON with those integers written
    /// (as `batch::unencodable_json`: not enriched nor cut), for the caller to hand to the sink.
    fn unencodable_json(&self, event: &Event<Tag>, parties: &Parties, received: u64) -> Option<Vec<u8>> {
        guard(|| {
            allowing_big_integers(|| match self.schema {
                Schema::Ecs => {
                    let stamp = event_time(event, received).ok()?;
                    let mut w = JsonWriter::with_capacity(4096);
                    write_linux_ecs(&mut w, event, parties, &stamp, None).ok()?;
                    Some(w.into_bytes())
                }
                Schema::V1 => linux_to_v1(event, &parties.source.peer, received).ok()?.to_json().ok(),
            })
        })
        .ok()
        .flatten()
    }

    /// The dead letter of an event that has no document (a bug here), built
    /// in a guard of its own; handed back only if that fails too.
    fn dead_letter(&self, event: &Event<Tag>, parties: &Parties, received: u64, why: Fallback) -> Outcome {
        let error = dead_letter_reason(&why);
        match guard(|| linux_dead_letter(event, parties, &error, received)) {
            Ok(Ok(doc)) => Outcome::Doc(Box::new(doc)),
            _ => Outcome::Fallback(why, event_json(event)),
        }
    }

    /// The event's document (cut to `[limits]` as the pipeline's `limit_document` cuts it), whether it
    /// is a dead letter and whether it was cut, or why it has none.
    fn document(
        &self,
        event: &Event<Tag>,
        parties: &Parties,
        received: u64,
        check_unencodable: bool,
    ) -> Result<(Obj, bool, bool), Fallback> {
        let mapped = match self.schema {
            Schema::Ecs => linux_to_ecs(event, parties, received),
            Schema::V1 => linux_to_v1(event, &parties.source.peer, received).map_err(WriteError::Map),
        };
        let (doc, dead) = match mapped {
            Ok(doc) => (keep_exact_bytes(doc, event), false),
            Err(WriteError::Unencodable(e)) => return Err(Fallback::Unencodable(e.0.to_owned())),
            Err(WriteError::NeedsValues) => return Err(Fallback::Panicked("no enrichment here".into())),
            Err(WriteError::Map(MapError::Internal(e))) => {
                let error = format!("internal error: {}", e.0);
                let doc = linux_dead_letter(event, parties, &error, received).map_err(|e| Fallback::Panicked(e.0))?;
                (doc, true)
            }
        };
        if check_unencodable && holds_unencodable(&doc) {
            return Err(Fallback::Unencodable(INTEGER_RANGE.0.to_owned()));
        }
        if !self.fast_limits(event) {
            let json = doc.to_json().map_err(|e| Fallback::Unencodable(e.0.to_owned()))?;
            if !within_limits(&json, &self.doc_limits) {
                let raw = exact_input(event).unwrap_or_else(|| event_lines(event));
                let cut = cut_document(&json, &raw, "linux", &self.doc_limits)
                    .ok_or_else(|| Fallback::Panicked("the document could not be cut to [limits]".into()))?;
                return Ok((cut, dead, true));
            }
        }
        Ok((doc, dead, false))
    }
}

/// The event's lines as received, joined by newlines, when one of them is not valid UTF-8 (the records
/// hold their text, with `\xNN` escapes); None when every line is (the records' text is then exact) or
/// when the lines and the records do not pair up (a resend dropped): the text then stands for them.
fn exact_input(event: &Event<Tag>) -> Option<Vec<u8>> {
    exact_lines(event).map(|lines| lines.join(&b'\n'))
}

/// The event's lines as received, in order, when one of them is not valid UTF-8 ([`exact_input`]).
fn exact_lines(event: &Event<Tag>) -> Option<Vec<&[u8]>> {
    if event.tags.iter().all(|t| t.bytes.is_none()) || event.tags.len() != event.records.len() {
        return None;
    }
    let lines = event.records.iter().zip(&event.tags);
    Some(lines.map(|(record, tag)| tag.bytes.as_deref().unwrap_or(record.raw.as_bytes())).collect())
}

/// A pipeline_error document (an undecodable line) of lines that are not valid UTF-8 keeps their exact
/// bytes, as a dead letter does (`auditrecv.raw_base64`; `event.original` holds their text).
fn keep_exact_bytes(mut doc: Obj, event: &Event<Tag>) -> Obj {
    if event.complete == Complete::Error {
        if let Some(raw) = exact_input(event) {
            put_raw(&mut doc, &raw, "linux");
        }
    }
    doc
}

/// The dead letter of an event: its lines' text and their exact bytes.
fn linux_dead_letter(event: &Event<Tag>, parties: &Parties, error: &str, received: u64) -> Result<Obj, PyError> {
    let text = event_lines(event);
    let raw = exact_input(event);
    dead_letter_linux_lines(&text, raw.as_deref().unwrap_or(&text), parties, error, received)
}

/// A document that could not be written for an integer beyond 64 bits (orjson's refusal).
fn beyond_64_bits(why: &Fallback) -> bool {
    matches!(why, Fallback::Unencodable(e) if e == INTEGER_RANGE.0)
}

/// The event's `decode --raw` JSON (what `interpret()` gives), for the Python path to map.
fn event_json(event: &Event<Tag>) -> Option<Vec<u8>> {
    crate::linux::json::event_json(event, "").ok()
}

impl LinuxBuilder {
    fn parties_of(&self, built: &LinuxBuilt) -> Option<&Parties> {
        built.sender.map(|i| &*self.senders[i])
    }

    /// A built result's document enriched (`self.enrichment`) and serialized, or why it is not.
    pub fn serialize(&self, built: &mut LinuxBuilt) -> Result<Vec<u8>, Fallback> {
        let parties = self.parties_of(built);
        let Outcome::Doc(doc) = &mut built.outcome else { return Err(Fallback::Panicked("no document".into())) };
        guard(|| {
            if let Some(e) = &self.enrichment {
                enrich(doc, e, parties);
            }
            let mut w = JsonWriter::with_capacity(4096);
            doc.write(&mut w).map_err(|e| Fallback::Unencodable(e.0.to_owned()))?;
            Ok(w.into_bytes())
        })
        .unwrap_or_else(|p| Err(Fallback::Panicked(p.0)))
    }

    /// A built result's document enriched, its `_bulk` lines appended to the body and the document
    /// dropped ([`Outcome::Placed`]); if that fails, nothing of it stays in the body ([`Outcome::Fallback`]).
    /// A document holding an integer beyond 64 bits fails as it is written (no walk of its values
    /// beforehand): it becomes the event's unencodable JSON, as [`LinuxBuilder::built`] makes it.
    fn place(&self, event: &Event<Tag>, built: &mut LinuxBuilt, body: &mut Body<'_>) {
        let Outcome::Doc(doc) = &mut built.outcome else { return };
        let w = &mut body.w;
        let start = w.buf.len();
        let parties = built.sender.map(|i| &*self.senders[i]);
        let id = &built.id;
        let names = &mut body.names;
        let written = guard(|| {
            if let Some(e) = &self.enrichment {
                enrich(doc, e, parties);
            }
            let index = names.index(doc.get("@timestamp").and_then(Value::as_str).unwrap_or_default());
            write_lines(w, index, id, doc)?;
            Ok(index.to_owned())
        })
        .unwrap_or_else(|p| Err(Fallback::Panicked(p.0)))
        .or_else(|why| {
            if beyond_64_bits(&why) {
                return Err(why);
            }
            // a bug in enrichment or writing: the document as far as it got, rather than none
            w.buf.truncate(start);
            let stamp = doc.get("@timestamp").and_then(Value::as_str).unwrap_or_default().to_owned();
            let index = names.index(&stamp).to_owned();
            guard(|| write_lines(w, &index, id, doc)).map_err(|_| why.clone())?.map_err(|_| why)?;
            Ok(index)
        });
        built.outcome = match written {
            Ok(index) => Outcome::Placed { start, end: w.buf.len(), index },
            Err(why) if beyond_64_bits(&why) => {
                w.buf.truncate(start);
                built.dead_letter = false;
                let json = self.unencodable_json(event, &self.event_parties(event), built.received_ns.unwrap_or(0));
                Outcome::Fallback(why, json)
            }
            Err(why) => {
                w.buf.truncate(start);
                Outcome::Fallback(why, None)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::limits::{STRING_EXPANSION, STRING_SLACK};

    fn documents(limits: DocLimits, lines: &[&[u8]]) -> Vec<LinuxBuilt> {
        let source = Source { transport: "audisp-remote".into(), peer: "192.0.2.9".into(), ..Source::default() };
        let observer = Observer { fields: vec![("name", Some("recv".into()))], ips: None };
        let mut builder = LinuxBuilder::new(Schema::Ecs, observer, limits, Settings::default(), true);
        let ids: Vec<i64> = (0..lines.len() as i64).collect();
        let mut built = builder.add(lines, &[1_700_000_000_123_456_789], &ids, &source, None);
        built.extend(builder.flush(None));
        built
    }

    /// What `add` + `serialize` and `add_bulk` are compared with: one sender, daily indices, the spool
    /// ids 0.., and two builders alike (one keeps its documents, one writes them to a body).
    fn kept_and_written(lines: usize) -> (Source, IndexNaming, Vec<i64>, LinuxBuilder, LinuxBuilder) {
        let source = Source { transport: "audisp-remote".into(), peer: "192.0.2.9".into(), ..Source::default() };
        let naming = IndexNaming::Daily("auditrecv-%Y.%m.%d".into());
        let new =
            || LinuxBuilder::new(Schema::Ecs, Observer::default(), DocLimits::default(), Settings::default(), true);
        (source, naming, (0..lines as i64).collect(), new(), new())
    }

    #[test]
    fn documents_are_written_to_the_body_as_they_are_built() {
        let lines: [&[u8]; 5] = [
            b"type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=59 success=yes exit=0 items=0 pid=2 uid=0",
            b"type=EOE msg=audit(1700000000.000:9): ",
            b"type=USER_LOGIN msg=audit(1700000001.000:10): pid=3 uid=0 auid=1000 msg='op=login acct=\"x\" res=success'",
            b"type=EOE msg=audit(1700000001.000:10): ",
            b"type=CWD msg=audit(1700000002.000:11): cwd=\"/\"",
        ];
        let (source, naming, ids, mut kept, mut written) = kept_and_written(lines.len());
        let mut expected = JsonWriter::with_capacity(0);
        let mut docs = kept.add(&lines, &[1], &ids, &source, None);
        docs.extend(kept.flush(None));
        docs.retain(|b| matches!(b.outcome, Outcome::Doc(_))); // not the orphan EOE of USER_LOGIN
        for b in &mut docs {
            let json = kept.serialize(b).unwrap();
            let Outcome::Doc(doc) = &b.outcome else { panic!("no document") };
            let stamp = doc.get("@timestamp").and_then(Value::as_str).unwrap();
            write_lines(&mut expected, &naming.index(stamp), &b.id, doc).unwrap();
            assert!(expected.buf.ends_with(&[&json[..], b"\n"].concat()));
        }
        let mut body = Body::new(&naming, 0);
        let mut placed = written.add_bulk(&lines, &[1], &ids, &source, None, &mut body);
        placed.extend(written.flush(Some(&mut body)));
        placed.retain(|b| b.outcome != Outcome::NoDocument);
        assert_eq!(placed.len(), 3);
        let mut at = 0;
        for (p, d) in placed.iter().zip(&docs) {
            let Outcome::Placed { start, end, index } = &p.outcome else { panic!("not placed") };
            assert_eq!((*start, &p.id, index.as_str()), (at, &d.id, "auditrecv-2023.11.14"));
            at = *end;
        }
        assert_eq!(body.into_bytes(), expected.buf);
    }

    /// The body `add` + `serialize` makes (documents kept as values, enriched as values) and the one
    /// `add_bulk` writes straight, for the same lines, sender and enrichment.
    fn kept_and_written_bodies(lines: &[&[u8]], source: &Source, enrichment: Option<Enrichment>) -> (Vec<u8>, Vec<u8>) {
        let (_, naming, ids, mut kept, mut written) = kept_and_written(lines.len());
        kept.enrichment = enrichment.clone();
        written.enrichment = enrichment;
        let mut expected = JsonWriter::with_capacity(0);
        let mut docs = kept.add(lines, &[1], &ids, source, None);
        docs.extend(kept.flush(None));
        for b in docs.iter_mut().filter(|b| matches!(b.outcome, Outcome::Doc(_))) {
            let json = kept.serialize(b).unwrap();
            let Value::Obj(doc) = super::super::parse::parse(&json).unwrap() else { panic!("not an object") };
            let stamp = doc.get("@timestamp").and_then(Value::as_str).unwrap();
            write_lines(&mut expected, &naming.index(stamp), &b.id, &doc).unwrap();
        }
        let mut body = Body::new(&naming, 0);
        written.add_bulk(lines, &[1], &ids, source, None, &mut body);
        written.flush(Some(&mut body));
        (expected.buf, body.into_bytes())
    }

    #[test]
    fn documents_written_straight_are_the_documents_kept_as_values_enriched() {
        use super::super::enrich::ZoneInfo;
        let zone = "8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f";
        let lines: [&[u8]; 14] = [
            // a zlogin into a zone (a1: the zone, upper case), by a user with names from the sender
            b"type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=59 success=yes exit=0 items=1 ppid=1 pid=2 auid=1000 uid=0 gid=0 euid=0 comm=\"zlogin\" exe=\"/usr/sbin/zlogin\" key=\"exec\" AUID=\"alice\" UID=\"root\"",
            b"type=EXECVE msg=audit(1700000000.000:9): argc=2 a0=\"zlogin\" a1=\"8F2B6C2E-0D1A-4B7E-9C3F-2A1B3C4D5E6F\"",
            b"type=PATH msg=audit(1700000000.000:9): item=0 name=\"/usr/sbin/zlogin\" inode=5 mode=0100755 ouid=0 ogid=0 nametype=NORMAL",
            b"type=EOE msg=audit(1700000000.000:9): ",
            // a login from an address and a host name, an account change, a failed connect
            b"type=USER_LOGIN msg=audit(1700000001.000:10): pid=3 uid=0 auid=1000 ses=2 msg='op=login id=1001 exe=\"/usr/sbin/sshd\" hostname=client.example addr=10.1.2.3 terminal=ssh res=success'",
            b"type=ADD_USER msg=audit(1700000001.000:11): pid=4 uid=0 auid=1000 msg='op=add-user id=1002 exe=\"/usr/sbin/useradd\" acct=\"bob\" res=success'",
            b"type=SYSCALL msg=audit(1700000002.000:12): arch=c000003e syscall=42 success=no exit=-111 items=0 ppid=1 pid=5 auid=4294967295 uid=33 comm=\"curl\" exe=\"/usr/bin/curl\"",
            b"type=SOCKADDR msg=audit(1700000002.000:12): saddr=020000500A0000010000000000000000",
            b"type=EOE msg=audit(1700000002.000:12): ",
            // a node name, a lost-events mark, a broken record
            b"node=web1 type=SYSCALL msg=audit(1700000003.000:13): arch=c000003e syscall=2 success=yes exit=3 items=1 pid=6 uid=1000 cwd=\"/tmp\"",
            b"node=web1 type=CWD msg=audit(1700000003.000:13): cwd=\"/tmp\"",
            b"node=web1 type=PATH msg=audit(1700000003.000:13): item=0 name=\"f\" inode=9 mode=0100644 nametype=CREATE",
            b"type=LOGIN msg=audit(1700000004.000:14): pid=7 uid=0 old-auid=4294967295 auid=1000 tty=(none) old-ses=4294967295 ses=3 res=1",
            b"type=SYSCALL msg=audit(1700000005.000:15): arch=c000003e syscall=1 exit=3 a0=\"unterminated",
        ];
        let routable = Source { transport: "audisp-remote".into(), peer: "192.0.2.9".into(), ..Source::default() };
        let nameless = Source { transport: "audisp-remote".into(), ..Source::default() };
        let labelled = Enrichment {
            hostname: Some("sender.example".into()),
            labels: vec![("dc".into(), "ams1".into()), ("dialect".into(), "x".into()), ("dc".into(), "ams2".into())],
            ..Enrichment::default()
        };
        let zoned = Enrichment {
            zones: vec![(
                zone.into(),
                ZoneInfo { uuid: zone.into(), alias: "web".into(), owner_login: "carol".into(), ..ZoneInfo::default() },
            )],
            ..labelled.clone()
        };
        for source in [&routable, &nameless] {
            for enrichment in [None, Some(labelled.clone()), Some(zoned.clone())] {
                let what = format!("{source:?} {enrichment:?}");
                let (expected, body) = kept_and_written_bodies(&lines, source, enrichment);
                assert_eq!(String::from_utf8_lossy(&body), String::from_utf8_lossy(&expected), "{what}");
                assert!(body.windows(5).any(|w| w == b"alice"), "{what}");
            }
        }
        // the zone was merged where one was given, the labels merged in their order
        let (_, body) = kept_and_written_bodies(&lines, &routable, Some(zoned));
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains(r#""zlogin":{"zone":{"id":"8f2b6c2e-0d1a-4b7e-9c3f-2a1b3c4d5e6f","name":"web"}"#),
            "{body}"
        );
        assert!(body.contains(r#""labels":{"dialect":"x","dc":"ams2"}"#), "{body}");
    }

    #[test]
    fn a_serial_beyond_64_bits_is_left_out_of_the_sequence_fields() {
        // event.sequence / auditd.sequence are longs: the serial is left out, the document tagged, its
        // lines kept in event.original; a document like any other (it was once handed back unencodable)
        let lines: [&[u8]; 4] = [
            b"type=SYSCALL msg=audit(3.000:18446744073709551617): arch=c000003e syscall=1 exit=3",
            b"type=EOE msg=audit(3.000:18446744073709551617): ",
            b"type=SYSCALL msg=audit(3.000:3): arch=c000003e syscall=1 exit=3",
            b"type=EOE msg=audit(3.000:3): ",
        ];
        let (source, naming, ids, mut kept, mut written) = kept_and_written(lines.len());
        let docs = kept.add(&lines, &[1], &ids, &source, None);
        let mut body = Body::new(&naming, 0);
        let placed = written.add_bulk(&lines, &[1], &ids, &source, None, &mut body);
        assert_eq!((docs.len(), placed.len()), (2, 2));
        let Outcome::Doc(doc) = &docs[0].outcome else { panic!("no document: {:?}", docs[0]) };
        let json = String::from_utf8(doc.to_json().unwrap()).unwrap();
        assert!(!json.contains("\"sequence\""), "{json}");
        assert!(json.contains(r#""tags":["value_out_of_range"]"#), "{json}");
        let original = r#""original":"type=SYSCALL msg=audit(3.000:18446744073709551617): arch=c000003e syscall=1 exit=3\ntype=EOE msg=audit(3.000:18446744073709551617): ""#;
        assert!(json.contains(original), "{json}");
        let Outcome::Placed { start: 0, end, .. } = placed[0].outcome else { panic!("not placed: {:?}", placed[0]) };
        let body = body.into_bytes();
        assert!(String::from_utf8_lossy(&body[..end]).contains(original));
        assert!(matches!(placed[1].outcome, Outcome::Placed { .. }));
        assert_eq!((kept.dead_letters, written.dead_letters), (0, 0));
    }

    #[test]
    fn columns_are_the_body_s_events_then_the_others_at_their_place() {
        let lines: [&[u8]; 8] = [
            b"type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=59 success=yes exit=0 items=0 pid=2 uid=0",
            b"type=EOE msg=audit(1700000000.000:9): ",
            // an integer beyond 64 bits: a document like any other (left out of its fields, tagged)
            b"type=SYSCALL msg=audit(3.000:18446744073709551617): arch=c000003e syscall=1 exit=3",
            b"type=EOE msg=audit(3.000:18446744073709551617): ",
            // a one-record event then its EOE: an orphan EOE
            b"type=USER_LOGIN msg=audit(1700000001.000:10): pid=3 uid=0 auid=1000 msg='op=login acct=\"x\" res=success'",
            b"type=EOE msg=audit(1700000001.000:10): ",
            b"type=SYSCALL msg=audit(1700000002.000:11): arch=c000003e syscall=1 exit=3",
            b"type=EOE msg=audit(1700000002.000:11): ",
        ];
        let (source, naming, ids, mut kept, mut written) = kept_and_written(lines.len());
        let mut body = Body::new(&naming, 0);
        let placed = written.add_bulk(&lines, &[1], &ids, &source, None, &mut body);
        let columns = Columns::of(placed.clone());
        let body = body.into_bytes();
        assert_eq!(placed.len(), 5);
        let in_body = [&placed[0], &placed[1], &placed[2], &placed[4]];
        assert_eq!(columns.ids, in_body.iter().map(|b| b.id.clone()).collect::<Vec<_>>());
        assert_eq!(columns.spool_ids, [vec![0, 1], vec![2, 3], vec![4], vec![6, 7]]);
        let orphan = Other { id: String::new(), spool_ids: vec![5], why: HandedBack::NoDocument };
        assert_eq!(columns.others, [(3, orphan)]);
        // the documents in the body follow each other up to its end
        let ends = &columns.ends;
        assert!(ends.windows(2).all(|w| w[0] < w[1]) && ends[0] > 0 && ends[3] == body.len(), "{ends:?}");
        let day = "auditrecv-2023.11.14";
        assert_eq!(columns.indexes, [day, "auditrecv-1970.01.01", day, day]);
        assert!(columns.cut.is_empty());
        // each document's lines are those the kept documents serialize to
        let kept_docs = kept.add(&lines, &[1], &ids, &source, None);
        for (n, position) in [0, 1, 2, 4].into_iter().enumerate() {
            let start = if n == 0 { 0 } else { columns.ends[n - 1] };
            let mut b = kept_docs[position].clone();
            let json = kept.serialize(&mut b).unwrap();
            assert!(body[start..columns.ends[n]].ends_with(&[&json[..], b"\n"].concat()), "{position}");
        }
    }

    #[test]
    fn the_columns_name_the_documents_cut_to_the_limits() {
        let long = format!("type=SYSCALL msg=audit(1700000000.000:8): syscall=1 comm=\"{}\"", "x".repeat(5000));
        let lines: [&[u8]; 3] = [
            b"type=SYSCALL msg=audit(1700000000.000:7): syscall=1 comm=\"a\"",
            long.as_bytes(),
            b"type=SYSCALL msg=audit(1700000000.000:9): syscall=1 comm=\"b\"",
        ];
        let limits = DocLimits { max_string_chars: 1000, ..DocLimits::default() };
        let mut builder = LinuxBuilder::new(Schema::Ecs, Observer::default(), limits, Settings::default(), true);
        let naming = IndexNaming::Daily("auditrecv-%Y.%m.%d".into());
        let mut body = Body::new(&naming, 0);
        let mut built = builder.add_bulk(&lines, &[1], &[0, 1, 2], &Source::default(), None, &mut body);
        built.extend(builder.flush(Some(&mut body)));
        let columns = Columns::of(built);
        let body = body.into_bytes();
        assert_eq!((columns.ends.len(), columns.cut.as_slice()), (3, &[1][..]));
        let mark = br#""truncated":true,"truncation":{"document_bytes":"#;
        let marked: Vec<bool> = (0..3)
            .map(|p| {
                body[if p == 0 { 0 } else { columns.ends[p - 1] }..columns.ends[p]]
                    .windows(mark.len())
                    .any(|w| w == mark)
            })
            .collect();
        assert_eq!(marked, [false, true, false]);
    }

    #[test]
    fn ids_hashed_together_are_the_ids_one_at_a_time() {
        // events of one to forty records of 30 to 900 bytes, lines that are not UTF-8 (their ids hash
        // their exact bytes), a node too long for the id's head on the stack, orphan EOEs (no id)
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for serial in 1..300u32 {
            let node = match serial % 7 {
                0 => String::new(),
                1 => format!("node={} ", "n".repeat(130)),
                _ => format!("node=host{serial} "),
            };
            let head = format!("{node}type=PATH msg=audit(1700000000.{serial:03}:{serial}): ");
            for record in 0..(serial * 13 % 40).max(1) {
                let mut line = head.clone().into_bytes();
                line.extend(format!("item={record} name=\"").bytes());
                line.extend((0..(serial * 31 + record * 17) % 870).map(|i| b'a' + (i % 26) as u8));
                if serial % 5 == 0 && record == 1 {
                    line.extend_from_slice(b"\xff\xfe");
                }
                line.push(b'"');
                lines.push(line);
            }
            lines.push(format!("{node}type=EOE msg=audit(1700000000.{serial:03}:{serial}): ").into_bytes());
            if serial % 11 == 0 {
                lines.push(format!("{node}type=EOE msg=audit(1700000000.{serial:03}:{serial}): ").into_bytes());
            }
        }
        let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        let (source, _, spool_ids, mut builder, _) = kept_and_written(lines.len());
        let mut events = builder.events_of(&lines, &[1], &spool_ids, &source, None);
        builder.assembler.flush(&mut events);
        assert!(events.iter().any(|e| exact_lines(e).is_some()));
        assert!(events.iter().any(|e| e.complete == Complete::OrphanEoe));
        assert!(events.iter().any(|e| e.records.len() > 16));
        let mut batch = IdBatch::default();
        for event in &events {
            builder.stage_id(event, &mut batch);
        }
        let ids = batch.ids();
        assert_eq!(ids.len(), events.len());
        for (event, id) in events.iter().zip(&ids) {
            match event.complete {
                Complete::OrphanEoe => assert_eq!(id, ""),
                _ => assert_eq!(id, &id_of(event, &builder.event_parties(event))),
            }
        }
        // and as the builder gives them, ID_CHUNK events at a time
        let built = builder.all_built(&events, None);
        assert_eq!(built.iter().map(|b| &b.id).collect::<Vec<_>>(), ids.iter().collect::<Vec<_>>());
    }

    #[test]
    fn an_undecodable_line_keeps_its_exact_bytes() {
        // the byte 0xff and the four characters \xff: one text, two inputs, kept apart by their bytes
        let lines: [&[u8]; 2] = [b"not an audit line \xff", b"not an audit line \\xff"];
        let (source, naming, ids, mut kept, mut written) = kept_and_written(lines.len());
        let docs = kept.add(&lines, &[1], &ids, &source, None);
        let mut body = Body::new(&naming, 0);
        let placed = written.add_bulk(&lines, &[1], &ids, &source, None, &mut body);
        let json = |o: &Outcome| match o {
            Outcome::Doc(doc) => String::from_utf8(doc.to_json().unwrap()).unwrap(),
            other => panic!("no document: {other:?}"),
        };
        let (invalid, escaped) = (json(&docs[0].outcome), json(&docs[1].outcome));
        for doc in [&invalid, &escaped] {
            assert!(doc.contains(r#""original":"not an audit line \\xff""#), "{doc}");
        }
        assert!(invalid.contains(r#""raw_base64":"bm90IGFuIGF1ZGl0IGxpbmUg/w==","raw_kind":"linux""#), "{invalid}");
        assert!(!escaped.contains("raw_base64"), "{escaped}");
        // written into a body, the same document
        let body = body.into_bytes();
        let Outcome::Placed { start, end, .. } = placed[0].outcome else { panic!("not placed: {:?}", placed[0]) };
        assert!(String::from_utf8_lossy(&body[start..end]).ends_with(&format!("{invalid}\n")));
    }

    #[test]
    fn records_strings_beyond_the_flat_limit_are_cut_and_only_those() {
        use crate::ecs::flat::FLAT_VALUE_LIMIT;
        fn longest(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::String(s) => s.chars().count(),
                serde_json::Value::Array(items) => items.iter().map(longest).max().unwrap_or(0),
                serde_json::Value::Object(o) => o.values().map(longest).max().unwrap_or(0),
                _ => 0,
            }
        }
        for (chars, expected) in [(FLAT_VALUE_LIMIT - 2, FLAT_VALUE_LIMIT), (9000, FLAT_VALUE_LIMIT)] {
            // the raw value keeps its quotes: chars + 2
            let line = format!("type=SYSCALL msg=audit(1700000000.000:7): syscall=1 comm=\"{}\"", "é".repeat(chars));
            let lines: [&[u8]; 1] = [line.as_bytes()];
            let mut built = documents(DocLimits { max_string_chars: 1 << 20, ..DocLimits::default() }, &lines);
            let Outcome::Doc(doc) = &mut built[0].outcome else { panic!("no document") };
            let json: serde_json::Value = serde_json::from_slice(&doc.to_json().unwrap()).unwrap();
            assert_eq!(longest(&json["auditd"]["records"]), expected, "{chars} characters");
        }
    }

    #[test]
    fn data_is_the_records_interpreted_fields_first_value_winning() {
        // names repeated across records, values interpreted (hex, arch, syscall) and raw, EXECVE's a0..
        let lines: [&[u8]; 5] = [
            b"type=SYSCALL msg=audit(1700000000.000:9): arch=c000003e syscall=59 success=yes exit=0 a0=55d1 a1=55d2 items=2 ppid=1 pid=2 auid=1000 uid=0 comm=\"ls\" exe=\"/usr/bin/ls\" key=\"exec\"",
            b"type=EXECVE msg=audit(1700000000.000:9): argc=2 a0=\"ls\" a1=2D6C",
            b"type=CWD msg=audit(1700000000.000:9): cwd=\"/tmp\"",
            b"type=PATH msg=audit(1700000000.000:9): item=0 name=\"/usr/bin/ls\" inode=5 mode=0100755 nametype=NORMAL",
            b"type=PROCTITLE msg=audit(1700000000.000:9): proctitle=6C73002D6C",
        ];
        let mut built = documents(DocLimits::default(), &lines);
        assert_eq!(built.len(), 1);
        let Outcome::Doc(doc) = &mut built[0].outcome else { panic!("no document") };
        let json: serde_json::Value = serde_json::from_slice(&doc.to_json().unwrap()).unwrap();
        let mut expected = serde_json::Map::new();
        for record in json["auditd"]["records"].as_array().unwrap() {
            for (k, v) in record["interpreted"].as_object().unwrap() {
                // an EXECVE event leaves the arguments (a0, a1, ...) out of data
                let execve_arg = k.starts_with('a') && k[1..].starts_with(|c: char| c.is_ascii_digit());
                if !execve_arg && !expected.contains_key(k) {
                    expected.insert(k.clone(), v.clone());
                }
            }
        }
        assert_eq!(json["auditd"]["data"], serde_json::Value::Object(expected));
        assert_eq!(json["auditd"]["data"]["syscall"], "execve");
        assert_eq!(json["auditd"]["data"]["key"], "exec");
    }

    #[test]
    fn the_fast_limits_proof_counts_characters_not_bytes() {
        // 300 two-byte characters: over the string limit's fast bound in bytes, within it in characters
        let line = format!("type=USER_MSG msg=audit(1700000000.000:7): pid=1 uid=0 msg='text={}'", "é".repeat(300));
        let chars = line.chars().count() as u64;
        assert!(line.len() as u64 > chars);
        let tight = DocLimits { max_string_chars: chars * STRING_EXPANSION + STRING_SLACK, ..DocLimits::default() };
        let lines: [&[u8]; 1] = [line.as_bytes()];
        let (whole, under_tight) = (documents(DocLimits::default(), &lines), documents(tight, &lines));
        assert_eq!(under_tight.len(), 1);
        assert!(matches!(&under_tight[0].outcome, Outcome::Doc(_)));
        assert_eq!(under_tight, whole);
    }
}
