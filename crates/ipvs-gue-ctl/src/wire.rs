// SPDX-License-Identifier: GPL-2.0

//! The `ipvs_gue` family's messages (`spec/ipvs_gue.yaml`) as bytes: requests encoded from the
//! `gue_core` command they carry, replies decoded into rows. No socket here, so that both
//! directions can be checked against the module's own decoder without a kernel.

use core::fmt;

use netlink_packet_core::{
    DecodeError, Emitable, Nla, NlasIterator, ParseableParametrized, NLA_F_NESTED, NLA_HEADER_SIZE,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use gue_core::addr::InetAddr;
use gue_core::config::{ChecksumMode, Command, FlowLabelMode, RealServerConfig};
use gue_core::netlink::{
    addr_from_wire, cmd, csum_from_wire, csum_to_wire, flow_label_from_wire, flow_label_to_wire,
    server_attr, stats_attr, table_attr, FAMILY_VERSION,
};
use gue_core::stats::StatsSnapshot;

/// The generic netlink family's name.
pub const FAMILY_NAME: &str = "ipvs_gue";

/// One `ipvs_gue` message: its command and its attributes, kept encoded (requests are
/// encoded here, replies decoded by the functions below).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GueMessage {
    /// The command (`gue_core::netlink::cmd`).
    pub cmd: u8,
    /// The attributes, back to back.
    pub attrs: Vec<u8>,
}

impl GenlFamily for GueMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for GueMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(&self.attrs);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for GueMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(GueMessage {
            cmd: header.cmd,
            attrs: buf.to_vec(),
        })
    }
}

/// The spec's name of an operation, for messages.
pub fn op_name(command: u8) -> &'static str {
    match command {
        cmd::SERVER_ADD => "server-add",
        cmd::SERVER_EDIT => "server-edit",
        cmd::SERVER_DEL => "server-del",
        cmd::SERVER_GET => "server-get",
        cmd::TABLE_GET => "table-get",
        cmd::TABLE_FLUSH => "table-flush",
        cmd::TABLE_REPLACE => "table-replace",
        _ => "request",
    }
}

/// The spec's name of a `server` attribute, for messages.
pub fn server_attr_name(ty: u16) -> Option<&'static str> {
    Some(match ty {
        server_attr::ADDRESS => "address",
        server_attr::PORT => "port",
        server_attr::CSUM => "csum",
        server_attr::OUTER => "outer",
        server_attr::STATS => "stats",
        server_attr::FLOWLABEL => "flowlabel",
        _ => return None,
    })
}

/// One setting of a server in a request (the spec's `server-settings` set).
#[derive(Clone, Copy, Debug)]
enum Setting {
    Address(InetAddr),
    Port(u16),
    Csum(ChecksumMode),
    Outer(InetAddr),
    FlowLabel(FlowLabelMode),
}

impl Nla for Setting {
    fn value_len(&self) -> usize {
        match self {
            Setting::Address(addr) | Setting::Outer(addr) => addr.octets().len(),
            Setting::Port(_) => 2,
            Setting::Csum(_) | Setting::FlowLabel(_) => 1,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Setting::Address(_) => server_attr::ADDRESS,
            Setting::Port(_) => server_attr::PORT,
            Setting::Csum(_) => server_attr::CSUM,
            Setting::Outer(_) => server_attr::OUTER,
            Setting::FlowLabel(_) => server_attr::FLOWLABEL,
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Setting::Address(addr) | Setting::Outer(addr) => buffer.copy_from_slice(addr.octets()),
            // Host byte order: the spec's `u16` (the module reads it with `from_ne_bytes`).
            Setting::Port(port) => buffer.copy_from_slice(&port.to_ne_bytes()),
            Setting::Csum(mode) => buffer[0] = csum_to_wire(*mode),
            Setting::FlowLabel(mode) => buffer[0] = flow_label_to_wire(*mode),
        }
    }
}

/// One server of `table-replace`: its own top-level nest, since a nest's length is a `u16`
/// and a whole table would not fit in one.
struct ServerNest(Vec<Setting>);

impl Nla for ServerNest {
    fn value_len(&self) -> usize {
        self.0.as_slice().buffer_len()
    }

    fn kind(&self) -> u16 {
        table_attr::SERVER | NLA_F_NESTED
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        self.0.as_slice().emit(buffer);
    }
}

