// SPDX-License-Identifier: GPL-2.0

//! The error shared by all header encoders.

use core::fmt;

/// Why a header could not be written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EncodeError {
    /// The output buffer is shorter than the header.
    BufferTooShort {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A field value does not fit its on-wire width (e.g. a remote checksum
    /// `start + offset` beyond 65535, or a flow label wider than 20 bits).
    FieldOverflow(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooShort { needed, available } => {
                write!(f, "buffer too short: need {needed} bytes, have {available}")
            }
            EncodeError::FieldOverflow(field) => write!(f, "field '{field}' out of range"),
        }
    }
}

/// Returns the first `len` bytes of `out`, or [`EncodeError::BufferTooShort`].
pub(crate) fn prefix_mut(out: &mut [u8], len: usize) -> Result<&mut [u8], EncodeError> {
    let available = out.len();
    out.get_mut(..len).ok_or(EncodeError::BufferTooShort {
        needed: len,
        available,
    })
}
