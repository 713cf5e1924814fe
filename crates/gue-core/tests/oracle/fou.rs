// SPDX-License-Identifier: GPL-2.0
//! Test oracle: what the receiver (`net/ipv4/fou_core.c`, GUE variant 0) accepts, decoded
//! independently of the encoder the module ships, so round trips check the encoder against it.

#![allow(dead_code)]

use core::fmt;
use gue_core::gue::*;

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

/// Decodes a GUE header as fou accepts it.
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
