//! `gue-traffic send` (UDP datagrams or raw IP packets such as ESP/AH),
//! `gue-traffic icmp-error` (ICMP errors quoting a packet of a flow) and
//! `gue-traffic udp-sink` (counts what arrives).

use crate::craft::{self, Quoted};
use crate::run::json_str;
use crate::sock::RawSocket;
use std::collections::BTreeSet;
use std::io::{self, ErrorKind, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What `send` puts in each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Esp,
    Ah,
    /// Any other IP protocol number: raw packets with the filler payload.
    Other(u8),
}

impl Proto {
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s {
            "udp" => Proto::Udp,
            "esp" => Proto::Esp,
            "ah" => Proto::Ah,
            n => match n.parse::<u8>().ok()? {
                craft::IPPROTO_UDP => Proto::Udp,
                craft::IPPROTO_ESP => Proto::Esp,
                craft::IPPROTO_AH => Proto::Ah,
                0 | 255 => return None,
                n => Proto::Other(n),
            },
        })
    }

    pub fn name(self) -> String {
        match self {
            Proto::Udp => "udp".into(),
            Proto::Esp => "esp".into(),
            Proto::Ah => "ah".into(),
            Proto::Other(n) => n.to_string(),
        }
    }

    fn number(self) -> u8 {
        match self {
            Proto::Udp => craft::IPPROTO_UDP,
            Proto::Esp => craft::IPPROTO_ESP,
            Proto::Ah => craft::IPPROTO_AH,
            Proto::Other(n) => n,
        }
    }

    /// Default payload size in bytes.
    pub fn default_size(self) -> usize {
        match self {
            Proto::Ah => 24,
            _ => 64,
        }
    }
}

pub struct SendOpts {
    /// Port 0 for raw protocols.
    pub to: SocketAddr,
    pub proto: Proto,
    /// Local address (and, for UDP, port) to send from.
    pub bind: Option<SocketAddr>,
    pub count: u64,
    pub size: usize,
    pub interval: Duration,
    pub spi: u32,
    /// None or Some("-"): stdout.
    pub json: Option<String>,
}

pub struct IcmpErrorOpts {
    /// The ICMP error's destination (the virtual address).
    pub to: IpAddr,
    pub bind: Option<IpAddr>,
    pub quoted: Quoted,
    pub mtu: u32,
    pub count: u64,
    pub interval: Duration,
    pub json: Option<String>,
}

pub struct SinkOpts {
    pub listen: SocketAddr,
    /// Stop after this many datagrams (None: at the timeout).
    pub count: Option<u64>,
    pub timeout: Duration,
    pub json: Option<String>,
}

/// Tally of a sending run.
#[derive(Default)]
struct Sent {
    sent: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Sent {
    fn record(&mut self, r: io::Result<usize>, what: &str) {
        match r {
            Ok(n) => {
                self.sent += 1;
                self.bytes += n as u64;
            }
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("{what}: {e}"));
                }
            }
        }
    }

    fn json(&self, head: &str) -> String {
        format!(
            "{{{head},\"sent\":{},\"bytes\":{},\"errors\":{},\"first_error\":{}}}\n",
            self.sent,
            self.bytes,
            self.errors,
            self.first_error
                .as_deref()
                .map(json_str)
                .unwrap_or_else(|| "null".into())
        )
    }
}

fn write_json(json: &str, dest: Option<&str>, who: &str) -> bool {
    let written = match dest {
        None | Some("-") => {
            let mut out = io::stdout().lock();
            out.write_all(json.as_bytes()).and_then(|_| out.flush())
        }
        Some(path) => std::fs::write(path, json.as_bytes()),
    };
    match written {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "gue-traffic {who}: cannot write JSON to {}: {e}",
                dest.unwrap_or("stdout")
            );
            false
        }
    }
}

/// Sends `count` packets, calling `one(seq)` for each (1-based), `interval` apart.
fn repeat(count: u64, interval: Duration, mut one: impl FnMut(u32)) {
    for i in 0..count {
        if i > 0 && !interval.is_zero() {
            std::thread::sleep(interval);
        }
        one((i + 1) as u32);
    }
}

fn unspecified_like(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    }
}

/// Runs `send`; returns the exit status (0 all sent, 1 otherwise).
pub fn send(o: &SendOpts) -> i32 {
    let mut t = Sent::default();
    let target = if o.proto == Proto::Udp {
        o.to.to_string()
    } else {
        o.to.ip().to_string()
    };
    let mut from = String::from("null");
    match o.proto {
        Proto::Udp => {
            let bind = o.bind.unwrap_or_else(|| unspecified_like(&o.to));
            let sock = match UdpSocket::bind(bind) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("gue-traffic send: cannot bind UDP socket to {bind}: {e}");
                    return 1;
                }
            };
            if let Ok(a) = sock.local_addr() {
                from = json_str(&a.to_string());
            }
            repeat(o.count, o.interval, |seq| {
                t.record(
                    sock.send_to(&craft::datagram_payload(seq, o.size), o.to),
                    "sendto",
                );
            });
        }
        proto => {
            let sock = match RawSocket::open(&o.to.ip(), proto.number()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("gue-traffic send: {e}");
                    return 1;
                }
            };
            if let Some(b) = o.bind {
                if let Err(e) = sock.bind(&b.ip()) {
                    eprintln!("gue-traffic send: {e}");
                    return 1;
                }
                from = json_str(&b.ip().to_string());
            }
            repeat(o.count, o.interval, |seq| {
                let body = match proto {
                    Proto::Esp => craft::esp_packet(o.spi, seq, o.size),
                    Proto::Ah => craft::ah_packet(o.spi, seq, o.size),
                    _ => craft::datagram_payload(seq, o.size),
                };
                t.record(sock.send_to(&body, &o.to.ip()), "sendto");
            });
        }
    }
    eprintln!(
        "sent {}/{} {} packets ({} bytes) to {target}{}",
        t.sent,
        o.count,
        o.proto.name(),
        t.bytes,
        t.first_error
            .as_deref()
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );
    let head = format!(
        "\"to\":{},\"from\":{from},\"proto\":{}",
        json_str(&target),
        json_str(&o.proto.name())
    );
    if !write_json(&t.json(&head), o.json.as_deref(), "send") {
        return 1;
    }
    i32::from(t.sent != o.count)
}

