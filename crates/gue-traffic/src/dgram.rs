//! `gue-traffic udp-echo` and `gue-traffic udp-rr`: UDP request/response with
//! per-datagram integrity, and the IP header fields a tunnel must carry
//! unchanged (TOS / traffic class, IPv4 options, IPv6 hop-by-hop and
//! destination options) reported from the receiving socket.
//!
//! Request datagram: `GUEQ` | seq u32 | flow u32 | len u32 | filler (SplitMix64
//! of the seq), all big endian, `len` = the whole datagram. Reply (48 bytes):
//! `GUER` | seq u32 | len u32 | tos u8 | flags u8 (bit 0: tos known) | 2 zero
//! bytes | SHA-256 of the request datagram.

use crate::args::{err, Options};
use crate::proto::{hex, Payload};
use crate::report::{write_report, JsonDest};
use crate::run::MedianMax;
use crate::sock::{self, send_to, setsockopt_bytes, setsockopt_int};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
  gue-traffic udp-echo --listen ADDR:PORT [--count N] [--timeout-ms T] [--no-reply]
                  [--json PATH|-]
  gue-traffic udp-rr --to ADDR:PORT --sizes SIZE[,SIZE...] [--requests N] [--flows F]
                  [--bind ADDR] [--src-port BASE] [--tos T[,T...]] [--ip-options HEX]
                  [--hopopts HEX] [--dstopts HEX] [--timeout-ms T] [--interval-ms MS]
                  [--no-reply] [--json PATH|-]
udp-echo: answers every request datagram on ADDR:PORT with its sequence
       number, length, the TOS / traffic class it arrived with and its
       SHA-256 (--no-reply: count only). Reports what the socket saw: TOS
       values, IPv4 options (IP_RECVOPTS), IPv6 hop-by-hop and destination
       option headers, each as hex with a count. Stops after COUNT
       datagrams or the timeout (default 10000 ms); \"listening on ADDR\" on
       stderr once bound. Exit 0 if COUNT (without --count: >= 1) arrived.
udp-rr: REQUESTS (default 1) datagrams per SIZE (bytes, >= 16, at most
       65507) from FLOWS sockets (default 1; distinct source ports, or
       BASE..BASE+F-1 with --src-port) in turn; each waits up to
       --timeout-ms (default 2000) for its reply and checks length, digest
       and, where reported, the TOS it arrived with. --tos cycles through
       the values per request (IP_TOS / IPV6_TCLASS, 0-255; ECN bits kept);
       --ip-options sets IP_OPTIONS (IPv4), --hopopts / --dstopts set
       IPV6_HOPOPTS / IPV6_DSTOPTS (whole extension header, hex; need
       CAP_NET_RAW). --no-reply: send only, --interval-ms apart. JSON per
       size {requests, ok, lost, mismatches, tos_mismatches, send_errors,
       p50_ms, max_ms}; exit 0 if every request was answered correctly
       (--no-reply: sent), 1 otherwise.
";

const REQ_MAGIC: &[u8; 4] = b"GUEQ";
const REPLY_MAGIC: &[u8; 4] = b"GUER";
pub const REQ_HEADER: usize = 16;
pub const REPLY_LEN: usize = 48;
const MAX_DATAGRAM: usize = 65507;
const SLICE: Duration = Duration::from_millis(100);

// ---- wire format ------------------------------------------------------------------------

/// The request datagram `seq` of flow `flow`, `len` bytes (>= REQ_HEADER).
pub fn request(seq: u32, flow: u32, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len.max(REQ_HEADER)];
    b[..4].copy_from_slice(REQ_MAGIC);
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&flow.to_be_bytes());
    b[12..16].copy_from_slice(&(len as u32).to_be_bytes());
    Payload::new(u64::from(seq) << 32 | u64::from(flow)).fill(&mut b[REQ_HEADER..]);
    b
}

/// (seq, flow) of a well-formed request whose length field matches.
pub fn parse_request(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() < REQ_HEADER || &b[..4] != REQ_MAGIC {
        return None;
    }
    let w = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    (w(12) as usize == b.len()).then(|| (w(4), w(8)))
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// The reply to request `req` that arrived with `tos` (None: unknown).
pub fn reply(req: &[u8], tos: Option<u8>) -> Option<[u8; REPLY_LEN]> {
    let (seq, _) = parse_request(req)?;
    let mut r = [0u8; REPLY_LEN];
    r[..4].copy_from_slice(REPLY_MAGIC);
    r[4..8].copy_from_slice(&seq.to_be_bytes());
    r[8..12].copy_from_slice(&(req.len() as u32).to_be_bytes());
    r[12] = tos.unwrap_or(0);
    r[13] = u8::from(tos.is_some());
    r[16..].copy_from_slice(&digest(req));
    Some(r)
}

/// A reply as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub seq: u32,
    pub len: u32,
    pub tos: Option<u8>,
    pub digest: [u8; 32],
}

