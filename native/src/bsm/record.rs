//! One BSM record: header, token walk, argument annotations (bsm.md sections 3-7; the Python
//! `_decode_at` / `decode_record`).
//!
//! Nothing here fails: a record that could not be fully decoded has a non-empty `errors` list, keeps
//! every token decoded before the problem, and an `Unknown` token with the remaining bytes. Unlike the
//! Python decoder, work per record is capped ([`Limits`]): tokens past `max_tokens` and list items past
//! `max_array_items` are walked (so lengths, the trailer and errors are still checked) but not kept,
//! and [`Truncation`] says so. Records within the caps decode exactly as in Python.

use super::reader::{TokenError, address};
use super::tables::{Dialect, EventInfo, PRIV_OPS, SIGNALS, lookup};
use super::token::{self, ArgNote, Ctx, Token};

pub const HEADER32: u8 = 0x14;
pub const HEADER32_EX: u8 = 0x15;
pub const HEADER64: u8 = 0x74;
pub const HEADER64_EX: u8 = 0x79;

#[inline]
pub fn is_header_id(c: u8) -> bool {
    matches!(c, HEADER32 | HEADER32_EX | HEADER64 | HEADER64_EX)
}

/// Header versions the decoder knows: 2 = illumos/Solaris (ns), 10/11 = OpenBSM (ms), 1/3/4 old.
#[inline]
pub fn is_known_version(v: u8) -> bool {
    matches!(v, 1 | 2 | 3 | 4 | 10 | 11)
}

pub const USER_LEVEL: u16 = 6144;

/// Event modifier bits and praudit's short names.
pub const MOD_BITS: [(u16, &str); 6] =
    [(0x0001, "rd"), (0x0002, "wr"), (0x0080, "sp"), (0x0100, "fp"), (0x4000, "na"), (0x8000, "fe")];

/// Caps on the work and output of one record (config `[limits]`, `auditrecv/config.py` `Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Tokens kept per record.
    pub max_tokens: usize,
    /// Items kept per list inside a token (exec_args, exec_env, path_attr, cmd, groups).
    pub max_array_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_tokens: 1000, max_array_items: 10_000 }
    }
}

/// What a capped record left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub max_tokens: usize,
    /// Tokens decoded, kept or not.
    pub tokens_seen: u64,
    pub max_array_items: usize,
    /// List items walked but not kept.
    pub array_items_dropped: u64,
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub id: u8,
    pub reclen: u32,
    pub version: u8,
    pub event: u16,
    pub emod: u16,
    pub sec: u64,
    pub subsec: u64,
    pub host: Option<String>,
    /// Bytes the header takes.
    pub size: usize,
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Truncated,
    Bad(String),
}

fn be32(b: &[u8], p: usize) -> u32 {
    u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]])
}

fn be64(b: &[u8], p: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[p..p + 8]);
    u64::from_be_bytes(a)
}

/// The header at `data[off]` (whose id byte must be a header id).
pub fn decode_header(data: &[u8], off: usize) -> Result<Header, HeaderError> {
    let id = data[off];
    let fixed = |n: usize| {
        if off + n <= data.len() { Ok(()) } else { Err(HeaderError::Truncated) }
    };
    let common = |p: usize| {
        (
            be32(data, p),
            data[p + 4],
            u16::from_be_bytes([data[p + 5], data[p + 6]]),
            u16::from_be_bytes([data[p + 7], data[p + 8]]),
        )
    };
    match id {
        HEADER64 => {
            fixed(26)?;
            let (reclen, version, event, emod) = common(off + 1);
            Ok(Header {
                id,
                reclen,
                version,
                event,
                emod,
                sec: be64(data, off + 10),
                subsec: be64(data, off + 18),
                host: None,
                size: 26,
            })
        }
        HEADER32 => {
            fixed(18)?;
            let (reclen, version, event, emod) = common(off + 1);
            let (sec, subsec) = (u64::from(be32(data, off + 10)), u64::from(be32(data, off + 14)));
            Ok(Header { id, reclen, version, event, emod, sec, subsec, host: None, size: 18 })
        }
        _ => {
            fixed(14)?;
            let (reclen, version, event, emod) = common(off + 1);
            let atype = be32(data, off + 10);
            let (host, p) = address(data, off + 14, u64::from(atype)).map_err(|e| match e {
                TokenError::Truncated => HeaderError::Truncated,
                TokenError::Bad(m) => HeaderError::Bad(m),
            })?;
            let (sec, subsec, end) = if id == HEADER32_EX {
                if p + 8 > data.len() {
                    return Err(HeaderError::Truncated);
                }
                (u64::from(be32(data, p)), u64::from(be32(data, p + 4)), p + 8)
            } else {
                if p + 16 > data.len() {
                    return Err(HeaderError::Truncated);
                }
                (be64(data, p), be64(data, p + 8), p + 16)
            };
            Ok(Header { id, reclen, version, event, emod, sec, subsec, host: Some(host), size: end - off })
        }
    }
}