/// The settings `command` sends: all of them for an add, the address and what changes for an
/// edit, the address alone for a delete. An add leaves out a default flow label mode, so that
/// modules older than the option still take it.
fn settings(command: &Command) -> Vec<Setting> {
    match *command {
        Command::Add(addr, c) => [
            Some(Setting::Address(addr)),
            Some(Setting::Port(c.port)),
            Some(Setting::Csum(c.csum)),
            Some(Setting::Outer(c.outer)),
            (c.flow_label != FlowLabelMode::default()).then_some(Setting::FlowLabel(c.flow_label)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Command::Edit(addr, e) => core::iter::once(Setting::Address(addr))
            .chain(e.port.map(Setting::Port))
            .chain(e.csum.map(Setting::Csum))
            .chain(e.outer.map(Setting::Outer))
            .chain(e.flow_label.map(Setting::FlowLabel))
            .collect(),
        Command::Delete(addr) => vec![Setting::Address(addr)],
        Command::Flush => Vec::new(),
    }
}

fn encode<A: Nla>(attrs: &[A]) -> Vec<u8> {
    let mut out = vec![0; attrs.buffer_len()];
    attrs.emit(&mut out);
    out
}

/// The request that carries `command` out.
pub fn request(command: &Command) -> GueMessage {
    let cmd = match command {
        Command::Add(..) => cmd::SERVER_ADD,
        Command::Edit(..) => cmd::SERVER_EDIT,
        Command::Delete(_) => cmd::SERVER_DEL,
        Command::Flush => cmd::TABLE_FLUSH,
    };
    GueMessage {
        cmd,
        attrs: encode(&settings(command)),
    }
}

/// The `table-replace` request that makes `servers` the whole table.
pub fn table_replace(servers: &[(InetAddr, RealServerConfig)]) -> GueMessage {
    let nests: Vec<ServerNest> = servers
        .iter()
        .map(|&(addr, config)| ServerNest(settings(&Command::Add(addr, config))))
        .collect();
    GueMessage {
        cmd: cmd::TABLE_REPLACE,
        attrs: encode(&nests),
    }
}

/// The `server-get` request for the server at `addr`.
pub fn server_get(addr: InetAddr) -> GueMessage {
    GueMessage {
        cmd: cmd::SERVER_GET,
        attrs: encode(&[Setting::Address(addr)]),
    }
}

/// The `server-get` dump request.
pub fn server_dump() -> GueMessage {
    GueMessage {
        cmd: cmd::SERVER_GET,
        attrs: Vec::new(),
    }
}

/// One server as `server-get` reports it: the row every listing shows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Server {
    /// The real server address.
    pub addr: InetAddr,
    /// Its settings.
    pub config: RealServerConfig,
    /// Its counters.
    pub stats: StatsSnapshot,
}

/// A reply the module should not have sent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReplyError(pub String);

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed reply from the module: {}", self.0)
    }
}

fn bad(what: impl Into<String>) -> ReplyError {
    ReplyError(what.into())
}

/// `(type, payload)` of each attribute in `bytes`, flags masked off.
pub fn attributes(bytes: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), ReplyError>> {
    NlasIterator::new(bytes).map(|nla| {
        let nla = nla.map_err(|e| bad(e.to_string()))?;
        let (kind, len) = (nla.kind(), usize::from(nla.length()));
        // The iterator checked that the attribute's length is within the buffer.
        Ok((kind, &nla.into_inner()[NLA_HEADER_SIZE..len]))
    })
}

fn address(payload: &[u8], name: &str) -> Result<InetAddr, ReplyError> {
    addr_from_wire(payload).ok_or_else(|| bad(format!("{name} of {} bytes", payload.len())))
}

/// A `uint`: 4 or 8 bytes, as the kernel chose.
fn uint(payload: &[u8]) -> Result<u64, ReplyError> {
    if let Ok(bytes) = <[u8; 4]>::try_from(payload) {
        Ok(u64::from(u32::from_ne_bytes(bytes)))
    } else if let Ok(bytes) = <[u8; 8]>::try_from(payload) {
        Ok(u64::from_ne_bytes(bytes))
    } else {
        Err(bad(format!("counter of {} bytes", payload.len())))
    }
}

/// The table as a change's reply reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Summary {
    /// The version the change published.
    pub generation: u32,
    /// Servers in the table.
    pub count: u32,
}

/// Decodes a table change's reply (`table-get`'s attributes); unknown attributes are skipped.
pub fn decode_summary(attrs: &[u8]) -> Result<Summary, ReplyError> {
    let mut summary = Summary::default();
    for attr in attributes(attrs) {
        let (ty, payload) = attr?;
        let field = match ty {
            table_attr::GENERATION => &mut summary.generation,
            table_attr::COUNT => &mut summary.count,
            _ => continue,
        };
        let bytes = <[u8; 4]>::try_from(payload).map_err(|_| bad(format!("u32 of {} bytes", payload.len())))?;
        *field = u32::from_ne_bytes(bytes);
    }
    Ok(summary)
}

