// SPDX-License-Identifier: GPL-2.0

//! The text a read of `/proc/net/ipvs_gue` returns: one header line, then one
//! whitespace-separated row per server, for shell tools (`awk`).
//!
//! ```text
//! # addr outer port csum packets bytes gso_packets drop_pmtu drop_no_route drop_no_headroom drop_bad_packet flowlabel
//! 10.0.1.2 10.0.1.2 5501 none 12 34567 3 0 0 0 0 zero
//! ```
//!
//! Columns are only ever added at the end, so scripts reading fields by number keep working.

use core::fmt::{self, Write};

use super::addr::InetAddr;
use super::stats::StatsSnapshot;
use super::table::RealServer;

/// The header line, without its newline.
pub const LISTING_HEADER: &str = "# addr outer port csum packets bytes gso_packets drop_pmtu \
                                  drop_no_route drop_no_headroom drop_bad_packet flowlabel";

/// Writes [`LISTING_HEADER`] and a newline.
pub fn format_listing_header(w: &mut impl Write) -> fmt::Result {
    w.write_str(LISTING_HEADER)?;
    w.write_char('\n')
}

/// Writes the row of the server at `addr`, newline included.
pub fn format_listing_row(
    w: &mut impl Write,
    addr: &InetAddr,
    server: &RealServer,
    stats: &StatsSnapshot,
) -> fmt::Result {
    let c = &server.config;
    writeln!(
        w,
        "{addr} {} {} {} {} {} {} {} {} {} {} {}",
        c.outer,
        c.port,
        c.csum,
        stats.packets,
        stats.bytes,
        stats.gso_packets,
        stats.drop_pmtu,
        stats.drop_no_route,
        stats.drop_no_headroom,
        stats.drop_bad_packet,
        c.flow_label
    )
}
