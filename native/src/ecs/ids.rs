//! Deterministic document ids: retransmitted records land on the same
//! document, so the engine answers 409 to the duplicate. The id depends only on who the sender is and
//! what it said: never on the connection, the listener or the arrival time.

use blake2b_simd::Params;
use blake2b_simd::many::{HashManyJob, hash_many};

use super::common::Source;

/// `host_identity`: the authenticated principal, else the peer address.
pub fn host_identity(source: &Source) -> String {
    if source.authenticated && !source.principal.is_empty() {
        format!("principal:{}", source.principal)
    } else {
        format!("peer:{}", source.peer)
    }
}

/// `document_id(kind, source, raw_parts)`: base64url(blake2b-128 personalised "auditrecv-id-v1" of the
/// length-framed kind, host identity and raw parts), no padding: 22 characters.
pub fn document_id(kind: &str, identity: &str, raw_parts: &[&[u8]]) -> String {
    let mut framed = Framed { state: id_params().to_state(), len: 0, buf: [0; STAGE] };
    frame(kind, identity, raw_parts, |piece| framed.push(piece));
    framed.flush();
    base64url_16(framed.state.finalize().as_bytes())
}

/// What an id hashes, piece by piece into `put`: the kind, the host identity and each raw part, each
/// after its length as eight big-endian bytes.
#[inline]
fn frame(kind: &str, identity: &str, raw_parts: &[&[u8]], mut put: impl FnMut(&[u8])) {
    for part in [kind.as_bytes(), identity.as_bytes()].into_iter().chain(raw_parts.iter().copied()) {
        put(&(part.len() as u64).to_be_bytes());
        put(part);
    }
}

/// The parameters of every document id: BLAKE2b-128 personalised "auditrecv-id-v1".
fn id_params() -> Params {
    let mut params = Params::new();
    params.hash_length(16).personal(b"auditrecv-id-v1");
    params
}

/// The ids of many inputs hashed together: each input's framed bytes (exactly what [`document_id`]
/// feeds the hash) are staged one after the other in one reused arena, then `hash_many` hashes them
/// in parallel lanes (four BLAKE2b inputs at once with AVX2): for inputs of a few hundred bytes, about
/// twice the throughput of hashing them one at a time (`cargo bench --bench ids`).
#[derive(Debug, Default)]
pub struct IdBatch {
    arena: Vec<u8>,
    /// Where each staged input ends in the arena.
    ends: Vec<usize>,
}

impl IdBatch {
    /// Stages one input: [`document_id`]`(kind, identity, raw_parts)` will be its id.
    pub fn push(&mut self, kind: &str, identity: &str, raw_parts: &[&[u8]]) {
        frame(kind, identity, raw_parts, |piece| self.arena.extend_from_slice(piece));
        self.ends.push(self.arena.len());
    }

    /// Stages an input whose id is not wanted (an empty id in [`IdBatch::ids`]): nothing is hashed.
    pub fn skip(&mut self) {
        self.ends.push(SKIPPED);
    }

    /// The number of inputs staged.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The ids of the inputs staged, in order ("" for a skipped one); the batch is empty again.
    pub fn ids(&mut self) -> Vec<String> {
        let params = id_params();
        let mut inputs = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for (at, &end) in self.ends.iter().enumerate().filter(|&(_, &end)| end != SKIPPED) {
            inputs.push((at, start..end));
            start = end;
        }
        // Longest first: `hash_many` hashes four inputs in step until the shortest of them is done, and
        // the last few one lane at a time; in that order those last few are the shortest inputs, not a
        // long event's dozens of blocks.
        inputs.sort_unstable_by_key(|(_, range)| std::cmp::Reverse(range.len()));
        let mut jobs: Vec<(usize, HashManyJob<'_>)> =
            inputs.into_iter().map(|(at, range)| (at, HashManyJob::new(&params, &self.arena[range]))).collect();
        hash_many(jobs.iter_mut().map(|(_, job)| job));
        let mut ids = vec![String::new(); self.ends.len()];
        for (at, job) in &jobs {
            ids[*at] = base64url_16(job.to_hash().as_bytes());
        }
        self.arena.clear();
        self.ends.clear();
        ids
    }
}

/// The end of an input [`IdBatch::skip`] staged: it has no bytes, and no id.
const SKIPPED: usize = usize::MAX;

/// Bytes staged before the hash sees them: eight BLAKE2b blocks, so that the small pieces (an event's
/// lines, the eight-byte lengths) reach `State::update` as a few long runs. Fed piece by piece, each call
/// buffering and compressing on its own, the work around the compression was a third of it (callgrind,
/// 3296 Linux documents: 4.9M instructions besides 12.3M compressing; staged, 1.7M).
const STAGE: usize = 1024;

struct Framed {
    state: blake2b_simd::State,
    len: usize,
    buf: [u8; STAGE],
}

impl Framed {
    #[inline]
    fn push(&mut self, bytes: &[u8]) {
        if let Some(room) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.flush();
            if bytes.len() < STAGE {
                self.buf[..bytes.len()].copy_from_slice(bytes);
                self.len = bytes.len();
            } else {
                self.state.update(bytes);
            }
        }
    }

    fn flush(&mut self) {
        self.state.update(&self.buf[..self.len]);
        self.len = 0;
    }
}

