//! Address text exactly as the Python decoder writes it (`socket.inet_ntop`, i.e. glibc's
//! `inet_ntop`): dotted quads, and for IPv6 the longest run (first on a tie) of two or more zero
//! groups as `::`, lowercase hex without leading zeros, and an embedded IPv4 tail for `::a.b.c.d`
//! and `::ffff:a.b.c.d`. (Rust's `Ipv6Addr` display differs on the `::a.b.c.d` form.)

use std::fmt::Write as _;

pub fn ip4(b: &[u8]) -> String {
    debug_assert_eq!(b.len(), 4);
    let mut s = String::with_capacity(15);
    let mut buf = itoa::Buffer::new();
    for (i, octet) in b.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(buf.format(*octet));
    }
    s
}

/// An IPv4 address written with adr_int32 from network order on x86: bytes reversed.
pub fn ip4_rev(b: &[u8]) -> String {
    ip4(&[b[3], b[2], b[1], b[0]])
}

pub fn ip6(b: &[u8]) -> String {
    debug_assert_eq!(b.len(), 16);
    let words: [u16; 8] = std::array::from_fn(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]]));
    // longest run of zero words; the first one wins a tie; runs of one word do not count
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_base = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = usize::MAX;
    }
    let mut s = String::with_capacity(39);
    for (i, word) in words.iter().enumerate() {
        if best_base != usize::MAX && i >= best_base && i < best_base + best_len {
            if i == best_base {
                s.push(':');
            }
            continue;
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xFFFF)) {
            s.push_str(&ip4(&b[12..16]));
            return s;
        }
        let _ = write!(s, "{word:x}");
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        s.push(':');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(words: [u16; 8]) -> String {
        let mut b = [0u8; 16];
        for (i, w) in words.iter().enumerate() {
            b[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
        }
        ip6(&b)
    }

    #[test]
    fn ipv4() {
        assert_eq!(ip4(&[10, 0, 2, 15]), "10.0.2.15");
        assert_eq!(ip4_rev(&[15, 2, 0, 10]), "10.0.2.15");
    }

    #[test]
    fn ipv6_like_glibc() {
        assert_eq!(v6([0; 8]), "::");
        assert_eq!(v6([0, 0, 0, 0, 0, 0, 0, 1]), "::1");
        assert_eq!(v6([0, 0, 0, 0, 0, 0, 0x0102, 0x0304]), "::1.2.3.4");
        assert_eq!(v6([0, 0, 0, 0, 0, 0xFFFF, 0x0102, 0x0304]), "::ffff:1.2.3.4");
        assert_eq!(v6([0, 0, 0, 0, 0, 0xFFFE, 0x0102, 0x0304]), "::fffe:102:304");
        assert_eq!(v6([0xFE80, 0, 0, 0, 0x1, 0, 0, 0x2]), "fe80::1:0:0:2");
        assert_eq!(v6([0x2001, 0xDB8, 0, 0, 1, 0, 0, 1]), "2001:db8::1:0:0:1");
        assert_eq!(v6([1, 0, 2, 0, 3, 0, 4, 0]), "1:0:2:0:3:0:4:0");
        assert_eq!(v6([1, 0, 0, 0, 0, 0, 0, 0]), "1::");
    }
}
