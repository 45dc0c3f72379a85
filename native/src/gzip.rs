//! gzip for `_bulk` bodies. zlib at level 1 compresses a body of audit documents at ~95 MB/s on the
//! reference machine, which made it the largest per-document cost left in the sink (~20 µs for a 2 KB
//! document); libdeflate, a well-kept single-shot DEFLATE implementation, does ~270 MB/s at level 1
//! with a smaller output (bench: `cargo bench --bench gzip`, docs/performance.md). Bodies are
//! compressed whole (they are at most `[search] batch_max_bytes`), so streaming buys nothing.

use libdeflater::{CompressionLvl, Compressor};

/// The gzip member (RFC 1952) of `data` at `level` (1 fastest .. 12 smallest; out-of-range levels are
/// clamped). Any gzip reader accepts it; the engines decompress it as they do zlib's output.
pub fn gzip(data: &[u8], level: i32) -> Vec<u8> {
    let level = CompressionLvl::new(level.clamp(1, 12)).unwrap_or_else(|_| CompressionLvl::fastest());
    let mut compressor = Compressor::new(level);
    let mut out = vec![0; compressor.gzip_compress_bound(data.len())];
    // The bound is what libdeflate guarantees to be enough for any input: failing here is a bug.
    let written = compressor.gzip_compress(data, &mut out).expect("libdeflate's gzip bound is always enough");
    out.truncate(written);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use libdeflater::Decompressor;

    fn gunzip(data: &[u8], size: usize) -> Vec<u8> {
        let mut out = vec![0; size];
        let n = Decompressor::new().gzip_decompress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn round_trips_and_is_a_gzip_member() {
        let body: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes()).collect();
        for level in [1, 6, 12] {
            let packed = gzip(&body, level);
            assert_eq!(&packed[..3], &[0x1f, 0x8b, 8], "gzip magic and DEFLATE");
            assert!(packed.len() < body.len() / 4);
            assert_eq!(gunzip(&packed, body.len()), body);
        }
    }

    #[test]
    fn empty_and_out_of_range_levels() {
        assert_eq!(gunzip(&gzip(b"", 1), 0), b"");
        assert_eq!(gunzip(&gzip(b"abc", 0), 3), b"abc");
        assert_eq!(gunzip(&gzip(b"abc", 99), 3), b"abc");
    }
}
