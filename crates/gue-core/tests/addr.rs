//! `InetAddr` parsing and formatting, checked against `std::net`.

use std::net::{Ipv4Addr, Ipv6Addr};

use gue_core::addr::{Family, InetAddr};
use proptest::prelude::*;

fn parse(s: &str) -> Option<InetAddr> {
    InetAddr::parse(s).ok()
}

#[test]
fn ipv4_accepts_strict_dotted_quads() {
    assert_eq!(parse("10.0.1.2"), Some(InetAddr::v4([10, 0, 1, 2])));
    assert_eq!(parse("0.0.0.0"), Some(InetAddr::v4([0; 4])));
    assert_eq!(parse("255.255.255.255"), Some(InetAddr::v4([255; 4])));
    let a = parse("192.168.0.1").unwrap();
    assert_eq!(a.family(), Family::V4);
    assert_eq!(a.octets(), &[192, 168, 0, 1]);
    assert_eq!(a.v4_octets(), Some([192, 168, 0, 1]));
    assert_eq!(a.v6_octets(), None);
}

#[test]
fn ipv4_rejects_sloppy_text() {
    for bad in [
        "",
        "10.0.1",
        "10.0.1.2.3",
        "10.0.1.300",
        "10.0.01.2",
        "010.0.1.2",
        "00.0.0.0",
        "1..2.3",
        ".1.2.3",
        "1.2.3.",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.-4",
        "1.2.3.+4",
        "1.2.3.0x4",
        "1.2.3.a",
        "1000.2.3.4",
        "1.2.3.4/24",
        "1.2.3.256",
    ] {
        assert_eq!(parse(bad), None, "{bad:?} should be rejected");
    }
}

#[test]
fn ipv6_known_forms() {
    let cases: &[(&str, &str)] = &[
        ("::", "::"),
        ("::1", "::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), // first of equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), // single zero group kept
        ("1::", "1::"),
        ("fe80::1:2:3:4", "fe80::1:2:3:4"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::FFFF:0102:0304", "::ffff:1.2.3.4"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ];
    for (input, canonical) in cases {
        let a = parse(input).unwrap_or_else(|| panic!("{input} should parse"));
        assert_eq!(a.family(), Family::V6);
        assert_eq!(a.to_string(), *canonical, "display of {input}");
        assert_eq!(
            a.octets(),
            &input.parse::<Ipv6Addr>().unwrap().octets(),
            "{input}"
        );
    }
}

#[test]
fn ipv6_rejects_malformed_text() {
    for bad in [
        ":",
        ":::",
        "1:2",
        "1::2::3",
        ":1::2",
        "1::2:",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7::8",
        "::1:2:3:4:5:6:7:8",
        "12345::",
        "g::",
        "::1.2.3",
        "::1.2.3.4:1",
        "1.2.3.4::",
        "::01.2.3.4",
        "fe80::1%eth0",
        "[::1]",
        ":: 1",
        "1:2:3:4:5:6:7:1.2.3.4",
    ] {
        assert_eq!(parse(bad), None, "{bad:?} should be rejected");
    }
}

#[test]
fn v4_and_v6_are_distinct() {
    let v4 = InetAddr::v4([1, 2, 3, 4]);
    let mapped = parse("::ffff:1.2.3.4").unwrap();
    assert_ne!(v4, mapped);
    assert_ne!(InetAddr::v4([0; 4]), InetAddr::v6([0; 16]));
    assert_ne!(
        InetAddr::v4([0; 4]).hash32(0),
        InetAddr::v6([0; 16]).hash32(0)
    );
}

#[test]
fn hash_spreads_neighbouring_addresses() {
    // 64 consecutive addresses must not crowd into a few of 128 buckets.
    let mut buckets = [0u32; 128];
    for i in 0..64u8 {
        buckets[(InetAddr::v4([10, 0, 1, i]).hash32(0) & 127) as usize] += 1;
    }
    assert!(buckets.iter().all(|&n| n <= 4), "{buckets:?}");
}

proptest! {
    #[test]
    fn v6_display_matches_std(bytes in any::<[u8; 16]>(), zeros in any::<u8>()) {
        // Zero out a random subset of groups so `::` compression is exercised.
        let mut b = bytes;
        for g in 0..8 {
            if zeros & (1 << g) != 0 {
                b[2 * g] = 0;
                b[2 * g + 1] = 0;
            }
        }
        let a = InetAddr::v6(b);
        let std_text = Ipv6Addr::from(b).to_string();
        prop_assert_eq!(a.to_string(), std_text.clone());
        prop_assert_eq!(InetAddr::parse(&std_text), Ok(a));
    }

    #[test]
    fn v4_round_trips(b in any::<[u8; 4]>()) {
        let a = InetAddr::v4(b);
        prop_assert_eq!(a.to_string(), Ipv4Addr::from(b).to_string());
        prop_assert_eq!(InetAddr::parse(&a.to_string()), Ok(a));
    }

    #[test]
    fn parse_agrees_with_std(s in "[0-9a-fA-F:.]{0,45}") {
        let ours = InetAddr::parse(&s).ok();
        let std_v4 = s.parse::<Ipv4Addr>().ok().map(|a| InetAddr::v4(a.octets()));
        let std_v6 = s.parse::<Ipv6Addr>().ok().map(|a| InetAddr::v6(a.octets()));
        prop_assert_eq!(ours, std_v4.or(std_v6), "input {:?}", s);
    }

    #[test]
    fn parse_never_panics(s in "\\PC{0,60}") {
        let _ = InetAddr::parse(&s);
    }
}

/// Renders eight groups as IPv6 text with optional `::` over
/// `groups[start..start + len]`, zero padding and an IPv4 tail, producing
/// valid and (when `len == 1` compression hides nothing odd) all accepted
/// spellings.
fn render(
    groups: [u16; 8],
    start: usize,
    len: usize,
    pad: bool,
    upper: bool,
    v4_tail: bool,
) -> String {
    let fmt_group = |g: u16| match (pad, upper) {
        (true, true) => format!("{g:04X}"),
        (true, false) => format!("{g:04x}"),
        (false, true) => format!("{g:X}"),
        (false, false) => format!("{g:x}"),
    };
    let mut words: Vec<String> = groups.iter().map(|&g| fmt_group(g)).collect();
    if v4_tail {
        let [a, b] = groups[6].to_be_bytes();
        let [c, d] = groups[7].to_be_bytes();
        words.truncate(6);
        words.push(format!("{a}.{b}.{c}.{d}"));
    }
    let n = words.len();
    if len == 0 || start >= n {
        return words.join(":");
    }
    let end = (start + len).min(n);
    format!("{}::{}", words[..start].join(":"), words[end..].join(":"))
}

proptest! {
    #[test]
    fn structured_v6_text_agrees_with_std(
        groups in any::<[u16; 8]>(),
        start in 0usize..8,
        len in 0usize..9,
        pad: bool,
        upper: bool,
        v4_tail: bool,
    ) {
        let text = render(groups, start, len, pad, upper, v4_tail);
        let std = text.parse::<Ipv6Addr>().ok().map(|a| InetAddr::v6(a.octets()));
        prop_assert_eq!(InetAddr::parse(&text).ok(), std, "input {}", text);
    }
}
