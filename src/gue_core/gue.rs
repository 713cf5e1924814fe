// SPDX-License-Identifier: GPL-2.0

//! The GUE (Generic UDP Encapsulation) variant 0 header as Linux
//! `include/net/gue.h` and the receiver `net/ipv4/fou_core.c` understand it.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Ver|C|  Hlen   |  Proto/ctype  |             Flags           |P|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|                 private flags (if P)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          csum_start           |    csum_start + csum_offset   |  (if R)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `Hlen` counts the option words after the first one; P is
//! `GUE_FLAG_PRIV`, R is `GUE_PFLAG_REMCSUM`.

use super::error::{prefix_mut, EncodeError};

/// Length of the fixed GUE header (`sizeof(struct guehdr)`).
pub const GUE_HEADER_LEN: usize = 4;
/// Length of the private-flags option word (`GUE_LEN_PRIV`).
pub const GUE_PRIV_LEN: usize = 4;
/// Length of the remote checksum offload option (`GUE_PLEN_REMCSUM`).
pub const GUE_REMCSUM_LEN: usize = 4;
/// Flags bit: a private-flags word follows (`GUE_FLAG_PRIV`, host order).
pub const GUE_FLAG_PRIV: u16 = 0x0001;
/// Private flags bit: remote checksum offload option follows
/// (`GUE_PFLAG_REMCSUM`, host order).
pub const GUE_PFLAG_REMCSUM: u32 = 0x8000_0000;

/// Remote checksum offload parameters (draft-herbert-remotecsumoffload).
///
/// Tells the decapsulator where the inner transport checksum lives so it
/// can finish it, which lets the sender skip the outer UDP checksum while
/// the inner one stays `CHECKSUM_PARTIAL`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RemoteChecksum {
    /// Where checksumming starts, counted from the start of the inner packet
    /// (the byte right after the GUE header and its options); the kernel's
    /// `skb_checksum_start_offset()` minus the GUE header length.
    pub start: u16,
    /// Offset of the checksum field from `start` (`skb->csum_offset`).
    pub offset: u16,
}

/// A GUE variant 0 data-message header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GueHeader {
    /// IP protocol number of the payload (`IPPROTO_IPIP`, `IPPROTO_IPV6`).
    pub proto: u8,
    /// Remote checksum offload option, if present.
    pub remcsum: Option<RemoteChecksum>,
}

impl GueHeader {
    /// Total header length in bytes, options included (4 or 12).
    pub const fn len(&self) -> usize {
        match self.remcsum {
            None => GUE_HEADER_LEN,
            Some(_) => GUE_HEADER_LEN + GUE_PRIV_LEN + GUE_REMCSUM_LEN,
        }
    }

    /// Writes the header to the front of `out` and returns its length, the
    /// same bytes `ipvs_gue_encap()` in `net/netfilter/ipvs/ip_vs_xmit.c`
    /// produces.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.len();
        // Validate before touching `out`, so a failed encode writes nothing.
        let end = match self.remcsum {
            Some(rc) => Some(
                rc.start
                    .checked_add(rc.offset)
                    .ok_or(EncodeError::FieldOverflow("remcsum start + offset"))?,
            ),
            None => None,
        };
        let out = prefix_mut(out, len)?;
        // Options length in 32-bit words; at most 2, so it fits 5 bits.
        let hlen = ((len - GUE_HEADER_LEN) / 4) as u8;
        let flags = if end.is_some() { GUE_FLAG_PRIV } else { 0 };
        out[0] = hlen; // version 0, control 0
        out[1] = self.proto;
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        if let (Some(rc), Some(end)) = (self.remcsum, end) {
            out[4..8].copy_from_slice(&GUE_PFLAG_REMCSUM.to_be_bytes());
            out[8..10].copy_from_slice(&rc.start.to_be_bytes());
            out[10..12].copy_from_slice(&end.to_be_bytes());
        }
        Ok(len)
    }
}