const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `base64url_nopad` of a 16-byte digest, written on the stack: five groups of three bytes and the last
/// byte's two characters.
fn base64url_16(digest: &[u8]) -> String {
    let mut out = [0u8; 22];
    let mut groups = digest.chunks_exact(3);
    for (chars, group) in out.chunks_exact_mut(4).zip(&mut groups) {
        let n = (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
        for (i, c) in chars.iter_mut().enumerate() {
            *c = B64_URL[((n >> (18 - 6 * i)) & 63) as usize];
        }
    }
    let last = groups.remainder().first().copied().unwrap_or(0);
    out[20] = B64_URL[usize::from(last >> 2)];
    out[21] = B64_URL[usize::from((last & 3) << 4)];
    // The table's characters are ASCII: the check cannot fail.
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_recipe() {
        // hashlib.blake2b(digest_size=16, person=b"auditrecv-id-v1") over the framed b"bsm",
        // b"peer:golden-sender.example", b"\x14" (computed with Python)
        let id = document_id("bsm", "peer:golden-sender.example", &[b"\x14"]);
        assert_eq!(id, "93sCTZ32aIIh_Js1iJTzXQ");
        assert_eq!(id, document_id("bsm", "peer:golden-sender.example", &[b"\x14"]));
        assert_ne!(id, document_id("bsm", "peer:other", &[b"\x14"]));
        let s = Source { peer: "p".into(), principal: "host/x@R".into(), authenticated: true, ..Source::default() };
        assert_eq!(host_identity(&s), "principal:host/x@R");
    }

    /// The recipe as it was written first: one `update` per length and part, `base64url_nopad`.
    fn piecewise(kind: &str, identity: &str, raw_parts: &[&[u8]]) -> String {
        let mut state = Params::new().hash_length(16).personal(b"auditrecv-id-v1").to_state();
        for part in [kind.as_bytes(), identity.as_bytes()].into_iter().chain(raw_parts.iter().copied()) {
            state.update(&(part.len() as u64).to_be_bytes());
            state.update(part);
        }
        crate::ecs::common::base64url_nopad(state.finalize().as_bytes())
    }

    #[test]
    fn staged_equals_piecewise() {
        // parts around the stage's size and the block size, empty parts, many parts
        let bytes: Vec<u8> = (0..6000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let sizes = [
            0, 1, 7, 8, 9, 100, 119, 120, 121, 127, 128, 129, 1000, 1007, 1008, 1015, 1016, 1017, 1023, 1024, 1025,
            2048, 4999,
        ];
        for &a in &sizes {
            for &b in &sizes {
                let parts = [&bytes[..a], &bytes[a % 7..a % 7 + b], &bytes[..0], &bytes[3..3 + b.min(40)]];
                for n in 0..=parts.len() {
                    assert_eq!(
                        document_id("linux", "peer:192.0.2.8", &parts[..n]),
                        piecewise("linux", "peer:192.0.2.8", &parts[..n])
                    );
                }
            }
        }
        let many: Vec<&[u8]> = (0..300).map(|i| &bytes[i..i + i % 50]).collect();
        assert_eq!(document_id("bsm", "principal:host/x@R", &many), piecewise("bsm", "principal:host/x@R", &many));
        let long_identity = "x".repeat(3000);
        assert_eq!(document_id("bsm", &long_identity, &[b"\x14"]), piecewise("bsm", &long_identity, &[b"\x14"]));
    }

    #[test]
    fn ids_hashed_together_are_document_id() {
        // inputs of a few bytes to a few blocks, in one to six parts, skipped ones among them, in
        // batches of every size around the four lanes; the batch is empty again after each
        let bytes: Vec<u8> = (0..6000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let inputs: Vec<Vec<&[u8]>> = (0..200usize)
            .map(|i| (0..i % 6 + 1).map(|k| &bytes[i * k % 97..i * k % 97 + (i * 37 + k * 11) % 1100]).collect())
            .collect();
        let mut batch = IdBatch::default();
        for n in [0, 1, 2, 3, 4, 5, 7, 8, 9, 17, 200] {
            for (i, parts) in inputs[..n].iter().enumerate() {
                match i % 9 {
                    4 => batch.skip(),
                    _ => batch.push("linux", "peer:192.0.2.8", parts),
                }
            }
            assert_eq!(batch.len(), n);
            let ids = batch.ids();
            assert!(batch.is_empty());
            assert_eq!(ids.len(), n);
            for (i, (parts, id)) in inputs.iter().zip(&ids).enumerate() {
                match i % 9 {
                    4 => assert_eq!(id, ""),
                    _ => assert_eq!(id, &document_id("linux", "peer:192.0.2.8", parts)),
                }
            }
        }
        batch.push("bsm", "peer:golden-sender.example", &[b"\x14"]);
        assert_eq!(batch.ids(), ["93sCTZ32aIIh_Js1iJTzXQ"]);
    }

    #[test]
    fn base64_of_digests() {
        for seed in 0..=255u8 {
            let digest: Vec<u8> =
                (0..16u8).map(|i| seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(seed | 1))).collect();
            assert_eq!(base64url_16(&digest), crate::ecs::common::base64url_nopad(&digest));
        }
        assert_eq!(base64url_16(&[0xff; 16]), crate::ecs::common::base64url_nopad(&[0xff; 16]));
    }
}
