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

use core::fmt;

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

/// Why bytes are not a GUE header this module accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Fewer bytes than the header (including its options) needs.
    Truncated,
    /// Version is not 0 (version 1 is headerless direct IP encapsulation).
    UnsupportedVersion(u8),
    /// The C bit is set: a control message, not data.
    ControlMessage,
    /// Flags other than `GUE_FLAG_PRIV` are set.
    UnknownFlags(u16),
    /// Private flags other than `GUE_PFLAG_REMCSUM` are set.
    UnknownPrivateFlags(u32),
    /// `hlen` does not equal the length of the options the flags announce.
    BadHeaderLength,
    /// Remote checksum option with `start + offset` below `start`.
    BadRemoteChecksum,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated GUE header"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported GUE version {v}"),
            DecodeError::ControlMessage => f.write_str("GUE control message"),
            DecodeError::UnknownFlags(x) => write!(f, "unknown GUE flags {x:#06x}"),
            DecodeError::UnknownPrivateFlags(x) => write!(f, "unknown GUE private flags {x:#010x}"),
            DecodeError::BadHeaderLength => f.write_str("GUE hlen does not match its flags"),
            DecodeError::BadRemoteChecksum => f.write_str("bad GUE remote checksum option"),
        }
    }
}

impl GueHeader {
    /// Total header length in bytes, options included (4 or 12).
    pub const fn len(&self) -> usize {
        match self.remcsum {
            None => GUE_HEADER_LEN,
            Some(_) => GUE_HEADER_LEN + GUE_PRIV_LEN + GUE_REMCSUM_LEN,
        }
    }

    /// Always `false`: a GUE header is never empty. Exists for API symmetry
    /// with [`GueHeader::len`].
    pub const fn is_empty(&self) -> bool {
        false
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

    /// Parses a header from the front of `buf`, returning it and its length
    /// (where the inner packet starts).
    ///
    /// Stricter than the kernel's `validate_gue_flags()`: `hlen` must match
    /// the announced options exactly, since this encoder never pads.
    pub fn decode(buf: &[u8]) -> Result<(GueHeader, usize), DecodeError> {
        let (fixed, rest) = buf
            .split_first_chunk::<GUE_HEADER_LEN>()
            .ok_or(DecodeError::Truncated)?;
        let version = fixed[0] >> 6;
        if version != 0 {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        if fixed[0] & 0x20 != 0 {
            return Err(DecodeError::ControlMessage);
        }
        let optlen = usize::from(fixed[0] & 0x1f) * 4;
        let options = rest.get(..optlen).ok_or(DecodeError::Truncated)?;
        let flags = u16::from_be_bytes([fixed[2], fixed[3]]);
        if flags & !GUE_FLAG_PRIV != 0 {
            return Err(DecodeError::UnknownFlags(flags));
        }
        let mut header = GueHeader {
            proto: fixed[1],
            remcsum: None,
        };
        let mut used = 0;
        if flags & GUE_FLAG_PRIV != 0 {
            let (pflags, after) = options
                .split_first_chunk::<GUE_PRIV_LEN>()
                .ok_or(DecodeError::BadHeaderLength)?;
            let pflags = u32::from_be_bytes(*pflags);
            if pflags & !GUE_PFLAG_REMCSUM != 0 {
                return Err(DecodeError::UnknownPrivateFlags(pflags));
            }
            used += GUE_PRIV_LEN;
            if pflags & GUE_PFLAG_REMCSUM != 0 {
                let (pd, _) = after
                    .split_first_chunk::<GUE_REMCSUM_LEN>()
                    .ok_or(DecodeError::BadHeaderLength)?;
                let start = u16::from_be_bytes([pd[0], pd[1]]);
                let end = u16::from_be_bytes([pd[2], pd[3]]);
                let offset = end
                    .checked_sub(start)
                    .ok_or(DecodeError::BadRemoteChecksum)?;
                header.remcsum = Some(RemoteChecksum { start, offset });
                used += GUE_REMCSUM_LEN;
            }
        }
        if used != optlen {
            return Err(DecodeError::BadHeaderLength);
        }
        Ok((header, GUE_HEADER_LEN + optlen))
    }
}
