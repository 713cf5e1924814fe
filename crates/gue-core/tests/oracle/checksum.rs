// SPDX-License-Identifier: GPL-2.0
//! Test oracle: whole-packet RFC 768 / RFC 8200 checksums computed the textbook way, to check
//! the partial sums the module ships (`gue_core::checksum`).

#![allow(dead_code)]

use gue_core::checksum::{fold, ones_complement_sum, pseudo_header_sum_v6, udp_checksum_from_sum};
use gue_core::headers::IPPROTO_UDP;

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
