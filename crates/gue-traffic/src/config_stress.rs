//! `config-stress`: K concurrent writers driving the `ipvs_gue` generic netlink family of the
//! namespace the process runs in, every answer checked against a model.
//!
//! Requests go out through `ipvs-gue-ctl`'s own client (`ipvs_gue_ctl::netlink`), one socket
//! per writer. Each writer owns a disjoint pool of addresses (IPv4, IPv6, IPv4-mapped IPv6) and
//! keeps a model of its servers (port, csum, outer, flowlabel). Its requests are random: `server-add` of a
//! new server (acked) or of a listed one (`EEXIST`), `server-edit` naming some fields (only
//! those change) or of a missing server (`ENOENT`), `server-del`, and malformed requests the
//! policy or the module must refuse with `EINVAL`: address or outer of a wrong length, port 0
//! or of a wrong size, unknown checksum or flow label mode, missing address or port, nothing to edit, unknown
//! or unsupported attribute types, a nest flag where none belongs, a truncated attribute.
//! Every refusal must carry the errno expected and an extack message; after every request a
//! `server-get` of the address it concerned is compared with the model.
//!
//! Rounds alternate a single-writer phase (one writer owning every pool: `table-flush`,
//! `table-replace` with a random whole table up to [`WORKING_SET`] servers, now and then one
//! with a single bad server, which must change nothing; after every request `table-get`'s
//! generation must have grown by exactly one per accepted change and its count match the
//! model; full dumps compared with the whole model) with a concurrent phase (K threads, each
//! under a quota of [`WORKING_SET`]/K servers; sampled `server-get`s of its pool as it goes,
//! and after the phase a full dump equal to the union of the models).
//!
//! `--skip-model-update N` is a self-test: the N-th accepted change that alters the model is left out of it,
//! so the run must report a mismatch (and exit 1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use gue_core::addr::InetAddr;
use gue_core::config::{ChecksumMode, Command, EditFields, FlowLabelMode, RealServerConfig};
use gue_core::netlink::{cmd, csum_to_wire, flow_label_to_wire, server_attr, table_attr};
use ipvs_gue_ctl::netlink::{Connection, Error as NlError};
use ipvs_gue_ctl::wire::{self, nla, GueMessage};

use crate::args::{err, Options};

/// Most real servers the stress keeps in the table (which holds 2^20): a whole-table
/// replacement and a full dump stay quick under TCG.
pub const WORKING_SET: usize = 1024;
/// A writer checks this many random addresses of its pool every [`SWEEP_EVERY`] requests.
const SWEEP: usize = 8;
const SWEEP_EVERY: u64 = 50;
/// The single-writer phase dumps the whole table every this many requests (and after each
/// whole-table change).
const DUMP_EVERY: u64 = 25;

const EINVAL: i32 = libc::EINVAL;
/// What the kernel's policy answers a value or a length out of its range.
const ERANGE: i32 = libc::ERANGE;
const EEXIST: i32 = libc::EEXIST;
const ENOENT: i32 = libc::ENOENT;
const ENOSPC: i32 = libc::ENOSPC;
const EPERM: i32 = libc::EPERM;
const NLA_F_NESTED: u16 = libc::NLA_F_NESTED as u16;

// ------------------------------------------------------------------------------------------
// Options

/// `config-stress` options.
#[derive(Debug, Clone)]
pub struct StressOpts {
    pub writers: usize,
    pub writes: u64,
    pub rounds: usize,
    pub single_pct: u64,
    pub seed: u64,
    pub skip_model_update: Option<u64>,
    pub max_report: usize,
    pub verbose: bool,
}

impl Default for StressOpts {
    fn default() -> Self {
        StressOpts {
            writers: 4,
            writes: 10_000,
            rounds: 4,
            single_pct: 20,
            seed: 1,
            skip_model_update: None,
            max_report: 20,
            verbose: false,
        }
    }
}

/// Parses the `config-stress` options.
pub fn stress_opts(mut a: Options) -> crate::args::Result<StressOpts> {
    let mut o = StressOpts::default();
    while let Some(name) = a.next()? {
        match name.as_str() {
            "writers" => o.writers = a.number_in(1, 16)? as usize,
            // bounded so that the per-phase shares (writes x percent) cannot overflow
            "writes" => o.writes = a.number_in(1, 1_000_000_000)?,
            "rounds" => o.rounds = a.number_in(1, 100)? as usize,
            "single-pct" => o.single_pct = a.number_in(0, 100)?,
            "seed" => o.seed = a.number()?,
            "skip-model-update" => o.skip_model_update = Some(a.positive()?),
            "max-report" => o.max_report = a.number()? as usize,
            "verbose" => o.verbose = true,
            _ => return Err(a.unknown()),
        }
    }
    if o.writes * o.single_pct / 100 < 2 * o.rounds as u64 {
        return err("--writes x --single-pct: need at least 2 single-writer writes per round");
    }
    Ok(o)
}

// ------------------------------------------------------------------------------------------
// The family under test

/// One writer's socket: the family in the process's namespace, or a simulation in unit tests.
pub trait Link: Send {
    /// One acked request: its replies, or the refusal.
    fn execute(&mut self, request: GueMessage) -> Result<Vec<GueMessage>, NlError>;
    /// A dump, whole.
    fn dump(&mut self, request: &GueMessage) -> Result<Vec<GueMessage>, NlError>;
}

impl Link for Connection {
    fn execute(&mut self, request: GueMessage) -> Result<Vec<GueMessage>, NlError> {
        Connection::execute(self, request)
    }

    fn dump(&mut self, request: &GueMessage) -> Result<Vec<GueMessage>, NlError> {
        Connection::dump(self, request)
    }
}

/// Where writers connect to.
pub trait Target: Sync {
    fn connect(&self) -> Result<Box<dyn Link + '_>, String>;
}

/// The `ipvs_gue` family of the namespace the process runs in.
struct Family;

impl Target for Family {
    fn connect(&self) -> Result<Box<dyn Link + '_>, String> {
        Ok(Box::new(Connection::open().map_err(|e| e.to_string())?))
    }
}

// ------------------------------------------------------------------------------------------
// Random numbers (splitmix64: deterministic per seed and writer)

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// An index by weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut r = self.below(weights.iter().sum());
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ------------------------------------------------------------------------------------------
// Addresses and the model

/// A writer's servers: address to settings (ordered, so that a seed replays the same run).
pub type Model = BTreeMap<IpAddr, RealServerConfig>;

fn ip(addr: &InetAddr) -> IpAddr {
    match (addr.v4_octets(), addr.v6_octets()) {
        (Some(v4), _) => IpAddr::from(v4),
        (_, Some(v6)) => IpAddr::from(v6),
        _ => unreachable!("an address is of one family"),
    }
}