pub fn parse_reply(b: &[u8]) -> Option<Reply> {
    if b.len() != REPLY_LEN || &b[..4] != REPLY_MAGIC {
        return None;
    }
    Some(Reply {
        seq: u32::from_be_bytes(b[4..8].try_into().ok()?),
        len: u32::from_be_bytes(b[8..12].try_into().ok()?),
        tos: (b[13] & 1 != 0).then_some(b[12]),
        digest: b[16..].try_into().ok()?,
    })
}

// ---- control messages ---------------------------------------------------------------------

/// What the receiving socket reported next to one datagram.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ancillary {
    pub tos: Option<u8>,
    pub ip_options: Option<Vec<u8>>,
    pub hopopts: Option<Vec<u8>>,
    pub dstopts: Option<Vec<u8>>,
}

const CMSG_HDR: usize = std::mem::size_of::<libc::cmsghdr>();
const CMSG_ALIGN: usize = std::mem::size_of::<usize>();

fn align(n: usize) -> usize {
    (n + CMSG_ALIGN - 1) & !(CMSG_ALIGN - 1)
}

/// Walks a control buffer of `len` bytes (native `struct cmsghdr` records).
pub fn parse_cmsgs(ctl: &[u8]) -> Ancillary {
    let mut a = Ancillary::default();
    let mut off = 0;
    while off + CMSG_HDR <= ctl.len() {
        let h = &ctl[off..off + CMSG_HDR];
        let clen = usize::from_ne_bytes(h[..CMSG_ALIGN].try_into().expect("usize"));
        let level = i32::from_ne_bytes(h[CMSG_ALIGN..CMSG_ALIGN + 4].try_into().expect("i32"));
        let ty = i32::from_ne_bytes(h[CMSG_ALIGN + 4..CMSG_ALIGN + 8].try_into().expect("i32"));
        if clen < CMSG_HDR || off + clen > ctl.len() {
            break;
        }
        let data = &ctl[off + CMSG_HDR..off + clen];
        match (level, ty) {
            // IP_TOS arrives as one byte, IPV6_TCLASS as an int.
            (libc::IPPROTO_IP, libc::IP_TOS) => a.tos = data.first().copied(),
            (libc::IPPROTO_IP, libc::IP_RECVOPTS) | (libc::IPPROTO_IP, libc::IP_OPTIONS) => {
                a.ip_options = Some(data.to_vec())
            }
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if data.len() >= 4 => {
                a.tos = Some(i32::from_ne_bytes(data[..4].try_into().expect("i32")) as u8)
            }
            (libc::IPPROTO_IPV6, libc::IPV6_HOPOPTS) => a.hopopts = Some(data.to_vec()),
            (libc::IPPROTO_IPV6, libc::IPV6_DSTOPTS) => a.dstopts = Some(data.to_vec()),
            _ => {}
        }
        off += align(clen);
    }
    a
}

// ---- sockets -----------------------------------------------------------------------------

/// A UDP socket bound to `addr`.
pub fn udp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let fd = sock::socket(sock::domain(&addr.ip()), libc::SOCK_DGRAM, 0)
        .map_err(|e| io::Error::new(e.kind(), format!("socket: {e}")))?;
    if addr.is_ipv6() {
        setsockopt_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1, "IPV6_V6ONLY")?;
    }
    sock::bind(&fd, addr)?;
    Ok(fd)
}

fn local_addr(fd: &OwnedFd) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss is valid for writes of len bytes, and getsockname writes at most len.
    let r = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    (r == 0).then(|| from_sockaddr(&ss)).flatten()
}

fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes())),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// A datagram [`recv`] put into the caller's buffers.
struct Arrival {
    len: usize,
    /// Longer than the buffer.
    truncated: bool,
    from: Option<SocketAddr>,
    /// Bytes of control messages.
    control_len: usize,
}