fn decode_stats(bytes: &[u8]) -> Result<StatsSnapshot, ReplyError> {
    let mut stats = StatsSnapshot::default();
    for attr in attributes(bytes) {
        let (ty, payload) = attr?;
        let counter = match ty {
            stats_attr::PACKETS => &mut stats.packets,
            stats_attr::BYTES => &mut stats.bytes,
            stats_attr::GSO_PACKETS => &mut stats.gso_packets,
            stats_attr::DROP_PMTU => &mut stats.drop_pmtu,
            stats_attr::DROP_NO_ROUTE => &mut stats.drop_no_route,
            stats_attr::DROP_NO_HEADROOM => &mut stats.drop_no_headroom,
            stats_attr::DROP_BAD_PACKET => &mut stats.drop_bad_packet,
            // A counter added by a newer module.
            _ => continue,
        };
        *counter = uint(payload)?;
    }
    Ok(stats)
}

/// Decodes a `server-get` reply's attributes. Address and port are required; the rest
/// default as the spec says (so an older or newer module still lists); attributes this
/// tool does not know are skipped.
pub fn decode_server(attrs: &[u8]) -> Result<Server, ReplyError> {
    let (mut addr, mut port, mut csum, mut outer) = (None, None, ChecksumMode::None, None);
    let mut flow_label = FlowLabelMode::default();
    let mut stats = StatsSnapshot::default();
    for attr in attributes(attrs) {
        let (ty, payload) = attr?;
        match ty {
            server_attr::ADDRESS => addr = Some(address(payload, "address")?),
            server_attr::PORT => {
                let bytes = <[u8; 2]>::try_from(payload)
                    .map_err(|_| bad(format!("port of {} bytes", payload.len())))?;
                port = Some(u16::from_ne_bytes(bytes));
            }
            server_attr::CSUM => {
                let value = *payload.first().ok_or_else(|| bad("empty csum"))?;
                csum = csum_from_wire(value)
                    .ok_or_else(|| bad(format!("unknown checksum mode {value}")))?;
            }
            server_attr::OUTER => outer = Some(address(payload, "outer")?),
            server_attr::FLOWLABEL => {
                let value = *payload.first().ok_or_else(|| bad("empty flowlabel"))?;
                flow_label = flow_label_from_wire(value)
                    .ok_or_else(|| bad(format!("unknown flow label mode {value}")))?;
            }
            server_attr::STATS => stats = decode_stats(payload)?,
            _ => {}
        }
    }
    let addr = addr.ok_or_else(|| bad("server without address"))?;
    let port = port.ok_or_else(|| bad(format!("server {addr} without port")))?;
    Ok(Server {
        addr,
        config: RealServerConfig {
            outer: outer.unwrap_or(addr),
            port,
            csum,
            flow_label,
        },
        stats,
    })
}