/// Writer `w`'s `size` addresses, 40 % IPv4 10.(101+w).x.y, 40 % IPv6 fd0e:(w+1)::i and 20 %
/// IPv4-mapped ::ffff:10.(101+w).(128+x).y: disjoint between writers, and apart from what the
/// guest script configures elsewhere.
pub fn pool(w: usize, size: usize) -> Vec<IpAddr> {
    let (v4, v6) = (size * 2 / 5, size * 2 / 5);
    let w8 = 101 + w as u8;
    let low = |i: usize| [(i >> 8) as u8, i as u8];
    (1..=v4)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, w8, low(i)[0], low(i)[1])))
        .chain((1..=v6).map(|i| IpAddr::V6(Ipv6Addr::new(0xfd0e, w as u16 + 1, 0, 0, 0, 0, 0, i as u16))))
        .chain((1..=size - v4 - v6).map(|i| {
            IpAddr::V6(Ipv4Addr::new(10, w8, 128 + low(i)[0], low(i)[1]).to_ipv6_mapped())
        }))
        .collect()
}

fn random_outer(rng: &mut Rng, addr: IpAddr) -> IpAddr {
    match rng.below(4) {
        0 => addr,
        1 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, rng.below(256) as u8)),
        2 => IpAddr::V4(Ipv4Addr::from(rng.next() as u32)),
        _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, rng.below(4) as u16, 0, 0, 0, 0, rng.next() as u16)),
    }
}

fn random_port(rng: &mut Rng) -> u16 {
    match rng.below(6) {
        0 => 1,
        1 => 65_535,
        2 => 6080,
        _ => 1 + rng.below(65_535) as u16,
    }
}

fn random_config(rng: &mut Rng, addr: IpAddr) -> RealServerConfig {
    RealServerConfig {
        outer: InetAddr::from(random_outer(rng, addr)),
        port: random_port(rng),
        csum: rng.pick(&ChecksumMode::ALL),
        flow_label: rng.pick(&FlowLabelMode::ALL),
    }
}

// ------------------------------------------------------------------------------------------
// Requests and what they must do

/// What a request must do to the writer's part of the table.
#[derive(Debug, Clone)]
pub enum Change {
    /// The server's settings are now these.
    Set(IpAddr, RealServerConfig),
    /// The server is gone.
    Remove(IpAddr),
    /// The whole table is now this (`table-flush`, `table-replace`; single-writer phase).
    Whole(Model),
}

/// The answer a request must get.
#[derive(Debug, Clone)]
pub enum Expect {
    Accept(Change),
    /// Refused with this errno and a message; nothing changes.
    Refuse(i32),
}

/// One request and what it must do.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: &'static str,
    /// What it asks, for reports.
    pub text: String,
    pub request: GueMessage,
    /// The pool address it concerns, checked with `server-get` afterwards.
    pub addr: Option<IpAddr>,
    pub expect: Expect,
}

/// What a writer may touch: its addresses and how many servers it may keep.
pub struct Ctx<'a> {
    pub pool: &'a [IpAddr],
    pub quota: usize,
    /// Whole-table requests (flush, replace) are allowed: no other writer runs.
    pub whole_table: bool,
}

