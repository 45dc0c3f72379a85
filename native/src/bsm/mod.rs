//! Sun BSM / OpenBSM audit records (illumos header version 2, OpenBSM versions 10/11).
//! Layouts and dialect rules: `specs/bsm.md` sections 2-7.
//!
//! * [`record::decode_record`]: one record (e.g. an audit_remote payload), never fails.
//! * [`trail::Walk`]: a stream or trail file split into records, file tokens and skipped garbage.
//! * [`json::record_json`]: a record as the JSON line `auditrecv decode --raw` writes.

pub mod addr;
pub mod json;
pub mod ports;
pub mod reader;
pub mod record;
pub mod tables;
pub mod token;
pub mod trail;

pub use record::{Limits, Record, Truncation, decode_record};
pub use token::Token;
pub use trail::{FileToken, Item, Walk, looks_like_bsm};