/// Waits up to `wait` for a datagram; Ok(None) on timeout.
fn recv(
    fd: &OwnedFd,
    buf: &mut [u8],
    ctl: &mut [u8],
    wait: Duration,
) -> io::Result<Option<Arrival>> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(0, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if n == 0 {
        return Ok(None);
    }
    // SAFETY: zeroed storage / msghdr are valid; the pointers below stay live for the call.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct of integers and raw pointers: all zeroes is a valid
    // value (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut ss as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.as_mut_ptr().cast();
    msg.msg_controllen = ctl.len() as _;
    // SAFETY: msg describes valid buffers.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(Arrival {
        len: r as usize,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        from: from_sockaddr(&ss),
        control_len: msg.msg_controllen as usize,
    }))
}

/// Parses hex with optional separators (`:`, `-`, `_`, spaces).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b':' | b'-' | b'_' | b' '))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(format!(
            "'{s}': need an even, non-zero number of hex digits"
        ));
    }
    digits
        .chunks(2)
        .map(|p| {
            let t = std::str::from_utf8(p).map_err(|_| format!("'{s}': not hex"))?;
            u8::from_str_radix(t, 16).map_err(|_| format!("'{s}': not hex"))
        })
        .collect()
}

// ---- udp-echo ------------------------------------------------------------------------------

pub struct EchoOpts {
    pub listen: SocketAddr,
    pub count: Option<u64>,
    pub timeout: Duration,
    pub reply: bool,
    pub json: JsonDest,
}

pub fn echo_opts(mut a: Options) -> crate::args::Result<EchoOpts> {
    let mut listen = None;
    let mut o = EchoOpts {
        listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        count: None,
        timeout: Duration::from_millis(10_000),
        reply: true,
        json: JsonDest::Stdout,
    };
    while let Some(name) = a.next()? {
        match name.as_str() {
            "listen" => listen = Some(a.addr()?),
            "count" => o.count = Some(a.positive()?),
            "timeout-ms" => o.timeout = a.millis()?,
            "no-reply" => o.reply = false,
            "json" => o.json = a.json()?,
            _ => return Err(a.unknown()),
        }
    }
    let Some(listen) = listen else {
        return err("udp-echo: --listen is required");
    };
    o.listen = listen;
    Ok(o)
}

/// How many datagrams of which sizes arrived: the keys the `udp-sink` and
/// `udp-echo` reports share.
#[derive(Debug, Default, Serialize)]
pub struct Received {
    pub datagrams: u64,
    pub bytes: u64,
    pub min_bytes: Option<usize>,
    pub max_bytes: Option<usize>,
}

impl Received {
    pub fn add(&mut self, len: usize) {
        self.datagrams += 1;
        self.bytes += len as u64;
        self.min_bytes = Some(self.min_bytes.map_or(len, |m| m.min(len)));
        self.max_bytes = Some(self.max_bytes.map_or(len, |m| m.max(len)));
    }

    /// `count` datagrams arrived, or without a count at least one.
    pub fn enough(&self, count: Option<u64>) -> bool {
        match count {
            Some(c) => self.datagrams >= c,
            None => self.datagrams > 0,
        }
    }
}

/// Per-run tally of the echo server; the ancillary data seen is counted per
/// distinct value (hex, or "none").
#[derive(Default, Serialize)]
struct EchoStats {
    #[serde(flatten)]
    received: Received,
    malformed: u64,
    truncated: u64,
    replies: u64,
    reply_errors: u64,
    tos: BTreeMap<String, u64>,
    ip_options: BTreeMap<String, u64>,
    hopopts: BTreeMap<String, u64>,
    dstopts: BTreeMap<String, u64>,
    #[serde(skip)]
    sources: BTreeSet<SocketAddr>,
}

#[derive(Serialize)]
struct EchoReport<'a> {
    listen: SocketAddr,
    #[serde(flatten)]
    stats: &'a EchoStats,
    /// How many distinct source addresses.
    sources: usize,
    error: Option<String>,
}

fn enable_recv_opts(fd: &OwnedFd, v4: bool) -> io::Result<()> {
    if v4 {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1, "IP_RECVTOS")?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVOPTS, 1, "IP_RECVOPTS")
    } else {
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVTCLASS,
            1,
            "IPV6_RECVTCLASS",
        )?;
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVHOPOPTS,
            1,
            "IPV6_RECVHOPOPTS",
        )?;
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVDSTOPTS,
            1,
            "IPV6_RECVDSTOPTS",
        )
    }
}

