// SPDX-License-Identifier: GPL-2.0

//! The configuration model: a real server's encapsulation settings, the
//! changes a request makes to the table, and why one is refused. Requests
//! arrive over generic netlink (`netlink::decode_server` makes them).

use core::fmt;

use super::addr::InetAddr;
use super::table::MAX_REAL_SERVERS;

/// How the outer UDP checksum is handled for a real server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ChecksumMode {
    /// UDP checksum 0 (`none`): cheapest; the inner packet keeps its own
    /// checksums.
    #[default]
    None,
    /// Full outer UDP checksum (`udp`).
    Udp,
    /// GUE remote checksum offload (`remcsum`): no outer checksum, the
    /// receiver completes the inner one.
    RemoteOffload,
}

impl ChecksumMode {
    /// Every mode, in wire order (`netlink::csum_to_wire`).
    pub const ALL: [ChecksumMode; 3] = [ChecksumMode::None, ChecksumMode::Udp, ChecksumMode::RemoteOffload];

    /// The keyword used in commands and listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChecksumMode::None => "none",
            ChecksumMode::Udp => "udp",
            ChecksumMode::RemoteOffload => "remcsum",
        }
    }
}

impl fmt::Display for ChecksumMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the flow label of an IPv6 outer header is set for a real server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum FlowLabelMode {
    /// Always 0 (`zero`), as IPVS's C path sends it.
    #[default]
    Zero,
    /// Derived from the inner flow's hash (`hash`, RFC 6438), so that fabrics hashing on the
    /// IPv6 flow label instead of ports spread tunnelled flows over their paths.
    Hash,
}

impl FlowLabelMode {
    /// Every mode, in wire order (`netlink::flow_label_to_wire`).
    pub const ALL: [FlowLabelMode; 2] = [FlowLabelMode::Zero, FlowLabelMode::Hash];

    /// The keyword used in commands and listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowLabelMode::Zero => "zero",
            FlowLabelMode::Hash => "hash",
        }
    }
}

impl fmt::Display for FlowLabelMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encapsulation settings of one real server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RealServerConfig {
    /// Destination of the outer IP header.
    pub outer: InetAddr,
    /// Destination UDP port (the receiver's GUE/FOU port), never 0.
    pub port: u16,
    /// Outer checksum handling.
    pub csum: ChecksumMode,
    /// Flow label of an IPv6 outer header (an IPv4 one has none: kept, but unused, while
    /// `outer` is IPv4).
    pub flow_label: FlowLabelMode,
}

/// The settings an `edit` command changes; `None` keeps the current value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct EditFields {
    /// New destination UDP port.
    pub port: Option<u16>,
    /// New checksum mode.
    pub csum: Option<ChecksumMode>,
    /// New outer destination address.
    pub outer: Option<InetAddr>,
    /// New flow label mode.
    pub flow_label: Option<FlowLabelMode>,
}

impl From<RealServerConfig> for EditFields {
    /// The edit that sets every setting to `config`'s.
    fn from(config: RealServerConfig) -> Self {
        EditFields {
            port: Some(config.port),
            csum: Some(config.csum),
            outer: Some(config.outer),
            flow_label: Some(config.flow_label),
        }
    }
}

impl EditFields {
    /// `config` with these changes applied.
    pub fn apply_to(&self, config: &RealServerConfig) -> RealServerConfig {
        RealServerConfig {
            outer: self.outer.unwrap_or(config.outer),
            port: self.port.unwrap_or(config.port),
            csum: self.csum.unwrap_or(config.csum),
            flow_label: self.flow_label.unwrap_or(config.flow_label),
        }
    }

    /// Whether no field is set.
    pub const fn is_empty(&self) -> bool {
        self.port.is_none() && self.csum.is_none() && self.outer.is_none() && self.flow_label.is_none()
    }
}

/// One change to the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Command {
    /// A new real server.
    Add(InetAddr, RealServerConfig),
    /// Change an existing real server.
    Edit(InetAddr, EditFields),
    /// Remove a real server.
    Delete(InetAddr),
    /// Remove all real servers.
    Flush,
}

/// Why a command was refused. The `Display` text is the extack message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// `add` of an address already in the table.
    AlreadyExists(InetAddr),
    /// `edit`/`del` of an address not in the table.
    NotFound(InetAddr),
    /// `add` with no room left: [`MAX_REAL_SERVERS`] slots in use or freed by the same change.
    TableFull,
}

/// `EEXIST`, see [`ConfigError::errno`].
pub const EEXIST: i32 = 17;
/// `ENOENT`, see [`ConfigError::errno`].
pub const ENOENT: i32 = 2;
/// `ENOSPC`, see [`ConfigError::errno`].
pub const ENOSPC: i32 = 28;

impl ConfigError {
    /// The (positive) errno the request fails with.
    pub const fn errno(&self) -> i32 {
        match self {
            ConfigError::AlreadyExists(_) => EEXIST,
            ConfigError::NotFound(_) => ENOENT,
            ConfigError::TableFull => ENOSPC,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::AlreadyExists(a) => write!(f, "real server {a} already exists; use edit"),
            ConfigError::NotFound(a) => write!(f, "real server {a} does not exist"),
            ConfigError::TableFull => {
                write!(f, "table full: at most {MAX_REAL_SERVERS} real servers")
            }
        }
    }
}
