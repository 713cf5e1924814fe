//! Counters and the /proc listing format.

use gue_core::addr::InetAddr;
use gue_core::config::*;
use gue_core::listing::*;
use gue_core::stats::*;
use gue_core::table::RealServer;

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
    assert_eq!((s.drop_pmtu, s.drop_no_route, s.drop_bad_packet), (1, 0, 2));
    STATS.reset();
    assert_eq!(STATS.snapshot(), StatsSnapshot::default());
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
            flow_label: FlowLabelMode::Hash,
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
        "# addr outer port csum packets bytes gso_packets drop_pmtu drop_no_route drop_no_headroom drop_bad_packet flowlabel\n\
         10.0.1.2 10.0.1.2 5501 none 12 34567 3 0 0 0 0 hash\n"
    );
}
