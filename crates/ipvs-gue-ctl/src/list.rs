// SPDX-License-Identifier: GPL-2.0

//! The listings of the servers a dump returned: the table (`ipvsadm -Ln [--stats]`
//! style), `-S`'s restore lines and `--json`.

use std::fmt::Write;

use serde::Serialize;

use ipvs_gue_ctl::wire::Server;
use gue_core::stats::StatsSnapshot;

/// A counter the way `ipvsadm` prints it: exact below 100 million, then
/// scaled to K/M/G/T; 9 columns wide either way.
fn large_num(n: u64, exact: bool) -> String {
    if exact || n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

/// Renders the table.
pub fn render(rows: &[Server], stats: bool, exact: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "IPVS GUE real servers ({})", rows.len());
    let addrs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.addr.to_string(), r.config.outer.to_string()))
        .collect();
    // "  -> " prefix on rows, as ipvsadm does for real servers.
    let aw = addrs
        .iter()
        .map(|(a, _)| a.len())
        .max()
        .unwrap_or(0)
        .max("RealServer".len() - 5)
        + 5;
    let ow = addrs
        .iter()
        .map(|(_, o)| o.len())
        .max()
        .unwrap_or(0)
        .max("Outer".len());
    let _ = write!(
        out,
        "{:<aw$} {:<ow$} {:>7} {:<7} {:<9}",
        "RealServer", "Outer", "GuePort", "Csum", "FlowLabel"
    );
    if stats {
        for h in [
            "Pkts",
            "Bytes",
            "GsoPkts",
            "DropPmtu",
            "DropRoute",
            "DropHdrm",
            "DropBad",
        ] {
            let _ = write!(out, " {h:>9}");
        }
    }
    end_line(&mut out);
    for (row, (addr, outer)) in rows.iter().zip(&addrs) {
        let c = &row.config;
        let _ = write!(
            out,
            "{:<aw$} {outer:<ow$} {:>7} {:<7} {:<9}",
            format!("  -> {addr}"),
            c.port,
            c.csum.as_str(),
            c.flow_label.as_str()
        );
        if stats {
            let s = &row.stats;
            for n in [
                s.packets,
                s.bytes,
                s.gso_packets,
                s.drop_pmtu,
                s.drop_no_route,
                s.drop_no_headroom,
                s.drop_bad_packet,
            ] {
                let _ = write!(out, " {}", large_num(n, exact));
            }
        }
        end_line(&mut out);
    }
    out
}

/// Ends a line, dropping the padding of a last column that is text.
fn end_line(out: &mut String) {
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
    out.push('\n');
}

/// The servers as `-R` input, one `-a` line each, in the order given (the dump's).
pub fn save(rows: &[Server]) -> String {
    let mut out = String::new();
    for Server { addr, config, .. } in rows {
        let _ = writeln!(
            out,
            "-a -r {addr} --gue-port {} --csum {} --outer {} --flowlabel {}",
            config.port, config.csum, config.outer, config.flow_label
        );
    }
    out
}

/// One server in `--json`.
#[derive(Serialize)]
struct JsonServer {
    address: String,
    outer: String,
    port: u16,
    csum: &'static str,
    flowlabel: &'static str,
    stats: JsonStats,
}

/// The counters in `--json`, named as in the spec (underscores for its dashes).
#[derive(Serialize)]
struct JsonStats {
    packets: u64,
    bytes: u64,
    gso_packets: u64,
    drop_pmtu: u64,
    drop_no_route: u64,
    drop_no_headroom: u64,
    drop_bad_packet: u64,
}

impl From<&StatsSnapshot> for JsonStats {
    fn from(s: &StatsSnapshot) -> Self {
        JsonStats {
            packets: s.packets,
            bytes: s.bytes,
            gso_packets: s.gso_packets,
            drop_pmtu: s.drop_pmtu,
            drop_no_route: s.drop_no_route,
            drop_no_headroom: s.drop_no_headroom,
            drop_bad_packet: s.drop_bad_packet,
        }
    }
}

