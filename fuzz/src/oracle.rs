// SPDX-License-Identifier: GPL-2.0

//! Independent reference implementations the targets compare gue_core with:
//! textbook Internet checksum sums (RFC 1071, 768, 8200) and the GUE variant 0
//! receiver (`net/ipv4/fou_core.c`: `gue_udp_recv`, `validate_gue_flags`,
//! `gue_remcsum`).

/// Ones' complement arithmetic is arithmetic modulo 0xffff.
pub const M: u64 = 0xffff;

/// The sum of `data` as big-endian 16-bit words (an odd last byte padded
/// with a zero) plus `initial`, modulo 0xffff.
pub fn sum_mod(data: &[u8], initial: u64) -> u64 {
    let mut sum = initial % M;
    for w in data.chunks(2) {
        let word = u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0));
        sum = (sum + word) % M;
    }
    sum
}

/// Whether `data` (a header holding its own checksum) verifies.
pub fn verifies(data: &[u8], pseudo: u64) -> bool {
    sum_mod(data, pseudo) == 0
}

/// What the Linux GUE receiver makes of a UDP payload.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Received {
    /// The payload protocol (`guehdr->proto_ctype`).
    pub proto: u8,
    /// Remote checksum offload: (start, position of the checksum field),
    /// both from the start of the inner packet.
    pub remcsum: Option<(u16, u16)>,
    /// Where the inner packet starts (4 + hlen * 4).
    pub inner_offset: usize,
    /// Option bytes beyond the ones the flags announce (the kernel skips
    /// them; gue_core's encoder never writes any).
    pub padding: usize,
}

/// `gue_udp_recv` for a variant 0 data message; `None` where the kernel
/// drops the packet (or, for variant 1 and control messages, does something
/// other than decapsulate a GUE data message).
pub fn gue_receive(buf: &[u8]) -> Option<Received> {
    let fixed = buf.get(..4)?;
    if fixed[0] >> 6 != 0 || fixed[0] & 0x20 != 0 {
        return None;
    }
    let optlen = usize::from(fixed[0] & 0x1f) * 4;
    let options = buf.get(4..4 + optlen)?;
    let flags = u16::from_be_bytes([fixed[2], fixed[3]]);
    // validate_gue_flags: only GUE_FLAG_PRIV is known.
    if flags & !0x0001 != 0 {
        return None;
    }
    let mut used = 0;
    let mut remcsum = None;
    if flags & 0x0001 != 0 {
        let p = options.get(..4)?;
        let pflags = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        if pflags & !0x8000_0000 != 0 {
            return None;
        }
        used += 4;
        if pflags & 0x8000_0000 != 0 {
            let pd = options.get(4..8)?;
            remcsum = Some((
                u16::from_be_bytes([pd[0], pd[1]]),
                u16::from_be_bytes([pd[2], pd[3]]),
            ));
            used += 4;
        }
    }
    Some(Received {
        proto: fixed[1],
        remcsum,
        inner_offset: 4 + optlen,
        padding: optlen - used,
    })
}
