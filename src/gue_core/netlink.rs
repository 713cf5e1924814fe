// SPDX-License-Identifier: GPL-2.0

//! The `ipvs_gue` generic netlink protocol (`spec/ipvs_gue.yaml`): its numbers, shared by the
//! module and `ipvs-gue-ctl`, and the decoding of a request's server attributes into a
//! [`Command`], shared by every operation that takes them.

use super::addr::InetAddr;
use super::config::{ChecksumMode, Command, EditFields, FlowLabelMode, RealServerConfig};

/// The family's version.
pub const FAMILY_VERSION: u8 = 1;

/// Commands (operations and notifications).
pub mod cmd {
    /// Add a real server.
    pub const SERVER_ADD: u8 = 1;
    /// Change some settings of a real server.
    pub const SERVER_EDIT: u8 = 2;
    /// Remove a real server.
    pub const SERVER_DEL: u8 = 3;
    /// Get one real server, or dump all.
    pub const SERVER_GET: u8 = 4;
    /// The table's generation, size and capacity.
    pub const TABLE_GET: u8 = 5;
    /// Remove every real server.
    pub const TABLE_FLUSH: u8 = 6;
    /// Replace the whole table.
    pub const TABLE_REPLACE: u8 = 7;
    /// Notification: a real server was added or edited.
    pub const SERVER_CHANGE_NTF: u8 = 8;
    /// Notification: a real server was removed.
    pub const SERVER_DEL_NTF: u8 = 9;
    /// Notification: the table was flushed or replaced.
    pub const TABLE_CHANGE_NTF: u8 = 10;
}

/// Attributes of the `server` set.
pub mod server_attr {
    /// The IPVS real server address, 4 or 16 bytes.
    pub const ADDRESS: u16 = 1;
    /// Outer destination UDP port, `u16` in host byte order.
    pub const PORT: u16 = 2;
    /// Checksum mode, `u8` ([`super::csum_to_wire`]).
    pub const CSUM: u16 = 3;
    /// Outer destination address, 4 or 16 bytes.
    pub const OUTER: u16 = 4;
    /// Counters, nested `stats` set (replies only).
    pub const STATS: u16 = 5;
    /// Flow label mode of an IPv6 outer header, `u8` ([`super::flow_label_to_wire`]).
    pub const FLOWLABEL: u16 = 6;
}

/// Attributes of the `stats` set, all `uint`.
pub mod stats_attr {
    /// Packets sent.
    pub const PACKETS: u16 = 1;
    /// Bytes sent.
    pub const BYTES: u16 = 2;
    /// GSO packets among them.
    pub const GSO_PACKETS: u16 = 3;
    /// Drops: too big for the path MTU.
    pub const DROP_PMTU: u16 = 4;
    /// Drops: no route.
    pub const DROP_NO_ROUTE: u16 = 5;
    /// Drops: no headroom.
    pub const DROP_NO_HEADROOM: u16 = 6;
    /// Drops: malformed packet.
    pub const DROP_BAD_PACKET: u16 = 7;
}

/// Attributes of the `table` set.
pub mod table_attr {
    /// One real server, nested `server` set; repeated.
    pub const SERVER: u16 = 1;
    /// The table's generation, `u32`.
    pub const GENERATION: u16 = 2;
    /// Servers in the table, `u32`.
    pub const COUNT: u16 = 3;
    /// Most servers the table holds, `u32`.
    pub const CAPACITY: u16 = 4;
}

/// The wire value of a checksum mode (the spec's `csum-mode` enum).
pub const fn csum_to_wire(mode: ChecksumMode) -> u8 {
    match mode {
        ChecksumMode::None => 0,
        ChecksumMode::Udp => 1,
        ChecksumMode::RemoteOffload => 2,
    }
}

/// The checksum mode of a wire value ([`ChecksumMode::ALL`] is in wire order).
pub const fn csum_from_wire(value: u8) -> Option<ChecksumMode> {
    if value <= CSUM_WIRE_MAX {
        Some(ChecksumMode::ALL[value as usize])
    } else {
        None
    }
}

/// Largest wire value of a checksum mode (the kernel policy's maximum).
pub const CSUM_WIRE_MAX: u8 = (ChecksumMode::ALL.len() - 1) as u8;

/// The wire value of a flow label mode (the spec's `flowlabel-mode` enum).
pub const fn flow_label_to_wire(mode: FlowLabelMode) -> u8 {
    match mode {
        FlowLabelMode::Zero => 0,
        FlowLabelMode::Hash => 1,
    }
}

/// The flow label mode of a wire value ([`FlowLabelMode::ALL`] is in wire order).
pub const fn flow_label_from_wire(value: u8) -> Option<FlowLabelMode> {
    if value <= FLOWLABEL_WIRE_MAX {
        Some(FlowLabelMode::ALL[value as usize])
    } else {
        None
    }
}

/// Largest wire value of a flow label mode (the kernel policy's maximum).
pub const FLOWLABEL_WIRE_MAX: u8 = (FlowLabelMode::ALL.len() - 1) as u8;

