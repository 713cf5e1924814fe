// SPDX-License-Identifier: GPL-2.0
//! The checksum helpers against a textbook reference (`oracle::sum_mod`:
//! big-endian 16-bit words, an odd last byte padded, modulo 0xffff):
//! partial sums, folding, a sum split at an even offset, the UDP field value
//! (never 0), the pseudo-header sums of both families, and the outer UDP
//! checksum the module computes with local checksum offload (`encap.rs`,
//! `lco_csum`), which must verify once the inner checksum is completed.
#![no_main]

use gue_core::addr::InetAddr;
use gue_core::checksum::{
    fold, ones_complement_sum, pseudo_header_sum, pseudo_header_sum_v6, udp_checksum_from_sum,
};
use gue_core::headers::IPPROTO_UDP;
use gue_core_fuzz::oracle::{sum_mod, verifies, M};
use gue_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

fn addr(r: &mut Bytes<'_>, v6: bool) -> InetAddr {
    if v6 {
        InetAddr::v6(r.array())
    } else {
        InetAddr::v4(r.array())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Bytes::new(data);
    let sel = r.u8();
    let initial = r.u32();
    let split = usize::from(r.u16());
    let field_at = usize::from(r.u8());
    let src = addr(&mut r, sel & 1 != 0);
    let dst = addr(&mut r, sel & 2 != 0);
    // Mostly real lengths; sometimes GSO-sized ones above 64 KiB.
    let extra_len = if sel & 4 != 0 { r.u32() } else { 0 };
    let payload = r.rest();

    // Partial sums and folding.
    let sum = ones_complement_sum(payload, initial);
    assert_eq!(
        u64::from(sum) % M,
        sum_mod(payload, u64::from(initial)),
        "partial sum is off"
    );
    let folded = fold(sum);
    assert_eq!(
        u64::from(folded) % M,
        u64::from(sum) % M,
        "fold changed the sum"
    );
    assert_eq!(folded == 0, sum == 0);
    assert_eq!(u64::from(fold(initial)) % M, u64::from(initial) % M);

    // A sum split at an even offset continues where it left off.
    let k = (split % (payload.len() + 1)) & !1;
    let (head, tail) = payload.split_at(k);
    let chained = ones_complement_sum(tail, ones_complement_sum(head, initial));
    assert_eq!(
        u64::from(chained) % M,
        u64::from(sum) % M,
        "split at {k} changes the sum"
    );

    // The UDP field value: !fold, but never 0 (0 means "no checksum").
    let c = udp_checksum_from_sum(initial);
    assert_ne!(c, 0);
    assert!(c == !fold(initial) || (c == 0xffff && !fold(initial) == 0));

    // Pseudo headers: addresses, protocol and the 32-bit length as words.
    let udp_len = (payload.len() as u32).wrapping_add(extra_len);
    let pseudo = pseudo_header_sum(&src, &dst, udp_len);
    if src.family() != dst.family() {
        assert_eq!(pseudo, None, "pseudo header over mixed families");
        return;
    }
    let pseudo = pseudo.expect("same family");
    let mut words = Vec::new();
    words.extend_from_slice(src.octets());
    words.extend_from_slice(dst.octets());
    words.extend_from_slice(&udp_len.to_be_bytes());
    words.extend_from_slice(&[0, IPPROTO_UDP]);
    assert_eq!(
        u64::from(pseudo) % M,
        sum_mod(&words, 0),
        "pseudo header sum is off"
    );
    if let (Some(s), Some(d)) = (src.v4_octets(), dst.v4_octets()) {
        // RFC 768 with a 16-bit length, for lengths that fit.
        if let Ok(len16) = u16::try_from(udp_len) {
            let rfc = [&s[..], &d[..], &[0, IPPROTO_UDP], &len16.to_be_bytes()].concat();
            assert_eq!(u64::from(pseudo) % M, sum_mod(&rfc, 0));
        }
    }
    if let (Some(s), Some(d)) = (src.v6_octets(), dst.v6_octets()) {
        assert_eq!(pseudo, pseudo_header_sum_v6(&s, &d, IPPROTO_UDP, udp_len));
    }

    // Local checksum offload as `set_udp_checksum` does it: a segment of
    // outer UDP header (check 0) + GUE + inner packet whose transport
    // checksum at `field` is still partial (it holds the folded inner pseudo
    // header sum), `start` being where the inner checksum starts.
    if payload.len() < 12 || extra_len != 0 {
        return;
    }
    let mut seg = payload.to_vec();
    let len = seg.len();
    seg[6..8].fill(0);
    let start = 8 + ((split % (len - 10)) & !1); // even, in 8..=len-2
    let field = start + ((field_at % (len - start - 1)) & !1); // even, field + 2 <= len
    let inner_pseudo = u32::from_be_bytes([seg[0], seg[1], seg[2], seg[3]]);
    let partial = fold(inner_pseudo);
    seg[field..field + 2].copy_from_slice(&partial.to_be_bytes());
    let lco = ones_complement_sum(&seg[..start], u32::from(!partial));
    let outer = udp_checksum_from_sum(ones_complement_sum(&lco.to_be_bytes(), pseudo));
    seg[6..8].copy_from_slice(&outer.to_be_bytes());
    // The device completes the inner checksum over start.., seeded with the
    // partial value already in the field.
    let inner = !fold(ones_complement_sum(&seg[start..], 0));
    seg[field..field + 2].copy_from_slice(&inner.to_be_bytes());
    assert!(
        verifies(&seg[start..], u64::from(inner_pseudo)),
        "completed inner checksum does not verify"
    );
    assert!(
        verifies(&seg, u64::from(pseudo)),
        "LCO outer checksum does not verify: start {start} field {field} len {len}"
    );
});
