// SPDX-License-Identifier: GPL-2.0

//! The Internet checksum (RFC 1071) and UDP pseudo-header sums.
//!
//! Partial sums are `u32` values that are congruent modulo 0xffff to the
//! ones' complement sum of the 16-bit big-endian words, like the kernel's
//! `__wsum`; [`fold`] reduces one to 16 bits and `!fold(..)` is the checksum
//! field value.

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

/// The Internet checksum of `data`: the value to store in a checksum field
/// that was zero while summing.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(ones_complement_sum(data, 0))
}

/// Partial sum of the IPv4 pseudo header (RFC 768).
pub fn pseudo_header_sum_v4(saddr: [u8; 4], daddr: [u8; 4], proto: u8, len: u16) -> u32 {
    let sum = ones_complement_sum(&saddr, 0);
    let sum = ones_complement_sum(&daddr, sum);
    let l = len.to_be_bytes();
    ones_complement_sum(&[0, proto, l[0], l[1]], sum)
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

/// Sums a UDP header plus payload, treating the checksum field (bytes 6-7)
/// as zero whatever it holds, so the result can be written into it.
fn udp_segment_sum(segment: &[u8], initial: u32) -> u32 {
    match segment.split_at_checked(6) {
        Some((head, rest)) => {
            let sum = ones_complement_sum(head, initial);
            ones_complement_sum(rest.get(2..).unwrap_or(&[]), sum)
        }
        None => ones_complement_sum(segment, initial),
    }
}

/// UDP checksum over IPv4 of `segment` (header plus payload); the pseudo
/// header uses `segment.len()` as the UDP length.
pub fn udp_checksum_v4(saddr: [u8; 4], daddr: [u8; 4], segment: &[u8]) -> u16 {
    // Longer segments cannot travel over IPv4; truncating the length would
    // only make the checksum wrong, never panic.
    let len = segment.len() as u16;
    udp_checksum_from_sum(udp_segment_sum(
        segment,
        pseudo_header_sum_v4(saddr, daddr, IPPROTO_UDP, len),
    ))
}

/// UDP checksum over IPv6 of `segment` (header plus payload).
pub fn udp_checksum_v6(saddr: &[u8; 16], daddr: &[u8; 16], segment: &[u8]) -> u16 {
    let len = segment.len() as u32;
    udp_checksum_from_sum(udp_segment_sum(
        segment,
        pseudo_header_sum_v6(saddr, daddr, IPPROTO_UDP, len),
    ))
}
