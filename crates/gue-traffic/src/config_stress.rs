//! `config-stress`: K concurrent writers against one namespace's `/proc/net/ipvs_gue`, every
//! write checked against a model.
//!
//! Each writer owns a disjoint pool of real-server addresses and keeps a model of its entries
//! (port, csum, outer). Its writes are random and adversarial: valid add/edit/del in the README
//! syntax (odd spacing, tabs, comments, CRLF, alternative IPv6 spellings), multi-line batches
//! that must apply all-or-nothing, duplicates, unknown servers, bad ports, bad addresses (fuzzed,
//! with `std::net` as the oracle for what is an address), overlong lines and words, non-UTF-8 and
//! control bytes, empty writes, and writes near and over the proc layer's 4095-byte limit.
//! After every write the writer checks the result (accepted, or the errno it expected), reads
//! the listing and compares the rows of its addresses with its model; `# last error:` must name
//! the problem whenever the write cannot have been disturbed by another writer (see [`Gate`]).
//!
//! The stress keeps at most [`WORKING_SET`] servers in the table (which holds far more), so that
//! filling or trimming all of them is one write. Rounds alternate a single-writer phase (one
//! writer owning every pool; `flush`, a fill to the working set, exact error attribution) with
//! a concurrent phase (K threads, each under a quota of [`WORKING_SET`]/K servers). The
//! last-error line is shared by all writers of a namespace, so in the concurrent phase a writer
//! checks its text exactly only for writes it made while holding the gate exclusively.
//!
//! `--skip-model-update N` is a self-test: the N-th accepted write that changes the table is
//! left out of the model, so the run must report a mismatch (and exit 1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use crate::args::{err, Options};

/// Most real servers the stress keeps in the table (the module holds far more): small enough
/// that filling or trimming all of them is one write.
pub const WORKING_SET: usize = 64;
/// Longest write the proc layer passes on (`proc_simple_write`: `PAGE_SIZE - 1`).
pub const PROC_MAX: usize = 4095;
/// Bytes of an offending word the module quotes before it cuts it with `...`.
const TOKEN_MAX: usize = 64;
/// The listing's first line.
pub const HEADER: &str = "# addr outer port csum packets bytes gso_packets drop_pmtu \
                          drop_no_route drop_no_headroom drop_bad_packet";
/// Addresses per writer pool: 64 IPv4, 64 IPv6, 32 IPv4-mapped IPv6.
const POOL_V4: u32 = 64;
const POOL_V6: u32 = 64;
const POOL_MAPPED: u32 = 32;

const EINVAL: i32 = libc::EINVAL;
const EEXIST: i32 = libc::EEXIST;
const ENOENT: i32 = libc::ENOENT;
const ENOSPC: i32 = libc::ENOSPC;
const EPERM: i32 = libc::EPERM;

// ------------------------------------------------------------------------------------------
// Options

/// `config-stress` options.
#[derive(Debug, Clone)]
pub struct StressOpts {
    pub proc_path: PathBuf,
    pub writers: usize,
    pub writes: u64,
    pub rounds: usize,
    pub single_pct: u64,
    pub strict_pct: u64,
    pub seed: u64,
    pub skip_model_update: Option<u64>,
    pub max_report: usize,
    pub verbose: bool,
}

impl Default for StressOpts {
    fn default() -> Self {
        StressOpts {
            proc_path: "/proc/net/ipvs_gue".into(),
            writers: 4,
            writes: 10_000,
            rounds: 4,
            single_pct: 20,
            strict_pct: 50,
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
            "proc" => o.proc_path = a.path()?,
            "writers" => o.writers = a.number_in(1, 16)? as usize,
            // bounded so that the per-mode shares (writes x percent) cannot overflow
            "writes" => o.writes = a.number_in(1, 1_000_000_000)?,
            "rounds" => o.rounds = a.number_in(1, 100)? as usize,
            "single-pct" => o.single_pct = a.number_in(0, 100)?,
            "strict-pct" => o.strict_pct = a.number_in(0, 100)?,
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
// The file under test

/// What the writers talk to: the proc file, or a simulation in unit tests.
pub trait Target: Sync {
    /// One `write(2)` of `data`: the byte count, or the errno.
    fn write(&self, data: &[u8]) -> Result<usize, i32>;
    /// The whole listing.
    fn read(&self) -> Result<Vec<u8>, String>;
}

/// `/proc/net/ipvs_gue` of the namespace the process runs in (or any path).
pub struct ProcFile(pub PathBuf);

impl Target for ProcFile {
    fn write(&self, data: &[u8]) -> Result<usize, i32> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.0)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        // SAFETY: `data` is a live buffer of `data.len()` bytes and the fd is open. A raw
        // write(2), so that empty and oversize writes reach the kernel exactly as given.
        let n = unsafe { libc::write(f.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO))
        } else {
            Ok(n as usize)
        }
    }

    fn read(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| format!("read {}: {e}", self.0.display()))
    }
}

// ------------------------------------------------------------------------------------------
// Model

/// Outer UDP checksum mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Csum {
    None,
    Udp,
    Remcsum,
}

impl Csum {
    const ALL: [Csum; 3] = [Csum::None, Csum::Udp, Csum::Remcsum];
    fn as_str(self) -> &'static str {
        match self {
            Csum::None => "none",
            Csum::Udp => "udp",
            Csum::Remcsum => "remcsum",
        }
    }
    fn parse(s: &str) -> Option<Csum> {
        Csum::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One real server's settings, as listed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cfg {
    pub port: u16,
    pub csum: Csum,
    pub outer: IpAddr,
}

/// Real servers by address.
pub type Model = BTreeMap<IpAddr, Cfg>;

fn fmt_row(a: &IpAddr, c: &Cfg) -> String {
    format!("{a} {} {} {}", c.outer, c.port, c.csum.as_str())
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
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
    fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// An index by weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

// ------------------------------------------------------------------------------------------
// Address pools and spellings

/// Writer `w`'s addresses: 10.(101+w).0.1-64, fd0e:(w+1)::1-40 (hex), ::ffff:10.(101+w).1.1-32.
pub fn pool(w: usize) -> Vec<IpAddr> {
    let w8 = w as u8;
    let mut p = Vec::new();
    for i in 1..=POOL_V4 {
        p.push(IpAddr::V4(Ipv4Addr::new(10, 101 + w8, 0, i as u8)));
    }
    for i in 1..=POOL_V6 {
        p.push(IpAddr::V6(Ipv6Addr::new(
            0xfd0e,
            w as u16 + 1,
            0,
            0,
            0,
            0,
            0,
            i as u16,
        )));
    }
    for i in 1..=POOL_MAPPED {
        p.push(IpAddr::V6(
            Ipv4Addr::new(10, 101 + w8, 1, i as u8).to_ipv6_mapped(),
        ));
    }
    p
}

/// Some textual form of `a` that means `a` (checked against `std`'s parser).
fn spell(rng: &mut Rng, a: &IpAddr) -> String {
    let s = match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let g = v6.segments();
            let o = v6.octets();
            match rng.below(10) {
                0..=4 => v6.to_string(),
                5 => v6.to_string().to_uppercase(),
                6 => g
                    .iter()
                    .map(|x| format!("{x:x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
                7 => g
                    .iter()
                    .map(|x| format!("{x:04x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
                8 => {
                    let head: Vec<String> = g[..6].iter().map(|x| format!("{x:x}")).collect();
                    format!("{}:{}.{}.{}.{}", head.join(":"), o[12], o[13], o[14], o[15])
                }
                _ => {
                    // Compress the first zero run even if it is not the longest (allowed on
                    // input; only output must be canonical).
                    match g.iter().position(|&x| x == 0) {
                        Some(z) => {
                            let end = (z..8).find(|&i| g[i] != 0).unwrap_or(8);
                            let part = |r: &[u16]| {
                                r.iter()
                                    .map(|x| format!("{x:x}"))
                                    .collect::<Vec<_>>()
                                    .join(":")
                            };
                            format!("{}::{}", part(&g[..z]), part(&g[end..]))
                        }
                        None => v6.to_string(),
                    }
                }
            }
        }
    };
    assert_eq!(s.parse::<IpAddr>().ok(), Some(*a), "spelling {s} of {a}");
    s
}

/// A random outer address of either family (need not be in any pool).
fn random_outer(rng: &mut Rng) -> IpAddr {
    match rng.below(3) {
        0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, rng.below(256) as u8)),
        1 => IpAddr::V4(Ipv4Addr::from(rng.next() as u32)),
        _ => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            rng.below(4) as u16,
            0,
            0,
            0,
            rng.below(3) as u16,
            rng.below(0x10000) as u16,
        )),
    }
}

