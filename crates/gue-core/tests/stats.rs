//! Counters and the /proc listing format.

use gue_core::addr::InetAddr;
use gue_core::config::*;
use gue_core::listing::*;
use gue_core::stats::*;
use gue_core::table::RealServer;
use proptest::prelude::*;

#[test]
fn counters_record_reset_snapshot() {
    static STATS: ServerStats = ServerStats::new();
    STATS.record_tx(1500, false);
    STATS.record_tx(64000, true);
    STATS.record_drop(DropReason::Pmtu);
    STATS.record_drop(DropReason::BadPacket);
    STATS.record_drop(DropReason::BadPacket);
    let s = STATS.snapshot();
    assert_eq!((s.packets, s.bytes, s.gso_packets), (2, 65500, 1));
    assert_eq!(s.drops(DropReason::Pmtu), 1);
    assert_eq!(s.drops(DropReason::NoRoute), 0);
    assert_eq!(s.drops(DropReason::BadPacket), 2);
    STATS.reset();
    assert_eq!(STATS.snapshot(), StatsSnapshot::default());
}

#[test]
fn drop_reason_names_are_listing_columns() {
    for r in DropReason::ALL {
        assert!(
            LISTING_HEADER.split(' ').any(|c| c == r.as_str()),
            "{}",
            r.as_str()
        );
    }
}

#[test]
fn listing_format() {
    let mut out = String::new();
    format_listing_header(&mut out).unwrap();
    let server = RealServer {
        config: RealServerConfig {
            outer: InetAddr::v4([10, 0, 1, 2]),
            port: 5501,
            csum: ChecksumMode::None,
        },
        stats_slot: 3,
    };
    let stats = StatsSnapshot {
        packets: 12,
        bytes: 34567,
        gso_packets: 3,
        ..Default::default()
    };
    format_listing_row(&mut out, &InetAddr::v4([10, 0, 1, 2]), &server, &stats).unwrap();
    assert_eq!(
        out,
        "# addr outer port csum packets bytes gso_packets drop_pmtu drop_no_route drop_no_headroom drop_bad_packet\n\
         10.0.1.2 10.0.1.2 5501 none 12 34567 3 0 0 0 0\n"
    );
    let rows: Vec<_> = out
        .lines()
        .filter_map(|l| parse_listing_row(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![ListingRow {
            addr: InetAddr::v4([10, 0, 1, 2]),
            config: server.config,
            stats
        }]
    );
}

#[test]
fn listing_parse_errors() {
    assert_eq!(
        parse_listing_row("10.0.1.2 10.0.1.2 5501"),
        Err(ListingError::MissingFields)
    );
    assert!(matches!(
        parse_listing_row("10.0.1.2 10.0.1.2 5501 none 1 2 3 4 5 6 7 8"),
        Err(ListingError::ExtraField(_))
    ));
    assert!(matches!(
        parse_listing_row("10.0.1.2 10.0.1.2 5501 none 1 2 x 4 5 6 7"),
        Err(ListingError::BadCounter(_))
    ));
    assert!(matches!(
        parse_listing_row("10.0.1.2 10.0.1.2 5501 md5 1 2 3 4 5 6 7"),
        Err(ListingError::Field(_))
    ));
}

proptest! {
    #[test]
    fn listing_round_trips(addr in any::<[u8; 16]>(), outer in any::<[u8; 4]>(), port in 1u16..,
                           counters in any::<[u64; 7]>(), slot in 0u8..64) {
        let [packets, bytes, gso_packets, drop_pmtu, drop_no_route, drop_no_headroom, drop_bad_packet] = counters;
        let stats = StatsSnapshot { packets, bytes, gso_packets, drop_pmtu, drop_no_route, drop_no_headroom, drop_bad_packet };
        let config = RealServerConfig { outer: InetAddr::v4(outer), port, csum: ChecksumMode::Udp };
        let mut line = String::new();
        format_listing_row(&mut line, &InetAddr::v6(addr), &RealServer { config, stats_slot: slot }, &stats).unwrap();
        prop_assert_eq!(parse_listing_row(&line), Ok(Some(ListingRow { addr: InetAddr::v6(addr), config, stats })));
    }
}
