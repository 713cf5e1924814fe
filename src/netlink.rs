// SPDX-License-Identifier: GPL-2.0

//! The `ipvs_gue` generic netlink family (`spec/ipvs_gue.yaml`): add, edit, delete, get and
//! dump real servers, flush or replace the whole table, and a multicast group announcing every
//! change made through it, in the requester's network namespace.

#![deny(unsafe_code)]

use core::fmt::Write;

use kernel::c_str;
use kernel::error::{Error, Result};
use kernel::prelude::*;

use crate::gue_core::addr::InetAddr;
use crate::gue_core::config::{Command, ConfigError};
use crate::gue_core::netlink::{
    cmd, csum_to_wire, decode_server, flow_label_to_wire, server_attr, stats_attr, table_attr, ServerOp, WireError,
    CSUM_WIRE_MAX, FLOWLABEL_WIRE_MAX,
};
use crate::gue_core::stats::StatsSnapshot;
use crate::gue_core::table::{RealServer, Refusal};
use crate::gue_core::text::FixedText;
use crate::net::genetlink::{Attr, AttrPolicy, Dump, Family, Message, Operation, OperationKind, Request};
use crate::netns::{GueNamespaces, NetnsSlot, TableSummary};
use crate::table_storage::Table;

use AttrPolicy::{Binary, Nested, Unsupported, U16, U8};

/// An address: 4 (IPv4) or 16 (IPv6) bytes; other lengths in between are refused by the
/// module with a message ([`WireError::BadAddressLength`]).
const ADDRESS: AttrPolicy = Binary { min_len: 4, max_len: 16 };

/// The server attributes a request may carry, indexed by `server_attr`; `stats` (5) sits
/// between them but is reply-only, so a request carrying it is refused.
const SERVER_SETTINGS: &[AttrPolicy] = &[
    Unsupported,
    ADDRESS,
    U16 { min: 1 },
    U8 { max: CSUM_WIRE_MAX },
    ADDRESS,
    Unsupported,
    U8 { max: FLOWLABEL_WIRE_MAX },
];
/// Only the address (`server-del`, `server-get`).
const SERVER_KEY: &[AttrPolicy] = &[Unsupported, ADDRESS];
/// Repeated `server` nests (`table-replace`).
const TABLE_SERVERS: &[AttrPolicy] = &[Unsupported, Nested(SERVER_SETTINGS)];
const NONE: &[AttrPolicy] = &[];

/// Multicast group index of `config` in [`Family::MULTICAST_GROUPS`].
const GROUP_CONFIG: u32 = 0;

const fn op(cmd: u8, kind: OperationKind, admin: bool, request: &'static [AttrPolicy]) -> Operation {
    Operation { cmd, kind, admin, request }
}

impl Family for GueNamespaces {
    const NAME: &'static CStr = c_str!("ipvs_gue");
    const VERSION: u32 = crate::gue_core::netlink::FAMILY_VERSION as u32;
    const OPERATIONS: &'static [Operation] = &[
        op(cmd::SERVER_ADD, OperationKind::Do, true, SERVER_SETTINGS),
        op(cmd::SERVER_EDIT, OperationKind::Do, true, SERVER_SETTINGS),
        op(cmd::SERVER_DEL, OperationKind::Do, true, SERVER_KEY),
        op(cmd::SERVER_GET, OperationKind::Do, false, SERVER_KEY),
        op(cmd::SERVER_GET, OperationKind::Dump, false, NONE),
        op(cmd::TABLE_GET, OperationKind::Do, false, NONE),
        op(cmd::TABLE_FLUSH, OperationKind::Do, true, NONE),
        op(cmd::TABLE_REPLACE, OperationKind::Do, true, TABLE_SERVERS),
    ];
    const MULTICAST_GROUPS: &'static [&'static CStr] = &[c_str!("config")];

    fn doit(slot: &NetnsSlot<'_>, request: &Request<'_>) -> Result {
        let handler = Handler { request, slot };
        match request.cmd() {
            cmd::SERVER_ADD => handler.write_server(ServerOp::Add),
            cmd::SERVER_EDIT => handler.write_server(ServerOp::Edit),
            cmd::SERVER_DEL => handler.write_server(ServerOp::Delete),
            cmd::SERVER_GET => handler.get_server(),
            cmd::TABLE_GET => handler.reply_summary(slot.netns().summary()),
            cmd::TABLE_FLUSH => handler.write_table(|_| 0, |table| table.apply(&Command::Flush)),
            cmd::TABLE_REPLACE => handler.replace_table(),
            // Generic netlink only calls `doit` for the commands above.
            _ => Err(EINVAL),
        }
    }

    fn dumpit(slot: &NetnsSlot<'_>, dump: &mut Dump<'_>) -> Result {
        let resume = slot.netns().listing(|listing| -> Result<usize> {
            // Before the messages: each is checked against the version it is filled from.
            dump.set_generation(listing.generation());
            for (slot, addr, server, stats) in listing.servers_from(dump.position()) {
                if !dump.add(cmd::SERVER_GET, |msg| put_server(msg, addr, server, &stats))? {
                    return Ok(slot);
                }
            }
            // After the last server, resume past the end: the next call adds nothing and ends it.
            Ok(usize::MAX)
        })?;
        dump.set_position(resume);
        Ok(())
    }
}

