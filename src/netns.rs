// SPDX-License-Identifier: GPL-2.0

//! What the module keeps per network namespace: the GUE real server table (read lock-free by
//! the packet hook), per-server counters, and the configuration file that edits them.

#![deny(unsafe_code)]

use core::fmt::{self, Write};

use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::c_str;
use kernel::error::{Error, Result};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

use crate::gue_core::config::parse_command_bytes;
use crate::gue_core::stats::{format_listing_header, format_listing_row, ServerStats};
use crate::gue_core::table::{RealServerTable, MAX_REAL_SERVERS};
use crate::gue_core::text::FixedText;
use crate::net::netfilter::Registration;
use crate::net::pernet::{Namespace, PernetId, PernetState};
use crate::net::proc::{ProcEntry, ProcFileHandler, SeqFile};
use crate::net::rcu::{RcuBox, RcuReadGuard};

/// One rejected command's message, kept for `# last error:` in the listing.
type Message = FixedText<192>;

/// Writer-side state, serialised by [`Netns::writer`].
struct WriterState {
    last_error: Option<Message>,
}

/// One namespace's GUE configuration and counters.
#[pin_data]
pub(crate) struct Netns {
    /// Real servers by IPVS destination address; replaced whole on every change.
    pub(crate) servers: RcuBox<RealServerTable>,
    /// Counters by stats slot; they outlive table copies, so updates never lose counts.
    pub(crate) stats: [ServerStats; MAX_REAL_SERVERS],
    #[pin]
    writer: Mutex<WriterState>,
}

impl Netns {
    fn new() -> Result<impl PinInit<Self, Error>> {
        let table = KBox::new(RealServerTable::new(), GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            servers: RcuBox::new(table),
            stats: [const { ServerStats::new() }; MAX_REAL_SERVERS],
            writer <- new_mutex!(WriterState { last_error: None }),
        }? Error))
    }

    /// Applies every command in `input` (one per line) to a copy of the table and publishes
    /// it only if all succeed: a rejected write leaves the configuration exactly as it was.
    fn configure(&self, input: &[u8]) -> Result {
        let mut writer = self.writer.lock();
        // Allocate before the read-side section: GFP_KERNEL may sleep, which RCU readers must
        // not. Copying the table then needs no allocation.
        let mut next = KBox::new(RealServerTable::new(), GFP_KERNEL)?;
        {
            let rcu = RcuReadGuard::new();
            next.clone_from(self.servers.read(&rcu));
        }
        let mut allocated = 0u64;
        for (index, line) in input.split(|&c| c == b'\n').enumerate() {
            match parse_command_bytes(line).and_then(|command| next.apply_in_place(&command)) {
                Ok(applied) => allocated |= applied.allocated.bits(),
                Err(error) => {
                    let mut message = Message::new();
                    let _ = write!(message, "line {}: {error}", index + 1);
                    pr_warn!("rejected configuration: {}\n", message.as_str());
                    writer.last_error = Some(message);
                    return Err(Error::from_errno(-error.errno()));
                }
            }
        }
        for slot in (0..MAX_REAL_SERVERS).filter(|slot| allocated & (1 << slot) != 0) {
            self.stats[slot].reset();
        }
        self.servers.replace(next);
        writer.last_error = None;
        Ok(())
    }
}

impl ProcFileHandler for Netns {
    fn show(&self, out: &mut SeqFile) -> fmt::Result {
        let writer = self.writer.lock();
        format_listing_header(out)?;
        let rcu = RcuReadGuard::new();
        for (addr, server) in self.servers.read(&rcu).iter() {
            let stats = self.stats[usize::from(server.stats_slot)].snapshot();
            format_listing_row(out, addr, server, &stats)?;
        }
        if let Some(message) = &writer.last_error {
            writeln!(out, "# last error: {}", message.as_str())?;
        }
        Ok(())
    }

    fn write(&self, input: &[u8]) -> Result {
        self.configure(input)
    }
}

/// The `net_generic` id of [`GueNamespaces`].
static NETNS_ID: PernetId = PernetId::new();

/// Everything the module holds for one namespace. The hooks are unregistered first
/// (`quiesce`); on drop, the file and the hooks each wait for their running callbacks before
/// they release the state they share.
pub(crate) struct NetnsSlot<'ns> {
    _proc: ProcEntry<'ns, Netns>,
    hooks: Registration<'ns, Netns>,
}

/// The module's per-namespace subsystem.
pub(crate) struct GueNamespaces;

impl PernetState for GueNamespaces {
    type State<'ns> = NetnsSlot<'ns>;

    fn id() -> &'static PernetId {
        &NETNS_ID
    }

    fn init<'ns>(ns: &Namespace<'ns>) -> Result<KBox<NetnsSlot<'ns>>> {
        let state = Arc::pin_init(Netns::new()?, GFP_KERNEL)?;
        let hooks = Registration::register(ns, state.clone())?;
        let proc = ProcEntry::create(ns, c_str!("ipvs_gue"), state)?;
        Ok(KBox::new(NetnsSlot { _proc: proc, hooks }, GFP_KERNEL)?)
    }

    /// Unhooks every namespace of a teardown batch before any is dropped: unloading with many
    /// namespaces (or destroying many at once) then waits for one grace period, not one each.
    fn quiesce(slot: &mut NetnsSlot<'_>) {
        slot.hooks.unregister();
    }
}
