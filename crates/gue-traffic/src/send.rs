//! `gue-traffic send` (UDP datagrams or raw IP packets such as ESP/AH),
//! `gue-traffic icmp-error` (ICMP errors quoting a packet of a flow) and
//! `gue-traffic udp-sink` (counts what arrives).

use crate::craft::{self, Quoted};
use crate::dgram::Received;
use crate::report::{write_report, JsonDest};
use crate::sock::RawSocket;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{self, ErrorKind};
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
    pub json: JsonDest,
}

pub struct IcmpErrorOpts {
    /// The ICMP error's destination (the virtual address).
    pub to: IpAddr,
    pub bind: Option<IpAddr>,
    pub quoted: Quoted,
    pub mtu: u32,
    pub count: u64,
    pub interval: Duration,
    pub json: JsonDest,
}

pub struct SinkOpts {
    pub listen: SocketAddr,
    /// Stop after this many datagrams (None: at the timeout).
    pub count: Option<u64>,
    pub timeout: Duration,
    pub json: JsonDest,
}

/// Tally of a sending run: the keys the `send` and `icmp-error` reports share.
#[derive(Default, Serialize)]
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
}

#[derive(Serialize)]
struct SendReport<'a> {
    /// ADDR:PORT for UDP, else ADDR.
    to: String,
    /// The local address (UDP: and port) sent from, if known.
    from: Option<String>,
    proto: String,
    #[serde(flatten)]
    tally: &'a Sent,
}

#[derive(Serialize)]
struct IcmpErrorReport<'a> {
    to: IpAddr,
    kind: &'static str,
    mtu: u32,
    quoted_src: SocketAddr,
    quoted_dst: SocketAddr,
    #[serde(flatten)]
    tally: &'a Sent,
}

#[derive(Serialize)]
struct SinkReport {
    listen: SocketAddr,
    #[serde(flatten)]
    received: Received,
    /// How many distinct source addresses.
    sources: usize,
    error: Option<String>,
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
    let mut from = None;
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
            from = sock.local_addr().ok().map(|a| a.to_string());
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
                from = Some(b.ip().to_string());
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
    let report = SendReport {
        to: target,
        from,
        proto: o.proto.name(),
        tally: &t,
    };
    if !write_report(&report, &o.json, "send") {
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
    let report = IcmpErrorReport {
        to: o.to,
        kind,
        mtu: o.mtu,
        quoted_src: o.quoted.src,
        quoted_dst: o.quoted.dst,
        tally: &t,
    };
    if !write_report(&report, &o.json, "icmp-error") {
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
    let mut received = Received::default();
    let mut sources = BTreeSet::new();
    let mut error = None;
    while o.count.is_none_or(|c| received.datagrams < c) {
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
                received.add(n);
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
    eprintln!(
        "received {} datagrams ({} bytes) on {local} from {} sources",
        received.datagrams,
        received.bytes,
        sources.len()
    );
    let report = SinkReport {
        listen: local,
        received,
        sources: sources.len(),
        error,
    };
    if !write_report(&report, &o.json, "udp-sink") {
        return 1;
    }
    i32::from(!report.received.enough(o.count) || report.error.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{assert_keys, json_line};

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

    #[test]
    fn report_keys() {
        let mut tally = Sent::default();
        tally.record(Ok(200), "sendto");
        tally.record(Err(io::Error::from_raw_os_error(libc::EPERM)), "sendto");
        let tally_keys = ["sent", "bytes", "errors", "first_error"];

        let v = json_line(&SendReport {
            to: "10.0.0.1:9".into(),
            from: None,
            proto: Proto::Esp.name(),
            tally: &tally,
        });
        assert_keys(&v, &[&["to", "from", "proto"][..], &tally_keys].concat());
        assert_eq!(v["from"], serde_json::Value::Null);
        assert_eq!(v["proto"], "esp");
        assert_eq!(
            (&v["sent"], &v["bytes"], &v["errors"]),
            (&1.into(), &200.into(), &1.into())
        );
        assert!(v["first_error"].as_str().unwrap().starts_with("sendto: "));

        let v = json_line(&IcmpErrorReport {
            to: "fd00::1".parse().unwrap(),
            kind: "packet-too-big",
            mtu: 1400,
            quoted_src: "[fd00::1]:7000".parse().unwrap(),
            quoted_dst: "[fd01::1]:40000".parse().unwrap(),
            tally: &Sent::default(),
        });
        assert_keys(
            &v,
            &[
                &["to", "kind", "mtu", "quoted_src", "quoted_dst"][..],
                &tally_keys,
            ]
            .concat(),
        );
        assert_eq!(v["to"], "fd00::1");
        assert_eq!(v["quoted_src"], "[fd00::1]:7000");
        assert_eq!(v["mtu"], 1400);
        assert_eq!(v["first_error"], serde_json::Value::Null);

        let mut received = Received::default();
        for n in [300, 100, 200] {
            received.add(n);
        }
        let v = json_line(&SinkReport {
            listen: "0.0.0.0:7000".parse().unwrap(),
            received,
            sources: 2,
            error: Some("recvfrom: x".into()),
        });
        assert_keys(
            &v,
            &[
                "listen",
                "datagrams",
                "bytes",
                "min_bytes",
                "max_bytes",
                "sources",
                "error",
            ],
        );
        assert_eq!(v["listen"], "0.0.0.0:7000");
        assert_eq!((&v["datagrams"], &v["bytes"]), (&3.into(), &600.into()));
        assert_eq!(
            (&v["min_bytes"], &v["max_bytes"]),
            (&100.into(), &300.into())
        );
        assert_eq!(v["error"], "recvfrom: x");
        let v = json_line(&SinkReport {
            listen: "0.0.0.0:7000".parse().unwrap(),
            received: Received::default(),
            sources: 0,
            error: None,
        });
        assert_eq!(
            (&v["min_bytes"], &v["max_bytes"]),
            (&serde_json::Value::Null, &serde_json::Value::Null)
        );
    }
}
