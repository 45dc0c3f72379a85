// The hash of the tables over names (record types, field names), shared by `build.rs`, which fills
// them, and `tables.rs`, which looks names up with them: a word from the name's first bytes and one from
// its last (loads of fixed size, no copy), mixed with its length. The two words and the length are the
// name's key: for names of up to 16 bytes they hold every byte, so equal keys are equal names.

/// The key of a name: its first and last (up to) eight bytes as words.
#[inline]
pub fn name_key(name: &[u8]) -> (u64, u64) {
    let n = name.len();
    if n >= 8 {
        let head = u64::from_le_bytes(name[..8].try_into().expect("8 bytes"));
        (head, u64::from_le_bytes(name[n - 8..].try_into().expect("8 bytes")))
    } else if n >= 4 {
        let first = u32::from_le_bytes(name[..4].try_into().expect("4 bytes"));
        (u64::from(first), u64::from(u32::from_le_bytes(name[n - 4..].try_into().expect("4 bytes"))))
    } else if n > 0 {
        (u64::from(name[0]) | u64::from(name[n / 2]) << 8, u64::from(name[n - 1]))
    } else {
        (0, 0)
    }
}

/// The slot of a name of key `key` and `n` bytes in a table of `1 << bits` slots under `seed`.
#[inline]
pub fn key_slot(key: (u64, u64), n: usize, seed: u64, bits: u32) -> usize {
    let mixed = key.0 ^ key.1.rotate_left(31) ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed.wrapping_mul(seed) >> (64 - bits)) as usize
}