/// Writes one server's attributes.
fn put_server(msg: &mut Message<'_>, addr: &InetAddr, server: &RealServer, stats: &StatsSnapshot) -> Result {
    msg.put_bytes(server_attr::ADDRESS, addr.octets())?;
    msg.put_u16(server_attr::PORT, server.config.port)?;
    msg.put_u8(server_attr::CSUM, csum_to_wire(server.config.csum))?;
    msg.put_bytes(server_attr::OUTER, server.config.outer.octets())?;
    msg.put_u8(server_attr::FLOWLABEL, flow_label_to_wire(server.config.flow_label))?;
    msg.put_nested(server_attr::STATS, |msg| {
        msg.put_uint(stats_attr::PACKETS, stats.packets)?;
        msg.put_uint(stats_attr::BYTES, stats.bytes)?;
        msg.put_uint(stats_attr::GSO_PACKETS, stats.gso_packets)?;
        msg.put_uint(stats_attr::DROP_PMTU, stats.drop_pmtu)?;
        msg.put_uint(stats_attr::DROP_NO_ROUTE, stats.drop_no_route)?;
        msg.put_uint(stats_attr::DROP_NO_HEADROOM, stats.drop_no_headroom)?;
        msg.put_uint(stats_attr::DROP_BAD_PACKET, stats.drop_bad_packet)
    })
}

fn put_summary(msg: &mut Message<'_>, summary: &TableSummary) -> Result {
    msg.put_u32(table_attr::GENERATION, summary.generation)?;
    msg.put_u32(table_attr::COUNT, u32::try_from(summary.count).unwrap_or(u32::MAX))?;
    msg.put_u32(table_attr::CAPACITY, u32::try_from(summary.capacity).unwrap_or(u32::MAX))
}

/// An extack message: a refusal's own text, cut to fit.
type ErrorText = FixedText<80>;

/// One request being answered.
struct Handler<'a> {
    request: &'a Request<'a>,
    slot: &'a NetnsSlot<'a>,
}