pub fn udp_echo(o: &EchoOpts) -> i32 {
    let fd = match udp_socket(&o.listen) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gue-traffic udp-echo: {e}");
            return 1;
        }
    };
    if let Err(e) = enable_recv_opts(&fd, o.listen.is_ipv4()) {
        eprintln!("gue-traffic udp-echo: {e}");
        return 1;
    }
    let local = local_addr(&fd).unwrap_or(o.listen);
    eprintln!("listening on {local}");
    let deadline = Instant::now() + o.timeout;
    let mut buf = vec![0u8; 65536];
    let mut ctl = vec![0u8; 4096];
    let mut st = EchoStats::default();
    let mut error = None;
    while o.count.is_none_or(|c| st.received.datagrams < c) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Arrival {
            len: n,
            truncated,
            from,
            control_len: clen,
        } = match recv(&fd, &mut buf, &mut ctl, left.min(SLICE)) {
            Ok(Some(x)) => x,
            Ok(None) => continue,
            Err(e) => {
                error = Some(format!("recvmsg: {e}"));
                break;
            }
        };
        st.received.add(n);
        if truncated {
            st.truncated += 1;
        }
        let anc = parse_cmsgs(&ctl[..clen.min(ctl.len())]);
        *st.tos
            .entry(
                anc.tos
                    .map(|t| format!("0x{t:02x}"))
                    .unwrap_or_else(|| "none".into()),
            )
            .or_default() += 1;
        let blob = |v: &Option<Vec<u8>>| v.as_deref().map(hex).unwrap_or_else(|| "none".into());
        *st.ip_options.entry(blob(&anc.ip_options)).or_default() += 1;
        *st.hopopts.entry(blob(&anc.hopopts)).or_default() += 1;
        *st.dstopts.entry(blob(&anc.dstopts)).or_default() += 1;
        if let Some(f) = from {
            st.sources.insert(f);
        }
        match reply(&buf[..n], anc.tos) {
            None => st.malformed += 1,
            Some(r) if o.reply => match from.map(|f| send_to(&fd, &r, &f)) {
                Some(Ok(_)) => st.replies += 1,
                _ => st.reply_errors += 1,
            },
            Some(_) => {}
        }
    }
    eprintln!(
        "udp-echo: {} datagrams ({} bytes) on {local}, {} replies, {} malformed",
        st.received.datagrams, st.received.bytes, st.replies, st.malformed
    );
    let report = EchoReport {
        listen: local,
        stats: &st,
        sources: st.sources.len(),
        error,
    };
    if !write_report(&report, &o.json, "udp-echo") {
        return 1;
    }
    i32::from(!st.received.enough(o.count) || report.error.is_some())
}

// ---- udp-rr --------------------------------------------------------------------------------

pub struct RrOpts {
    pub to: SocketAddr,
    pub sizes: Vec<u64>,
    pub requests: u64,
    pub flows: u32,
    pub bind: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub tos: Vec<u8>,
    pub ip_options: Option<Vec<u8>>,
    pub hopopts: Option<Vec<u8>>,
    pub dstopts: Option<Vec<u8>>,
    pub timeout: Duration,
    pub interval: Duration,
    pub reply: bool,
    pub json: JsonDest,
}