/// A header that could start a record at `data[q]`: readable, known version, length within the data.
pub fn plausible_header(data: &[u8], q: usize) -> bool {
    match decode_header(data, q) {
        Ok(h) => is_known_version(h.version) && h.size <= h.reclen as usize && h.reclen as usize <= data.len() - q,
        Err(_) => false,
    }
}

/// Header time in ns: version 2 nanoseconds; 10/11 milliseconds; old versions ms unless it cannot be.
pub fn header_time_ns(version: u8, sec: u64, subsec: u64) -> u128 {
    let (sec, subsec) = (u128::from(sec), u128::from(subsec));
    if version == 2 || (!matches!(version, 10 | 11) && subsec >= 1000) {
        sec * 1_000_000_000 + subsec
    } else {
        sec * 1_000_000_000 + subsec * 1_000_000
    }
}

/// One BSM record (or a framing failure at `offset`) with its tokens in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Byte offset of the record in the input (file offset for trail files).
    pub offset: u64,
    /// Bytes consumed: the header's length when usable, else what was skipped.
    pub length: usize,
    /// The record bytes (header to the end of its length).
    pub raw: &'a [u8],
    pub version: Option<u8>,
    pub header_id: Option<u8>,
    pub event_id: Option<u16>,
    pub event: Option<&'static EventInfo>,
    pub modifier: u16,
    pub time_ns: Option<u128>,
    /// Audited host address from header*_ex.
    pub host: Option<String>,
    /// illumos (version 2 and unknown versions) or OpenBSM (10/11).
    pub illumos: bool,
    pub has_trailer: bool,
    pub tokens: Vec<Token>,
    pub errors: Vec<String>,
    /// Set when the caps left something out.
    pub truncation: Option<Truncation>,
}

impl<'a> Record<'a> {
    /// A record that is only an error (no usable header).
    pub fn failed(offset: u64, raw: &'a [u8], error: String) -> Self {
        Record {
            offset,
            length: raw.len(),
            raw,
            version: None,
            header_id: None,
            event_id: None,
            event: None,
            modifier: 0,
            time_ns: None,
            host: None,
            illumos: true,
            has_trailer: false,
            tokens: Vec::new(),
            errors: vec![error],
            truncation: None,
        }
    }

    pub fn dialect(&self) -> &'static str {
        if self.illumos { "illumos" } else { "openbsm" }
    }

    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Add readable values beside numeric argument values (`_annotate_args`).
fn annotate_args(tokens: &mut [Token], event_name: Option<&str>, dialect: &'static Dialect, illumos: bool) {
    for tok in tokens {
        let Token::Argument { desc, value, bits, note, .. } = tok else {
            continue;
        };
        let value = *value;
        if desc == "signal" {
            if let Some(name) = i64::try_from(value).ok().and_then(|v| lookup(SIGNALS, v)) {
                *note = ArgNote::Text(name.to_owned());
            }
        } else if ["as_success", "as_failure", "am_success", "am_failure"].iter().any(|s| desc.ends_with(s)) {
            *note = ArgNote::Classes(dialect.mask_classes((value & 0xFFFF_FFFF) as u32));
        } else if desc == "op" && event_name == Some("AUE_SETPPRIV") {
            if let Some(name) = i64::try_from(value).ok().and_then(|v| lookup(PRIV_OPS, v)) {
                *note = ArgNote::Text(name.to_owned());
            }
        } else if desc.contains("mode") && !desc.contains("cmd") {
            *note = ArgNote::Text(format!("{value:o}"));
        } else if desc.ends_with("port") && matches!(event_name, Some("AUE_SETAUDIT" | "AUE_SETAUDIT_ADDR")) && illumos
        {
            *note = ArgNote::Ports(super::ports::decode_port_pair(value, *bits));
        }
    }
}

/// Decode the record whose header starts at `data[off]` (a header id); `base` is added to every
/// reported offset. Returns the record and the offset after it: past the header's length when that
/// is usable, otherwise `off + 1` (the caller resynchronises).
pub fn decode_at(data: &[u8], off: usize, base: u64, limits: Limits) -> (Record<'_>, usize) {
    decode_at_with(data, off, base, limits, false)
}