/// Words the module echoes in error messages: keep them printable, without whitespace, not
/// starting with `#`, and without anything a kernel-log check looks for.
fn word_ok(w: &str) -> bool {
    !w.is_empty()
        && !w.starts_with('#')
        && w.bytes().all(|b| (b'!'..=b'~').contains(&b))
        && ![
            "BUG", "WARN", "Oops", "KASAN", "UBSAN", "ODEBUG", "panic", "refcount",
        ]
        .iter()
        .any(|p| w.to_ascii_lowercase().contains(&p.to_ascii_lowercase()))
}

/// A word that is not an address (per `std`), fuzzed from a pool address or a fixed list.
fn bad_address(rng: &mut Rng, pool: &[IpAddr]) -> String {
    const LIST: &[&str] = &[
        "10.0.0.256",
        "10.1.2",
        "1.2.3.4.5",
        "010.1.1.1",
        "10.01.1.1",
        "1.2.3.-4",
        "fd00:::1",
        "fd00::1::2",
        "fd00::1%eth0",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4::5:6:7:8",
        "gggg::1",
        "12345::1",
        ":1::2",
        "1::2:",
        "::ffff:1.2.3",
        "::1.2.3.4.5",
        "localhost",
        "0x0a000001",
        "167772161",
        "10.0.0.1/24",
        "[fd00::1]",
        "1.2.3.4:80",
        "fd00::01.2.3.4",
        "1.2.3.4.",
        ".1.2.3.4",
        "1..2.3",
        "::ffff:256.1.1.1",
        "fe80::1%1",
        "1:2:3:4:5:6:7:1.2.3.4",
        "10.0.0.1,10.0.0.2",
        "-",
        ":",
        ":::",
        "+1.2.3.4",
        "1.2.3.4e0",
    ];
    if rng.pct(40) {
        let s = rng.pick(LIST).to_string();
        debug_assert!(s.parse::<IpAddr>().is_err());
        return s;
    }
    const ALPHA: &[u8] = b"0123456789abcdefABCDEF:.:.g%/-";
    for _ in 0..50 {
        let a = rng.pick(pool);
        let mut s: Vec<u8> = spell(rng, &a).into_bytes();
        for _ in 0..rng.range(1, 3) {
            let pos = rng.below(s.len() as u64 + 1) as usize;
            match rng.below(4) {
                0 if !s.is_empty() && pos < s.len() => {
                    s.remove(pos);
                }
                1 if pos < s.len() => s[pos] = rng.pick(ALPHA),
                2 if pos < s.len() => {
                    let c = s[pos];
                    s.insert(pos, c);
                }
                _ => s.insert(pos, rng.pick(ALPHA)),
            }
        }
        let t = String::from_utf8(s).expect("ascii");
        if t.parse::<IpAddr>().is_err() && word_ok(&t) {
            return t;
        }
    }
    "10.0.0.256".into()
}

/// A word of `n` bytes (for overlong tokens).
fn long_word(rng: &mut Rng, lo: usize, hi: usize) -> String {
    let n = rng.range(lo, hi);
    let unit: &str = rng.pick(&["1", "a", "fd00:", "10.0.", "x", "9"]);
    let mut s = unit.repeat(n / unit.len() + 1);
    s.truncate(n);
    s
}

/// The module's quote of a word: cut at 64 bytes with `...`.
fn tok(s: &str) -> String {
    if s.len() > TOKEN_MAX {
        format!("{}...", &s[..TOKEN_MAX])
    } else {
        s.to_string()
    }
}

// ------------------------------------------------------------------------------------------
// Writes and what they must do

/// What a write must do.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Accepted; the table then holds this (for the writer's addresses).
    Accept(Model),
    /// Refused by the module with `errno`; `# last error: line {line}: ...` contains `needle`.
    Module {
        errno: i32,
        line: usize,
        needle: String,
    },
    /// Refused by the proc layer (`EINVAL`, empty or over 4095 bytes): the module never sees
    /// it, the last error stays as it was.
    Proc,
}

/// One write and its expected outcome.
#[derive(Clone, Debug)]
pub struct Op {
    pub kind: &'static str,
    pub data: Vec<u8>,
    pub expect: Expect,
}

/// What the generator knows about the writer's situation.
pub struct Ctx<'a> {
    pub pool: &'a [IpAddr],
    /// Most servers this writer may hold.
    pub quota: usize,
    /// The model is the whole table (single-writer phase): `flush` is allowed.
    pub whole_table: bool,
}

/// A rejected line: errno and the text the error must contain.
struct Bad {
    text: Vec<u8>,
    errno: i32,
    needle: String,
}

fn join_words(rng: &mut Rng, words: &[String]) -> String {
    let mut s = String::new();
    if rng.pct(10) {
        s.push_str(rng.pick(&[" ", "\t", "   "]));
    }
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push_str(if rng.pct(85) {
                " "
            } else {
                rng.pick(&["\t", "  ", " \t ", "\t\t"])
            });
        }
        s.push_str(w);
    }
    if rng.pct(8) {
        s.push_str(rng.pick(&[" ", "\t", "  \t"]));
    }
    s
}

fn trailing_comment(rng: &mut Rng, s: &mut String) {
    if rng.pct(8) {
        let c = rng.pick(&[
            "# note",
            "#",
            "# add 10.0.0.1 port 1",
            "#x y z",
            "## edit",
            "# del",
        ]);
        s.push_str(rng.pick(&[" ", "\t"]));
        s.push_str(c);
    }
}

fn port_text(rng: &mut Rng, p: u16) -> String {
    match rng.below(20) {
        0 => format!("{p:05}"),
        1 => format!("0{p}"),
        _ => p.to_string(),
    }
}

fn random_port(rng: &mut Rng) -> u16 {
    match rng.below(10) {
        0 => 1,
        1 => 65535,
        2 => 5501,
        _ => rng.range(1, 65535) as u16,
    }
}