pub fn rr_opts(mut a: Options) -> crate::args::Result<RrOpts> {
    let (mut to, mut sizes) = (None, None);
    let mut o = RrOpts {
        to: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        sizes: vec![],
        requests: 1,
        flows: 1,
        bind: None,
        src_port: None,
        tos: vec![],
        ip_options: None,
        hopopts: None,
        dstopts: None,
        timeout: Duration::from_millis(2000),
        interval: Duration::ZERO,
        reply: true,
        json: JsonDest::Stdout,
    };
    while let Some(name) = a.next()? {
        match name.as_str() {
            "to" => to = Some(a.addr()?),
            "sizes" => sizes = Some(a.sizes()?),
            "requests" => o.requests = a.positive()?,
            "flows" => o.flows = a.number_in(1, 1024)? as u32,
            "bind" => o.bind = Some(a.endpoint()?.ip()),
            "src-port" => o.src_port = Some(a.number_in(1, 65535)? as u16),
            "tos" => {
                let v = a.text()?;
                let mut l = vec![];
                for p in v.split(',') {
                    let p = p.trim();
                    let n = match p.strip_prefix("0x") {
                        Some(h) => u64::from_str_radix(h, 16).ok(),
                        None => p.parse().ok(),
                    };
                    match n {
                        Some(n) if n <= 255 => l.push(n as u8),
                        _ => return err(format!("--tos: '{p}' is not 0-255")),
                    }
                }
                o.tos = l
            }
            "ip-options" => {
                let b = parse_hex(&a.text()?).or_else(|e| a.invalid(e))?;
                if b.len() > 40 {
                    return a.invalid("at most 40 bytes");
                }
                o.ip_options = Some(b)
            }
            "hopopts" => o.hopopts = Some(ext_header("--hopopts", &a.text()?)?),
            "dstopts" => o.dstopts = Some(ext_header("--dstopts", &a.text()?)?),
            "timeout-ms" => o.timeout = a.millis()?,
            "interval-ms" => o.interval = Duration::from_millis(a.number()?),
            "no-reply" => o.reply = false,
            "json" => o.json = a.json()?,
            _ => return Err(a.unknown()),
        }
    }
    let Some(to) = to else {
        return err("udp-rr: --to is required");
    };
    if to.port() == 0 {
        return err("--to: port must not be 0");
    }
    let Some(sizes) = sizes else {
        return err("udp-rr: --sizes is required");
    };
    if let Some(s) = sizes
        .iter()
        .find(|&&s| s < REQ_HEADER as u64 || s > MAX_DATAGRAM as u64)
    {
        return err(format!(
            "--sizes: {s} is outside {REQ_HEADER}..{MAX_DATAGRAM}"
        ));
    }
    if o.bind.is_some_and(|b| b.is_ipv4() != to.is_ipv4()) {
        return err("--bind: must be of the family of --to");
    }
    if o.src_port
        .is_some_and(|p| u32::from(p) + o.flows - 1 > 65535)
    {
        return err("--src-port: BASE + FLOWS - 1 exceeds 65535");
    }
    if to.is_ipv4() && (o.hopopts.is_some() || o.dstopts.is_some()) {
        return err("--hopopts/--dstopts: IPv6 only");
    }
    if to.is_ipv6() && o.ip_options.is_some() {
        return err("--ip-options: IPv4 only");
    }
    o.to = to;
    o.sizes = sizes;
    Ok(o)
}

/// An IPv6 extension header given in hex: a multiple of 8 bytes whose length byte matches.
fn ext_header(opt: &str, v: &str) -> crate::args::Result<Vec<u8>> {
    let b = parse_hex(v).or_else(|e| err(format!("{opt}: {e}")))?;
    if b.len() < 8 || b.len() % 8 != 0 || (usize::from(b[1]) + 1) * 8 != b.len() {
        return err(format!("{opt}: an extension header is (hdr ext len + 1) * 8 bytes; got {} bytes with length byte {}", b.len(), b.get(1).copied().unwrap_or(0)));
    }
    Ok(b)
}

/// What happened to the requests of one size.
#[derive(Default, Serialize)]
struct SizeTally {
    #[serde(rename = "payload_bytes")]
    size: u64,
    requests: u64,
    ok: u64,
    lost: u64,
    mismatches: u64,
    tos_mismatches: u64,
    send_errors: u64,
    late: u64,
    #[serde(skip)]
    rtts: Vec<f64>,
    first_error: Option<String>,
}

impl SizeTally {
    fn note(&mut self, e: String) {
        self.first_error.get_or_insert(e);
    }
}

/// One element of the report's `sizes`.
#[derive(Serialize)]
struct SizeReport<'a> {
    #[serde(flatten)]
    tally: &'a SizeTally,
    #[serde(flatten)]
    latency: MedianMax,
}

#[derive(Serialize)]
struct RrReport<'a> {
    to: SocketAddr,
    flows: u32,
    local_ports: Vec<u16>,
    sizes: Vec<SizeReport<'a>>,
    requests: u64,
    ok: u64,
    passed: bool,
}

fn rr_report<'a>(o: &RrOpts, local_ports: Vec<u16>, tallies: &'a [SizeTally]) -> RrReport<'a> {
    RrReport {
        to: o.to,
        flows: o.flows,
        local_ports,
        sizes: tallies
            .iter()
            .map(|t| SizeReport {
                tally: t,
                latency: MedianMax::of(&t.rtts),
            })
            .collect(),
        requests: tallies.iter().map(|t| t.requests).sum(),
        ok: tallies.iter().map(|t| t.ok).sum(),
        passed: tallies.iter().all(|t| t.ok == t.requests),
    }
}

