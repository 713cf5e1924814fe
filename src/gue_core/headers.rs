// SPDX-License-Identifier: GPL-2.0

//! Encoders for the outer IPv4/IPv6 and UDP headers. All multi-byte fields
//! are given in host order and written big-endian.

use super::checksum::{fold, ones_complement_sum};
use super::error::{prefix_mut, EncodeError};
use super::flowlabel::FLOW_LABEL_MASK;

/// IP protocol number of IPv4-in-IP (`IPPROTO_IPIP`).
pub const IPPROTO_IPIP: u8 = 4;
/// IP protocol number of IPv6-in-IP (`IPPROTO_IPV6`).
pub const IPPROTO_IPV6: u8 = 41;
/// IP protocol number of UDP (`IPPROTO_UDP`).
pub const IPPROTO_UDP: u8 = 17;

/// A UDP header (RFC 768).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UdpHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header plus payload.
    pub len: u16,
    /// Checksum as it goes on the wire; 0 means "none" (IPv4, or IPv6 with
    /// RFC 6935 zero-checksum tunnels).
    pub check: u16,
}

impl UdpHeader {
    /// Header length in bytes.
    pub const LEN: usize = 8;

    /// Writes the header to the front of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), EncodeError> {
        let out = prefix_mut(out, Self::LEN)?;
        out[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        out[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        out[4..6].copy_from_slice(&self.len.to_be_bytes());
        out[6..8].copy_from_slice(&self.check.to_be_bytes());
        Ok(())
    }
}

/// An option-less IPv4 header (RFC 791) with fragment offset 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv4Header {
    /// The TOS byte: DSCP in the upper six bits, ECN in the lower two.
    pub dscp_ecn: u8,
    /// Header plus payload length.
    pub total_len: u16,
    /// Identification.
    pub id: u16,
    /// The DF bit.
    pub dont_fragment: bool,
    /// Time to live.
    pub ttl: u8,
    /// Payload protocol, [`IPPROTO_UDP`] for GUE.
    pub protocol: u8,
    /// Source address.
    pub saddr: [u8; 4],
    /// Destination address.
    pub daddr: [u8; 4],
}

impl Ipv4Header {
    /// Header length in bytes (IHL 5).
    pub const LEN: usize = 20;

    /// Writes the header, including its checksum, to the front of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), EncodeError> {
        let out = prefix_mut(out, Self::LEN)?;
        out[0] = 0x45; // version 4, IHL 5
        out[1] = self.dscp_ecn;
        out[2..4].copy_from_slice(&self.total_len.to_be_bytes());
        out[4..6].copy_from_slice(&self.id.to_be_bytes());
        let frag: u16 = if self.dont_fragment { 0x4000 } else { 0 };
        out[6..8].copy_from_slice(&frag.to_be_bytes());
        out[8] = self.ttl;
        out[9] = self.protocol;
        out[10..12].copy_from_slice(&[0, 0]);
        out[12..16].copy_from_slice(&self.saddr);
        out[16..20].copy_from_slice(&self.daddr);
        let check = !fold(ones_complement_sum(out, 0));
        out[10..12].copy_from_slice(&check.to_be_bytes());
        Ok(())
    }
}

/// An IPv6 header (RFC 8200) without extension headers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ipv6Header {
    /// Traffic class: DSCP in the upper six bits, ECN in the lower two.
    pub traffic_class: u8,
    /// Flow label; only the low 20 bits may be set.
    pub flow_label: u32,
    /// Length of everything after this header.
    pub payload_len: u16,
    /// Next header, [`IPPROTO_UDP`] for GUE.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub saddr: [u8; 16],
    /// Destination address.
    pub daddr: [u8; 16],
}

impl Ipv6Header {
    /// Header length in bytes.
    pub const LEN: usize = 40;

    /// Writes the header to the front of `out`. Fails if `flow_label` does
    /// not fit 20 bits, rather than silently corrupting the traffic class.
    pub fn encode(&self, out: &mut [u8]) -> Result<(), EncodeError> {
        if self.flow_label > FLOW_LABEL_MASK {
            return Err(EncodeError::FieldOverflow("flow_label"));
        }
        let out = prefix_mut(out, Self::LEN)?;
        let word = (6u32 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label;
        out[0..4].copy_from_slice(&word.to_be_bytes());
        out[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        out[6] = self.next_header;
        out[7] = self.hop_limit;
        out[8..24].copy_from_slice(&self.saddr);
        out[24..40].copy_from_slice(&self.daddr);
        Ok(())
    }
}
