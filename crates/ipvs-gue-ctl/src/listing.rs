// SPDX-License-Identifier: GPL-2.0

//! Parses the listing `/proc/net/ipvs_gue` returns (written by `gue_core::listing`).

use core::fmt;

use gue_core::addr::InetAddr;
use gue_core::config::{
    parse_addr, parse_port, ChecksumMode, ConfigError, RealServerConfig, Token,
};
use gue_core::stats::StatsSnapshot;

/// Number of fields in a row.
pub const LISTING_FIELDS: usize = 11;

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

#[cfg(test)]
mod tests {
    use super::*;
    use gue_core::listing::format_listing_row;
    use gue_core::table::RealServer;
    use proptest::prelude::*;

    #[test]
    fn parse_errors() {
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
        assert_eq!(parse_listing_row("# addr outer port"), Ok(None));
    }

    proptest! {
        /// What the module writes (`gue_core::listing`) parses back to the same row.
        #[test]
        fn round_trips_the_module_format(addr in any::<[u8; 16]>(), outer in any::<[u8; 4]>(), port in 1u16..,
                                         counters in any::<[u64; 7]>(), slot in 0u8..64) {
            let [packets, bytes, gso_packets, drop_pmtu, drop_no_route, drop_no_headroom, drop_bad_packet] = counters;
            let stats = StatsSnapshot { packets, bytes, gso_packets, drop_pmtu, drop_no_route, drop_no_headroom, drop_bad_packet };
            let config = RealServerConfig { outer: InetAddr::v4(outer), port, csum: ChecksumMode::Udp };
            let mut line = String::new();
            format_listing_row(&mut line, &InetAddr::v6(addr), &RealServer { config, stats_slot: slot }, &stats).unwrap();
            prop_assert_eq!(parse_listing_row(&line), Ok(Some(ListingRow { addr: InetAddr::v6(addr), config, stats })));
        }
    }
}
