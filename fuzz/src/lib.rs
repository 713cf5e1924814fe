// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the fuzz targets in `fuzz_targets/`: a byte reader that
//! never runs dry, a plain model of the real server table that every applied
//! command is checked against, and independent oracles (`oracle`) for what
//! gue_core encodes.
//!
//! Only the public API of `gue_core` is used (it is `no_std` and ships just
//! what the module needs, so the oracles are written here from the RFCs and
//! `net/ipv4/fou_core.c`).

pub mod oracle;

use gue_core::addr::InetAddr;
use gue_core::config::{Command, ConfigError, RealServerConfig};
use gue_core::table::{Applied, RealServer, RealServerTable, MAX_REAL_SERVERS};

/// Reads fields from fuzzer input; past the end it yields zeros, so every
/// input maps to some value of every field.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The unread rest.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// One byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in out.iter_mut() {
            *b = self.u8();
        }
        out
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }
}

/// What the model holds for one server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ModelEntry {
    /// The IPVS destination address.
    pub addr: InetAddr,
    /// Its settings.
    pub config: RealServerConfig,
    /// Its stats slot.
    pub slot: u8,
}

/// The obvious implementation of the table's documented behaviour: a list
/// of servers, stats slots handed out round-robin from a cursor (the first
/// free slot at or after the one after the last allocation).
#[derive(Clone, Default, Debug)]
pub struct Model {
    /// The servers, in no particular order.
    pub entries: Vec<ModelEntry>,
    /// Where the search for a free slot starts.
    pub cursor: u8,
}

impl Model {
    fn position(&self, addr: &InetAddr) -> Option<usize> {
        self.entries.iter().position(|e| e.addr == *addr)
    }

    /// Applies `cmd`, returning the (allocated, freed) stats slot bitmaps
    /// the table must report, or the error it must fail with (the model is
    /// then unchanged).
    pub fn apply(&mut self, cmd: &Command) -> Result<(u64, u64), ConfigError> {
        let mut allocated = 0u64;
        let mut freed = 0u64;
        match *cmd {
            Command::Add(addr, config) => {
                if self.position(&addr).is_some() {
                    return Err(ConfigError::AlreadyExists(addr));
                }
                if self.entries.len() >= MAX_REAL_SERVERS {
                    return Err(ConfigError::TableFull);
                }
                let slot = (0..MAX_REAL_SERVERS)
                    .map(|i| ((usize::from(self.cursor) + i) % MAX_REAL_SERVERS) as u8)
                    .find(|s| self.entries.iter().all(|e| e.slot != *s))
                    .expect("a table below capacity has a free slot");
                self.entries.push(ModelEntry { addr, config, slot });
                self.cursor = ((usize::from(slot) + 1) % MAX_REAL_SERVERS) as u8;
                allocated |= 1 << slot;
            }
            Command::Edit(addr, fields) => {
                let i = self.position(&addr).ok_or(ConfigError::NotFound(addr))?;
                let e = &mut self.entries[i];
                e.config = fields.apply_to(&e.config);
            }
            Command::Delete(addr) => {
                let i = self.position(&addr).ok_or(ConfigError::NotFound(addr))?;
                freed |= 1 << self.entries.swap_remove(i).slot;
            }
            Command::Flush => {
                for e in self.entries.drain(..) {
                    freed |= 1 << e.slot;
                }
            }
            Command::Nothing => {}
        }
        Ok((allocated, freed))
    }
}

/// Applies `cmd` to the model and checks the table's answer against it.
/// `got` is what `RealServerTable::apply{,_in_place}` returned.
pub fn check_result(
    model: &mut Model,
    cmd: &Command,
    got: &Result<Applied, ConfigError>,
) -> Result<(), String> {
    match (got, model.apply(cmd)) {
        (Ok(a), Ok((alloc, freed))) => {
            if a.allocated.bits() != alloc || a.freed.bits() != freed {
                return Err(format!(
                    "{cmd:?}: applied allocated={:#x} freed={:#x}, model allocated={alloc:#x} freed={freed:#x}",
                    a.allocated.bits(),
                    a.freed.bits()
                ));
            }
            Ok(())
        }
        (Err(e), Err(w)) if *e == w => Ok(()),
        (g, w) => Err(format!("{cmd:?}: table gave {g:?}, model {w:?}")),
    }
}

/// Checks every observable property of `table` against `model`; `probes`
/// are addresses to look up (present or not).
pub fn check_table(
    table: &RealServerTable,
    model: &Model,
    probes: &[InetAddr],
) -> Result<(), String> {
    let n = model.entries.len();
    if n > MAX_REAL_SERVERS {
        return Err(format!("model over capacity: {n}"));
    }
    if table.is_empty() != (n == 0) {
        return Err(format!("is_empty() {}, model has {n}", table.is_empty()));
    }
    // iter(): exactly the model's servers, in stats slot order.
    let mut want: Vec<ModelEntry> = model.entries.clone();
    want.sort_by_key(|e| e.slot);
    let got: Vec<ModelEntry> = table
        .iter()
        .map(|(addr, s)| ModelEntry {
            addr: *addr,
            config: s.config,
            slot: s.stats_slot,
        })
        .collect();
    if got != want {
        return Err(format!("iter() = {got:?}\nmodel  = {want:?}"));
    }
    let mut bits = 0u64;
    for e in &want {
        if usize::from(e.slot) >= MAX_REAL_SERVERS {
            return Err(format!("slot {} out of range", e.slot));
        }
        bits |= 1 << e.slot;
        let expect = RealServer {
            config: e.config,
            stats_slot: e.slot,
        };
        if table.get(&e.addr) != Some(&expect) {
            return Err(format!(
                "get({}) = {:?}, want {expect:?}",
                e.addr,
                table.get(&e.addr)
            ));
        }
    }
    if table.used_slots().bits() != bits {
        return Err(format!(
            "used_slots {:#x}, model {bits:#x}",
            table.used_slots().bits()
        ));
    }
    for p in probes {
        let present = model.entries.iter().any(|e| e.addr == *p);
        if table.get(p).is_some() != present {
            return Err(format!(
                "get({p}) = {:?}, model has it: {present}",
                table.get(p)
            ));
        }
    }
    Ok(())
}

/// Applies `cmd` with `apply_in_place` and checks the answer and the whole
/// table against the model (looking up the addresses `cmd` names, present or
/// not). The model is unchanged by a failed command, so this also checks that
/// a failed command leaves the table as it was. Panics (a fuzzer crash) on
/// any disagreement. Returns whether the command succeeded.
pub fn apply_checked(table: &mut RealServerTable, model: &mut Model, cmd: &Command) -> bool {
    let result = table.apply_in_place(cmd);
    if let Err(msg) = check_result(model, cmd, &result) {
        panic!("model mismatch: {msg}");
    }
    if let Err(msg) = check_table(table, model, &command_addrs(cmd)) {
        panic!("table invariant broken after {cmd:?} ({result:?}): {msg}");
    }
    result.is_ok()
}

/// The addresses a command names (for `get` probes of absent servers).
pub fn command_addrs(cmd: &Command) -> Vec<InetAddr> {
    match *cmd {
        Command::Add(a, c) => vec![a, c.outer],
        Command::Edit(a, f) => f.outer.into_iter().chain([a]).collect(),
        Command::Delete(a) => vec![a],
        Command::Flush | Command::Nothing => vec![],
    }
}
