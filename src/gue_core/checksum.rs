// SPDX-License-Identifier: GPL-2.0

//! The Internet checksum (RFC 1071) and UDP pseudo-header sums.
//!
//! Partial sums are `u32` values that are congruent modulo 0xffff to the
//! ones' complement sum of the 16-bit big-endian words, like the kernel's
//! `__wsum`; [`fold`] reduces one to 16 bits and `!fold(..)` is the checksum
//! field value.

use super::addr::InetAddr;
use super::headers::IPPROTO_UDP;

/// Adds `data`, as big-endian 16-bit words (an odd last byte padded with a
/// zero), to the partial sum `initial`.
pub fn ones_complement_sum(data: &[u8], initial: u32) -> u32 {
    // A u64 accumulator cannot overflow for any slice that fits in memory
    // (it would take 2^48 words), so the end-around carries are folded once
    // at the end; wrapping_add only keeps overflow checks out of the loop.
    let mut sum = u64::from(initial);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum = sum.wrapping_add(u64::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = words.remainder() {
        sum = sum.wrapping_add(u64::from(*last) << 8);
    }
    while sum > u64::from(u32::MAX) {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

/// Folds a partial sum to 16 bits with end-around carry (not complemented,
/// unlike the kernel's `csum_fold()`).
pub const fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16); // at most 0x1fffe
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Partial sum of the IPv6 pseudo header (RFC 8200 section 8.1).
pub fn pseudo_header_sum_v6(saddr: &[u8; 16], daddr: &[u8; 16], next_header: u8, len: u32) -> u32 {
    let sum = ones_complement_sum(saddr, 0);
    let sum = ones_complement_sum(daddr, sum);
    let sum = ones_complement_sum(&len.to_be_bytes(), sum);
    ones_complement_sum(&[0, 0, 0, next_header], sum)
}

/// Turns a full UDP partial sum (pseudo header + header + payload) into the
/// checksum field value. A computed 0 is sent as 0xffff, because 0 on the
/// wire means "no checksum" (RFC 768).
pub const fn udp_checksum_from_sum(sum: u32) -> u16 {
    match !fold(sum) {
        0 => 0xffff,
        c => c,
    }
}

/// The UDP pseudo-header sum for `source` → `destination` with the length as a 32-bit word,
/// as the kernel's `csum_tcpudp_nofold` adds it: segmentation later subtracts exactly that
/// length, even for GSO packets longer than 64 KiB. Below 64 KiB it equals the RFC 768 sum.
/// `None` for addresses of different families.
pub fn pseudo_header_sum(source: &InetAddr, destination: &InetAddr, udp_len: u32) -> Option<u32> {
    match (source.v4_octets(), destination.v4_octets()) {
        (Some(saddr), Some(daddr)) => {
            let sum = ones_complement_sum(&saddr, 0);
            let sum = ones_complement_sum(&daddr, sum);
            let sum = ones_complement_sum(&[0, IPPROTO_UDP], sum);
            Some(ones_complement_sum(&udp_len.to_be_bytes(), sum))
        }
        (None, None) => Some(pseudo_header_sum_v6(
            &source.v6_octets()?,
            &destination.v6_octets()?,
            IPPROTO_UDP,
            udp_len,
        )),
        _ => None,
    }
}
