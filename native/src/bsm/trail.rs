//! Trail files (illumos binfile, FreeBSD/macOS /var/audit) and record streams: standalone file tokens,
//! splitting into records, resynchronising after damage, format sniffing (the Python `_walk`,
//! `_resync`, `_file_token_at`, `looks_like_bsm`).

use super::reader::{text, until_nul};
use super::record::{Limits, Record, decode_at, is_header_id, is_known_version, plausible_header};
use super::token::file_time_ns;

/// A standalone file token (0x11 / 0x78) between records in a trail file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToken {
    pub offset: u64,
    pub length: usize,
    pub time_ns: u128,
    pub name: String,
    pub token_id: u8,
}

/// One item of a stream, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// A record (possibly with errors: a damaged header, a truncated record, ...).
    Record(Record<'a>),
    /// Bytes that do not start a record, skipped up to the next plausible header or file token
    /// (reported as a record with one error, as the Python decoder does).
    Skipped(Record<'a>),
    /// A standalone file token.
    File(FileToken),
}

impl<'a> Item<'a> {
    pub fn offset(&self) -> u64 {
        match self {
            Item::Record(r) | Item::Skipped(r) => r.offset,
            Item::File(f) => f.offset,
        }
    }

    pub fn length(&self) -> usize {
        match self {
            Item::Record(r) | Item::Skipped(r) => r.length,
            Item::File(f) => f.length,
        }
    }
}

fn is_file_id(c: u8) -> bool {
    c == 0x11 || c == 0x78
}

fn be32(b: &[u8], p: usize) -> u32 {
    u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]])
}

fn be64(b: &[u8], p: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[p..p + 8]);
    u64::from_be_bytes(a)
}

/// A standalone file token at `data[q]` (a file token id), or None if the bytes are not one.
pub fn file_token_at(data: &[u8], q: usize, base: u64) -> Option<FileToken> {
    let id = data[q];
    let (sec, subsec, n, name_at) = if id == 0x11 {
        if q + 11 > data.len() {
            return None;
        }
        (
            u64::from(be32(data, q + 1)),
            u64::from(be32(data, q + 5)),
            u16::from_be_bytes([data[q + 9], data[q + 10]]),
            q + 11,
        )
    } else {
        if q + 19 > data.len() {
            return None;
        }
        (be64(data, q + 1), be64(data, q + 9), u16::from_be_bytes([data[q + 17], data[q + 18]]), q + 19)
    };
    let end = name_at + usize::from(n);
    if end > data.len() || n == 0 || data[end - 1] != 0 {
        return None;
    }
    let name = text(until_nul(&data[name_at..end - 1]));
    // trail files start with a file token; guess the dialect from the following header, if any
    let openbsm =
        end < data.len() && is_header_id(data[end]) && end + 5 < data.len() && matches!(data[end + 5], 10 | 11);
    Some(FileToken {
        offset: base + q as u64,
        length: end - q,
        time_ns: file_time_ns(sec, subsec, id, !openbsm),
        name,
        token_id: id,
    })
}

/// Offset of the next plausible header or file token at or after `start` (`data.len()` if none).
pub fn resync(data: &[u8], start: usize) -> usize {
    let mut q = start;
    while q < data.len() {
        let c = data[q];
        if is_header_id(c) {
            if plausible_header(data, q) {
                return q;
            }
        } else if is_file_id(c) && file_token_at(data, q, 0).is_some() {
            return q;
        }
        q += 1;
    }
    data.len()
}

/// Records (and, with `with_files`, standalone file tokens) of a stream in order; garbage becomes a
/// skipped item, then the walk resynchronises. `base` is added to every reported offset.
pub struct Walk<'a> {
    data: &'a [u8],
    base: u64,
    off: usize,
    limits: Limits,
    with_files: bool,
}

impl<'a> Walk<'a> {
    pub fn new(data: &'a [u8], base: u64, limits: Limits, with_files: bool) -> Self {
        Walk { data, base, off: 0, limits, with_files }
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let data = self.data;
        loop {
            let off = self.off;
            if off >= data.len() {
                return None;
            }
            let c = data[off];
            if is_header_id(c) {
                let (mut rec, mut nxt) = decode_at(data, off, self.base, self.limits);
                if nxt == off + 1 {
                    nxt = resync(data, off + 1);
                    rec.length = nxt - off;
                    rec.raw = &data[off..nxt];
                }
                self.off = nxt;
                return Some(Item::Record(rec));
            }
            if is_file_id(c)
                && let Some(ft) = file_token_at(data, off, self.base)
            {
                self.off += ft.length;
                if self.with_files {
                    return Some(Item::File(ft));
                }
                continue;
            }
            let nxt = resync(data, off + 1);
            let at = self.base + off as u64;
            let error = format!("no BSM header at offset {at} (byte 0x{c:02x}); skipped {} bytes", nxt - off);
            self.off = nxt;
            return Some(Item::Skipped(Record::failed(at, &data[off..nxt], error)));
        }
    }
}