fn free_addr(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Option<IpAddr> {
    // Pools are twice the quota: a few tries find a free one.
    (0..16).map(|_| rng.pick(ctx.pool)).find(|a| !m.contains_key(a))
}

fn used_addr(rng: &mut Rng, m: &Model) -> Option<IpAddr> {
    m.keys().nth(rng.below(m.len() as u64) as usize).copied()
}

/// The valid request carrying `command`, as `ipvs-gue-ctl` sends it.
fn valid(kind: &'static str, command: Command, addr: IpAddr, expect: Expect) -> Op {
    Op {
        kind,
        text: format!("{command:?}"),
        request: wire::request(&command),
        addr: Some(addr),
        expect,
    }
}

/// A hand-made request of `attrs` (`nla`s back to back).
fn raw(kind: &'static str, command: u8, attrs: Vec<u8>, addr: Option<IpAddr>, expect: Expect) -> Op {
    Op {
        kind,
        text: format!("{} with attributes {:02x?}", wire::op_name(command), &attrs[..attrs.len().min(48)]),
        request: GueMessage { cmd: command, attrs },
        addr,
        expect,
    }
}

fn addr_attr(addr: IpAddr) -> Vec<u8> {
    nla(server_attr::ADDRESS, InetAddr::from(addr).octets())
}

fn port_attr(port: u16) -> Vec<u8> {
    nla(server_attr::PORT, &port.to_ne_bytes())
}

/// An address of neither 4 nor 16 bytes, and the errno refusing it: the policy's `ERANGE`
/// outside 4-16 bytes, the module's `EINVAL` within.
fn bad_len(rng: &mut Rng) -> (Vec<u8>, i32) {
    let len = rng.pick(&[0, 1, 3, 5, 8, 12, 15, 17, 20, 32]);
    (rng.bytes(len), if (4..=16).contains(&len) { EINVAL } else { ERANGE })
}

/// A random op for a writer with model `m`.
pub fn gen_op(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Op {
    loop {
        if let Some(op) = try_op(rng, ctx, m) {
            return op;
        }
    }
}

fn try_op(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Option<Op> {
    let whole = if ctx.whole_table { 1 } else { 0 };
    let kind = rng.weighted(&[22, 6, 18, 5, 12, 5, 14, whole * 2, whole * 4, whole * 2]);
    let full = m.len() >= ctx.quota;
    Some(match kind {
        0 if !full => {
            let a = free_addr(rng, ctx, m)?;
            if rng.pct(20) {
                // Port alone: csum, outer and flowlabel take the spec's defaults.
                let port = random_port(rng);
                let config =
                    RealServerConfig { outer: InetAddr::from(a), port, csum: ChecksumMode::None, flow_label: FlowLabelMode::Zero };
                let attrs = [addr_attr(a), port_attr(port)].concat();
                raw("add (defaults)", cmd::SERVER_ADD, attrs, Some(a), Expect::Accept(Change::Set(a, config)))
            } else {
                let config = random_config(rng, a);
                valid("add", Command::Add(InetAddr::from(a), config), a, Expect::Accept(Change::Set(a, config)))
            }
        }
        1 => {
            let a = used_addr(rng, m)?;
            valid("add existing", Command::Add(InetAddr::from(a), random_config(rng, a)), a, Expect::Refuse(EEXIST))
        }
        2 => {
            let a = used_addr(rng, m)?;
            let (fields, after) = random_edit(rng, a, m[&a]);
            valid("edit", Command::Edit(InetAddr::from(a), fields), a, Expect::Accept(Change::Set(a, after)))
        }
        3 => {
            let a = free_addr(rng, ctx, m)?;
            let before = random_config(rng, a);
            let (fields, _) = random_edit(rng, a, before);
            valid("edit missing", Command::Edit(InetAddr::from(a), fields), a, Expect::Refuse(ENOENT))
        }
        // Also when full: deletes keep the writer under its quota.
        0 | 4 => {
            let a = used_addr(rng, m)?;
            valid("del", Command::Delete(InetAddr::from(a)), a, Expect::Accept(Change::Remove(a)))
        }
        5 => {
            let a = free_addr(rng, ctx, m)?;
            valid("del missing", Command::Delete(InetAddr::from(a)), a, Expect::Refuse(ENOENT))
        }
        6 => malformed(rng, ctx, m)?,
        7 if rng.pct(80) => flush(),
        7 => raw("flush with an attribute", cmd::TABLE_FLUSH, addr_attr(rng.pick(ctx.pool)), None, Expect::Refuse(EINVAL)),
        8 => replace(rng, ctx, m),
        _ => bad_replace(rng, ctx, m)?,
    })
}

/// A non-empty set of fields to edit, and the settings they make of `before`.
fn random_edit(rng: &mut Rng, addr: IpAddr, before: RealServerConfig) -> (EditFields, RealServerConfig) {
    let which = 1 + rng.below(15);
    let fields = EditFields {
        port: (which & 1 != 0).then(|| random_port(rng)),
        csum: (which & 2 != 0).then(|| rng.pick(&ChecksumMode::ALL)),
        outer: (which & 4 != 0).then(|| InetAddr::from(random_outer(rng, addr))),
        flow_label: (which & 8 != 0).then(|| rng.pick(&FlowLabelMode::ALL)),
    };
    let mut after = before;
    if let Some(port) = fields.port {
        after.port = port;
    }
    if let Some(csum) = fields.csum {
        after.csum = csum;
    }
    if let Some(outer) = fields.outer {
        after.outer = outer;
    }
    if let Some(flow_label) = fields.flow_label {
        after.flow_label = flow_label;
    }
    (fields, after)
}

/// A request the policy or the module must refuse (`EINVAL`, or `ERANGE` for a value out of
/// the policy's range), changing nothing. Each has one fault: with several, which one the
/// kernel reports depends on their order.
fn malformed(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Option<Op> {
    let einval = Expect::Refuse(EINVAL);
    let erange = Expect::Refuse(ERANGE);
    // A listed server (an edit that must not apply) or a free address (an add that must not).
    let (command, a) = match used_addr(rng, m).filter(|_| rng.pct(50)) {
        Some(a) => (cmd::SERVER_EDIT, a),
        None => (cmd::SERVER_ADD, free_addr(rng, ctx, m)?),
    };
    let port = port_attr(random_port(rng));
    let attrs = |rest: &[Vec<u8>]| [&[addr_attr(a)], rest].concat().concat();
    Some(match rng.below(13) {
        0 => {
            let c = rng.pick(&[cmd::SERVER_ADD, cmd::SERVER_EDIT, cmd::SERVER_DEL]);
            let (bad, errno) = bad_len(rng);
            let mut attrs = nla(server_attr::ADDRESS, &bad);
            if c != cmd::SERVER_DEL {
                attrs.extend(port);
            }
            raw("address of a wrong length", c, attrs, None, Expect::Refuse(errno))
        }
        1 => {
            let (bad, errno) = bad_len(rng);
            let attrs = attrs(&[port, nla(server_attr::OUTER, &bad)]);
            raw("outer of a wrong length", command, attrs, Some(a), Expect::Refuse(errno))
        }
        2 => raw("port 0", command, attrs(&[port_attr(0)]), Some(a), erange),
        3 => {
            let len = rng.pick(&[1, 4]);
            raw("port of a wrong size", command, attrs(&[nla(server_attr::PORT, &rng.bytes(len))]), Some(a), einval)
        }
        4 => {
            let mode = 3 + rng.below(253) as u8;
            raw("unknown csum", command, attrs(&[port, nla(server_attr::CSUM, &[mode])]), Some(a), erange)
        }
        5 => {
            let c = rng.pick(&[cmd::SERVER_ADD, cmd::SERVER_EDIT, cmd::SERVER_DEL]);
            let attrs = if c == cmd::SERVER_DEL { Vec::new() } else { port };
            raw("missing address", c, attrs, None, einval)
        }
        6 => {
            let csum = nla(server_attr::CSUM, &[csum_to_wire(rng.pick(&ChecksumMode::ALL))]);
            raw("add without port", cmd::SERVER_ADD, attrs(&[csum]), Some(a), einval)
        }
        7 => raw("edit of nothing", cmd::SERVER_EDIT, attrs(&[]), Some(a), einval),
        8 => {
            // stats (replies only), beyond the spec, and 0.
            let ty = rng.pick(&[server_attr::STATS, server_attr::FLOWLABEL + 1, 31, 0]);
            raw("unknown attribute", command, attrs(&[port, nla(ty, &[0; 4])]), Some(a), einval)
        }
        9 => raw("del with a port", cmd::SERVER_DEL, attrs(&[port]), Some(a), einval),
        10 => {
            // An attribute whose length runs past the message's end.
            let mut cut = port;
            cut.truncate(2 + rng.below(4) as usize);
            cut[..2].copy_from_slice(&8u16.to_ne_bytes());
            raw("truncated attribute", command, attrs(&[cut]), Some(a), einval)
        }
        11 => {
            let mode = flow_label_to_wire(FlowLabelMode::Hash) + 1 + rng.below(254) as u8;
            raw("unknown flowlabel", command, attrs(&[port, nla(server_attr::FLOWLABEL, &[mode])]), Some(a), erange)
        }
        _ => {
            let flagged = nla(server_attr::ADDRESS | NLA_F_NESTED, InetAddr::from(a).octets());
            raw("nest flag on the address", command, [flagged, port].concat(), Some(a), einval)
        }
    })
}

/// A random whole table: some of the current servers (kept or changed), new ones from the pool.
fn desired(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Model {
    let size = match rng.below(4) {
        0 => ctx.quota,
        1 => rng.below(8) as usize,
        _ => rng.below(ctx.quota as u64 + 1) as usize,
    };
    let mut want = Model::new();
    for (&a, &c) in m {
        if want.len() < size && rng.pct(50) {
            want.insert(a, if rng.pct(70) { c } else { random_config(rng, a) });
        }
    }
    for _ in 0..4 * size {
        if want.len() >= size {
            break;
        }
        let a = rng.pick(ctx.pool);
        want.entry(a).or_insert_with(|| random_config(rng, a));
    }
    want
}

fn servers(m: &Model) -> Vec<(InetAddr, RealServerConfig)> {
    m.iter().map(|(&a, &c)| (InetAddr::from(a), c)).collect()
}

fn replace(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Op {
    replace_with("replace", desired(rng, ctx, m))
}

fn replace_with(kind: &'static str, want: Model) -> Op {
    Op {
        kind,
        text: format!("table-replace with {} servers", want.len()),
        request: wire::table_replace(&servers(&want)),
        addr: None,
        expect: Expect::Accept(Change::Whole(want)),
    }
}

/// A `table-replace` of a random table with one bad server among the good ones, or with an
/// attribute it does not take: refused, all of it.
fn bad_replace(rng: &mut Rng, ctx: &Ctx<'_>, m: &Model) -> Option<Op> {
    let want = servers(&desired(rng, ctx, m));
    let at = rng.below(want.len() as u64 + 1) as usize;
    let a = rng.pick(ctx.pool);
    let port = port_attr(random_port(rng));
    let nest = |inner: &[Vec<u8>]| nla(table_attr::SERVER | NLA_F_NESTED, &inner.concat());
    let (kind, bad, errno) = match rng.below(8) {
        0 => ("replace: a server with port 0", nest(&[addr_attr(a), port_attr(0)]), ERANGE),
        1 => {
            let (bad, errno) = bad_len(rng);
            ("replace: a server with an address of a wrong length", nest(&[nla(server_attr::ADDRESS, &bad), port]), errno)
        }
        2 => ("replace: a server without port", nest(&[addr_attr(a)]), EINVAL),
        3 => ("replace: a server without address", nest(&[port]), EINVAL),
        4 => {
            let (dup, _) = *want.first()?;
            ("replace: a server listed twice", nest(&[addr_attr(ip(&dup)), port]), EEXIST)
        }
        5 => {
            // The nest ends inside its last attribute.
            let mut cut = port;
            cut.truncate(4);
            cut[..2].copy_from_slice(&6u16.to_ne_bytes());
            ("replace: a truncated server", nest(&[addr_attr(a), cut]), EINVAL)
        }
        6 => ("replace: a server nest without NLA_F_NESTED", nla(table_attr::SERVER, &[addr_attr(a), port].concat()), EINVAL),
        _ => ("replace: an attribute it does not take", nla(table_attr::GENERATION, &7u32.to_ne_bytes()), EINVAL),
    };
    let attrs = [
        wire::table_replace(&want[..at]).attrs,
        bad,
        wire::table_replace(&want[at..]).attrs,
    ]
    .concat();
    Some(raw(kind, cmd::TABLE_REPLACE, attrs, None, Expect::Refuse(errno)))
}

// ------------------------------------------------------------------------------------------
// Running

/// Counts shared by all writers.
#[derive(Default)]
pub struct Stats {
    pub writes: AtomicU64,
    pub accepted: AtomicU64,
    pub einval: AtomicU64,
    pub erange: AtomicU64,
    pub eexist: AtomicU64,
    pub enoent: AtomicU64,
    pub enospc: AtomicU64,
    pub eperm: AtomicU64,
    pub other_errno: AtomicU64,
    pub gets: AtomicU64,
    pub dumps: AtomicU64,
    pub generation_checks: AtomicU64,
    pub mismatches: AtomicU64,
    /// Accepted changes that altered the model (the self-test counts these).
    pub changes: AtomicU64,
    pub concurrent_writes: AtomicU64,
    pub single_writes: AtomicU64,
    /// Time from request to answer of the writes: sum and max, in us.
    pub write_us: AtomicU64,
    pub write_max_us: AtomicU64,
}

struct Run<'a> {
    opts: &'a StressOpts,
    stats: Stats,
    /// Every writer's pool: a listed address outside it is foreign.
    all: BTreeSet<IpAddr>,
}

fn errno_name(e: i32) -> &'static str {
    match e {
        EINVAL => "EINVAL",
        ERANGE => "ERANGE",
        EEXIST => "EEXIST",
        ENOENT => "ENOENT",
        ENOSPC => "ENOSPC",
        EPERM => "EPERM",
        _ => "?",
    }
}

fn describe(result: &Result<Vec<GueMessage>, NlError>) -> String {
    match result {
        Ok(replies) => format!("accepted ({} replies)", replies.len()),
        Err(NlError::Refused(r)) => format!("{} ({}): {}", r.errno, errno_name(r.errno), r.describe(&[])),
        Err(e) => e.to_string(),
    }
}

/// The differences between `want` and `got`, at most a few.
fn diff(want: &Model, got: &Model) -> Vec<String> {
    let keys: BTreeSet<&IpAddr> = want.keys().chain(got.keys()).collect();
    let show = |c: Option<&RealServerConfig>| match c {
        Some(c) => format!("port {} csum {} outer {}", c.port, c.csum, c.outer),
        None => "absent".to_string(),
    };
    keys.into_iter()
        .filter(|a| want.get(a) != got.get(a))
        .take(5)
        .map(|a| format!("{a}: model {}, kernel {}", show(want.get(a)), show(got.get(a))))
        .collect()
}

/// One writer: its socket, its random numbers, what it may touch.
struct Writer<'a> {
    run: &'a Run<'a>,
    link: &'a mut dyn Link,
    rng: Rng,
    who: String,
    ctx: Ctx<'a>,
    /// The table's generation as last read (single-writer phase).
    generation: u32,
    requests: u64,
}

impl Writer<'_> {
    fn report(&self, kind: &str, text: &str, result: &str, what: &[String]) {
        let n = self.run.stats.mismatches.fetch_add(1, Ordering::Relaxed) + 1;
        if n as usize <= self.run.opts.max_report {
            eprintln!(
                "MISMATCH {n} [{}] {kind}: {text}\n    kernel: {result}\n    {}",
                self.who,
                what.join("\n    ")
            );
        }
    }

    /// `table-get`: the generation and the count.
    fn summary(&mut self, problems: &mut Vec<String>) -> Option<wire::Summary> {
        let request = GueMessage { cmd: cmd::TABLE_GET, attrs: Vec::new() };
        match self.link.execute(request).map(|r| r.first().map(|m| wire::decode_summary(&m.attrs))) {
            Ok(Some(Ok(summary))) => Some(summary),
            other => {
                problems.push(format!("table-get: {other:?}"));
                None
            }
        }
    }

    /// `server-get` of `a`: its settings, `None` if refused with `ENOENT` and a message.
    fn get(&mut self, a: IpAddr, problems: &mut Vec<String>) -> Result<Option<RealServerConfig>, ()> {
        self.run.stats.gets.fetch_add(1, Ordering::Relaxed);
        match self.link.execute(wire::server_get(InetAddr::from(a))) {
            Ok(replies) => match replies.as_slice() {
                [reply] => match wire::decode_server(&reply.attrs) {
                    Ok(server) if ip(&server.addr) == a => Ok(Some(server.config)),
                    other => {
                        problems.push(format!("server-get {a}: answered {other:?}"));
                        Err(())
                    }
                },
                _ => {
                    problems.push(format!("server-get {a}: {} replies", replies.len()));
                    Err(())
                }
            },
            Err(NlError::Refused(r)) if r.errno == ENOENT && r.message.is_some() => Ok(None),
            Err(e) => {
                problems.push(format!("server-get {a}: {}", describe(&Err(e))));
                Err(())
            }
        }
    }

    /// Compares the kernel's settings of `a` with the model; on a difference the model takes
    /// the kernel's (one report per divergence, not one per request after it).
    fn check_addr(&mut self, a: IpAddr, m: &mut Model, problems: &mut Vec<String>) {
        let Ok(got) = self.get(a, problems) else { return };
        let want = m.get(&a).copied();
        if got != want {
            let (want_m, got_m): (Model, Model) =
                (want.map(|c| (a, c)).into_iter().collect(), got.map(|c| (a, c)).into_iter().collect());
            problems.extend(diff(&want_m, &got_m));
            match got {
                Some(c) => m.insert(a, c),
                None => m.remove(&a),
            };
        }
    }

    /// The whole table, by a dump.
    fn dump(&mut self, problems: &mut Vec<String>) -> Option<Model> {
        self.run.stats.dumps.fetch_add(1, Ordering::Relaxed);
        let replies = match self.link.dump(&wire::server_dump()) {
            Ok(replies) => replies,
            Err(e) => {
                problems.push(format!("dump: {e}"));
                return None;
            }
        };
        let mut rows = Model::new();
        for reply in &replies {
            match wire::decode_server(&reply.attrs) {
                Ok(server) => {
                    if rows.insert(ip(&server.addr), server.config).is_some() {
                        problems.push(format!("dump lists {} twice", server.addr));
                    }
                }
                Err(e) => problems.push(format!("dump: {e}")),
            }
        }
        Some(rows)
    }

    /// Dumps the table and compares it whole with `m` (no other writer runs); on a difference
    /// the model becomes the table.
    fn check_whole(&mut self, m: &mut Model, problems: &mut Vec<String>) {
        let Some(rows) = self.dump(problems) else { return };
        let foreign: Vec<_> = rows.keys().filter(|a| !self.run.all.contains(a)).take(3).collect();
        if !foreign.is_empty() {
            problems.push(format!("table lists addresses of no writer: {foreign:?}"));
        }
        if rows != *m {
            problems.push(format!("table ({} servers) differs from the model ({})", rows.len(), m.len()));
            problems.extend(diff(m, &rows));
            *m = rows;
        }
    }

    /// Sends `op`, checks the answer and then the table against the model, updates the model.
    fn step(&mut self, op: &Op, m: &mut Model) {
        let stats = &self.run.stats;
        let started = Instant::now();
        let result = self.link.execute(op.request.clone());
        let us = started.elapsed().as_micros() as u64;
        stats.write_us.fetch_add(us, Ordering::Relaxed);
        stats.write_max_us.fetch_max(us, Ordering::Relaxed);
        stats.writes.fetch_add(1, Ordering::Relaxed);
        self.requests += 1;
        let mut problems = Vec::new();
        let accepted = result.is_ok();
        match &result {
            Ok(_) => stats.accepted.fetch_add(1, Ordering::Relaxed),
            Err(NlError::Refused(r)) => match r.errno {
                EINVAL => &stats.einval,
                ERANGE => &stats.erange,
                EEXIST => &stats.eexist,
                ENOENT => &stats.enoent,
                ENOSPC => &stats.enospc,
                EPERM => &stats.eperm,
                _ => &stats.other_errno,
            }
            .fetch_add(1, Ordering::Relaxed),
            Err(_) => stats.other_errno.fetch_add(1, Ordering::Relaxed),
        };
        match (&op.expect, &result) {
            (Expect::Accept(change), Ok(replies)) => {
                // Only changes that alter the model are counted: skipping one that does not
                // (an edit to the same values, a flush of an empty table) could not be caught.
                let alters = match change {
                    Change::Set(a, c) => m.get(a) != Some(c),
                    Change::Remove(a) => m.contains_key(a),
                    Change::Whole(want) => want != m,
                };
                let n = if alters { stats.changes.fetch_add(1, Ordering::Relaxed) + 1 } else { 0 };
                if self.run.opts.skip_model_update != Some(n) {
                    match change {
                        Change::Set(a, c) => {
                            m.insert(*a, *c);
                        }
                        Change::Remove(a) => {
                            m.remove(a);
                        }
                        Change::Whole(want) => *m = want.clone(),
                    }
                }
                if let Change::Whole(_) = change {
                    // A whole-table change answers with the new table's summary.
                    match replies.first().map(|r| wire::decode_summary(&r.attrs)) {
                        Some(Ok(s)) if s.count as usize == m.len() => {}
                        other => problems.push(format!("reply {other:?}, model has {} servers", m.len())),
                    }
                }
            }
            (Expect::Refuse(want), Err(NlError::Refused(r))) => {
                if r.errno != *want {
                    problems.push(format!("expected errno {want} ({})", errno_name(*want)));
                }
                if r.message.as_deref().is_none_or(str::is_empty) {
                    problems.push("refused without an extack message".into());
                }
            }
            (Expect::Accept(_), _) => problems.push("expected it accepted".into()),
            (Expect::Refuse(want), _) => problems.push(format!("expected errno {want} ({})", errno_name(*want))),
        }
        if let Some(a) = op.addr {
            self.check_addr(a, m, &mut problems);
        }
        if self.ctx.whole_table {
            // One writer: the generation grows by exactly one per accepted change.
            stats.generation_checks.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = self.summary(&mut problems) {
                let want = self.generation.wrapping_add(u32::from(accepted));
                if s.generation != want {
                    problems.push(format!("generation {} after {}, expected {want}", s.generation, self.generation));
                }
                if s.count as usize != m.len() {
                    problems.push(format!("table-get counts {} servers, the model {}", s.count, m.len()));
                }
                self.generation = s.generation;
            }
            if matches!(op.request.cmd, cmd::TABLE_FLUSH | cmd::TABLE_REPLACE)
                || self.requests.is_multiple_of(DUMP_EVERY)
                || !problems.is_empty()
            {
                self.check_whole(m, &mut problems);
            }
        } else if self.requests.is_multiple_of(SWEEP_EVERY) || !problems.is_empty() {
            for _ in 0..SWEEP {
                let a = self.rng.pick(self.ctx.pool);
                self.check_addr(a, m, &mut problems);
            }
        }
        if !problems.is_empty() {
            self.report(op.kind, &op.text, &describe(&result), &problems);
        }
    }
}

/// Splits `total` into `parts` near-equal shares.
fn split(total: u64, parts: usize) -> Vec<u64> {
    let p = parts as u64;
    (0..p).map(|i| total / p + u64::from(i < total % p)).collect()
}

/// The summary of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    pub mismatches: u64,
    pub text: String,
}

/// The part of `m` in each writer's pool, each cut to `quota` servers.
fn within_quota(m: &Model, sets: &[BTreeSet<IpAddr>], quota: usize) -> Model {
    sets.iter()
        .flat_map(|set| m.iter().filter(|(a, _)| set.contains(a)).take(quota))
        .map(|(&a, &c)| (a, c))
        .collect()
}

/// Runs the whole stress against `target`.
pub fn stress(target: &dyn Target, o: &StressOpts) -> Result<Summary, String> {
    let start = Instant::now();
    let quota = WORKING_SET / o.writers;
    let pools: Vec<Vec<IpAddr>> = (0..o.writers).map(|w| pool(w, 2 * quota)).collect();
    let sets: Vec<BTreeSet<IpAddr>> = pools.iter().map(|p| p.iter().copied().collect()).collect();
    let union: Vec<IpAddr> = pools.concat();
    let run = Run { opts: o, stats: Stats::default(), all: union.iter().copied().collect() };
    let mut links = (0..o.writers).map(|_| target.connect()).collect::<Result<Vec<_>, _>>()?;
    let single_total = o.writes * o.single_pct / 100;
    let single = split(single_total, o.rounds);
    let conc = split(o.writes - single_total, o.rounds);
    let mut models: Vec<Model> = vec![Model::new(); o.writers];
    let mut rng = Rng::new(o.seed);
    for round in 0..o.rounds {
        // Single-writer phase: one writer owns every address.
        let mut m: Model = models.iter().flatten().map(|(a, c)| (*a, *c)).collect();
        let mut one = Writer {
            run: &run,
            link: links[0].as_mut(),
            rng: Rng::new(rng.next()),
            who: format!("round {} single", round + 1),
            ctx: Ctx { pool: &union, quota: WORKING_SET, whole_table: true },
            generation: 0,
            requests: 0,
        };
        let mut problems = Vec::new();
        one.generation = one.summary(&mut problems).map_or(0, |s| s.generation);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let budget = single[round];
        for i in 0..budget {
            let op = if round == 0 && i == 0 {
                // The namespace may hold what an earlier run left.
                Op { kind: "initial flush", ..flush() }
            } else if i + 1 == budget {
                // The phase's last write leaves every writer within its quota.
                replace_with("replace within the quotas", within_quota(&m, &sets, quota))
            } else {
                gen_op(&mut one.rng, &one.ctx, &m)
            };
            one.step(&op, &mut m);
            run.stats.single_writes.fetch_add(1, Ordering::Relaxed);
        }
        for (w, set) in sets.iter().enumerate() {
            models[w] = m.iter().filter(|(a, _)| set.contains(a)).map(|(a, c)| (*a, *c)).collect();
        }
        // Concurrent phase.
        let shares = split(conc[round], o.writers);
        let seeds: Vec<u64> = (0..o.writers).map(|_| rng.next()).collect();
        std::thread::scope(|sc| {
            for (w, (model, link)) in models.iter_mut().zip(links.iter_mut()).enumerate() {
                let mut writer = Writer {
                    run: &run,
                    link: link.as_mut(),
                    rng: Rng::new(seeds[w]),
                    who: format!("round {} writer {w}", round + 1),
                    ctx: Ctx { pool: &pools[w], quota, whole_table: false },
                    generation: 0,
                    requests: 0,
                };
                let share = shares[w];
                sc.spawn(move || {
                    for _ in 0..share {
                        let op = gen_op(&mut writer.rng, &writer.ctx, model);
                        writer.step(&op, model);
                        writer.run.stats.concurrent_writes.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        // After the phase the whole table is the union of the models.
        let mut m: Model = models.iter().flatten().map(|(a, c)| (*a, *c)).collect();
        let mut check = Writer {
            run: &run,
            link: links[0].as_mut(),
            rng: Rng::new(0),
            who: format!("round {} end", round + 1),
            ctx: Ctx { pool: &union, quota: WORKING_SET, whole_table: true },
            generation: 0,
            requests: 0,
        };
        let mut problems = Vec::new();
        check.check_whole(&mut m, &mut problems);
        if !problems.is_empty() {
            check.report("after the concurrent phase", "full dump", "(see below)", &problems);
            for (w, set) in sets.iter().enumerate() {
                models[w] = m.iter().filter(|(a, _)| set.contains(a)).map(|(a, c)| (*a, *c)).collect();
            }
        }
    }
    let final_rows: usize = models.iter().map(Model::len).sum();
    let secs = start.elapsed().as_secs_f64();
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let st = &run.stats;
    let rejected = g(&st.writes) - g(&st.accepted);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "config-stress: {} writers, {} rounds, seed {}, working set {WORKING_SET}: {} writes ({} concurrent, {} single-writer)",
        o.writers, o.rounds, o.seed, g(&st.writes), g(&st.concurrent_writes), g(&st.single_writes)
    );
    let _ = writeln!(
        text,
        "config-stress: accepted {}, rejected {} (EINVAL {}, ERANGE {}, EEXIST {}, ENOENT {}, ENOSPC {}, EPERM {}, other {})",
        g(&st.accepted), rejected, g(&st.einval), g(&st.erange), g(&st.eexist), g(&st.enoent), g(&st.enospc), g(&st.eperm),
        g(&st.other_errno)
    );
    let _ = writeln!(
        text,
        "config-stress: checks: server-get {}, dumps {}, generation {}; final table {final_rows} servers",
        g(&st.gets), g(&st.dumps), g(&st.generation_checks)
    );
    let _ = writeln!(text, "config-stress: mismatches: {}", g(&st.mismatches));
    let _ = writeln!(
        text,
        "config-stress: time {secs:.2} s ({:.0} writes/s); answer to a write mean/max {:.2}/{:.1} ms",
        g(&st.writes) as f64 / secs.max(1e-9),
        g(&st.write_us) as f64 / 1e3 / g(&st.writes).max(1) as f64,
        g(&st.write_max_us) as f64 / 1e3,
    );
    let _ = writeln!(
        text,
        "config-stress summary writes={} accepted={} rejected={} einval={} erange={} eexist={} enoent={} enospc={} eperm={} \
         other={} gets={} dumps={} generation_checks={} mismatches={} seconds={secs:.2}",
        g(&st.writes), g(&st.accepted), rejected, g(&st.einval), g(&st.erange), g(&st.eexist), g(&st.enoent),
        g(&st.enospc), g(&st.eperm), g(&st.other_errno), g(&st.gets), g(&st.dumps), g(&st.generation_checks), g(&st.mismatches)
    );
    Ok(Summary { mismatches: g(&st.mismatches), text })
}

fn flush() -> Op {
    Op {
        kind: "flush",
        text: "table-flush".into(),
        request: wire::request(&Command::Flush),
        addr: None,
        expect: Expect::Accept(Change::Whole(Model::new())),
    }
}

/// `gue-traffic config-stress`: exit 0 if no mismatch, 1 otherwise.
pub fn config_stress(o: &StressOpts) -> i32 {
    if o.verbose {
        eprintln!("config-stress: {o:?}");
    }
    match stress(&Family, o) {
        Ok(s) => {
            print!("{}", s.text);
            let _ = std::io::stdout().flush();
            i32::from(s.mismatches != 0)
        }
        Err(e) => {
            eprintln!("config-stress: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use gue_core::config::ConfigError;
    use gue_core::heap::{empty_table, HeapTable};
    use gue_core::netlink::{decode_server, ServerOp};
    use gue_core::table::Refusal as TableRefusal;
    use ipvs_gue_ctl::extack::Refusal;

    /// A fault the simulation can have, each of which the stress must notice.
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Fault {
        None,
        /// `ENOENT` reported as `EINVAL`.
        WrongErrno,
        /// Refusals without an extack message.
        NoMessage,
        /// `table-replace` keeps the servers before a bad one.
        PartialReplace,
        /// `server-edit` resets the fields it does not name.
        EditResets,
        /// The policy lets port 0 through to the table.
        PortZero,
    }

    /// The family as the module answers it: the spec's policy (strict validation, as generic
    /// netlink does it), then `gue_core`'s decoder and table, the functions the module runs.
    struct Sim {
        state: Mutex<(HeapTable, u32)>,
        fault: Fault,
    }

    fn sim(fault: Fault) -> Sim {
        Sim { state: Mutex::new((empty_table(), 1)), fault }
    }

    /// A refusal: errno and extack message.
    type Fail = (i32, String);
    type Answer = Result<Vec<GueMessage>, Fail>;

    fn refuse<T>(errno: i32, message: impl Into<String>) -> Result<T, Fail> {
        Err((errno, message.into()))
    }

    /// `(type with flags, payload)` of each attribute; `EINVAL` for bytes left over.
    fn walk(mut bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, Fail> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = bytes.get(..2).map_or(0, |l| usize::from(u16::from_ne_bytes([l[0], l[1]])));
            if len < 4 || len > bytes.len() {
                return refuse(EINVAL, "bytes leftover after parsing attributes");
            }
            out.push((u16::from_ne_bytes([bytes[2], bytes[3]]), &bytes[4..len]));
            bytes = bytes.get((len + 3) & !3..).unwrap_or_default();
        }
        Ok(out)
    }

    /// The spec's `server-settings` policy for types `1..=max` (1 for the address alone).
    fn settings_policy(attrs: &[(u16, &[u8])], max: u16, fault: Fault) -> Result<(), Fail> {
        for &(ty, payload) in attrs {
            let kind = ty & !NLA_F_NESTED;
            if kind == 0 || kind > max {
                return refuse(EINVAL, "Unknown attribute type");
            }
            if ty & NLA_F_NESTED != 0 {
                return refuse(EINVAL, "NLA_F_NESTED not expected");
            }
            match kind {
                server_attr::PORT if payload.len() != 2 => return refuse(EINVAL, "invalid attribute length"),
                server_attr::CSUM | server_attr::FLOWLABEL if payload.len() != 1 => {
                    return refuse(EINVAL, "invalid attribute length")
                }
                server_attr::STATS => return refuse(EINVAL, "Unsupported attribute"),
                server_attr::PORT if payload == [0, 0] && fault != Fault::PortZero => {
                    return refuse(ERANGE, "integer out of range")
                }
                server_attr::CSUM if payload[0] > 2 => return refuse(ERANGE, "integer out of range"),
                server_attr::FLOWLABEL if payload[0] > 1 => return refuse(ERANGE, "integer out of range"),
                server_attr::ADDRESS | server_attr::OUTER if !(4..=16).contains(&payload.len()) => {
                    return refuse(ERANGE, "binary attribute size out of range")
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn decode(op: ServerOp, attrs: &[(u16, &[u8])]) -> Result<Command, Fail> {
        decode_server(op, attrs.iter().copied()).or_else(|fault| refuse(EINVAL, fault.error.message()))
    }

    fn server_reply(addr: InetAddr, config: RealServerConfig) -> GueMessage {
        let attrs = wire::request(&Command::Add(addr, config)).attrs;
        GueMessage { cmd: cmd::SERVER_GET, attrs }
    }

    /// `table-get`'s reply.
    fn summary_reply((table, generation): &(HeapTable, u32)) -> GueMessage {
        let attrs = [
            nla(table_attr::GENERATION, &generation.to_ne_bytes()),
            nla(table_attr::COUNT, &(table.len() as u32).to_ne_bytes()),
        ]
        .concat();
        GueMessage { cmd: cmd::TABLE_GET, attrs }
    }

    impl Sim {
        fn change(&self, adds: usize, change: impl FnMut(&mut HeapTable) -> Result<(), ConfigError>) -> Answer {
            let mut state = self.state.lock().unwrap();
            match HeapTable::changed(&state.0, adds, change) {
                Ok(next) => {
                    state.0 = next;
                    state.1 += 1;
                    Ok(vec![summary_reply(&state)])
                }
                Err(TableRefusal::Config(e)) => refuse(e.errno(), e.to_string()),
                Err(TableRefusal::NoMemory) => unreachable!("Vec aborts rather than fails"),
            }
        }

        fn answer(&self, request: &GueMessage) -> Answer {
            let attrs = walk(&request.attrs)?;
            match request.cmd {
                cmd::SERVER_ADD | cmd::SERVER_EDIT => {
                    settings_policy(&attrs, server_attr::FLOWLABEL, self.fault)?;
                    let op = if request.cmd == cmd::SERVER_ADD { ServerOp::Add } else { ServerOp::Edit };
                    let command = match decode(op, &attrs)? {
                        Command::Edit(addr, e) if self.fault == Fault::EditResets => Command::Edit(
                            addr,
                            EditFields {
                                csum: e.csum.or(Some(ChecksumMode::None)),
                                outer: e.outer.or(Some(addr)),
                                flow_label: e.flow_label.or(Some(FlowLabelMode::Zero)),
                                ..e
                            },
                        ),
                        command => command,
                    };
                    self.change(1, |t| t.apply(&command)).map(|_| Vec::new())
                }
                cmd::SERVER_DEL => {
                    settings_policy(&attrs, server_attr::ADDRESS, self.fault)?;
                    let command = decode(ServerOp::Delete, &attrs)?;
                    self.change(0, |t| t.apply(&command)).map(|_| Vec::new())
                }
                cmd::SERVER_GET => {
                    settings_policy(&attrs, server_attr::ADDRESS, self.fault)?;
                    let Command::Delete(addr) = decode(ServerOp::Delete, &attrs)? else { unreachable!() };
                    match self.state.lock().unwrap().0.get(&addr) {
                        Some(server) => Ok(vec![server_reply(addr, server.config)]),
                        None => refuse(ENOENT, ConfigError::NotFound(addr).to_string()),
                    }
                }
                cmd::TABLE_GET | cmd::TABLE_FLUSH if !attrs.is_empty() => refuse(EINVAL, "Unsupported attribute"),
                cmd::TABLE_GET => Ok(vec![summary_reply(&self.state.lock().unwrap())]),
                cmd::TABLE_FLUSH => self.change(0, |t| t.apply(&Command::Flush)),
                cmd::TABLE_REPLACE => {
                    let mut nests = Vec::new();
                    for &(ty, payload) in &attrs {
                        if ty & !NLA_F_NESTED != table_attr::SERVER {
                            return refuse(EINVAL, "Unknown attribute type");
                        }
                        if ty & NLA_F_NESTED == 0 {
                            return refuse(EINVAL, "NLA_F_NESTED is missing");
                        }
                        let inner = walk(payload)?;
                        settings_policy(&inner, server_attr::FLOWLABEL, self.fault)?;
                        nests.push(inner);
                    }
                    let mut wanted = HeapTable::with_capacity(nests.len()).expect("Vec aborts rather than fails");
                    for (index, inner) in nests.iter().enumerate() {
                        let applied = decode(ServerOp::Add, inner)
                            .and_then(|c| wanted.apply(&c).or_else(|e| refuse(e.errno(), e.to_string())));
                        if let Err((errno, message)) = applied {
                            if self.fault == Fault::PartialReplace {
                                let _ = self.change(index, |t| t.replace_with(&wanted));
                            }
                            return refuse(errno, format!("server {}: {message}", index + 1));
                        }
                    }
                    let adds = wanted.len();
                    self.change(adds, |t| t.replace_with(&wanted))
                }
                _ => refuse(EOPNOTSUPP, "unknown command"),
            }
        }
    }

    const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;

    struct SimLink<'a>(&'a Sim);

    impl Link for SimLink<'_> {
        fn execute(&mut self, request: GueMessage) -> Result<Vec<GueMessage>, NlError> {
            self.0.answer(&request).map_err(|(errno, message)| {
                let errno = if self.0.fault == Fault::WrongErrno && errno == ENOENT { EINVAL } else { errno };
                let message = (self.0.fault != Fault::NoMessage).then_some(message);
                NlError::Refused(Refusal { errno, message, bad: None, missing: None })
            })
        }

        fn dump(&mut self, _: &GueMessage) -> Result<Vec<GueMessage>, NlError> {
            let state = self.0.state.lock().unwrap();
            Ok(state.0.iter().map(|(addr, server)| server_reply(*addr, server.config)).collect())
        }
    }

    impl Target for Sim {
        fn connect(&self) -> Result<Box<dyn Link + '_>, String> {
            Ok(Box::new(SimLink(self)))
        }
    }

    fn opts(writers: usize, writes: u64, seed: u64) -> StressOpts {
        StressOpts { writers, writes, seed, rounds: 3, ..StressOpts::default() }
    }

    /// A value of the summary line.
    fn field(s: &Summary, key: &str) -> u64 {
        let line = s.text.lines().find_map(|l| l.strip_prefix("config-stress summary ")).unwrap();
        let value = line.split(' ').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')).unwrap();
        value.parse::<f64>().unwrap() as u64
    }

    #[test]
    fn model_agrees_with_module_logic() {
        for (k, seed) in [(1, 1), (4, 2), (3, 3), (8, 4)] {
            let s = stress(&sim(Fault::None), &opts(k, 1500, seed)).unwrap();
            assert_eq!(s.mismatches, 0, "{}", s.text);
            assert_eq!(field(&s, "writes"), 1500);
            let accepted = field(&s, "accepted");
            assert!(accepted > 300 && accepted < 1200, "{}", s.text);
            for errno in ["einval", "erange", "eexist", "enoent"] {
                assert!(field(&s, errno) > 0, "no {errno}: {}", s.text);
            }
            assert_eq!(field(&s, "other") + field(&s, "enospc") + field(&s, "eperm"), 0, "{}", s.text);
        }
    }

    #[test]
    fn skipped_model_update_is_caught() {
        for skip in [1, 40, 500] {
            let o = StressOpts { skip_model_update: Some(skip), ..opts(4, 1000, 5) };
            let s = stress(&sim(Fault::None), &o).unwrap();
            assert_eq!(s.mismatches, 1, "skip {skip}: {}", s.text);
        }
    }

    #[test]
    fn faults_are_caught() {
        for fault in [Fault::WrongErrno, Fault::NoMessage, Fault::PartialReplace, Fault::EditResets, Fault::PortZero] {
            let s = stress(&sim(fault), &opts(2, 3000, 7)).unwrap();
            assert!(s.mismatches > 0, "{fault:?}: {}", s.text);
        }
    }

    #[test]
    fn generated_ops_cover_every_kind() {
        let pools: Vec<IpAddr> = (0..4).flat_map(|w| pool(w, 512)).collect();
        let all: BTreeSet<IpAddr> = pools.iter().copied().collect();
        assert_eq!(all.len(), 4 * 512, "pools overlap");
        let mut rng = Rng::new(9);
        let mut m = Model::new();
        let ctx = Ctx { pool: &pools, quota: WORKING_SET, whole_table: true };
        let mut kinds = BTreeSet::new();
        for _ in 0..5000 {
            let op = gen_op(&mut rng, &ctx, &m);
            kinds.insert(op.kind);
            match &op.expect {
                Expect::Accept(Change::Set(a, c)) => {
                    m.insert(*a, *c);
                }
                Expect::Accept(Change::Remove(a)) => {
                    m.remove(a);
                }
                Expect::Accept(Change::Whole(n)) => m = n.clone(),
                Expect::Refuse(_) => {}
            }
            assert!(m.len() <= WORKING_SET);
        }
        assert!(kinds.len() >= 28, "{} kinds: {kinds:?}", kinds.len());
    }
}
