// SPDX-License-Identifier: GPL-2.0
//! The GUE header encoder against an independent model of the Linux
//! receiver (`oracle::gue_receive`, from `fou_core.c`). Encoding an arbitrary
//! header into an arbitrary buffer either writes exactly `len()` bytes that
//! the receiver decodes to the same header, or fails with the right error and
//! writes nothing. Conversely, every receiver-accepted header without padding
//! is produced byte for byte by encoding what it says (decode/encode round
//! trip).
#![no_main]

use gue_core::error::EncodeError;
use gue_core::gue::{GueHeader, RemoteChecksum};
use gue_core_fuzz::oracle::{gue_receive, Received};
use gue_core_fuzz::Bytes;
use libfuzzer_sys::fuzz_target;

/// What the receiver must see for `h`.
fn expected(h: &GueHeader) -> Received {
    Received {
        proto: h.proto,
        remcsum: h.remcsum.map(|rc| (rc.start, rc.start + rc.offset)),
        inner_offset: h.len(),
        padding: 0,
    }
}

/// Arbitrary bytes: whatever the receiver accepts re-encodes to itself.
fn decode_side(buf: &[u8]) {
    let Some(rx) = gue_receive(buf) else { return };
    if rx.padding != 0 {
        return; // the encoder never pads
    }
    let header = match rx.remcsum {
        None => GueHeader {
            proto: rx.proto,
            remcsum: None,
        },
        // The encoder sends start + offset; an "end" below start cannot be
        // expressed as an offset.
        Some((start, field)) => match field.checked_sub(start) {
            Some(offset) => GueHeader {
                proto: rx.proto,
                remcsum: Some(RemoteChecksum { start, offset }),
            },
            None => return,
        },
    };
    let bare_priv = buf[2..4] == [0, 1] && rx.remcsum.is_none();
    let mut out = [0xa5u8; 16];
    let n = header.encode(&mut out).expect("a received header encodes");
    assert_eq!(n, header.len());
    if bare_priv {
        // A private-flags word announcing nothing: the receiver skips it; the
        // encoder drops it (4 bytes instead of 8).
        assert_eq!(rx.inner_offset, n + 4);
        assert_eq!(gue_receive(&out[..n]), Some(expected(&header)));
    } else {
        assert_eq!(rx.inner_offset, n);
        assert_eq!(&out[..n], &buf[..n], "{header:?} re-encodes to other bytes");
    }
}

/// Arbitrary header and buffer: the encoder's output as the receiver sees it.
fn encode_side(r: &mut Bytes<'_>) {
    let sel = r.u8();
    let h = GueHeader {
        proto: r.u8(),
        remcsum: (sel & 1 != 0).then(|| RemoteChecksum {
            start: r.u16(),
            offset: r.u16(),
        }),
    };
    let fill = r.u8();
    let mut out = vec![fill; usize::from(sel >> 1) % 24];
    let cap = out.len();
    let overflow = h
        .remcsum
        .is_some_and(|rc| rc.start.checked_add(rc.offset).is_none());
    match h.encode(&mut out) {
        Ok(n) => {
            assert!(!overflow);
            assert_eq!(n, h.len());
            assert!(n == 4 || n == 12);
            assert!(
                out[n..].iter().all(|&b| b == fill),
                "encode wrote past its header"
            );
            assert_eq!(
                gue_receive(&out),
                Some(expected(&h)),
                "receiver decodes {h:?} differently"
            );
        }
        Err(e) => {
            assert!(out.iter().all(|&b| b == fill), "failed encode wrote: {e:?}");
            match e {
                EncodeError::FieldOverflow(_) => assert!(overflow),
                EncodeError::BufferTooShort { needed, available } => {
                    assert!(!overflow);
                    assert_eq!((needed, available), (h.len(), cap));
                    assert!(cap < needed);
                }
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    decode_side(data);
    encode_side(&mut Bytes::new(data));
});
