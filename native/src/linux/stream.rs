//! Whole logs and line lists to `decode --raw` output (Python `stream.py` `decode_events` /
//! `decode_lines`, driven as `auditrecv.tools.raw_objects` drives them).
//!
//! A file has no arrival times, so the assembler's clock is the newest event time seen so far (as
//! laurel does): late records still join their event while they are within `grace_seconds` of event
//! time. Blank lines are skipped; EOE records of events already complete (`orphan_eoe`) are not
//! events and are left out.

use std::fmt;

use super::assemble::{Assembler, Complete, Event, Settings};
use super::json::append_event_json;
use super::parse::parse_line;
use super::pytext::{decode_lossy, find_byte, is_blank};
use crate::json::{JsonError, JsonWriter};

/// What ends `decode --raw`: the JSON writer refusing a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Json(JsonError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "{e}"),
        }
    }
}

impl From<JsonError> for DecodeError {
    fn from(e: JsonError) -> Self {
        DecodeError::Json(e)
    }
}

/// Lines in, events out, with the event-time clock of files. Tags are 1-based line numbers.
pub struct LineDecoder {
    assembler: Assembler<u64>,
    clock: f64,
    line_number: u64,
}

impl LineDecoder {
    pub fn new(settings: Settings) -> Self {
        LineDecoder { assembler: Assembler::new(settings), clock: 0.0, line_number: 0 }
    }

    /// One line (invalid UTF-8 becomes `\xNN` text); blank lines are counted but skipped.
    pub fn push(&mut self, line: &[u8], out: &mut Vec<Event<u64>>) -> Result<(), DecodeError> {
        self.line_number += 1;
        let text = decode_lossy(line);
        if is_blank(&text) {
            return Ok(());
        }
        // a header number of more than 4300 digits (which Python's int() refused, ending all of
        // `decode --raw`): the line is an error event of its own, as in the pipeline
        let record =
            parse_line(&text).unwrap_or_else(|_| super::Record::error_record(&text, "header number too long", false));
        if let Some(time) = &record.time_ns {
            // a time beyond any float (about 310 digits, once an OverflowError) does not move the clock
            let seconds = time.to_f64() / 1e9;
            if seconds.is_finite() && seconds > self.clock {
                self.clock = seconds;
            }
        }
        self.assembler.add(record, self.clock, self.line_number, out);
        Ok(())
    }

    /// End of input: every event still open.
    pub fn finish(&mut self, out: &mut Vec<Event<u64>>) {
        self.assembler.flush(out);
    }
}

/// The lines of a log as `auditrecv.tools.read_input` reads a file: split after each `\n`, trailing
/// `\r`/`\n` removed.
pub fn log_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match find_byte(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
        Some(&line[..end])
    })
}

/// `auditrecv decode --raw` of lines (one record each, as `read_input` or audisp-remote gives
/// them): one JSON line per event, `source` naming the input.
pub fn decode_raw<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    source: &str,
    settings: Settings,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decode_raw_chunked(lines, source, settings, usize::MAX, |chunk| {
        out = chunk;
        Ok::<_, DecodeError>(Vec::new())
    })
    .map_err(|e| match e {
        ChunkError::Decode(e) | ChunkError::Sink(e) => e,
    })?;
    Ok(out)
}

/// Why `decode_raw_chunked` stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError<E> {
    Decode(DecodeError),
    Sink(E),
}

/// The largest chunk size `decode_raw_chunked` reserves up front (a larger one, such as `decode_raw`'s
/// `usize::MAX`, grows as written).
const MAX_CHUNK_RESERVE: usize = 64 << 20;

/// Room reserved past the chunk size for the events of the line that crosses it.
const CHUNK_OVERSHOOT: usize = 64 << 10;