fn open_flows(o: &RrOpts) -> io::Result<Vec<OwnedFd>> {
    let ip = o.bind.unwrap_or(match o.to {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let mut v = Vec::with_capacity(o.flows as usize);
    for i in 0..o.flows {
        let port = o.src_port.map(|b| b + i as u16).unwrap_or(0);
        let fd = udp_socket(&SocketAddr::new(ip, port))?;
        if let Some(b) = &o.ip_options {
            setsockopt_bytes(&fd, libc::IPPROTO_IP, libc::IP_OPTIONS, b, "IP_OPTIONS")?;
        }
        if let Some(b) = &o.hopopts {
            setsockopt_bytes(
                &fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPOPTS,
                b,
                "IPV6_HOPOPTS",
            )?;
        }
        if let Some(b) = &o.dstopts {
            setsockopt_bytes(
                &fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_DSTOPTS,
                b,
                "IPV6_DSTOPTS",
            )?;
        }
        v.push(fd);
    }
    Ok(v)
}

fn set_tos(fd: &OwnedFd, v4: bool, tos: u8) -> io::Result<()> {
    if v4 {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, i32::from(tos), "IP_TOS")
    } else {
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            i32::from(tos),
            "IPV6_TCLASS",
        )
    }
}

/// Waits for the reply to `seq` on `fd`; stale replies (earlier requests) are counted late.
fn await_reply(
    fd: &OwnedFd,
    o: &RrOpts,
    seq: u32,
    want: &[u8],
    tos: Option<u8>,
    t: &mut SizeTally,
    t0: Instant,
) {
    let deadline = t0 + o.timeout;
    let mut buf = vec![0u8; 2048];
    let mut ctl = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            t.lost += 1;
            t.note(format!(
                "request {seq}: no reply within {} ms",
                o.timeout.as_millis()
            ));
            return;
        }
        match recv(fd, &mut buf, &mut ctl, left) {
            Ok(None) => continue,
            Err(e) => {
                // ICMP errors reported on the socket (e.g. port unreachable): keep waiting.
                t.note(format!("request {seq}: {e}"));
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Ok(Some(Arrival { len: n, from, .. })) => {
                if from != Some(o.to) {
                    continue;
                }
                let Some(r) = parse_reply(&buf[..n]) else {
                    t.mismatches += 1;
                    t.note(format!("request {seq}: malformed reply of {n} bytes"));
                    return;
                };
                if r.seq != seq {
                    t.late += 1;
                    continue;
                }
                let rtt = t0.elapsed().as_secs_f64() * 1e3;
                if r.len as usize != want.len() || r.digest != digest(want) {
                    t.mismatches += 1;
                    t.note(format!(
                        "request {seq}: reply for {} bytes / digest differs (sent {})",
                        r.len,
                        want.len()
                    ));
                    return;
                }
                if let (Some(sent), Some(got)) = (tos, r.tos) {
                    if sent != got {
                        t.tos_mismatches += 1;
                        t.note(format!(
                            "request {seq}: sent tos 0x{sent:02x}, arrived with 0x{got:02x}"
                        ));
                        return;
                    }
                }
                t.ok += 1;
                t.rtts.push(rtt);
                return;
            }
        }
    }
}

