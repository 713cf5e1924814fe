// SPDX-License-Identifier: GPL-2.0

//! IPv4/IPv6 addresses without `std::net`: RFC 5952 display (the listing's)
//! and a table hash. Text is parsed only in userspace (`InetAddr::parse` in
//! the `gue-core` crate, over `std::net`).

use core::fmt;

/// Address family of an [`InetAddr`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

/// An IPv4 or IPv6 address.
///
/// Both families share one 16-byte array so the type is `Copy`, fixed-size
/// and cheap to compare; an IPv4 address sits in the first four bytes and
/// the rest stays zero, which keeps the derived `Eq`/`Hash` correct.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct InetAddr {
    family: Family,
    bytes: [u8; 16],
}

impl InetAddr {
    /// The IPv4 address `a.b.c.d` given as `[a, b, c, d]`.
    pub const fn v4(octets: [u8; 4]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[0] = octets[0];
        bytes[1] = octets[1];
        bytes[2] = octets[2];
        bytes[3] = octets[3];
        InetAddr {
            family: Family::V4,
            bytes,
        }
    }

    /// The IPv6 address with the given network-order bytes.
    pub const fn v6(octets: [u8; 16]) -> Self {
        InetAddr {
            family: Family::V6,
            bytes: octets,
        }
    }

    /// The address family.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    pub fn octets(&self) -> &[u8] {
        match self.family {
            Family::V4 => self.bytes.split_at(4).0,
            Family::V6 => &self.bytes,
        }
    }

    /// The IPv4 octets, or `None` for an IPv6 address.
    pub const fn v4_octets(&self) -> Option<[u8; 4]> {
        match self.family {
            Family::V4 => Some([self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]]),
            Family::V6 => None,
        }
    }

    /// The IPv6 octets, or `None` for an IPv4 address.
    pub const fn v6_octets(&self) -> Option<[u8; 16]> {
        match self.family {
            Family::V4 => None,
            Family::V6 => Some(self.bytes),
        }
    }

    /// A cheap, well-mixed 32-bit hash for [`super::table`] bucket selection.
    ///
    /// Folds the four address words and finishes with the murmur3 `fmix32`
    /// avalanche, so neighbouring addresses (10.0.1.2, 10.0.1.3, ...) land in
    /// unrelated buckets even when only the low bits of the hash are used.
    ///
    /// `key` is mixed in first: with a key of its own (random in the kernel), a table's bucket
    /// layout cannot be predicted, so addresses cannot be chosen to collide (each step here
    /// is invertible, so without a key they could be, at will).
    pub fn hash32(&self, key: u32) -> u32 {
        let mut h: u32 = key
            ^ match self.family {
                Family::V4 => 0x9e37_79b9,
                Family::V6 => 0x85eb_ca6b,
            };
        for word in self.bytes.chunks_exact(4) {
            let w = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            h = (h ^ w).wrapping_mul(0xcc9e_2d51).rotate_left(15);
        }
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

impl fmt::Display for InetAddr {
    /// Dotted quad for IPv4; RFC 5952 canonical text for IPv6 (lowercase,
    /// no leading zeros, the longest run of two or more zero groups -- the
    /// first on a tie -- shortened to `::`, and `::ffff:a.b.c.d` for
    /// IPv4-mapped addresses).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.bytes;
        if self.family == Family::V4 {
            return write!(f, "{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
        }
        if b[..10].iter().all(|&x| x == 0) && b[10] == 0xff && b[11] == 0xff {
            return write!(f, "::ffff:{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
        }
        let mut groups = [0u16; 8];
        for (g, pair) in groups.iter_mut().zip(b.chunks_exact(2)) {
            *g = u16::from_be_bytes([pair[0], pair[1]]);
        }
        // RFC 5952 4.2.2: a single zero group is not compressed.
        let (zstart, zend) = match longest_zero_run(&groups) {
            (start, end) if end.saturating_sub(start) >= 2 => (start, end),
            _ => (usize::MAX, usize::MAX),
        };
        for (i, g) in (0..groups.len()).zip(groups.iter()) {
            if i == zstart {
                f.write_str("::")?;
            }
            if (zstart..zend).contains(&i) {
                continue;
            }
            // A separator goes between groups, except right after "::".
            if i > 0 && i != zend {
                f.write_str(":")?;
            }
            write!(f, "{g:x}")?;
        }
        Ok(())
    }
}

/// The index range `start..end` of the first longest run of zero groups.
fn longest_zero_run(groups: &[u16; 8]) -> (usize, usize) {
    let (mut best, mut run_start): ((usize, usize), Option<usize>) = ((0, 0), None);
    // The sentinel `1` closes a run that reaches the last group.
    for (i, &g) in (0..=groups.len()).zip(groups.iter().chain(core::iter::once(&1))) {
        match (g, run_start) {
            (0, None) => run_start = Some(i),
            (0, Some(_)) => {}
            (_, Some(start)) => {
                if i.saturating_sub(start) > best.1.saturating_sub(best.0) {
                    best = (start, i);
                }
                run_start = None;
            }
            (_, None) => {}
        }
    }
    best
}
