//! `InetAddr` formatting (the listing's) and hashing, checked against `std::net`.

use std::net::{Ipv4Addr, Ipv6Addr};

use gue_core::addr::{Family, InetAddr};
use proptest::prelude::*;

fn parse(s: &str) -> Option<InetAddr> {
    InetAddr::parse(s).ok()
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
}