/// The servers as a JSON array, one line.
pub fn json(rows: &[Server]) -> serde_json::Result<String> {
    let servers: Vec<JsonServer> = rows
        .iter()
        .map(|row| JsonServer {
            address: row.addr.to_string(),
            outer: row.config.outer.to_string(),
            port: row.config.port,
            csum: row.config.csum.as_str(),
            flowlabel: row.config.flow_label.as_str(),
            stats: JsonStats::from(&row.stats),
        })
        .collect();
    let mut text = serde_json::to_string(&servers)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gue_core::addr::InetAddr;
    use gue_core::config::{ChecksumMode, FlowLabelMode, RealServerConfig};

    fn sample() -> Vec<Server> {
        let v4 = InetAddr::v4([10, 0, 1, 2]);
        vec![
            Server {
                addr: v4,
                config: RealServerConfig {
                    outer: v4,
                    port: 5501,
                    csum: ChecksumMode::None,
                    flow_label: FlowLabelMode::Zero,
                },
                stats: StatsSnapshot {
                    packets: 12,
                    bytes: 34567,
                    gso_packets: 3,
                    ..StatsSnapshot::default()
                },
            },
            Server {
                addr: InetAddr::parse("2001:db8::10").unwrap(),
                config: RealServerConfig {
                    outer: InetAddr::v4([192, 0, 2, 10]),
                    port: 6080,
                    csum: ChecksumMode::RemoteOffload,
                    flow_label: FlowLabelMode::Hash,
                },
                stats: StatsSnapshot {
                    packets: 123_456_789,
                    bytes: 98_765_432_100,
                    gso_packets: 5,
                    drop_pmtu: 1,
                    drop_no_route: 2,
                    drop_no_headroom: 3,
                    drop_bad_packet: 4,
                },
            },
        ]
    }

    #[test]
    fn table_plain_and_with_stats() {
        assert_eq!(
            render(&sample(), false, false),
            "\
IPVS GUE real servers (2)
RealServer        Outer      GuePort Csum    FlowLabel
  -> 10.0.1.2     10.0.1.2      5501 none    zero
  -> 2001:db8::10 192.0.2.10    6080 remcsum hash
"
        );
        let text = render(&sample(), true, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "RealServer        Outer      GuePort Csum    FlowLabel      Pkts     Bytes   GsoPkts  DropPmtu DropRoute  DropHdrm   DropBad"
        );
        assert_eq!(
            lines[3],
            "  -> 2001:db8::10 192.0.2.10    6080 remcsum hash        123456K    98765M         5         1         2         3         4"
        );
        assert!(render(&sample(), true, true).contains(" 123456789 98765432100 "));
        assert_eq!(
            render(&[], false, false),
            "IPVS GUE real servers (0)\nRealServer Outer GuePort Csum    FlowLabel\n"
        );
    }

    #[test]
    fn save_lines() {
        assert_eq!(
            save(&sample()),
            "\
-a -r 10.0.1.2 --gue-port 5501 --csum none --outer 10.0.1.2 --flowlabel zero
-a -r 2001:db8::10 --gue-port 6080 --csum remcsum --outer 192.0.2.10 --flowlabel hash
"
        );
    }

    #[test]
    fn json_array_with_stats() {
        let text = json(&sample()).unwrap();
        assert!(text.ends_with("]\n"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value[1],
            serde_json::json!({
                "address": "2001:db8::10", "outer": "192.0.2.10", "port": 6080, "csum": "remcsum",
                "flowlabel": "hash",
                "stats": {
                    "packets": 123_456_789, "bytes": 98_765_432_100u64, "gso_packets": 5, "drop_pmtu": 1,
                    "drop_no_route": 2, "drop_no_headroom": 3, "drop_bad_packet": 4
                }
            })
        );
        assert_eq!(value[0]["csum"], "none");
        assert_eq!(json(&[]).unwrap(), "[]\n");
    }

    #[test]
    fn large_numbers_like_ipvsadm() {
        assert_eq!(large_num(12, false), "       12");
        assert_eq!(large_num(99_999_999, false), " 99999999");
        assert_eq!(large_num(123_456_789, false), "  123456K");
        assert_eq!(large_num(12_345_678_901, false), "   12345M");
        assert_eq!(large_num(123_456_789_012, false), "     123G");
        assert_eq!(large_num(123_456_789_012_345, false), "     123T");
        assert_eq!(large_num(123_456_789_012, true), "123456789012");
    }
}