/// `decode_raw`, handing the output to `sink` in pieces of whole lines once they reach `chunk_bytes`
/// (and the rest at the end), as `decode --raw` writes its output while it reads: the memory stays
/// bounded by the chunk size. `sink` gets the full buffer and returns one to fill next (it may return
/// the same one, cleared). On an error, the lines before it have been handed over, as the Python CLI
/// has printed them. Returns the number of lines written.
pub fn decode_raw_chunked<'a, E>(
    lines: impl IntoIterator<Item = &'a [u8]>,
    source: &str,
    settings: Settings,
    chunk_bytes: usize,
    mut sink: impl FnMut(Vec<u8>) -> Result<Vec<u8>, E>,
) -> Result<u64, ChunkError<E>> {
    let mut decoder = LineDecoder::new(settings);
    let mut out = JsonWriter::default();
    // The buffer is handed over once it reaches `chunk_bytes`, so it is sized for that from the start
    // (plus room for the line that crosses it): no doubling and copying on the way up.
    if chunk_bytes <= MAX_CHUNK_RESERVE {
        out.buf.reserve(chunk_bytes + CHUNK_OVERSHOOT);
    }
    let mut events = Vec::new();
    let mut written = 0;
    let mut result = Ok(());
    let mut write = |events: &mut Vec<Event<u64>>, out: &mut JsonWriter| -> Result<(), DecodeError> {
        for event in events.drain(..) {
            if event.complete != Complete::OrphanEoe {
                append_event_json(out, &event, source)?;
                written += 1;
            }
        }
        Ok(())
    };
    for line in lines {
        result = decoder.push(line, &mut events).and_then(|()| write(&mut events, &mut out));
        if result.is_err() {
            break;
        }
        if out.buf.len() >= chunk_bytes {
            out.buf = sink(std::mem::take(&mut out.buf)).map_err(ChunkError::Sink)?;
            out.buf.clear();
        }
    }
    if result.is_ok() {
        decoder.finish(&mut events);
        result = write(&mut events, &mut out);
    }
    if !out.buf.is_empty() || (result.is_ok() && chunk_bytes == usize::MAX) {
        sink(std::mem::take(&mut out.buf)).map_err(ChunkError::Sink)?;
    }
    result.map_err(ChunkError::Decode)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Vec<serde_like::Line> {
        let out = decode_raw(log_lines(text.as_bytes()), "t", Settings::default()).unwrap();
        serde_like::lines(&out)
    }

    /// Just enough of the output to check grouping without a JSON parser.
    mod serde_like {
        pub struct Line(pub String);
        pub fn lines(out: &[u8]) -> Vec<Line> {
            String::from_utf8(out.to_vec()).unwrap().lines().map(|l| Line(l.to_owned())).collect()
        }
        impl Line {
            pub fn has(&self, part: &str) -> bool {
                self.0.contains(part)
            }
        }
    }

    #[test]
    fn log_lines_split_like_read_input() {
        let lines: Vec<&[u8]> = log_lines(b"a\r\nb\n\nc\r\r").collect();
        assert_eq!(lines, [&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(log_lines(b"").count(), 0);
        assert_eq!(log_lines(b"x\n").count(), 1);
    }

    #[test]
    fn eoe_closes_and_orphan_eoe_is_dropped() {
        let out = decode(concat!(
            "type=SYSCALL msg=audit(1.000:1): syscall=59 success=yes\n",
            "type=CWD msg=audit(1.000:1): cwd=\"/\"\n",
            "type=EOE msg=audit(1.000:1): \n",
            "type=USER_LOGIN msg=audit(2.000:2): pid=1 res=success\n",
            "type=EOE msg=audit(2.000:2): \n",
        ));
        assert_eq!(out.len(), 2);
        assert!(out[0].has(r#""complete":"eoe""#) && out[0].has(r#""record_types":["SYSCALL","CWD","EOE"]"#));
        assert!(out[1].has(r#""complete":"single""#) && out[1].has(r#""outcome":"success""#));
    }

    #[test]
    fn interleaved_events_and_fragments() {
        let out = decode(concat!(
            "type=SYSCALL msg=audit(1.000:1): a=1\n",
            "type=SYSCALL msg=audit(1.000:2): a=2\n",
            "type=PATH msg=audit(1.000:1): item=0 name=\"/x\"\n",
            "orphan fragment\n",
        ));
        // the fragment joins the last line (PATH of event 1)
        assert_eq!(out.len(), 2);
        assert!(out[0].has(r#""serial":1,"#) && out[0].has("orphan fragment"));
        assert!(out[1].has(r#""serial":2,"#));
        let out = decode("just text\n");
        assert!(out[0].has(r#""complete":"error""#) && out[0].has("without its head line"));
    }

    #[test]
    fn chunks_hold_whole_lines_and_add_up() {
        let log = concat!(
            "type=SYSCALL msg=audit(1.000:1): a=1\n",
            "type=EOE msg=audit(1.000:1): \n",
            "type=USER_LOGIN msg=audit(2.000:2): pid=1\n",
            "type=USER_LOGIN msg=audit(2.000:3): pid=2\n",
        );
        let whole = decode_raw(log_lines(log.as_bytes()), "t", Settings::default()).unwrap();
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let n = decode_raw_chunked(log_lines(log.as_bytes()), "t", Settings::default(), 1, |c| {
            chunks.push(c);
            Ok::<_, ()>(Vec::new())
        })
        .unwrap();
        assert_eq!((n, chunks.len()), (3, 3));
        assert!(chunks.iter().all(|c| c.ends_with(b"\n") && c.iter().filter(|&&b| b == b'\n').count() == 1));
        assert_eq!(chunks.concat(), whole);
        // lines before a sink's error are handed over, then the error
        let mut got = Vec::new();
        let err = decode_raw_chunked(log_lines(log.as_bytes()), "t", Settings::default(), 1, |c| {
            if !got.is_empty() {
                return Err("disk full");
            }
            got.extend(c);
            Ok(Vec::new())
        });
        assert_eq!(err, Err(ChunkError::Sink("disk full")));
        assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), 1);
        // the buffer is sized for a chunk from the start
        let mut capacities = Vec::new();
        decode_raw_chunked(log_lines(log.as_bytes()), "t", Settings::default(), 4096, |c| {
            capacities.push(c.capacity());
            Ok::<_, ()>(c)
        })
        .unwrap();
        assert_eq!(capacities, [4096 + CHUNK_OVERSHOOT]);
    }

    #[test]
    fn big_numbers_fail_like_python() {
        // integers beyond 64 bits are written exactly (JSON sets no limit; Python's json reads them)
        let far = "type=SYSCALL msg=audit(99999999999999.000:18446744073709551616): pid=-9223372036854775809 x=1";
        let line = String::from_utf8(decode_raw([far.as_bytes()], "t", Settings::default()).unwrap()).unwrap();
        for exact in [
            r#""time_ns":99999999999999000000000,"#,
            r#""serial":18446744073709551616,"#,
            r#""pid":-9223372036854775809"#,
        ] {
            assert!(line.contains(exact), "{exact} not in {line}");
        }
        // a time beyond a float (once OverflowError) and a header number of more than 4300 digits (once
        // ValueError): each its own line of output, the decoding goes on
        let huge = format!("type=SYSCALL msg=audit({}.000:1): x=1", "9".repeat(400));
        let digits = format!("type=SYSCALL msg=audit(1.000:{}): x=1", "9".repeat(4301));
        let after = "type=USER_LOGIN msg=audit(2.000:2): pid=1";
        let out = decode_raw([huge.as_bytes(), digits.as_bytes(), after.as_bytes()], "t", Settings::default());
        let out = String::from_utf8(out.unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines.iter().any(|l| l.contains(&format!(r#""time_ns":{}000000000,"#, "9".repeat(400)))));
        assert!(lines.iter().any(|l| l.contains(r#""error":"header number too long""#)));
        assert!(lines.iter().any(|l| l.contains(r#""id":"2.000:2""#)));
    }
}