pub(crate) fn decode_at_with(data: &[u8], off: usize, base: u64, limits: Limits, fault: bool) -> (Record<'_>, usize) {
    let total = data.len();
    let at = base + off as u64;
    let h = match decode_header(data, off) {
        Ok(h) => h,
        Err(HeaderError::Truncated) => {
            return (Record::failed(at, &data[off..], format!("truncated header at offset {at}")), total);
        }
        Err(HeaderError::Bad(m)) => {
            return (Record::failed(at, &data[off..off + 1], format!("bad header at offset {at}: {m}")), off + 1);
        }
    };
    let reclen = h.reclen as usize;
    if reclen < h.size {
        let mut rec = Record::failed(
            at,
            &data[off..off + 1],
            format!("header length {reclen} shorter than the header at offset {at}"),
        );
        rec.header_id = Some(h.id);
        rec.version = Some(h.version);
        return (rec, off + 1);
    }
    let mut errors = Vec::new();
    let mut end = off.saturating_add(reclen);
    if end > total {
        errors.push(format!("record at offset {at} truncated: header says {reclen} bytes, {} available", total - off));
        end = total;
    }
    let b = &data[off..end];
    let illumos = !matches!(h.version, 10 | 11);
    let user_level = h.event >= USER_LEVEL;
    let dialect = Dialect::of(illumos);
    let event = dialect.event(h.event);
    let time_ns = header_time_ns(h.version, h.sec, h.subsec);
    if !is_known_version(h.version) {
        errors.push(format!("unknown header version {}", h.version));
    }
    let mut rec = Record {
        offset: at,
        length: end - off,
        raw: b,
        version: Some(h.version),
        header_id: Some(h.id),
        event_id: Some(h.event),
        event,
        modifier: h.emod,
        time_ns: Some(time_ns),
        host: h.host,
        illumos,
        has_trailer: false,
        // most records hold a handful of tokens: one allocation instead of growing 1, 2, 4, 8
        tokens: Vec::with_capacity(8.min(limits.max_tokens)),
        errors,
        truncation: None,
    };
    let mut ctx = Ctx::new(illumos, user_level, h.reclen, limits.max_array_items);
    ctx.fault = fault;
    let mut seen: u64 = 0;
    let n = b.len();
    let mut p = h.size;
    let mut push = |rec: &mut Record<'_>, tok: Token| {
        seen += 1;
        if rec.tokens.len() < limits.max_tokens {
            rec.tokens.push(tok);
        }
    };
    while p < n {
        ctx.keeping = rec.tokens.len() < limits.max_tokens;
        let id = b[p];
        let where_ = at + p as u64;
        let unknown = |b: &[u8]| Token::Unknown { id, offset: where_, data: b[p..].to_vec() };
        match token::decode(id, b, p + 1, &mut ctx) {
            None => {
                if is_header_id(id) && plausible_header(data, off + p) {
                    // the length field overran into the next record: end this one here, keep the next
                    rec.errors.push(format!(
                        "record at offset {at} overruns into a header at offset {where_}; header length {reclen} ignored"
                    ));
                    end = off + p;
                    rec.raw = &b[..p];
                    rec.length = p;
                    break;
                }
                rec.errors.push(format!("unknown token id 0x{id:02x} at offset {where_}"));
                push(&mut rec, unknown(b));
                break;
            }
            Some(Err(TokenError::Truncated)) => {
                rec.errors.push(format!("truncated token 0x{id:02x} at offset {where_}"));
                push(&mut rec, unknown(b));
                break;
            }
            Some(Err(TokenError::Bad(m))) => {
                rec.errors.push(format!("bad token 0x{id:02x} at offset {where_}: {m}"));
                push(&mut rec, unknown(b));
                break;
            }
            Some(Ok((tok, q))) => {
                if let Some(tok) = tok {
                    push(&mut rec, tok);
                }
                p = q;
            }
        }
    }
    rec.has_trailer = ctx.has_trailer;
    annotate_args(&mut rec.tokens, event.map(|e| e.name), dialect, illumos);
    if seen > rec.tokens.len() as u64 || ctx.items_dropped > 0 {
        rec.truncation = Some(Truncation {
            max_tokens: limits.max_tokens,
            tokens_seen: seen,
            max_array_items: limits.max_array_items,
            array_items_dropped: ctx.items_dropped,
        });
    }
    (rec, end)
}

