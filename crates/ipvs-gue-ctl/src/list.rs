// SPDX-License-Identifier: GPL-2.0

//! Human-readable listing, in the spirit of `ipvsadm -Ln [--stats]`.

use std::fmt::Write;

use crate::listing::{parse_listing_row, ListingRow};
use gue_core::table::MAX_REAL_SERVERS;

/// Parses the module's listing text. Malformed lines are returned as
/// warnings rather than aborting the whole listing.
pub fn parse_listing(text: &str) -> (Vec<ListingRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match parse_listing_row(line) {
            Ok(Some(row)) => rows.push(row),
            Ok(None) => {}
            Err(e) => warnings.push(format!("line {}: {e}: {line:?}", n + 1)),
        }
    }
    (rows, warnings)
}

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
pub fn render(rows: &[ListingRow], stats: bool, exact: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "IPVS GUE real servers ({} of {MAX_REAL_SERVERS})",
        rows.len()
    );
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
        "{:<aw$} {:<ow$} {:>7} {:<7}",
        "RealServer", "Outer", "GuePort", "Csum"
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
            "{:<aw$} {outer:<ow$} {:>7} {:<7}",
            format!("  -> {addr}"),
            c.port,
            c.csum.as_str()
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

#[cfg(test)]
mod tests {
    use super::*;

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