/// The address in 4 (IPv4) or 16 (IPv6) bytes.
pub fn addr_from_wire(bytes: &[u8]) -> Option<InetAddr> {
    if let Ok(octets) = <[u8; 4]>::try_from(bytes) {
        Some(InetAddr::v4(octets))
    } else if let Ok(octets) = <[u8; 16]>::try_from(bytes) {
        Some(InetAddr::v6(octets))
    } else {
        None
    }
}

/// What a request's server attributes are for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServerOp {
    /// `server-add`, or one server of `table-replace`.
    Add,
    /// `server-edit`.
    Edit,
    /// `server-del`.
    Delete,
}

/// Why a request's server attributes do not make a command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireError {
    /// An address attribute neither 4 nor 16 bytes long.
    BadAddressLength,
    /// A payload shorter than its type (the kernel's policy refuses these first).
    Truncated,
    /// A checksum mode beyond [`CSUM_WIRE_MAX`] (the policy refuses these first).
    BadChecksumMode,
    /// A flow label mode beyond [`FLOWLABEL_WIRE_MAX`] (the policy refuses these first).
    BadFlowLabelMode,
    /// A port of 0 (the policy refuses these first).
    ZeroPort,
    /// No address attribute.
    MissingAddress,
    /// `Add` without a port.
    MissingPort,
    /// `Edit` without anything to change.
    NothingToEdit,
    /// An attribute the operation does not take (the policy refuses these first).
    Unexpected,
}

impl WireError {
    /// The message the requester sees (extack).
    pub const fn message(self) -> &'static str {
        match self {
            WireError::BadAddressLength => "address must be 4 (IPv4) or 16 (IPv6) bytes",
            WireError::Truncated => "attribute shorter than its type",
            WireError::BadChecksumMode => "unknown checksum mode (none, udp or remcsum)",
            WireError::BadFlowLabelMode => "unknown flow label mode (zero or hash)",
            WireError::ZeroPort => "port must be 1-65535",
            WireError::MissingAddress => "missing real server address",
            WireError::MissingPort => "missing port: server-add needs one",
            WireError::NothingToEdit => "nothing to edit: give port, csum, outer or flowlabel",
            WireError::Unexpected => "attribute not taken by this operation",
        }
    }
}

/// A decoding failure and, if one is at fault, the index (in the order given) of the
/// attribute, so the caller can point the requester at it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WireFault {
    /// Index of the attribute at fault.
    pub attr: Option<usize>,
    /// What is wrong.
    pub error: WireError,
}

/// Decodes one server's attributes (`(type, payload)` in message order; for a repeated
/// type the last one counts, as in the kernel's own parser) into the command `op` asks for.
pub fn decode_server<'a>(
    op: ServerOp,
    attrs: impl Iterator<Item = (u16, &'a [u8])>,
) -> Result<Command, WireFault> {
    let mut address = None;
    let mut edit = EditFields::default();
    for (index, (ty, payload)) in attrs.enumerate() {
        let fault = |error| WireFault { attr: Some(index), error };
        match ty {
            server_attr::ADDRESS => {
                address = Some(addr_from_wire(payload).ok_or(fault(WireError::BadAddressLength))?);
            }
            server_attr::PORT if op != ServerOp::Delete => {
                let bytes = payload.get(..2).ok_or(fault(WireError::Truncated))?;
                let port = u16::from_ne_bytes([bytes[0], bytes[1]]);
                if port == 0 {
                    return Err(fault(WireError::ZeroPort));
                }
                edit.port = Some(port);
            }
            server_attr::CSUM if op != ServerOp::Delete => {
                let value = *payload.first().ok_or(fault(WireError::Truncated))?;
                edit.csum = Some(csum_from_wire(value).ok_or(fault(WireError::BadChecksumMode))?);
            }
            server_attr::OUTER if op != ServerOp::Delete => {
                edit.outer = Some(addr_from_wire(payload).ok_or(fault(WireError::BadAddressLength))?);
            }
            server_attr::FLOWLABEL if op != ServerOp::Delete => {
                let value = *payload.first().ok_or(fault(WireError::Truncated))?;
                edit.flow_label = Some(flow_label_from_wire(value).ok_or(fault(WireError::BadFlowLabelMode))?);
            }
            _ => return Err(fault(WireError::Unexpected)),
        }
    }
    let missing = |error| WireFault { attr: None, error };
    let address = address.ok_or(missing(WireError::MissingAddress))?;
    match op {
        ServerOp::Add => {
            let port = edit.port.ok_or(missing(WireError::MissingPort))?;
            Ok(Command::Add(
                address,
                RealServerConfig {
                    outer: edit.outer.unwrap_or(address),
                    port,
                    csum: edit.csum.unwrap_or_default(),
                    flow_label: edit.flow_label.unwrap_or_default(),
                },
            ))
        }
        ServerOp::Edit if edit.is_empty() => Err(missing(WireError::NothingToEdit)),
        ServerOp::Edit => Ok(Command::Edit(address, edit)),
        ServerOp::Delete => Ok(Command::Delete(address)),
    }
}
