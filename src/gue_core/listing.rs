// SPDX-License-Identifier: GPL-2.0

//! The text a read of `/proc/net/ipvs_gue` returns, and its parser (for the
//! CLI): one header line, then one whitespace-separated row per server.
//!
//! ```text
//! # addr outer port csum packets bytes gso_packets drop_pmtu drop_no_route drop_no_headroom drop_bad_packet
//! 10.0.1.2 10.0.1.2 5501 none 12 34567 3 0 0 0 0
//! ```

use core::fmt::{self, Write};

use super::addr::InetAddr;
use super::config::{parse_addr, parse_port, ChecksumMode, ConfigError, RealServerConfig, Token};
use super::stats::StatsSnapshot;
use super::table::RealServer;

/// The header line, without its newline.
pub const LISTING_HEADER: &str = "# addr outer port csum packets bytes gso_packets drop_pmtu \
                                  drop_no_route drop_no_headroom drop_bad_packet";

/// Number of fields in a row.
pub const LISTING_FIELDS: usize = 11;

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
        "{addr} {} {} {} {} {} {} {} {} {} {}",
        c.outer,
        c.port,
        c.csum,
        stats.packets,
        stats.bytes,
        stats.gso_packets,
        stats.drop_pmtu,
        stats.drop_no_route,
        stats.drop_no_headroom,
        stats.drop_bad_packet
    )
}

/// One parsed listing row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ListingRow {
    /// Real server (IPVS destination) address.
    pub addr: InetAddr,
    /// Its settings.
    pub config: RealServerConfig,
    /// Its counters.
    pub stats: StatsSnapshot,
}

/// Why a listing line could not be parsed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListingError {
    /// Fewer than [`LISTING_FIELDS`] fields.
    MissingFields,
    /// More than [`LISTING_FIELDS`] fields.
    ExtraField(Token),
    /// A counter that is not a decimal `u64`.
    BadCounter(Token),
    /// A bad address, port or checksum mode.
    Field(ConfigError),
}

impl fmt::Display for ListingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListingError::MissingFields => write!(f, "row has fewer than {LISTING_FIELDS} fields"),
            ListingError::ExtraField(t) => write!(f, "unexpected field '{t}'"),
            ListingError::BadCounter(t) => write!(f, "bad counter '{t}'"),
            ListingError::Field(e) => e.fmt(f),
        }
    }
}

impl From<ConfigError> for ListingError {
    fn from(e: ConfigError) -> Self {
        ListingError::Field(e)
    }
}

/// Parses one listing line; `Ok(None)` for the header, comments and blank
/// lines.
pub fn parse_listing_row(line: &str) -> Result<Option<ListingRow>, ListingError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split_ascii_whitespace();
    let mut next = || fields.next().ok_or(ListingError::MissingFields);
    let addr = parse_addr(next()?)?;
    let outer = parse_addr(next()?)?;
    let port = parse_port(next()?)?;
    let csum = ChecksumMode::parse(next()?)?;
    let mut counters = [0u64; 7];
    for c in counters.iter_mut() {
        let text = next()?;
        *c = text
            .parse()
            .map_err(|_| ListingError::BadCounter(Token::new(text)))?;
    }
    if let Some(extra) = fields.next() {
        return Err(ListingError::ExtraField(Token::new(extra)));
    }
    let [packets, bytes, gso_packets, drop_pmtu, drop_no_route, drop_no_headroom, drop_bad_packet] =
        counters;
    Ok(Some(ListingRow {
        addr,
        config: RealServerConfig { outer, port, csum },
        stats: StatsSnapshot {
            packets,
            bytes,
            gso_packets,
            drop_pmtu,
            drop_no_route,
            drop_no_headroom,
            drop_bad_packet,
        },
    }))
}
