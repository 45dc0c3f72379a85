//! Linux audit records (auditd logs, audisp-remote): parsing, event assembly, interpretation.
//!
//! * [`parse::parse_line`]: one line -> [`Record`] (header, raw fields, ENRICHED section).
//! * [`assemble::Assembler`]: records -> [`Event`]s (EOE, serials, grace and age windows, fragments).
//! * [`interpret::interpret`]: per-field values and the event's facts, typed (for the ECS mapper).
//! * [`json::event_json`]: an event as the JSON line `auditrecv decode --raw` writes.
//! * [`stream::decode_raw`]: lines -> those JSON lines, with the file clock of `decode`.
//!
//! `pytext` and `num` hold the Python semantics (whitespace, digits, `int()`, unbounded header
//! numbers) the Python decoder gets from its language, so both decoders agree on any input.

pub mod assemble;
pub mod field_kinds;
pub mod interpret;
pub mod json;
pub mod num;
pub mod parse;
pub mod pytext;
pub mod record;
pub mod stream;
pub mod tables;

pub use assemble::{Assembler, Complete, Event, Settings};
pub use interpret::{Facts, Interpreted, interpret};
pub use parse::parse_line;
pub use record::{Fields, Record};
pub use stream::{ChunkError, DecodeError, LineDecoder, decode_raw, decode_raw_chunked, log_lines};