/// One attribute of type `ty` (flags included) carrying `payload` as given, padded as the
/// kernel pads: for requests no command above makes (a malformed one, to see it refused) and
/// for replies in tests. Panics if the payload does not fit an attribute's `u16` length.
pub fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(NLA_HEADER_SIZE + payload.len()).expect("attribute longer than 64 KiB");
    let mut out = [len.to_ne_bytes(), ty.to_ne_bytes()].concat();
    out.extend_from_slice(payload);
    out.resize((out.len() + 3) & !3, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gue_core::config::EditFields;
    use gue_core::netlink::{decode_server as module_decode, ServerOp};
    use proptest::prelude::*;
    use proptest::sample::select;

    /// `(type with flags, payload)` of each top-level attribute, parsed by hand rather than
    /// by the code under test.
    fn split(attrs: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut rest = attrs;
        while !rest.is_empty() {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            let ty = u16::from_ne_bytes([rest[2], rest[3]]);
            out.push((ty, &rest[4..len]));
            rest = &rest[(len + 3) & !3..];
        }
        out
    }

    /// What the module makes of a request's server attributes.
    fn module_view(op: ServerOp, attrs: &[u8]) -> Command {
        module_decode(op, split(attrs).into_iter()).unwrap()
    }

    fn addr_strategy() -> impl Strategy<Value = InetAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(InetAddr::v4),
            any::<[u8; 16]>().prop_map(InetAddr::v6),
        ]
    }

    proptest! {
        /// Add, every edit subset and delete come back from the module's decoder unchanged,
        /// for both families, every checksum mode and every flow label mode.
        #[test]
        fn requests_round_trip_through_the_module_decoder(
            addr in addr_strategy(), outer in addr_strategy(), port in 1u16..,
            csum in select(ChecksumMode::ALL.to_vec()), flow_label in select(FlowLabelMode::ALL.to_vec()),
            subset in 1u8..16,
        ) {
            let config = RealServerConfig { outer, port, csum, flow_label };
            let add = Command::Add(addr, config);
            let msg = request(&add);
            prop_assert_eq!(msg.cmd, cmd::SERVER_ADD);
            prop_assert_eq!(module_view(ServerOp::Add, &msg.attrs), add);

            let edit = Command::Edit(addr, EditFields {
                port: (subset & 1 != 0).then_some(port),
                csum: (subset & 2 != 0).then_some(csum),
                outer: (subset & 4 != 0).then_some(outer),
                flow_label: (subset & 8 != 0).then_some(flow_label),
            });
            let msg = request(&edit);
            prop_assert_eq!(msg.cmd, cmd::SERVER_EDIT);
            prop_assert_eq!(split(&msg.attrs).len(), 1 + subset.count_ones() as usize);
            prop_assert_eq!(module_view(ServerOp::Edit, &msg.attrs), edit);

            let msg = request(&Command::Delete(addr));
            prop_assert_eq!(msg.cmd, cmd::SERVER_DEL);
            prop_assert_eq!(module_view(ServerOp::Delete, &msg.attrs), Command::Delete(addr));
        }
    }

    #[test]
    fn attribute_layout_follows_the_spec() {
        let add = Command::Add(
            InetAddr::v4([10, 0, 0, 1]),
            RealServerConfig {
                outer: InetAddr::v6([0xfd; 16]),
                port: 0x1234,
                csum: ChecksumMode::RemoteOffload,
                flow_label: FlowLabelMode::Zero,
            },
        );
        let msg = request(&add);
        let attrs = split(&msg.attrs);
        assert_eq!(
            attrs,
            [
                (server_attr::ADDRESS, &[10, 0, 0, 1][..]),
                (server_attr::PORT, &0x1234u16.to_ne_bytes()[..]),
                (server_attr::CSUM, &[2][..]),
                (server_attr::OUTER, &[0xfd; 16][..]),
            ]
        );
        // Padded to 4 bytes after the port and the checksum mode.
        assert_eq!(msg.attrs.len(), 8 + 8 + 8 + 20);
        // The flow label mode only when not the default (modules before it refuse it).
        let Command::Add(addr, config) = add else { unreachable!() };
        let hashed = Command::Add(addr, RealServerConfig { flow_label: FlowLabelMode::Hash, ..config });
        let attrs = request(&hashed).attrs;
        assert_eq!(split(&attrs)[4], (server_attr::FLOWLABEL, &[1][..]));
        assert_eq!(
            request(&Command::Flush),
            GueMessage {
                cmd: cmd::TABLE_FLUSH,
                attrs: vec![]
            }
        );
    }

    /// The 100 000 servers `-R` must handle: one top-level `server` nest each, flagged
    /// nested, each decoding back to its server.
    #[test]
    fn table_replace_of_many_servers() {
        let servers: Vec<(InetAddr, RealServerConfig)> = (0..100_000u32)
            .map(|i| {
                let addr = if i % 2 == 0 {
                    InetAddr::v4(i.to_be_bytes())
                } else {
                    let mut octets = [0x20; 16];
                    octets[12..].copy_from_slice(&i.to_be_bytes());
                    InetAddr::v6(octets)
                };
                let config = RealServerConfig {
                    outer: if i % 3 == 0 {
                        InetAddr::v4([192, 0, 2, 1])
                    } else {
                        addr
                    },
                    port: u16::try_from(i % 65_535 + 1).unwrap(),
                    csum: ChecksumMode::ALL[i as usize % ChecksumMode::ALL.len()],
                    flow_label: FlowLabelMode::ALL[i as usize / 3 % FlowLabelMode::ALL.len()],
                };
                (addr, config)
            })
            .collect();
        let msg = table_replace(&servers);
        assert_eq!(msg.cmd, cmd::TABLE_REPLACE);
        let nests = split(&msg.attrs);
        assert_eq!(nests.len(), servers.len());
        for ((ty, payload), &(addr, config)) in nests.iter().zip(&servers) {
            assert_eq!(*ty, table_attr::SERVER | NLA_F_NESTED);
            assert_eq!(
                module_view(ServerOp::Add, payload),
                Command::Add(addr, config)
            );
        }
        assert!(msg.attrs.len() > 4_000_000, "{}", msg.attrs.len());
    }

    #[test]
    fn decodes_a_server_reply_with_stats() {
        let stats = [
            nla(stats_attr::PACKETS, &12u32.to_ne_bytes()),
            nla(stats_attr::BYTES, &98_765_432_100u64.to_ne_bytes()),
            nla(stats_attr::GSO_PACKETS, &3u32.to_ne_bytes()),
            nla(stats_attr::DROP_PMTU, &4u64.to_ne_bytes()),
            nla(stats_attr::DROP_NO_ROUTE, &5u32.to_ne_bytes()),
            nla(stats_attr::DROP_NO_HEADROOM, &6u32.to_ne_bytes()),
            nla(stats_attr::DROP_BAD_PACKET, &7u32.to_ne_bytes()),
            nla(99, &[1, 2, 3]),
        ]
        .concat();
        let v6 = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        let reply = [
            nla(server_attr::ADDRESS, &v6),
            nla(server_attr::PORT, &6080u16.to_ne_bytes()),
            nla(server_attr::CSUM, &[2]),
            nla(server_attr::OUTER, &[192, 0, 2, 10]),
            nla(server_attr::STATS | NLA_F_NESTED, &stats),
            nla(server_attr::FLOWLABEL, &[1]),
        ]
        .concat();
        assert_eq!(
            decode_server(&reply),
            Ok(Server {
                addr: InetAddr::v6(v6),
                config: RealServerConfig {
                    outer: InetAddr::v4([192, 0, 2, 10]),
                    port: 6080,
                    csum: ChecksumMode::RemoteOffload,
                    flow_label: FlowLabelMode::Hash,
                },
                stats: StatsSnapshot {
                    packets: 12,
                    bytes: 98_765_432_100,
                    gso_packets: 3,
                    drop_pmtu: 4,
                    drop_no_route: 5,
                    drop_no_headroom: 6,
                    drop_bad_packet: 7,
                },
            })
        );
        // Only the address and the port are required.
        let minimal = [
            nla(server_attr::ADDRESS, &[10, 0, 1, 2]),
            nla(server_attr::PORT, &5501u16.to_ne_bytes()),
        ]
        .concat();
        let server = decode_server(&minimal).unwrap();
        assert_eq!(
            (server.config.outer, server.config.csum, server.config.flow_label),
            (server.addr, ChecksumMode::None, FlowLabelMode::Zero)
        );
    }

    #[test]
    fn refuses_malformed_replies() {
        let addr = nla(server_attr::ADDRESS, &[10, 0, 1, 2]);
        let port = nla(server_attr::PORT, &5501u16.to_ne_bytes());
        let cases: [(Vec<u8>, &str); 7] = [
            (port.clone(), "server without address"),
            (addr.clone(), "server 10.0.1.2 without port"),
            (
                [nla(server_attr::ADDRESS, &[1, 2, 3]), port.clone()].concat(),
                "address of 3 bytes",
            ),
            (
                [addr.clone(), port.clone(), nla(server_attr::CSUM, &[3])].concat(),
                "unknown checksum mode 3",
            ),
            (
                [addr.clone(), port.clone(), nla(server_attr::FLOWLABEL, &[2])].concat(),
                "unknown flow label mode 2",
            ),
            (
                [
                    addr.clone(),
                    port.clone(),
                    nla(server_attr::STATS, &nla(stats_attr::BYTES, &[1, 2])),
                ]
                .concat(),
                "counter of 2 bytes",
            ),
            (
                [addr.clone(), nla(server_attr::PORT, &[1])].concat(),
                "port of 1 bytes",
            ),
        ];
        for (bytes, why) in cases {
            assert_eq!(decode_server(&bytes), Err(ReplyError(why.into())));
        }
        // A truncated attribute.
        assert!(decode_server(&addr[..6]).is_err());
    }

    #[test]
    fn decodes_a_change_summary() {
        let attrs = [
            nla(table_attr::GENERATION, &7u32.to_ne_bytes()),
            nla(table_attr::COUNT, &100_001u32.to_ne_bytes()),
            nla(table_attr::CAPACITY, &(1u32 << 20).to_ne_bytes()),
        ]
        .concat();
        assert_eq!(decode_summary(&attrs), Ok(Summary { generation: 7, count: 100_001 }));
        assert!(decode_summary(&nla(table_attr::COUNT, &[1, 2])).is_err());
    }
}
