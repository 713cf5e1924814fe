// SPDX-License-Identifier: GPL-2.0
//! `InetAddr::parse` (used by every configuration command) against the
//! standard library's parsers, and its RFC 5952 `Display` against std's:
//! the same texts are accepted, to the same address, and printing then
//! parsing gives the address back.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use gue_core::addr::{Family, InetAddr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = InetAddr::parse(text);
    let std: Option<InetAddr> = if text.contains(':') {
        text.parse::<Ipv6Addr>()
            .ok()
            .map(|a| InetAddr::v6(a.octets()))
    } else {
        text.parse::<Ipv4Addr>()
            .ok()
            .map(|a| InetAddr::v4(a.octets()))
    };
    assert_eq!(
        ours.ok(),
        std,
        "InetAddr::parse({text:?}) disagrees with std"
    );
    if let Ok(addr) = ours {
        let shown = addr.to_string();
        assert_eq!(
            InetAddr::parse(&shown),
            Ok(addr),
            "{shown:?} does not parse back"
        );
        let std_shown = match addr.family() {
            Family::V4 => Ipv4Addr::from(addr.v4_octets().unwrap()).to_string(),
            Family::V6 => Ipv6Addr::from(addr.v6_octets().unwrap()).to_string(),
        };
        assert_eq!(shown, std_shown, "Display differs from std for {text:?}");
        assert_eq!(
            addr.octets().len(),
            if addr.family() == Family::V4 { 4 } else { 16 }
        );
    }
});
