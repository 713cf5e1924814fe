// SPDX-License-Identifier: GPL-2.0
//! The body of the `netlink_requests` target: configuration requests as the
//! module answers them (`src/netlink.rs`). Each request's attributes are
//! decoded by `gue_core::netlink::decode_server` (what the kernel's policy
//! lets through, and much it does not); a request that does not decode
//! changes nothing. A server request is one change through
//! `RealServerTable::changed` (its copy sized for one add, grown while
//! full); `table-replace` decodes every server nest into a new table first
//! (a duplicate refuses the whole request) and then replaces the table with
//! it, the copy sized by what the new table adds. Every change is checked
//! against the model (`changed_checked`, `apply_checked`).
//!
//! Input format, repeated: one opcode byte, by `op % 5` server-add,
//! server-edit, server-del, table-flush or table-replace. A server request
//! is followed by its attributes; a replacement by a count byte (`% 16`)
//! of server nests, each its attributes. Attributes: a count byte (`% 6`),
//! then each a type byte (`% 8`: 0, 5 and 7 are types no server request
//! takes) and a length byte (`% 20`) of payload bytes; an address (type 1
//! or 4) of length 17-19 is instead one of sixteen pool addresses (one
//! byte: 10.0.0.x or fd00::x, x < 8), so that requests often name the same
//! servers of both families.

use gue_core::addr::InetAddr;
use gue_core::config::Command;
use gue_core::heap::HeapTable;
use gue_core::netlink::{decode_server, server_attr, ServerOp};
use gue_core::table::MIN_CAPACITY;

use crate::{apply_checked, changed_checked, check_table, new_table_checked, Bytes, Model};

/// One server's attributes as `(type, payload)`, decodable or not.
type Attrs = Vec<(u16, Vec<u8>)>;

fn attrs(r: &mut Bytes<'_>) -> Attrs {
    (0..r.u8() % 6)
        .map(|_| {
            let ty = u16::from(r.u8() % 8);
            match (ty, usize::from(r.u8() % 20)) {
                (server_attr::ADDRESS | server_attr::OUTER, 17..) => (ty, pool_address(r.u8())),
                (_, len) => (ty, r.take(len).to_vec()),
            }
        })
        .collect()
}

/// Pool address `b`: 10.0.0.x, or fd00::x if bit 3 is set (x = `b % 8`).
fn pool_address(b: u8) -> Vec<u8> {
    if b & 8 == 0 {
        vec![10, 0, 0, b % 8]
    } else {
        let mut v6 = vec![0; 16];
        v6[0] = 0xfd;
        v6[15] = b % 8;
        v6
    }
}

/// Decodes and checks what every decoded command must satisfy whatever the
/// input: an add has a port, an edit changes something.
fn decode(op: ServerOp, attrs: &Attrs) -> Option<Command> {
    let command = decode_server(op, attrs.iter().map(|(ty, payload)| (*ty, payload.as_slice()))).ok()?;
    match command {
        Command::Add(_, config) => assert_ne!(config.port, 0, "decoded an add with port 0"),
        Command::Edit(_, fields) => assert!(!fields.is_empty(), "decoded an empty edit"),
        Command::Delete(_) | Command::Flush => {}
    }
    Some(command)
}

/// Runs one input (see the module documentation); panics on any
/// disagreement with the model.
pub fn run(data: &[u8]) {
    let mut r = Bytes::new(data);
    let mut table = new_table_checked(0);
    let mut model = Model::new(MIN_CAPACITY);
    let mut probes: Vec<InetAddr> = Vec::new();
    while !r.is_empty() {
        let command = match r.u8() % 5 {
            0 => decode(ServerOp::Add, &attrs(&mut r)),
            1 => decode(ServerOp::Edit, &attrs(&mut r)),
            2 => decode(ServerOp::Delete, &attrs(&mut r)),
            3 => Some(Command::Flush),
            _ => {
                let servers: Vec<Attrs> = (0..r.u8() % 16).map(|_| attrs(&mut r)).collect();
                if let Some((next, next_model)) = replace(&table, &model, &servers, &mut probes) {
                    table = next;
                    model = next_model;
                }
                continue;
            }
        };
        let Some(command) = command else { continue };
        probes.extend(crate::command_addrs(&command));
        let adds = usize::from(matches!(command, Command::Add(..)));
        // A refused change leaves the table as it was.
        if let Ok((next, next_model)) = changed_checked(
            &table,
            &model,
            adds,
            |next, next_model| apply_checked(next, next_model, &command),
            |next_model| next_model.apply(&command),
        ) {
            table = next;
            model = next_model;
        }
        if let Err(msg) = check_table(&table, &model, &probes) {
            panic!("table invariant broken after {command:?}: {msg}");
        }
    }
}

/// `table-replace`: the new table decoded whole, then swapped in; `None` if
/// any server does not decode or is listed twice.
fn replace(
    table: &HeapTable,
    model: &Model,
    servers: &[Attrs],
    probes: &mut Vec<InetAddr>,
) -> Option<(HeapTable, Model)> {
    let mut wanted = new_table_checked(servers.len());
    let mut wanted_model = Model::new(servers.len());
    for server in servers {
        let command = decode(ServerOp::Add, server)?;
        probes.extend(crate::command_addrs(&command));
        apply_checked(&mut wanted, &mut wanted_model, &command).ok()?;
    }
    let adds = model.missing_from(&wanted_model);
    assert_eq!(table.missing_from(&wanted), adds, "missing_from");
    let result = changed_checked(
        table,
        model,
        adds,
        |next, next_model| {
            let got = next.replace_with(&wanted);
            assert_eq!(got, next_model.replace_with(&wanted_model), "replace_with");
            got
        },
        |next_model| next_model.replace_with(&wanted_model),
    );
    // Replacing never fails below MAX_REAL_SERVERS servers.
    Some(result.unwrap_or_else(|e| panic!("table-replace of {} servers failed: {e:?}", servers.len())))
}