/// Runs `icmp-error`; returns the exit status (0 all sent, 1 otherwise).
pub fn icmp_error(o: &IcmpErrorOpts) -> i32 {
    let (proto, message) = match o.to {
        IpAddr::V4(_) => (
            craft::IPPROTO_ICMP,
            craft::icmp_frag_needed(&o.quoted, o.mtu.min(0xffff) as u16),
        ),
        IpAddr::V6(_) => (
            craft::IPPROTO_ICMPV6,
            craft::icmpv6_packet_too_big(&o.quoted, o.mtu),
        ),
    };
    let Some(message) = message else {
        eprintln!("gue-traffic icmp-error: the quoted packet must be of the family of --to");
        return 1;
    };
    let sock = match RawSocket::open(&o.to, proto) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gue-traffic icmp-error: {e}");
            return 1;
        }
    };
    if let Some(b) = &o.bind {
        if let Err(e) = sock.bind(b) {
            eprintln!("gue-traffic icmp-error: {e}");
            return 1;
        }
    }
    let mut t = Sent::default();
    repeat(o.count, o.interval, |_| {
        t.record(sock.send_to(&message, &o.to), "sendto")
    });
    let kind = match o.to {
        IpAddr::V4(_) => "frag-needed",
        IpAddr::V6(_) => "packet-too-big",
    };
    eprintln!(
        "sent {}/{} ICMP {kind} (mtu {}) to {} quoting {} -> {}{}",
        t.sent,
        o.count,
        o.mtu,
        o.to,
        o.quoted.src,
        o.quoted.dst,
        t.first_error
            .as_deref()
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );
    let head = format!(
        "\"to\":{},\"kind\":\"{kind}\",\"mtu\":{},\"quoted_src\":{},\"quoted_dst\":{}",
        json_str(&o.to.to_string()),
        o.mtu,
        json_str(&o.quoted.src.to_string()),
        json_str(&o.quoted.dst.to_string())
    );
    if !write_json(&t.json(&head), o.json.as_deref(), "icmp-error") {
        return 1;
    }
    i32::from(t.sent != o.count)
}

/// Runs `udp-sink`; returns 0 if `count` datagrams (or, without a count, at
/// least one) arrived before the timeout, 1 otherwise.
pub fn udp_sink(o: &SinkOpts) -> i32 {
    let sock = match UdpSocket::bind(o.listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gue-traffic udp-sink: cannot bind {}: {e}", o.listen);
            return 1;
        }
    };
    let local = sock.local_addr().unwrap_or(o.listen);
    eprintln!("listening on {local}");
    let deadline = Instant::now() + o.timeout;
    let mut buf = vec![0u8; 65536];
    let (mut datagrams, mut bytes) = (0u64, 0u64);
    let (mut min, mut max) = (None::<usize>, None::<usize>);
    let mut sources = BTreeSet::new();
    let mut error = None;
    while o.count.is_none_or(|c| datagrams < c) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Err(e) = sock.set_read_timeout(Some(left.min(Duration::from_millis(100)))) {
            error = Some(format!("SO_RCVTIMEO: {e}"));
            break;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                datagrams += 1;
                bytes += n as u64;
                min = Some(min.map_or(n, |m| m.min(n)));
                max = Some(max.map_or(n, |m| m.max(n)));
                sources.insert(from);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                error = Some(format!("recvfrom: {e}"));
                break;
            }
        }
    }
    let opt = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_else(|| "null".into());
    eprintln!(
        "received {datagrams} datagrams ({bytes} bytes) on {local} from {} sources",
        sources.len()
    );
    let json = format!(
        "{{\"listen\":{},\"datagrams\":{datagrams},\"bytes\":{bytes},\"min_bytes\":{},\"max_bytes\":{},\"sources\":{},\"error\":{}}}\n",
        json_str(&local.to_string()),
        opt(min),
        opt(max),
        sources.len(),
        error.as_deref().map(json_str).unwrap_or_else(|| "null".into())
    );
    if !write_json(&json, o.json.as_deref(), "udp-sink") {
        return 1;
    }
    let enough = match o.count {
        Some(c) => datagrams >= c,
        None => datagrams > 0,
    };
    i32::from(!enough || error.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(Proto::parse("udp"), Some(Proto::Udp));
        assert_eq!(Proto::parse("esp"), Some(Proto::Esp));
        assert_eq!(Proto::parse("50"), Some(Proto::Esp));
        assert_eq!(Proto::parse("51"), Some(Proto::Ah));
        assert_eq!(Proto::parse("17"), Some(Proto::Udp));
        assert_eq!(Proto::parse("47"), Some(Proto::Other(47)));
        assert_eq!(Proto::parse("0"), None);
        assert_eq!(Proto::parse("256"), None);
        assert_eq!(Proto::parse("gre"), None);
        assert_eq!(Proto::Other(47).name(), "47");
        assert_eq!(Proto::Ah.default_size(), 24);
    }
}
