// SPDX-License-Identifier: GPL-2.0
//! `InetAddr`'s `Display` (the listing's addresses, RFC 5952) against the
//! standard library's, for any IPv4 or IPv6 address: the first byte picks
//! the family (odd: IPv6), the next 4 or 16 bytes are the address.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use gue_core::addr::InetAddr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&family, rest)) = data.split_first() else {
        return;
    };
    let (ours, expected) = if family & 1 == 1 {
        let Some(bytes) = rest.get(..16) else { return };
        let octets: [u8; 16] = bytes.try_into().unwrap();
        (InetAddr::v6(octets), Ipv6Addr::from(octets).to_string())
    } else {
        let Some(bytes) = rest.get(..4) else { return };
        let octets: [u8; 4] = bytes.try_into().unwrap();
        (InetAddr::v4(octets), Ipv4Addr::from(octets).to_string())
    };
    assert_eq!(ours.to_string(), expected, "Display differs from std for {ours:?}");
});