pub fn udp_rr(o: &RrOpts) -> i32 {
    let flows = match open_flows(o) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gue-traffic udp-rr: {e}");
            return 1;
        }
    };
    let ports: Vec<u16> = flows
        .iter()
        .map(|f| local_addr(f).map(|a| a.port()).unwrap_or(0))
        .collect();
    let v4 = o.to.is_ipv4();
    let mut seq: u32 = 0;
    let mut tallies = Vec::new();
    let mut last_tos: Vec<Option<u8>> = vec![None; flows.len()];
    for &size in &o.sizes {
        let mut t = SizeTally {
            size,
            ..Default::default()
        };
        for _ in 0..o.requests {
            if seq > 0 && !o.interval.is_zero() {
                std::thread::sleep(o.interval);
            }
            let flow = (seq % o.flows) as usize;
            let fd = &flows[flow];
            let tos = (!o.tos.is_empty()).then(|| o.tos[seq as usize % o.tos.len()]);
            if let Some(v) = tos {
                if last_tos[flow] != Some(v) {
                    if let Err(e) = set_tos(fd, v4, v) {
                        eprintln!("gue-traffic udp-rr: {e}");
                        return 1;
                    }
                    last_tos[flow] = Some(v);
                }
            }
            let req = request(seq, flow as u32, size as usize);
            t.requests += 1;
            let t0 = Instant::now();
            match send_to(fd, &req, &o.to) {
                Ok(_) => {
                    if o.reply {
                        await_reply(fd, o, seq, &req, tos, &mut t, t0);
                    } else {
                        t.ok += 1;
                    }
                }
                Err(e) => {
                    t.send_errors += 1;
                    t.note(format!("request {seq}: sendto: {e}"));
                }
            }
            seq = seq.wrapping_add(1);
        }
        eprintln!(
            "udp-rr {}: {} B x{}: {} ok, {} lost, {} mismatched, {} tos mismatches, {} send errors",
            o.to, size, t.requests, t.ok, t.lost, t.mismatches, t.tos_mismatches, t.send_errors
        );
        tallies.push(t);
    }
    let report = rr_report(o, ports, &tallies);
    if !write_report(&report, &o.json, "udp-rr") {
        return 1;
    }
    i32::from(!report.passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::options;
    use crate::report::{assert_keys, json_line};

    #[test]
    fn request_and_reply_round_trip() {
        let q = request(7, 3, 100);
        assert_eq!(q.len(), 100);
        assert_eq!(parse_request(&q), Some((7, 3)));
        assert_ne!(request(8, 3, 100), q, "filler depends on seq");
        let mut bad = q.clone();
        bad.pop();
        assert_eq!(parse_request(&bad), None, "length field must match");
        let r = reply(&q, Some(0x2e)).unwrap();
        let p = parse_reply(&r).unwrap();
        assert_eq!((p.seq, p.len, p.tos), (7, 100, Some(0x2e)));
        assert_eq!(p.digest, digest(&q));
        assert_eq!(parse_reply(&reply(&q, None).unwrap()).unwrap().tos, None);
        assert!(reply(b"GUEX1234", None).is_none());
        assert!(parse_reply(&r[..47]).is_none());
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("01:07-0f 10").unwrap(), vec![1, 7, 0x0f, 0x10]);
        assert!(parse_hex("123").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("").is_err());
        assert!(ext_header("--hopopts", "00001e0445444745").is_ok());
        assert!(
            ext_header("--hopopts", "00011e0445444745").is_err(),
            "length byte says 16"
        );
        assert!(ext_header("--hopopts", "0000").is_err());
    }

    #[test]
    fn echo_report_keys() {
        let mut st = EchoStats::default();
        st.received.add(64);
        st.replies = 1;
        st.tos.insert("0x28".into(), 1);
        st.ip_options.insert("none".into(), 1);
        let v = json_line(&EchoReport {
            listen: "[::]:7100".parse().unwrap(),
            stats: &st,
            sources: 1,
            error: None,
        });
        assert_keys(
            &v,
            &[
                "listen",
                "datagrams",
                "bytes",
                "min_bytes",
                "max_bytes",
                "malformed",
                "truncated",
                "replies",
                "reply_errors",
                "sources",
                "tos",
                "ip_options",
                "hopopts",
                "dstopts",
                "error",
            ],
        );
        assert_eq!(v["listen"], "[::]:7100");
        assert_eq!((&v["min_bytes"], &v["replies"]), (&64.into(), &1.into()));
        assert_eq!(v["tos"], serde_json::json!({"0x28": 1}));
        assert_eq!(v["ip_options"], serde_json::json!({"none": 1}));
        assert_eq!(v["hopopts"], serde_json::json!({}));
        assert_eq!(v["error"], serde_json::Value::Null);
    }

    #[test]
    fn rr_report_keys() {
        let o = rr_opts(options(&["--to", "10.0.0.1:7", "--sizes", "64,1400"])).unwrap();
        let answered = SizeTally {
            size: 64,
            requests: 3,
            ok: 3,
            rtts: vec![0.5, 0.12345, 2.0],
            ..SizeTally::default()
        };
        let lost = SizeTally {
            size: 1400,
            requests: 1,
            lost: 1,
            first_error: Some("request 3: no reply within 2000 ms".into()),
            ..SizeTally::default()
        };
        let tallies = [answered, lost];
        let v = json_line(&rr_report(&o, vec![40000], &tallies));
        assert_keys(
            &v,
            &[
                "to",
                "flows",
                "local_ports",
                "sizes",
                "requests",
                "ok",
                "passed",
            ],
        );
        let size_keys = [
            "payload_bytes",
            "requests",
            "ok",
            "lost",
            "mismatches",
            "tos_mismatches",
            "send_errors",
            "late",
            "p50_ms",
            "max_ms",
            "first_error",
        ];
        assert_keys(&v["sizes"][0], &size_keys);
        assert_keys(&v["sizes"][1], &size_keys);
        assert_eq!(v["to"], "10.0.0.1:7");
        assert_eq!(v["local_ports"], serde_json::json!([40000]));
        assert_eq!(
            (&v["requests"], &v["ok"], &v["passed"]),
            (&4.into(), &3.into(), &false.into())
        );
        assert_eq!(v["sizes"][0]["payload_bytes"], 64);
        assert_eq!(v["sizes"][0]["p50_ms"].as_f64(), Some(0.5));
        assert_eq!(v["sizes"][0]["max_ms"].as_f64(), Some(2.0));
        assert_eq!(v["sizes"][1]["p50_ms"], serde_json::Value::Null);
        assert_eq!(v["sizes"][1]["max_ms"], serde_json::Value::Null);
        assert_eq!(
            v["sizes"][1]["first_error"],
            "request 3: no reply within 2000 ms"
        );
    }

    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let len = CMSG_HDR + data.len();
        let mut v = len.to_ne_bytes().to_vec();
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(align(len), 0);
        v
    }

    #[test]
    fn control_messages() {
        let mut c = cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[0x2f]);
        c.extend(cmsg(
            libc::IPPROTO_IP,
            libc::IP_RECVOPTS,
            &[1, 7, 7, 8, 10, 1, 0, 1],
        ));
        let a = parse_cmsgs(&c);
        assert_eq!(a.tos, Some(0x2f));
        assert_eq!(
            a.ip_options.as_deref(),
            Some(&[1u8, 7, 7, 8, 10, 1, 0, 1][..])
        );
        let mut c = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            &0xb9i32.to_ne_bytes(),
        );
        c.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPOPTS,
            &[60, 0, 0x1e, 4, 1, 2, 3, 4],
        ));
        c.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_DSTOPTS,
            &[17, 0, 0x1e, 4, 5, 6, 7, 8],
        ));
        let a = parse_cmsgs(&c);
        assert_eq!(a.tos, Some(0xb9));
        assert_eq!(a.hopopts.unwrap()[0], 60);
        assert_eq!(a.dstopts.unwrap()[4..], [5, 6, 7, 8]);
        // A record claiming more than the buffer holds ends the walk.
        let mut c = cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[1]);
        c[0] = 200;
        assert_eq!(parse_cmsgs(&c), Ancillary::default());
        assert_eq!(parse_cmsgs(&[0u8; 3]), Ancillary::default());
    }

    #[test]
    fn rr_option_checks() {
        let ok = rr_opts(options(&[
            "--to",
            "10.0.0.1:7",
            "--sizes",
            "64,8000",
            "--tos",
            "0x03,46",
            "--flows",
            "4",
            "--src-port",
            "40000",
        ]))
        .unwrap();
        assert_eq!(ok.tos, vec![3, 46]);
        assert_eq!(ok.sizes, vec![64, 8000]);
        for bad in [
            vec!["--sizes", "64"],
            vec!["--to", "10.0.0.1:0", "--sizes", "64"],
            vec!["--to", "10.0.0.1:7", "--sizes", "8"],
            vec!["--to", "10.0.0.1:7", "--sizes", "70000"],
            vec!["--to", "10.0.0.1:7", "--sizes", "64", "--tos", "256"],
            vec![
                "--to",
                "10.0.0.1:7",
                "--sizes",
                "64",
                "--hopopts",
                "00001e0445444745",
            ],
            vec![
                "--to",
                "[fd00::1]:7",
                "--sizes",
                "64",
                "--ip-options",
                "01010101",
            ],
            vec![
                "--to",
                "10.0.0.1:7",
                "--sizes",
                "64",
                "--src-port",
                "65535",
                "--flows",
                "2",
            ],
            vec!["--to", "10.0.0.1:7", "--sizes", "64", "--bind", "fd00::1"],
            vec!["--to", "10.0.0.1:7", "--sizes", "64", "--flows", "0"],
        ] {
            assert!(rr_opts(options(&bad)).is_err(), "{bad:?}");
        }
        assert!(echo_opts(options(&["--count", "1"])).is_err());
        assert!(echo_opts(options(&["--listen", "0.0.0.0:9", "--count", "0"])).is_err());
    }
}