/// Decode one record starting at `data[offset]` (the Python `decode_record`).
///
/// With `whole` (e.g. one audit_remote payload) bytes left after the header's length are an error;
/// `whole == false` decodes one record out of a longer buffer.
pub fn decode_record(data: &[u8], offset: usize, whole: bool, limits: Limits) -> Record<'_> {
    decode_record_with(data, offset, whole, limits, false)
}

pub(crate) fn decode_record_with(data: &[u8], offset: usize, whole: bool, limits: Limits, fault: bool) -> Record<'_> {
    if offset >= data.len() {
        return Record { length: 0, ..Record::failed(offset as u64, &[], format!("no data at offset {offset}")) };
    }
    if !is_header_id(data[offset]) {
        let c = data[offset];
        return Record::failed(
            offset as u64,
            &data[offset..],
            format!("no BSM header at offset {offset} (token id 0x{c:02x})"),
        );
    }
    let (mut rec, end) = decode_at_with(data, offset, 0, limits, fault);
    if whole && end < data.len() && rec.length > 1 {
        rec.errors.push(format!("{} bytes after the record end at offset {end}", data.len() - end));
    }
    rec
}

/// Modifier names of an event modifier (praudit's short names, in bit order).
pub fn modifier_names(emod: u16) -> Vec<&'static str> {
    MOD_BITS.iter().filter(|(bit, _)| emod & bit != 0).map(|(_, n)| *n).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builders for hand-made records (the layouts of bsm.md section 4).
    pub fn str16(s: &[u8]) -> Vec<u8> {
        let mut v = ((s.len() + 1) as u16).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v.push(0);
        v
    }

    pub fn header64(event: u16, sec: u64, subsec: u64, version: u8, emod: u16) -> Vec<u8> {
        let mut v = vec![HEADER64, 0, 0, 0, 0, version];
        v.extend_from_slice(&event.to_be_bytes());
        v.extend_from_slice(&emod.to_be_bytes());
        v.extend_from_slice(&sec.to_be_bytes());
        v.extend_from_slice(&subsec.to_be_bytes());
        v
    }

    pub fn header32(event: u16, sec: u32, subsec: u32, version: u8) -> Vec<u8> {
        let mut v = vec![HEADER32, 0, 0, 0, 0, version];
        v.extend_from_slice(&event.to_be_bytes());
        v.extend_from_slice(&0u16.to_be_bytes());
        v.extend_from_slice(&sec.to_be_bytes());
        v.extend_from_slice(&subsec.to_be_bytes());
        v
    }

    /// Header + tokens with the length patched in (and a trailer repeating it).
    pub fn record(header: &[u8], tokens: &[&[u8]], trailer: bool) -> Vec<u8> {
        let body: Vec<u8> = tokens.concat();
        let len = (header.len() + body.len() + if trailer { 7 } else { 0 }) as u32;
        let mut v = header.to_vec();
        v[1..5].copy_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&body);
        if trailer {
            v.push(0x13);
            v.extend_from_slice(&0xB105u16.to_be_bytes());
            v.extend_from_slice(&len.to_be_bytes());
        }
        v
    }

    pub fn text_token(s: &[u8]) -> Vec<u8> {
        let mut v = vec![0x28];
        v.extend(str16(s));
        v
    }

    #[test]
    fn illumos_exec_record() {
        let mut arg = vec![0x2D, 2];
        arg.extend_from_slice(&9u32.to_be_bytes());
        arg.extend(str16(b"signal"));
        let mut ret = vec![0x27, 0];
        ret.extend_from_slice(&0i32.to_be_bytes());
        let mut zone = vec![0x60];
        zone.extend(str16(b"global"));
        let data = record(&header64(15, 1_700_000_000, 5, 2, 0x8000), &[&arg, &ret, &zone], true);
        let rec = decode_record(&data, 0, true, Limits::default());
        assert!(rec.ok(), "{:?}", rec.errors);
        assert_eq!(rec.time_ns, Some(1_700_000_000_000_000_005));
        assert!(rec.has_trailer);
        assert_eq!(rec.event.map(|e| e.name), Some("AUE_KILL"));
        assert_eq!(modifier_names(rec.modifier), vec!["fe"]);
        assert_eq!(rec.tokens.len(), 3);
        let Token::Argument { note, .. } = &rec.tokens[0] else { panic!() };
        assert_eq!(note, &ArgNote::Text("SIGKILL".into()));
        assert_eq!(rec.tokens[2], Token::Str { id: 0x60, name: "zone", field: "name", text: "global".into() });
    }

    #[test]
    fn openbsm_ms_and_errors() {
        let data = record(&header32(1, 100, 5, 11), &[&text_token(b"hi"), &[0xEE, 1, 2]], false);
        let rec = decode_record(&data, 0, true, Limits::default());
        assert_eq!(rec.time_ns, Some(100_000_000_000 + 5_000_000));
        assert!(!rec.illumos);
        assert_eq!(rec.errors, vec!["unknown token id 0xee at offset 24".to_string()]);
        assert_eq!(rec.tokens[1], Token::Unknown { id: 0xEE, offset: 24, data: vec![0xEE, 1, 2] });
    }

    #[test]
    fn header_failures() {
        let rec = decode_record(&[HEADER32, 0, 0], 0, true, Limits::default());
        assert_eq!(rec.errors, vec!["truncated header at offset 0".to_string()]);
        let rec = decode_record(&[0x99], 0, true, Limits::default());
        assert_eq!(rec.errors, vec!["no BSM header at offset 0 (token id 0x99)".to_string()]);
        let rec = decode_record(&[], 0, true, Limits::default());
        assert_eq!(rec.errors, vec!["no data at offset 0".to_string()]);
        let mut short = header32(1, 0, 0, 11);
        short[1..5].copy_from_slice(&10u32.to_be_bytes());
        let rec = decode_record(&short, 0, true, Limits::default());
        assert_eq!(rec.length, 1);
        assert_eq!(rec.version, Some(11));
        let mut ex = vec![HEADER64_EX, 0, 0, 0, 40, 2, 0, 1, 0, 0, 0, 0, 0, 7];
        ex.extend_from_slice(&[0; 30]);
        let rec = decode_record(&ex, 0, true, Limits::default());
        assert_eq!(rec.errors, vec!["bad header at offset 0: address type 7 (expected 4 or 16)".to_string()]);
    }

    #[test]
    fn token_cap_walks_but_does_not_keep() {
        let one = text_token(b"x");
        let toks: Vec<&[u8]> = std::iter::repeat_n(&one[..], 200_000).collect();
        let data = record(&header32(1, 0, 0, 11), &toks, true);
        let rec = decode_record(&data, 0, true, Limits { max_tokens: 1000, max_array_items: 10 });
        assert!(rec.ok());
        assert!(rec.has_trailer);
        assert_eq!(rec.tokens.len(), 1000);
        assert_eq!(
            rec.truncation,
            Some(Truncation { max_tokens: 1000, tokens_seen: 200_000, max_array_items: 10, array_items_dropped: 0 })
        );
        let under = decode_record(&data, 0, true, Limits { max_tokens: 200_000, max_array_items: 10 });
        assert_eq!(under.tokens.len(), 200_000);
        assert_eq!(under.truncation, None);
    }

    #[test]
    fn list_cap() {
        let mut exec = vec![0x3C];
        exec.extend_from_slice(&5u32.to_be_bytes());
        exec.extend_from_slice(b"a\0b\0c\0d\0e\0");
        let data = record(&header32(1, 0, 0, 11), &[&exec], false);
        let rec = decode_record(&data, 0, true, Limits { max_tokens: 10, max_array_items: 2 });
        assert!(rec.ok());
        assert_eq!(
            rec.tokens[0],
            Token::StrList { id: 0x3C, name: "exec_args", field: "args", items: vec!["a".into(), "b".into()] }
        );
        assert_eq!(rec.truncation.map(|t| t.array_items_dropped), Some(3));
        // past the token cap, lists are walked but neither kept nor counted
        let data = record(&header32(1, 0, 0, 11), &[&text_token(b"x"), &exec], false);
        let rec = decode_record(&data, 0, true, Limits { max_tokens: 1, max_array_items: 2 });
        assert!(rec.ok());
        assert_eq!(
            rec.truncation,
            Some(Truncation { max_tokens: 1, tokens_seen: 2, max_array_items: 2, array_items_dropped: 0 })
        );
    }

    #[test]
    fn overrun_into_next_header() {
        let first = record(&header32(1, 0, 0, 11), &[&text_token(b"a")], false);
        let second = record(&header32(2, 0, 0, 11), &[&text_token(b"b")], false);
        let mut first_long = first.clone();
        let len = (first.len() + 5) as u32;
        first_long[1..5].copy_from_slice(&len.to_be_bytes());
        let data = [first_long, second].concat();
        let (rec, end) = decode_at(&data, 0, 0, Limits::default());
        assert_eq!(end, first.len());
        assert_eq!(rec.length, first.len());
        assert_eq!(rec.errors.len(), 1);
        assert!(rec.errors[0].contains("overruns into a header at offset 23"), "{:?}", rec.errors);
    }
}