/// Bytes `looks_like_bsm` wants (fewer works for short files).
pub const SNIFF_BYTES: usize = 4096;

fn file_token_len(head: &[u8]) -> Option<usize> {
    match head.first()? {
        0x11 if head.len() >= 11 => Some(11 + usize::from(u16::from_be_bytes([head[9], head[10]]))),
        0x78 if head.len() >= 19 => Some(19 + usize::from(u16::from_be_bytes([head[17], head[18]]))),
        _ => None,
    }
}

/// True when the bytes start like a BSM trail: a plausible header, or a file token then one.
pub fn looks_like_bsm(head: &[u8]) -> bool {
    let Some(&first) = head.first() else {
        return false;
    };
    if is_header_id(first) {
        if head.len() < 6 || !is_known_version(head[5]) {
            return false;
        }
        if plausible_header(head, 0) {
            return true;
        }
        // the first record may extend beyond `head`: require a sane length at least
        let reclen = be32(head, 1);
        return (18..=0x10_0000).contains(&reclen);
    }
    let Some(flen) = file_token_len(head) else {
        return false;
    };
    if flen > head.len() {
        return head.len() >= SNIFF_BYTES; // a very long file name: trust the token id and length
    }
    if flen == head.len() {
        return head[flen - 1] == 0; // a trail holding only a file token
    }
    let nxt = head[flen];
    is_header_id(nxt) || is_file_id(nxt)
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::{header32, record, text_token};
    use super::*;

    fn file32(sec: u32, subsec: u32, name: &[u8]) -> Vec<u8> {
        let mut v = vec![0x11];
        v.extend_from_slice(&sec.to_be_bytes());
        v.extend_from_slice(&subsec.to_be_bytes());
        v.extend_from_slice(&((name.len() + 1) as u16).to_be_bytes());
        v.extend_from_slice(name);
        v.push(0);
        v
    }

    #[test]
    fn split_with_file_tokens_and_garbage() {
        let rec = record(&header32(1, 0, 0, 11), &[&text_token(b"a")], true);
        let data = [file32(10, 5, b"f"), rec.clone(), b"\x01\x02".to_vec(), rec.clone(), file32(11, 0, b"g")].concat();
        let items: Vec<Item<'_>> = Walk::new(&data, 100, Limits::default(), true).collect();
        let shape: Vec<(u8, u64, usize)> = items
            .iter()
            .map(|i| match i {
                Item::Record(_) => 0,
                Item::File(_) => 1,
                Item::Skipped(_) => 2,
            })
            .zip(items.iter().map(|i| (i.offset(), i.length())))
            .map(|(k, (o, l))| (k, o, l))
            .collect();
        let r = rec.len();
        assert_eq!(
            shape,
            vec![
                (1, 100, 13),
                (0, 113, r),
                (2, 113 + r as u64, 2),
                (0, 115 + r as u64, r),
                (1, 115 + 2 * r as u64, 13)
            ]
        );
        // an OpenBSM header follows the first file token: milliseconds
        let Item::File(f) = &items[0] else { panic!() };
        assert_eq!(f.time_ns, 10_005_000_000);
        let Item::Skipped(s) = &items[2] else { panic!() };
        assert_eq!(s.errors, vec![format!("no BSM header at offset {} (byte 0x01); skipped 2 bytes", 113 + r)]);
        assert_eq!(Walk::new(&data, 0, Limits::default(), false).count(), 3);
    }

    #[test]
    fn sniffing() {
        let rec = record(&header32(1, 0, 0, 11), &[&text_token(b"a")], true);
        assert!(looks_like_bsm(&rec));
        assert!(looks_like_bsm(&[file32(1, 0, b"x"), rec.clone()].concat()));
        assert!(looks_like_bsm(&file32(1, 0, b"x")));
        assert!(!looks_like_bsm(b"type=SYSCALL msg=audit(1.2:3): x"));
        assert!(!looks_like_bsm(b""));
    }
}