/// Option words for `add`/`edit`, in random order; `fields` = (port, csum, outer) to give.
fn option_words(
    rng: &mut Rng,
    port: Option<u16>,
    csum: Option<Csum>,
    outer: Option<IpAddr>,
) -> Vec<String> {
    let mut opts: Vec<[String; 2]> = Vec::new();
    if let Some(p) = port {
        opts.push(["port".into(), port_text(rng, p)]);
    }
    if let Some(c) = csum {
        opts.push(["csum".into(), c.as_str().into()]);
    }
    if let Some(o) = outer {
        opts.push(["outer".into(), spell(rng, &o)]);
    }
    shuffle(rng, &mut opts);
    opts.into_iter().flatten().collect()
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

fn free_addr(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Option<IpAddr> {
    let free: Vec<&IpAddr> = ctx.pool.iter().filter(|a| !s.contains_key(a)).collect();
    if free.is_empty() {
        None
    } else {
        Some(*rng.pick::<&IpAddr>(&free))
    }
}

fn used_addr(rng: &mut Rng, s: &Model) -> Option<IpAddr> {
    if s.is_empty() {
        return None;
    }
    let i = rng.below(s.len() as u64) as usize;
    s.keys().nth(i).copied()
}

fn any_pool_addr(rng: &mut Rng, ctx: &Ctx<'_>) -> IpAddr {
    rng.pick(ctx.pool)
}

/// A valid `add` of a new server (`None` when the quota or pool is exhausted).
fn add_line(rng: &mut Rng, ctx: &Ctx<'_>, s: &mut Model) -> Option<String> {
    if s.len() >= ctx.quota {
        return None;
    }
    let a = free_addr(rng, ctx, s)?;
    let port = random_port(rng);
    let csum = if rng.pct(60) {
        Some(rng.pick(&Csum::ALL))
    } else {
        None
    };
    let outer = if rng.pct(55) {
        Some(random_outer(rng))
    } else {
        None
    };
    let mut words = vec!["add".to_string(), spell(rng, &a)];
    words.extend(option_words(rng, Some(port), csum, outer));
    let mut line = join_words(rng, &words);
    trailing_comment(rng, &mut line);
    s.insert(
        a,
        Cfg {
            port,
            csum: csum.unwrap_or(Csum::None),
            outer: outer.unwrap_or(a),
        },
    );
    Some(line)
}

fn edit_line(rng: &mut Rng, s: &mut Model) -> Option<String> {
    let a = used_addr(rng, s)?;
    let mask = rng.range(1, 7);
    let port = (mask & 1 != 0).then(|| random_port(rng));
    let csum = (mask & 2 != 0).then(|| rng.pick(&Csum::ALL));
    let outer = (mask & 4 != 0).then(|| if rng.pct(15) { a } else { random_outer(rng) });
    let mut words = vec!["edit".to_string(), spell(rng, &a)];
    words.extend(option_words(rng, port, csum, outer));
    let mut line = join_words(rng, &words);
    trailing_comment(rng, &mut line);
    let c = s.get_mut(&a).expect("used");
    if let Some(p) = port {
        c.port = p;
    }
    if let Some(x) = csum {
        c.csum = x;
    }
    if let Some(o) = outer {
        c.outer = o;
    }
    Some(line)
}

fn del_line(rng: &mut Rng, s: &mut Model) -> Option<String> {
    let a = used_addr(rng, s)?;
    s.remove(&a);
    let words = ["del".to_string(), spell(rng, &a)];
    let mut line = join_words(rng, &words);
    trailing_comment(rng, &mut line);
    Some(line)
}

fn noop_line(rng: &mut Rng) -> String {
    rng.pick(&[
        "",
        " ",
        "\t",
        "# a comment",
        "   # indented comment",
        "#",
        "#add 10.0.0.1",
    ])
    .to_string()
}

/// A line that must succeed, applied to `s`.
fn valid_line(rng: &mut Rng, ctx: &Ctx<'_>, s: &mut Model) -> String {
    let n = s.len() as u64;
    let room = (ctx.quota as u64).saturating_sub(n);
    let weights = [
        2,                                   // noop
        if ctx.whole_table { 1 } else { 0 }, // flush
        room * 3 + 1,                        // add
        n * 2,                               // edit
        n,                                   // del
    ];
    let line = match rng.weighted(&weights) {
        0 => Some(noop_line(rng)),
        1 => {
            s.clear();
            Some(join_words(rng, &["flush".to_string()]))
        }
        2 => add_line(rng, ctx, s),
        3 => edit_line(rng, s),
        _ => del_line(rng, s),
    };
    line.unwrap_or_else(|| noop_line(rng))
}

/// A line the module must refuse, given state `s` (not changed).
fn bad_line(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Bad {
    loop {
        if let Some(b) = try_bad_line(rng, ctx, s) {
            return b;
        }
    }
}

fn einval(text: String, needle: String) -> Option<Bad> {
    Some(Bad {
        text: text.into_bytes(),
        errno: EINVAL,
        needle,
    })
}

fn try_bad_line(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Option<Bad> {
    // A new address for syntax errors in `add` (any pool address works: parse errors come
    // before table lookups).
    let some = any_pool_addr(rng, ctx);
    let sp = |rng: &mut Rng, a: &IpAddr| spell(rng, a);
    match rng.weighted(&[8, 8, 10, 8, 6, 5, 4, 4, 4, 3, 4, 3, 3, 3, 10]) {
        0 => {
            // duplicate add
            let a = used_addr(rng, s)?;
            let mut w = vec!["add".into(), sp(rng, &a)];
            let csum = rng.pct(50).then(|| rng.pick(&Csum::ALL));
            let p = random_port(rng);
            w.extend(option_words(rng, Some(p), csum, None));
            Some(Bad {
                text: join_words(rng, &w).into_bytes(),
                errno: EEXIST,
                needle: format!("real server {a} already exists; use edit"),
            })
        }
        1 => {
            // edit/del of a server that is not there
            let a = free_addr(rng, ctx, s)?;
            let w = if rng.pct(50) {
                vec!["del".into(), sp(rng, &a)]
            } else {
                let mut w = vec!["edit".into(), sp(rng, &a)];
                let p = random_port(rng);
                w.extend(option_words(rng, Some(p), None, None));
                w
            };
            Some(Bad {
                text: join_words(rng, &w).into_bytes(),
                errno: ENOENT,
                needle: format!("real server {a} does not exist"),
            })
        }
        2 => {
            // bad port
            let (v, needle) = if rng.pct(50) {
                let v = match rng.below(8) {
                    0 => long_word_digits(rng),
                    _ => rng
                        .pick(&[
                            "0",
                            "00",
                            "000000",
                            "65536",
                            "70000",
                            "99999",
                            "655350",
                            "4294967296",
                            "18446744073709551616",
                        ])
                        .to_string(),
                };
                let n = format!("port {} out of range 1-65535", tok(&v));
                (v, n)
            } else {
                let v = rng
                    .pick(&[
                        "abc", "-1", "+5", "0x50", "5.0", "1e3", "80a", "5,6", "port", "csum",
                        "0b1", "-0",
                    ])
                    .to_string();
                let n = format!("invalid port '{}': expected a number 1-65535", tok(&v));
                (v, n)
            };
            let (cmd, a) = match rng.below(4) {
                0 => ("add", some),
                1 => ("add", used_addr(rng, s).unwrap_or(some)),
                2 => ("edit", used_addr(rng, s).unwrap_or(some)),
                _ => ("edit", some),
            };
            let mut w = vec![cmd.to_string(), sp(rng, &a)];
            if rng.pct(30) {
                w.extend(["csum".into(), rng.pick(&Csum::ALL).as_str().into()]);
            }
            w.extend(["port".into(), v]);
            einval(join_words(rng, &w), needle)
        }
        3 => {
            // bad real server address
            let bad = if rng.pct(10) {
                long_word(rng, 65, 300)
            } else {
                bad_address(rng, ctx.pool)
            };
            if !word_ok(&bad) || bad.parse::<IpAddr>().is_ok() {
                return None;
            }
            let cmd = rng.pick(&["add", "edit", "del"]);
            let mut w = vec![cmd.to_string(), bad.clone()];
            if cmd != "del" {
                let p = random_port(rng);
                w.extend(option_words(rng, Some(p), None, None));
            }
            einval(
                join_words(rng, &w),
                format!("'{}' is not an IPv4 or IPv6 address", tok(&bad)),
            )
        }
        4 => {
            // bad outer address
            let bad = bad_address(rng, ctx.pool);
            let (cmd, a) = match rng.below(3) {
                0 => ("add", some),
                1 => ("edit", used_addr(rng, s).unwrap_or(some)),
                _ => ("edit", some),
            };
            let mut w = vec![cmd.to_string(), sp(rng, &a)];
            if cmd == "add" || rng.pct(50) {
                w.extend(["port".into(), random_port(rng).to_string()]);
            }
            w.extend(["outer".into(), bad.clone()]);
            einval(
                join_words(rng, &w),
                format!("'{}' is not an IPv4 or IPv6 address", tok(&bad)),
            )
        }
        5 => {
            // unknown command
            let c = match rng.below(4) {
                0 => long_word(rng, 65, 200),
                1 => random_lower(rng),
                _ => rng
                    .pick(&[
                        "ADD", "Add", "FLUSH", "Del", "delete", "remove", "list", "set", "addd",
                        "flushh", "dell", "ed1t", "add,", "-a", "show", "edit:",
                    ])
                    .to_string(),
            };
            if ["add", "edit", "del", "flush"].contains(&c.as_str()) || !word_ok(&c) {
                return None;
            }
            let mut w = vec![c.clone()];
            if rng.pct(70) {
                w.push(sp(rng, &some));
                w.extend(["port".into(), "1".into()]);
            }
            einval(
                join_words(rng, &w),
                format!(
                    "unknown command '{}' (expected add, edit, del or flush)",
                    tok(&c)
                ),
            )
        }
        6 => {
            // unknown keyword
            let kw = rng
                .pick(&[
                    "mtu", "weight", "Port", "CSUM", "Outer", "ports", "port=80", "csum=udp", "-p",
                    "--port", "tos", "ttl", "outer6",
                ])
                .to_string();
            let (cmd, a) = if rng.pct(50) {
                ("add", some)
            } else {
                ("edit", used_addr(rng, s).unwrap_or(some))
            };
            let mut w = vec![cmd.to_string(), sp(rng, &a)];
            if rng.pct(60) {
                w.extend(["port".into(), random_port(rng).to_string()]);
            }
            w.extend([kw.clone(), "1".into()]);
            einval(
                join_words(rng, &w),
                format!("unknown keyword '{kw}' (expected port, csum or outer)"),
            )
        }
        7 => {
            // missing value
            let kw = rng.pick(&["port", "csum", "outer"]);
            let (cmd, a) = if rng.pct(50) {
                ("add", some)
            } else {
                ("edit", used_addr(rng, s).unwrap_or(some))
            };
            let mut w = vec![cmd.to_string(), sp(rng, &a)];
            if kw != "port" && rng.pct(50) {
                w.extend(["port".into(), "80".into()]);
            }
            w.push(kw.into());
            let mut line = join_words(rng, &w);
            if rng.pct(30) {
                line.push_str(" # the value is in a comment: 80");
            }
            einval(line, format!("missing value after '{kw}'"))
        }
        8 => {
            // bad checksum mode
            let v = rng
                .pick(&[
                    "crc32", "UDP", "None", "rem", "remcsum2", "0", "zero", "csum", "off", "full",
                ])
                .to_string();
            let (cmd, a) = if rng.pct(50) {
                ("add", some)
            } else {
                ("edit", used_addr(rng, s).unwrap_or(some))
            };
            let mut w = vec![
                cmd.to_string(),
                sp(rng, &a),
                "port".into(),
                "9".into(),
                "csum".into(),
                v.clone(),
            ];
            if rng.pct(30) {
                w.extend(["outer".into(), "192.0.2.1".into()]);
            }
            einval(
                join_words(rng, &w),
                format!("unknown checksum mode '{v}' (expected none, udp or remcsum)"),
            )
        }
        9 => {
            // duplicate option
            let kw = rng.pick(&["port", "csum", "outer"]);
            let val = |rng: &mut Rng| -> String {
                match kw {
                    "port" => random_port(rng).to_string(),
                    "csum" => rng.pick(&Csum::ALL).as_str().into(),
                    _ => {
                        let o = random_outer(rng);
                        spell(rng, &o)
                    }
                }
            };
            let (cmd, a) = if rng.pct(50) {
                ("add", some)
            } else {
                ("edit", used_addr(rng, s).unwrap_or(some))
            };
            let mut w = vec![cmd.to_string(), sp(rng, &a)];
            if kw != "port" {
                w.extend(["port".into(), "7".into()]);
            }
            let v1 = val(rng);
            let v2 = val(rng);
            w.extend([kw.into(), v1, kw.into(), v2]);
            einval(join_words(rng, &w), format!("duplicate option '{kw}'"))
        }
        10 => {
            // add without a port
            let a = if rng.pct(70) {
                some
            } else {
                used_addr(rng, s).unwrap_or(some)
            };
            let mut w = vec!["add".to_string(), sp(rng, &a)];
            let csum = rng.pct(40).then(|| rng.pick(&Csum::ALL));
            let outer = rng.pct(40).then(|| random_outer(rng));
            w.extend(option_words(rng, None, csum, outer));
            let mut line = join_words(rng, &w);
            if rng.pct(20) {
                line.push_str(" # port 80");
            }
            einval(line, "missing port: add needs 'port <1-65535>'".into())
        }
        11 => {
            // edit without options
            let a = if rng.pct(50) {
                some
            } else {
                used_addr(rng, s).unwrap_or(some)
            };
            let words = ["edit".to_string(), sp(rng, &a)];
            let mut line = join_words(rng, &words);
            trailing_comment(rng, &mut line);
            einval(
                line,
                "nothing to edit: give at least one of port, csum, outer".into(),
            )
        }
        12 => {
            // trailing text
            let t = match rng.below(4) {
                0 => long_word(rng, 65, 150),
                _ => rng
                    .pick(&["now", "all", "10.0.0.1", "port", "-f", "flush", "x#y"])
                    .to_string(),
            };
            let w = if rng.pct(50) {
                let a = if rng.pct(50) {
                    some
                } else {
                    used_addr(rng, s).unwrap_or(some)
                };
                vec!["del".to_string(), sp(rng, &a), t.clone()]
            } else {
                vec!["flush".to_string(), t.clone()]
            };
            einval(join_words(rng, &w), format!("trailing text '{}'", tok(&t)))
        }
        13 => {
            // missing address
            let cmd = rng.pick(&["add", "edit", "del"]);
            let mut line = join_words(rng, &[cmd.to_string()]);
            if rng.pct(30) {
                line.push_str(" # 10.0.0.1 port 1");
            }
            einval(line, format!("missing real server address after '{cmd}'"))
        }
        _ => {
            // a control, NUL or non-ASCII byte (non-UTF-8 or UTF-8) somewhere in a line
            let mut scratch = s.clone();
            let base = if rng.pct(50) {
                valid_line(rng, ctx, &mut scratch).into_bytes()
            } else {
                bad_line(rng, ctx, s).text
            };
            let ins: &[u8] = rng.pick::<&[u8]>(&[
                &[0xff],
                &[0xfe],
                &[0xc3, 0xa9],
                &[0xe2, 0x82, 0xac],
                &[0xc3, 0x28],
                &[0x80],
                &[0x00],
                &[0x01],
                &[0x7f],
                &[0x1b],
                &[0x0c],
                &[0x0b],
                &[0x0d, 0x20],
                &[0xf0, 0x9f, 0x98, 0x80],
                &[0xed, 0xa0, 0x80],
                &[0xc0, 0xaf],
            ]);
            if !base
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
            {
                return None;
            }
            let pos = rng.below(base.len() as u64 + 1) as usize;
            let mut text = base[..pos].to_vec();
            text.extend_from_slice(ins);
            text.extend_from_slice(&base[pos..]);
            Some(Bad {
                text,
                errno: EINVAL,
                needle: format!(
                    "invalid byte {:#04x} at column {}: only printable ASCII is accepted",
                    ins[0],
                    pos + 1
                ),
            })
        }
    }
}

fn long_word_digits(rng: &mut Rng) -> String {
    "1".repeat(rng.range(20, 300))
}

fn random_lower(rng: &mut Rng) -> String {
    let n = rng.range(1, 12);
    (0..n)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

/// Joins lines with `\n` (sometimes `\r\n`); the last line ends with one of those or nothing.
fn join_lines(rng: &mut Rng, lines: &[Vec<u8>]) -> Vec<u8> {
    let crlf = rng.pct(10);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        out.extend_from_slice(l);
        let last = i + 1 == lines.len();
        if !last || rng.pct(80) {
            if crlf || rng.pct(3) {
                out.push(b'\r');
            }
            out.push(b'\n');
        }
    }
    out
}

/// Lines of a write, as the module numbers them.
fn count_lines(data: &[u8]) -> usize {
    data.iter().filter(|&&b| b == b'\n').count() + 1
}

/// A batch of valid lines then (optionally) one bad line and anything after it.
fn batch(
    rng: &mut Rng,
    ctx: &Ctx<'_>,
    s: &Model,
    n_valid: usize,
    bad: bool,
) -> (Vec<Vec<u8>>, Expect) {
    let mut scratch = s.clone();
    let mut lines: Vec<Vec<u8>> = (0..n_valid)
        .map(|_| valid_line(rng, ctx, &mut scratch).into_bytes())
        .collect();
    if !bad {
        return (lines, Expect::Accept(scratch));
    }
    let b = bad_line(rng, ctx, &scratch);
    lines.push(b.text);
    let k = lines.len();
    for _ in 0..rng.below(3) {
        // after the error: never applied
        let mut junk = scratch.clone();
        lines.push(if rng.pct(50) {
            valid_line(rng, ctx, &mut junk).into_bytes()
        } else {
            bad_line(rng, ctx, &junk).text
        });
    }
    (
        lines,
        Expect::Module {
            errno: b.errno,
            line: k,
            needle: b.needle,
        },
    )
}

/// Pads `lines` with a comment line (before the last line if `keep_last`) so that the joined
/// write is exactly `target` bytes; `None` if it is already too long.
fn pad_to(lines: &mut Vec<Vec<u8>>, target: usize, keep_last: bool) -> Option<Vec<u8>> {
    let joined = |l: &[Vec<u8>]| -> Vec<u8> { l.join(&b'\n') };
    let base = joined(lines).len() + 1; // + the padding line's separator
    if base + 1 > target {
        return None;
    }
    let mut pad = b"#".to_vec();
    pad.resize(target - base, b'=');
    let at = if keep_last {
        lines.len() - 1
    } else {
        lines.len()
    };
    lines.insert(at, pad);
    let out = joined(lines);
    debug_assert_eq!(out.len(), target);
    Some(out)
}

/// One random write for a writer whose model is `s`.
pub fn gen_op(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Op {
    loop {
        let op = gen_op_once(rng, ctx, s);
        let ok_size = match op.expect {
            Expect::Proc => op.data.is_empty() || op.data.len() > PROC_MAX,
            _ => !op.data.is_empty() && op.data.len() <= PROC_MAX,
        };
        if ok_size {
            return op;
        }
    }
}

fn gen_op_once(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Op {
    let w: [u64; 11] = [
        30,                                  // 0 valid single line
        12,                                  // 1 valid batch
        3,                                   // 2 overlong valid line
        30,                                  // 3 one bad line
        12,                                  // 4 batch with a bad line
        2,                                   // 5 empty write
        2,                                   // 6 4095-byte valid write
        1,                                   // 7 4095-byte write, bad last line
        3,                                   // 8 over the proc limit
        if ctx.whole_table { 3 } else { 0 }, // 9 flush batches
        1,                                   // 10 odd-but-valid writes ("\n", comments only)
    ];
    match rng.weighted(&w) {
        0 => {
            let (lines, e) = batch(rng, ctx, s, 1, false);
            Op {
                kind: "valid line",
                data: join_lines(rng, &lines),
                expect: e,
            }
        }
        1 => {
            let n = if rng.pct(15) {
                rng.range(13, 60)
            } else {
                rng.range(2, 12)
            };
            let (lines, e) = batch(rng, ctx, s, n, false);
            Op {
                kind: "valid batch",
                data: join_lines(rng, &lines),
                expect: e,
            }
        }
        2 => {
            let mut scratch = s.clone();
            let mut line = valid_line(rng, ctx, &mut scratch);
            let pad = rng.range(200, 3500);
            line.push_str(&" \t".repeat(pad / 2));
            if rng.pct(50) {
                line.push_str(" # ");
                line.push_str(&"long comment ".repeat(rng.range(1, 20)));
            }
            Op {
                kind: "overlong valid line",
                data: line.into_bytes(),
                expect: Expect::Accept(scratch),
            }
        }
        3 => {
            let (lines, e) = batch(rng, ctx, s, 0, true);
            Op {
                kind: "bad line",
                data: join_lines(rng, &lines),
                expect: e,
            }
        }
        4 => {
            let n = if rng.pct(10) {
                rng.range(13, 60)
            } else {
                rng.range(1, 10)
            };
            let (lines, e) = batch(rng, ctx, s, n, true);
            Op {
                kind: "batch with a bad line",
                data: join_lines(rng, &lines),
                expect: e,
            }
        }
        5 => Op {
            kind: "empty write",
            data: Vec::new(),
            expect: Expect::Proc,
        },
        6 => {
            let n = rng.range(1, 40);
            let (mut lines, e) = batch(rng, ctx, s, n, false);
            match pad_to(&mut lines, PROC_MAX, false) {
                Some(data) => Op {
                    kind: "4095-byte valid write",
                    data,
                    expect: e,
                },
                None => gen_op_once(rng, ctx, s),
            }
        }
        7 => {
            let n = rng.range(1, 30);
            let (mut lines, e) = batch(rng, ctx, s, n, false);
            let scratch = match e {
                Expect::Accept(m) => m,
                _ => unreachable!(),
            };
            let b = bad_line(rng, ctx, &scratch);
            lines.push(b.text);
            match pad_to(&mut lines, PROC_MAX, true) {
                Some(data) => {
                    let k = count_lines(&data);
                    Op {
                        kind: "4095-byte write, bad last line",
                        data,
                        expect: Expect::Module {
                            errno: b.errno,
                            line: k,
                            needle: b.needle,
                        },
                    }
                }
                None => gen_op_once(rng, ctx, s),
            }
        }
        8 => {
            let size = match rng.below(4) {
                0 => PROC_MAX + 1,
                1 => PROC_MAX + 2,
                2 => rng.range(PROC_MAX + 3, 70_000),
                _ => 1 << 20,
            };
            // valid content (it would change the table if it were applied)
            let n = rng.range(1, 20);
            let (lines, _) = batch(rng, ctx, s, n, false);
            let mut data = join_lines(rng, &lines);
            data.push(b'\n');
            while data.len() < size {
                data.extend_from_slice(b"# padding to exceed the proc write limit\n");
            }
            data.truncate(size);
            Op {
                kind: "write over 4095 bytes",
                data,
                expect: Expect::Proc,
            }
        }
        9 => flush_op(rng, ctx, s),
        _ => {
            let data: &[u8] = rng.pick::<&[u8]>(&[
                b"\n",
                b"\n\n\n",
                b"# only a comment\n",
                b" ",
                b"\t\n",
                b"\r\n",
                b"#",
            ]);
            Op {
                kind: "no-op write",
                data: data.to_vec(),
                expect: Expect::Accept(s.clone()),
            }
        }
    }
}

/// Batches with `flush` (single-writer phase only).
fn flush_op(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Op {
    let mut scratch = s.clone();
    let mut lines = Vec::new();
    for _ in 0..rng.below(4) {
        lines.push(valid_line(rng, ctx, &mut scratch).into_bytes());
    }
    lines.push(b"flush".to_vec());
    scratch.clear();
    for _ in 0..rng.below(6) {
        lines.push(valid_line(rng, ctx, &mut scratch).into_bytes());
    }
    if rng.pct(30) {
        let b = bad_line(rng, ctx, &scratch);
        lines.push(b.text);
        let k = lines.len();
        return Op {
            kind: "flush batch with a bad line",
            data: join_lines(rng, &lines),
            expect: Expect::Module {
                errno: b.errno,
                line: k,
                needle: b.needle,
            },
        };
    }
    Op {
        kind: "flush batch",
        data: join_lines(rng, &lines),
        expect: Expect::Accept(scratch),
    }
}

/// Fills the table to the working set (single-writer phase): the largest batch of adds.
fn fill_op(rng: &mut Rng, ctx: &Ctx<'_>, s: &Model) -> Op {
    let mut scratch = s.clone();
    let mut text = Vec::new();
    while scratch.len() < WORKING_SET {
        let a = free_addr(rng, ctx, &scratch).expect("pool");
        let port = 4000 + scratch.len() as u16;
        scratch.insert(
            a,
            Cfg {
                port,
                csum: Csum::Udp,
                outer: a,
            },
        );
        text.extend_from_slice(format!("add {a} port {port} csum udp\n").as_bytes());
    }
    if text.is_empty() {
        text = b"# already at the working set\n".to_vec();
    }
    Op {
        kind: "fill the table to the working set",
        data: text,
        expect: Expect::Accept(scratch),
    }
}

/// Deletes what writer pools hold beyond `quota` (before a concurrent phase).
fn trim_op(pools: &[Vec<IpAddr>], quota: usize, s: &Model) -> Option<Op> {
    let mut scratch = s.clone();
    let mut text = Vec::new();
    for p in pools {
        let held: Vec<IpAddr> = p
            .iter()
            .filter(|a| scratch.contains_key(a))
            .copied()
            .collect();
        for a in held.iter().skip(quota) {
            scratch.remove(a);
            text.extend_from_slice(format!("del {a}\n").as_bytes());
        }
    }
    if text.is_empty() {
        return None;
    }
    // WORKING_SET dels of the longest addresses still fit in one write.
    Some(Op {
        kind: "trim to the per-writer quota",
        data: text,
        expect: Expect::Accept(scratch),
    })
}

// ------------------------------------------------------------------------------------------
// The listing

/// A parsed listing.
#[derive(Debug, Default)]
pub struct Listing {
    pub rows: Model,
    pub last_error: Option<String>,
    /// Anything malformed.
    pub problems: Vec<String>,
}

pub fn parse_listing(bytes: &[u8]) -> Listing {
    let mut l = Listing::default();
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            l.problems.push(format!("listing is not UTF-8: {e}"));
            return l;
        }
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h == HEADER => {}
        other => l.problems.push(format!("bad header {other:?}")),
    }
    for line in lines {
        if let Some(msg) = line.strip_prefix("# last error: ") {
            if l.last_error.replace(msg.to_string()).is_some() {
                l.problems.push("two '# last error:' lines".into());
            }
            continue;
        }
        if line.starts_with('#') {
            l.problems.push(format!("unexpected comment line {line:?}"));
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() != 11 {
            l.problems
                .push(format!("row with {} fields: {line:?}", f.len()));
            continue;
        }
        let addr = f[0].parse::<IpAddr>();
        let outer = f[1].parse::<IpAddr>();
        let port = f[2].parse::<u16>();
        let csum = Csum::parse(f[3]);
        let (Ok(addr), Ok(outer), Ok(port), Some(csum)) = (addr, outer, port, csum) else {
            l.problems.push(format!("unparsable row {line:?}"));
            continue;
        };
        if addr.to_string() != f[0]
            || outer.to_string() != f[1]
            || port.to_string() != f[2]
            || port == 0
        {
            l.problems
                .push(format!("row not in canonical form: {line:?}"));
        }
        if f[4..].iter().any(|c| *c != "0") {
            l.problems
                .push(format!("nonzero counters without traffic: {line:?}"));
        }
        if l.rows.insert(addr, Cfg { port, csum, outer }).is_some() {
            l.problems.push(format!("{addr} listed twice"));
        }
    }
    if l.rows.len() > WORKING_SET {
        l.problems.push(format!(
            "{} rows listed (the stress keeps at most {WORKING_SET})",
            l.rows.len()
        ));
    }
    l
}

fn well_formed_error(t: &str) -> bool {
    t.strip_prefix("line ")
        .and_then(|r| r.split_once(": "))
        .is_some_and(|(n, msg)| n.parse::<usize>().is_ok_and(|n| n > 0) && !msg.is_empty())
}

// ------------------------------------------------------------------------------------------
// Running

/// Counts shared by all writers.
#[derive(Default)]
pub struct Stats {
    pub writes: AtomicU64,
    pub bytes: AtomicU64,
    pub accepted: AtomicU64,
    pub einval: AtomicU64,
    pub eexist: AtomicU64,
    pub enoent: AtomicU64,
    pub enospc: AtomicU64,
    pub eperm: AtomicU64,
    pub other_errno: AtomicU64,
    /// Rejections the module made (it logs one "rejected configuration" line for each).
    pub module_rejected: AtomicU64,
    pub proc_rejected: AtomicU64,
    pub strict_checks: AtomicU64,
    pub loose_checks: AtomicU64,
    pub mismatches: AtomicU64,
    /// Accepted writes that changed the table (the self-test counts these).
    pub changing: AtomicU64,
    pub concurrent_writes: AtomicU64,
    pub single_writes: AtomicU64,
    /// write(2) time of accepted / rejected writes and listing read time: sum and max, in us.
    pub accepted_us: AtomicU64,
    pub accepted_max_us: AtomicU64,
    pub rejected_us: AtomicU64,
    pub rejected_max_us: AtomicU64,
    pub read_us: AtomicU64,
    pub read_max_us: AtomicU64,
}

/// Serialises "strict" writes: ordinary writes share it, a strict one holds it alone from its
/// write to its listing read, so the last-error line it reads is its own.
pub type Gate = RwLock<()>;

struct Run<'a> {
    target: &'a dyn Target,
    opts: &'a StressOpts,
    stats: Stats,
    gate: Gate,
    /// Every writer's pool, for spotting rows nobody owns.
    all: BTreeSet<IpAddr>,
}

fn esc(data: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in data.iter().take(max) {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            b' '..=b'~' => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if data.len() > max {
        let _ = write!(s, "...({} bytes)", data.len());
    }
    s
}

impl Run<'_> {
    fn report(
        &self,
        who: &str,
        op: &Op,
        result: &Result<usize, i32>,
        last: &Option<String>,
        what: &[String],
    ) {
        let n = self.stats.mismatches.fetch_add(1, Ordering::Relaxed) + 1;
        if (n as usize) > self.opts.max_report {
            return;
        }
        let res = match result {
            Ok(k) => format!("accepted ({k} bytes)"),
            Err(e) => format!("errno {e} ({})", errno_name(*e)),
        };
        let msg = format!(
            "MISMATCH {n} [{who}] {}: write ({} bytes) \"{}\"\n    kernel: {res}; last error: {}\n    {}",
            op.kind,
            op.data.len(),
            esc(&op.data, 400),
            last.as_deref().unwrap_or("(none)"),
            what.join("\n    ")
        );
        eprintln!("{msg}");
    }

    /// Does `op`, reads the listing, checks both against the model `m` (the writer's rows,
    /// whole table if `whole`), updates the model. Returns false on a mismatch.
    fn step(
        &self,
        who: &str,
        pool: &BTreeSet<IpAddr>,
        m: &mut Model,
        op: &Op,
        strict: bool,
        whole: bool,
    ) -> bool {
        let _guard_shared;
        let _guard_excl;
        if strict {
            _guard_excl = Some(self.gate.write().unwrap());
            _guard_shared = None;
        } else {
            _guard_shared = Some(self.gate.read().unwrap());
            _guard_excl = None;
        }
        let before = if strict && matches!(op.expect, Expect::Proc) {
            self.target
                .read()
                .ok()
                .map(|b| parse_listing(&b).last_error)
        } else {
            None
        };
        let t0 = Instant::now();
        let result = self.target.write(&op.data);
        let t1 = Instant::now();
        let read = self.target.read();
        let (w_us, r_us) = ((t1 - t0).as_micros() as u64, t1.elapsed().as_micros() as u64);
        let (sum, max) = if result.is_ok() {
            (&self.stats.accepted_us, &self.stats.accepted_max_us)
        } else {
            (&self.stats.rejected_us, &self.stats.rejected_max_us)
        };
        sum.fetch_add(w_us, Ordering::Relaxed);
        max.fetch_max(w_us, Ordering::Relaxed);
        self.stats.read_us.fetch_add(r_us, Ordering::Relaxed);
        self.stats.read_max_us.fetch_max(r_us, Ordering::Relaxed);
        let listing = match read {
            Ok(b) => parse_listing(&b),
            Err(e) => Listing {
                problems: vec![e],
                ..Default::default()
            },
        };
        drop(_guard_excl);
        drop(_guard_shared);

        let st = &self.stats;
        st.writes.fetch_add(1, Ordering::Relaxed);
        st.bytes.fetch_add(op.data.len() as u64, Ordering::Relaxed);
        match result {
            Ok(_) => st.accepted.fetch_add(1, Ordering::Relaxed),
            Err(EINVAL) => st.einval.fetch_add(1, Ordering::Relaxed),
            Err(EEXIST) => st.eexist.fetch_add(1, Ordering::Relaxed),
            Err(ENOENT) => st.enoent.fetch_add(1, Ordering::Relaxed),
            Err(ENOSPC) => st.enospc.fetch_add(1, Ordering::Relaxed),
            Err(EPERM) => st.eperm.fetch_add(1, Ordering::Relaxed),
            Err(_) => st.other_errno.fetch_add(1, Ordering::Relaxed),
        };
        if let Err(e) = result {
            if matches!(op.expect, Expect::Proc) && e == EINVAL {
                st.proc_rejected.fetch_add(1, Ordering::Relaxed);
            } else if e != EPERM {
                st.module_rejected.fetch_add(1, Ordering::Relaxed);
            }
        }

        let mut what: Vec<String> = listing.problems.clone();
        // 1. the write's result
        let want_err = match &op.expect {
            Expect::Accept(_) => None,
            Expect::Module { errno, .. } => Some(*errno),
            Expect::Proc => Some(EINVAL),
        };
        match (want_err, &result) {
            (None, Ok(n)) if *n == op.data.len() => {}
            (None, Ok(n)) => what.push(format!("short write: {n} of {} bytes", op.data.len())),
            (None, Err(e)) => what.push(format!(
                "expected accepted, got errno {e} ({})",
                errno_name(*e)
            )),
            (Some(w), Err(e)) if *e == w => {}
            (Some(w), r) => what.push(format!(
                "expected errno {w} ({}{}), got {}",
                errno_name(w),
                if matches!(op.expect, Expect::Proc) {
                    " from the proc layer"
                } else {
                    ""
                },
                match r {
                    Ok(n) => format!("accepted ({n} bytes)"),
                    Err(e) => format!("errno {e} ({})", errno_name(*e)),
                }
            )),
        }
        // 2. the last error line
        if strict {
            st.strict_checks.fetch_add(1, Ordering::Relaxed);
            match &op.expect {
                Expect::Accept(_) => {
                    if let Some(t) = &listing.last_error {
                        what.push(format!("accepted write left '# last error: {t}'"));
                    }
                }
                Expect::Module { line, needle, .. } => match &listing.last_error {
                    None => what.push("no '# last error:' after a rejected write".into()),
                    Some(t) => {
                        let n = t
                            .strip_prefix("line ")
                            .and_then(|r| r.split_once(": "))
                            .and_then(|(n, _)| n.parse::<usize>().ok());
                        if n != Some(*line) {
                            what.push(format!("last error should name line {line}"));
                        }
                        if !t.contains(needle.as_str()) {
                            what.push(format!("last error should contain \"{needle}\""));
                        }
                    }
                },
                Expect::Proc => {
                    if let Some(b) = &before {
                        if *b != listing.last_error {
                            what.push(format!(
                                "a write the module never saw changed the last error (was {b:?})"
                            ));
                        }
                    }
                }
            }
        } else {
            st.loose_checks.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = &listing.last_error {
                if !well_formed_error(t) {
                    what.push(format!("malformed last error {t:?}"));
                }
            }
        }
        // 3. the table
        let accepted_now = matches!(op.expect, Expect::Accept(_)) && result.is_ok();
        let mut expected: &Model = m;
        let mut skipped = false;
        if let (Expect::Accept(next), true) = (&op.expect, accepted_now) {
            if next != m {
                let k = st.changing.fetch_add(1, Ordering::Relaxed) + 1;
                if self.opts.skip_model_update == Some(k) {
                    skipped = true;
                    eprintln!(
                        "config-stress: self-test: model update of write {k} skipped [{who}]"
                    );
                } else {
                    expected = next;
                }
            }
        }
        let mine: Model = listing
            .rows
            .iter()
            .filter(|(a, _)| whole || pool.contains(a))
            .map(|(a, c)| (*a, *c))
            .collect();
        if mine != *expected {
            let mut diffs = 0;
            for (a, c) in expected {
                if diffs >= 4 {
                    break;
                }
                match mine.get(a) {
                    None => what.push(format!("missing row {}", fmt_row(a, c))),
                    Some(k) if k != c => {
                        what.push(format!("row {} should be {}", fmt_row(a, k), fmt_row(a, c)))
                    }
                    _ => continue,
                }
                diffs += 1;
            }
            for (a, c) in &mine {
                if diffs >= 4 {
                    break;
                }
                if !expected.contains_key(a) {
                    what.push(format!("unexpected row {}", fmt_row(a, c)));
                    diffs += 1;
                }
            }
            what.push(format!(
                "({} rows of this writer listed, {} expected)",
                mine.len(),
                expected.len()
            ));
        }
        for (a, c) in &listing.rows {
            if !self.all.contains(a) {
                what.push(format!("row nobody added: {}", fmt_row(a, c)));
            }
        }
        let ok = what.is_empty();
        if !ok {
            self.report(who, op, &result, &listing.last_error, &what);
            // Resynchronise from the kernel so one divergence is reported once.
            *m = mine;
        } else if accepted_now && !skipped {
            *m = expected.clone();
        }
        ok
    }
}

fn errno_name(e: i32) -> &'static str {
    match e {
        EINVAL => "EINVAL",
        EEXIST => "EEXIST",
        ENOENT => "ENOENT",
        ENOSPC => "ENOSPC",
        EPERM => "EPERM",
        libc::EACCES => "EACCES",
        _ => "?",
    }
}

/// Splits `total` into `parts` near-equal shares.
fn split(total: u64, parts: usize) -> Vec<u64> {
    let p = parts as u64;
    (0..p)
        .map(|i| total / p + u64::from(i < total % p))
        .collect()
}

/// The summary of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    #[cfg_attr(not(test), allow(dead_code))] // the tests read these
    pub writes: u64,
    #[cfg_attr(not(test), allow(dead_code))]
    pub accepted: u64,
    pub mismatches: u64,
    pub text: String,
}

/// Runs the whole stress against `target`.
pub fn stress(target: &dyn Target, o: &StressOpts) -> Summary {
    let start = Instant::now();
    let pools: Vec<Vec<IpAddr>> = (0..o.writers).map(pool).collect();
    let sets: Vec<BTreeSet<IpAddr>> = pools.iter().map(|p| p.iter().copied().collect()).collect();
    let all: BTreeSet<IpAddr> = sets.iter().flatten().copied().collect();
    let union: Vec<IpAddr> = all.iter().copied().collect();
    let quota = WORKING_SET / o.writers;
    let run = Run {
        target,
        opts: o,
        stats: Stats::default(),
        gate: RwLock::new(()),
        all: all.clone(),
    };
    let single_total = o.writes * o.single_pct / 100;
    let single = split(single_total, o.rounds);
    let conc = split(o.writes - single_total, o.rounds);
    let mut models: Vec<Model> = vec![Model::new(); o.writers];
    let mut rng = Rng::new(o.seed);
    for round in 0..o.rounds {
        // Single-writer phase: one writer owns every address.
        let mut m: Model = models.iter().flatten().map(|(a, c)| (*a, *c)).collect();
        let ctx = Ctx {
            pool: &union,
            quota: WORKING_SET,
            whole_table: true,
        };
        let who = format!("round {} single", round + 1);
        let budget = single[round];
        for i in 0..budget {
            let op = if round == 0 && i == 0 {
                Op {
                    kind: "initial flush",
                    data: b"flush\n".to_vec(),
                    expect: Expect::Accept(Model::new()),
                }
            } else if i + 1 == budget {
                // the phase's last write leaves every writer within its quota
                trim_op(&pools, quota, &m).unwrap_or_else(|| {
                    let (lines, expect) = batch(&mut rng, &ctx, &m, 0, true);
                    Op {
                        kind: "bad line",
                        data: join_lines(&mut rng, &lines),
                        expect,
                    }
                })
            } else if i == budget / 2 {
                fill_op(&mut rng, &ctx, &m)
            } else {
                gen_op(&mut rng, &ctx, &m)
            };
            run.step(&who, &all, &mut m, &op, true, true);
            run.stats.single_writes.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(op) = trim_op(&pools, quota, &m) {
            // only after a mismatch (the model was resynchronised): the quota must hold anyway
            run.step(&who, &all, &mut m, &op, true, true);
            run.stats.single_writes.fetch_add(1, Ordering::Relaxed);
        }
        for (w, s) in sets.iter().enumerate() {
            models[w] = m
                .iter()
                .filter(|(a, _)| s.contains(a))
                .map(|(a, c)| (*a, *c))
                .collect();
        }
        // Concurrent phase.
        let shares = split(conc[round], o.writers);
        let seeds: Vec<u64> = (0..o.writers).map(|_| rng.next()).collect();
        std::thread::scope(|sc| {
            let run = &run;
            let handles: Vec<_> = models
                .iter_mut()
                .enumerate()
                .map(|(w, model)| {
                    let pool = &pools[w];
                    let set = &sets[w];
                    let share = shares[w];
                    let seed = seeds[w];
                    sc.spawn(move || {
                        let mut rng = Rng::new(seed);
                        let ctx = Ctx {
                            pool,
                            quota,
                            whole_table: false,
                        };
                        let who = format!("round {} writer {w}", round + 1);
                        for _ in 0..share {
                            let op = gen_op(&mut rng, &ctx, model);
                            let rejected = !matches!(op.expect, Expect::Accept(_));
                            let strict = o.writers == 1
                                || rng.pct(if rejected {
                                    o.strict_pct
                                } else {
                                    o.strict_pct / 5
                                });
                            run.step(&who, set, model, &op, strict, false);
                            run.stats.concurrent_writes.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("writer thread panicked");
            }
        });
    }
    // Final: the whole table is exactly the union of the models.
    let m: Model = models.iter().flatten().map(|(a, c)| (*a, *c)).collect();
    let final_rows = match target.read() {
        Ok(b) => {
            let l = parse_listing(&b);
            if l.rows != m || !l.problems.is_empty() {
                let op = Op {
                    kind: "final listing",
                    data: Vec::new(),
                    expect: Expect::Accept(m.clone()),
                };
                run.report(
                    "final",
                    &op,
                    &Ok(0),
                    &l.last_error,
                    &[format!(
                        "final table ({} rows) differs from the models ({} rows) {:?}",
                        l.rows.len(),
                        m.len(),
                        l.problems
                    )],
                );
            }
            l.rows.len()
        }
        Err(e) => {
            eprintln!("config-stress: final read failed: {e}");
            run.stats.mismatches.fetch_add(1, Ordering::Relaxed);
            0
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let st = &run.stats;
    let rejected = g(&st.writes) - g(&st.accepted);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "config-stress: {} writers, {} rounds, seed {}: {} writes ({} concurrent, {} single-writer), {} bytes",
        o.writers, o.rounds, o.seed, g(&st.writes), g(&st.concurrent_writes), g(&st.single_writes), g(&st.bytes)
    );
    let _ = writeln!(
        text,
        "config-stress: accepted {}, rejected {} (EINVAL {}, EEXIST {}, ENOENT {}, ENOSPC {}, EPERM {}, other {}); \
         by the module {}, by the proc layer {}",
        g(&st.accepted), rejected, g(&st.einval), g(&st.eexist), g(&st.enoent), g(&st.enospc), g(&st.eperm),
        g(&st.other_errno), g(&st.module_rejected), g(&st.proc_rejected)
    );
    let _ =
        writeln!(
        text,
        "config-stress: last-error checks exact {}, well-formedness only {}; final table {} rows",
        g(&st.strict_checks), g(&st.loose_checks), final_rows
    );
    let _ = writeln!(text, "config-stress: mismatches: {}", g(&st.mismatches));
    let ms = |sum: &AtomicU64, n: u64| g(sum) as f64 / 1e3 / n.max(1) as f64;
    let _ = writeln!(
        text,
        "config-stress: time {:.2} s ({:.0} writes/s); write(2) mean/max: accepted {:.2}/{:.1} ms, \
         rejected {:.2}/{:.1} ms; listing read {:.2}/{:.1} ms",
        secs,
        g(&st.writes) as f64 / secs.max(1e-9),
        ms(&st.accepted_us, g(&st.accepted)),
        g(&st.accepted_max_us) as f64 / 1e3,
        ms(&st.rejected_us, rejected),
        g(&st.rejected_max_us) as f64 / 1e3,
        ms(&st.read_us, g(&st.writes)),
        g(&st.read_max_us) as f64 / 1e3,
    );
    let _ = writeln!(
        text,
        "config-stress summary writes={} accepted={} rejected={} einval={} eexist={} enoent={} enospc={} eperm={} \
         other={} module_rejected={} proc_rejected={} strict={} loose={} mismatches={} seconds={:.2}",
        g(&st.writes), g(&st.accepted), rejected, g(&st.einval), g(&st.eexist), g(&st.enoent), g(&st.enospc),
        g(&st.eperm), g(&st.other_errno), g(&st.module_rejected), g(&st.proc_rejected), g(&st.strict_checks),
        g(&st.loose_checks), g(&st.mismatches), secs
    );
    Summary {
        writes: g(&st.writes),
        accepted: g(&st.accepted),
        mismatches: g(&st.mismatches),
        text,
    }
}

/// `gue-traffic config-stress`: exit 0 if no mismatch, 1 otherwise.
pub fn config_stress(o: &StressOpts) -> i32 {
    if o.verbose {
        eprintln!("config-stress: {o:?}");
    }
    let s = stress(&ProcFile(o.proc_path.clone()), o);
    print!("{}", s.text);
    let _ = std::io::stdout().flush();
    i32::from(s.mismatches != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use gue_core::config::parse_command_bytes;
    use gue_core::stats::{format_listing_header, format_listing_row, StatsSnapshot};
    use gue_core::heap::{empty_table, HeapTable};
    use gue_core::table::Refusal;
    use gue_core::text::FixedText;

    /// The module's configure() and proc_simple_write(), on gue_core (the module's own logic).
    struct Sim {
        state: Mutex<(HeapTable, Option<String>)>,
        /// Test the tester: publish partial batches.
        partial: bool,
        /// Test the tester: report ENOENT as EINVAL.
        wrong_errno: bool,
    }

    impl Default for Sim {
        fn default() -> Self {
            Sim { state: Mutex::new((empty_table(), None)), partial: false, wrong_errno: false }
        }
    }

    impl Target for Sim {
        fn write(&self, data: &[u8]) -> Result<usize, i32> {
            if data.is_empty() || data.len() > PROC_MAX {
                return Err(EINVAL);
            }
            let mut st = self.state.lock().unwrap();
            let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
            // The module applies a write as one change; a broken one commits line by line.
            let batch = if self.partial { 1 } else { lines.len() };
            for (first, batch) in lines.chunks(batch).enumerate().map(|(n, b)| (n * batch, b)) {
                let mut failed_at = 0;
                let changed = HeapTable::changed(&st.0, batch.len(), |next| {
                    for (i, line) in batch.iter().enumerate() {
                        failed_at = first + i + 1;
                        parse_command_bytes(line).and_then(|c| next.apply(&c))?;
                    }
                    Ok(())
                });
                match changed {
                    Ok(next) => st.0 = next,
                    Err(Refusal::NoMemory) => unreachable!("Vec aborts rather than fails"),
                    Err(Refusal::Config(e)) => {
                        let mut m = FixedText::<192>::new();
                        let _ = write!(m, "line {failed_at}: {e}");
                        st.1 = Some(m.as_str().to_string());
                        let errno = e.errno();
                        return Err(if self.wrong_errno && errno == ENOENT {
                            EINVAL
                        } else {
                            errno
                        });
                    }
                }
            }
            st.1 = None;
            Ok(data.len())
        }
        fn read(&self) -> Result<Vec<u8>, String> {
            let st = self.state.lock().unwrap();
            let mut out = String::new();
            format_listing_header(&mut out).unwrap();
            for (a, s) in st.0.iter() {
                format_listing_row(&mut out, a, s, &StatsSnapshot::default()).unwrap();
            }
            if let Some(e) = &st.1 {
                let _ = writeln!(out, "# last error: {e}");
            }
            Ok(out.into_bytes())
        }
    }

    fn opts(writers: usize, writes: u64, seed: u64) -> StressOpts {
        StressOpts {
            writers,
            writes,
            seed,
            rounds: 3,
            ..StressOpts::default()
        }
    }

    #[test]
    fn model_agrees_with_module_logic() {
        for (k, seed) in [(1, 1), (4, 2), (3, 3), (8, 4)] {
            let s = stress(&Sim::default(), &opts(k, 1500, seed));
            assert_eq!(s.mismatches, 0, "{}", s.text);
            assert_eq!(s.writes, 1500);
            assert!(s.accepted > 300 && s.accepted < 1200, "{}", s.text);
            // the table grows: a working set never fills it
            assert!(s.text.contains(" enospc=0 "), "{}", s.text);
        }
    }

    #[test]
    fn skipped_model_update_is_caught() {
        let o = StressOpts {
            skip_model_update: Some(40),
            ..opts(4, 1000, 5)
        };
        let s = stress(&Sim::default(), &o);
        assert_eq!(s.mismatches, 1, "{}", s.text);
    }

    #[test]
    fn partial_batches_are_caught() {
        let s = stress(
            &Sim {
                partial: true,
                ..Sim::default()
            },
            &opts(2, 1000, 6),
        );
        assert!(s.mismatches > 0, "{}", s.text);
    }

    #[test]
    fn wrong_errno_is_caught() {
        let s = stress(
            &Sim {
                wrong_errno: true,
                ..Sim::default()
            },
            &opts(2, 1000, 7),
        );
        assert!(s.mismatches > 0, "{}", s.text);
    }

    #[test]
    fn generated_ops_are_in_bounds() {
        let pools: Vec<IpAddr> = (0..4).flat_map(pool).collect();
        let mut rng = Rng::new(9);
        let mut m = Model::new();
        let ctx = Ctx {
            pool: &pools,
            quota: WORKING_SET,
            whole_table: true,
        };
        let mut kinds = BTreeSet::new();
        for _ in 0..3000 {
            let op = gen_op(&mut rng, &ctx, &m);
            kinds.insert(op.kind);
            if let Expect::Accept(n) = &op.expect {
                assert!(n.len() <= WORKING_SET);
                m = n.clone();
            }
        }
        assert!(kinds.len() >= 12, "{kinds:?}");
    }

    #[test]
    fn listing_parser() {
        let t = format!("{HEADER}\n10.0.0.1 10.0.0.1 5501 none 0 0 0 0 0 0 0\nfd00::1 10.9.0.9 1 remcsum 0 0 0 0 0 0 0\n# last error: line 2: x\n");
        let l = parse_listing(t.as_bytes());
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(l.rows.len(), 2);
        assert_eq!(l.last_error.as_deref(), Some("line 2: x"));
        let bad = format!("{HEADER}\nfd00:0::1 10.0.0.1 5501 none 0 0 0 0 0 0 0\n");
        assert!(!parse_listing(bad.as_bytes()).problems.is_empty());
    }
}
