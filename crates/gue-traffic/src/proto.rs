//! Wire protocol and deterministic payload generation.
//!
//! Per request the client sends an 8-byte big-endian body length followed by
//! the body; the server answers with the ASCII line `<len> <sha256hex>\n`.

use sha2::{Digest, Sha256};

/// I/O chunk size; a multiple of 8 so payload generation is chunking-independent.
pub const CHUNK: usize = 256 * 1024;

/// Longest reply line we accept (u64 decimal + space + 64 hex + newline fits easily).
pub const MAX_REPLY: usize = 128;

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed of request `index` of the phase with payload `size`.
pub fn request_seed(seed: u64, size: u64, index: u64) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ size) ^ index)
}

/// Fast deterministic byte stream (SplitMix64 in counter mode).
pub struct Payload {
    state: u64,
}

impl Payload {
    pub fn new(seed: u64) -> Self {
        Payload { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf`; callers must use lengths that are multiples of 8 except
    /// for the final piece, so the stream does not depend on chunking.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let v = self.next().to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&v[..n]);
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 (hex) of the payload of `len` bytes generated from `seed`.
pub fn payload_digest(seed: u64, len: u64, buf: &mut [u8]) -> String {
    let mut p = Payload::new(seed);
    let mut h = Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        p.fill(&mut buf[..n]);
        h.update(&buf[..n]);
        left -= n as u64;
    }
    hex(&h.finalize())
}

/// Parses a reply line (without the newline) into (len, lowercase hex digest).
pub fn parse_reply(line: &str) -> Option<(u64, String)> {
    let (len, digest) = line.split_once(' ')?;
    let len = len.parse().ok()?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((len, digest.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_independent() {
        let mut whole = vec![0u8; 1000];
        Payload::new(42).fill(&mut whole);
        let mut parts = vec![0u8; 1000];
        let mut p = Payload::new(42);
        p.fill(&mut parts[..512]);
        p.fill(&mut parts[512..]);
        assert_eq!(whole, parts);
        let mut small = vec![0u8; 8];
        assert_eq!(payload_digest(42, 1000, &mut small), payload_digest(42, 1000, &mut vec![0; CHUNK]));
    }

    #[test]
    fn digests() {
        assert_eq!(
            payload_digest(1, 0, &mut [0u8; 8]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(request_seed(1, 1024, 0), request_seed(1, 1024, 1));
        assert_ne!(request_seed(1, 1024, 0), request_seed(2, 1024, 0));
        assert_ne!(request_seed(1, 1024, 0), request_seed(1, 2048, 0));
    }

    #[test]
    fn replies() {
        let d = "E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(parse_reply(&format!("0 {d}")), Some((0, d.to_ascii_lowercase())));
        assert_eq!(parse_reply("0 abc"), None);
        assert_eq!(parse_reply(&format!("x {d}")), None);
        assert_eq!(parse_reply(""), None);
    }
}
