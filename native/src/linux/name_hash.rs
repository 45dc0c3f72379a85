// The hash of the tables over names (record types), shared by `build.rs`, which fills them, and
// `tables.rs`, which looks names up with it: one word from the name's first bytes and one from its
// last, mixed with its length.

/// The slot of `name` in a table of `1 << bits` slots under `seed`.
#[inline]
pub fn name_slot(name: &[u8], seed: u64, bits: u32) -> usize {
    let n = name.len();
    let word = |part: &[u8]| {
        let mut w = [0u8; 8];
        w[..part.len()].copy_from_slice(part);
        u64::from_le_bytes(w)
    };
    let head = word(&name[..n.min(8)]);
    let tail = word(&name[n - n.min(8)..]);
    let mixed = head ^ tail.rotate_left(31) ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed.wrapping_mul(seed) >> (64 - bits)) as usize
}