impl Handler<'_> {
    /// Decodes the server in `attrs` (the request's, or those of the `nest` it names) for `op`,
    /// pointing the requester at the attribute at fault, or naming the missing one.
    fn decode<'b>(
        &self,
        op: ServerOp,
        nest: Option<&Attr<'_>>,
        attrs: impl Iterator<Item = Attr<'b>> + Clone,
    ) -> Result<Command> {
        decode_server(op, attrs.clone().map(|a| (a.ty(), a.bytes()))).map_err(|fault| {
            let message = fault.error.message();
            match (fault.attr.and_then(|index| attrs.clone().nth(index)), fault.error) {
                (Some(attr), _) => self.request.fail(EINVAL, Some(&attr), message),
                (None, WireError::MissingAddress) => self.request.missing(nest, server_attr::ADDRESS, message),
                (None, WireError::MissingPort) => self.request.missing(nest, server_attr::PORT, message),
                (None, _) => self.request.fail(EINVAL, nest, message),
            }
        })
    }

    /// Reports a refused change: the configuration error's own text and errno, pointing at
    /// `attr` if given.
    fn refused(&self, refusal: Refusal, attr: Option<&Attr<'_>>) -> Error {
        match refusal {
            Refusal::NoMemory => self.request.fail(ENOMEM, None, "out of memory for the new table"),
            Refusal::Config(error) => {
                let mut text = ErrorText::new();
                let _ = write!(text, "{error}");
                self.request.fail(Error::from_errno(-error.errno()), attr, text.as_str())
            }
        }
    }

    fn write_server(&self, op: ServerOp) -> Result {
        let command = self.decode(op, None, self.request.attrs())?;
        let netns = self.slot.netns();
        // Announced under the writer lock, so that listeners see changes in the order they
        // were made. A notification that cannot be sent (no memory) does not undo the change.
        let announce = |_: &TableSummary| {
            let _ = match command {
                Command::Add(addr, _) | Command::Edit(addr, _) => match netns.server(&addr) {
                    Some((server, stats)) => self.request.notify(GROUP_CONFIG, cmd::SERVER_CHANGE_NTF, |msg| {
                        put_server(msg, &addr, &server, &stats)
                    }),
                    None => Ok(()),
                },
                Command::Delete(addr) => self.request.notify(GROUP_CONFIG, cmd::SERVER_DEL_NTF, |msg| {
                    msg.put_bytes(server_attr::ADDRESS, addr.octets())
                }),
                Command::Flush => Ok(()),
            };
        };
        netns
            .update(|_| usize::from(matches!(command, Command::Add(..))), |table| table.apply(&command), announce)
            .map_err(|refusal| self.refused(refusal, self.request.attr(server_attr::ADDRESS).as_ref()))?;
        Ok(())
    }

    fn get_server(&self) -> Result {
        let address = self.request.attr(server_attr::ADDRESS);
        let Command::Delete(addr) = self.decode(ServerOp::Delete, None, self.request.attrs())? else {
            return Err(EINVAL);
        };
        let Some((server, stats)) = self.slot.netns().server(&addr) else {
            return Err(self.refused(Refusal::Config(ConfigError::NotFound(addr)), address.as_ref()));
        };
        self.request.reply(cmd::SERVER_GET, |msg| put_server(msg, &addr, &server, &stats))
    }

    fn reply_summary(&self, summary: TableSummary) -> Result {
        self.request.reply(cmd::TABLE_GET, |msg| put_summary(msg, &summary))
    }

    /// A whole-table change: announced, then answered with the new summary (the reply is
    /// allocated first, so a change made is never left unanswered for want of memory).
    fn write_table(
        &self,
        adds: impl FnOnce(&Table) -> usize,
        change: impl FnMut(&mut Table) -> core::result::Result<(), ConfigError>,
    ) -> Result {
        // A reply carries the command it answers (the client matches on it).
        let reply = self.request.prepare_reply(self.request.cmd())?;
        let announce = |summary: &TableSummary| {
            // As in `write_server`: the change stands even if the announcement cannot be made.
            let _ = self.request.notify(GROUP_CONFIG, cmd::TABLE_CHANGE_NTF, |msg| put_summary(msg, summary));
        };
        let summary =
            self.slot.netns().update(adds, change, announce).map_err(|refusal| self.refused(refusal, None))?;
        reply.send(|msg| put_summary(msg, &summary))
    }

    /// `table-replace`: every `server` nest is decoded and checked (duplicates, capacity)
    /// into a new table before anything changes.
    fn replace_table(&self) -> Result {
        let servers = || self.request.attrs().filter(|a| a.ty() == table_attr::SERVER);
        let mut wanted = Table::with_capacity(servers().count())
            .ok_or_else(|| self.request.fail(ENOMEM, None, "out of memory for the new table"))?;
        for (index, server) in servers().enumerate() {
            let command = self.decode(ServerOp::Add, Some(&server), server.nested())?;
            wanted.apply(&command).map_err(|error| {
                let mut text = ErrorText::new();
                let _ = match error {
                    ConfigError::AlreadyExists(addr) => write!(text, "server {}: {addr} listed twice", index + 1),
                    other => write!(text, "server {}: {other}", index + 1),
                };
                self.request.fail(Error::from_errno(-error.errno()), Some(&server), text.as_str())
            })?;
        }
        self.write_table(|current| current.missing_from(&wanted), |table| table.replace_with(&wanted))
    }
}
