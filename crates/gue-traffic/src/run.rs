//! `gue-traffic run`: load generator and verifier.

use crate::args::{format_size, Deadlines};
use crate::proto::{parse_reply, payload_digest, request_seed, Payload, CHUNK, MAX_REPLY};
use crate::report::{rounded, rounded_opt, write_report, JsonDest};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub struct RunOpts {
    pub connect: SocketAddr,
    /// Local address (port 0: any) every connection is made from.
    pub bind: Option<SocketAddr>,
    pub sizes: Vec<u64>,
    pub requests: u64,
    pub connections: u64,
    pub deadlines: Deadlines,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub seed: u64,
    pub json: JsonDest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Mismatch,
    Timeout,
    Error,
}

struct Fail {
    kind: Kind,
    msg: String,
}

impl Fail {
    fn io(e: io::Error, what: &str) -> Fail {
        let kind = match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Kind::Timeout,
            _ => Kind::Error,
        };
        Fail {
            kind,
            msg: format!("{what}: {e}"),
        }
    }
    fn err(msg: String) -> Fail {
        Fail {
            kind: Kind::Error,
            msg,
        }
    }
}

struct Outcome {
    kind: Kind,
    latency: Option<Duration>,
    msg: Option<String>,
}

/// Result of one size phase; an element of the report's `sizes`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SizeStats {
    pub payload_bytes: u64,
    pub requests: u64,
    pub connections: u64,
    pub ok: u64,
    pub bytes_ok: u64,
    pub mismatches: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub over_deadline: u64,
    pub deadline_ms: Option<u64>,
    #[serde(serialize_with = "rounded_opt")]
    pub p50_ms: Option<f64>,
    #[serde(serialize_with = "rounded_opt")]
    pub p99_ms: Option<f64>,
    #[serde(serialize_with = "rounded_opt")]
    pub max_ms: Option<f64>,
    #[serde(serialize_with = "rounded")]
    pub elapsed_ms: f64,
    #[serde(serialize_with = "rounded")]
    pub throughput_mbps: f64,
    pub first_error: Option<String>,
}

impl SizeStats {
    pub fn passed(&self) -> bool {
        self.ok == self.requests && self.over_deadline == 0
    }
}

/// Nearest-rank percentile of sorted values: element ceil(p/100 * n), 1-based.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Median and maximum of request times in ms: the latency keys of the
/// `udp-rr` and `sctp-run` reports (null without any time).
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct MedianMax {
    #[serde(serialize_with = "rounded_opt")]
    pub p50_ms: Option<f64>,
    #[serde(serialize_with = "rounded_opt")]
    pub max_ms: Option<f64>,
}

impl MedianMax {
    pub fn of(times: &[f64]) -> Self {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        MedianMax {
            p50_ms: percentile(&sorted, 50.0),
            max_ms: sorted.last().copied(),
        }
    }
}

fn connect(o: &RunOpts) -> Result<TcpStream, Fail> {
    let s = match &o.bind {
        None => TcpStream::connect_timeout(&o.connect, o.connect_timeout),
        Some(from) => crate::sock::tcp_connect_from(from, &o.connect, o.connect_timeout),
    }
    .map_err(|e| Fail::io(e, &format!("connect to {}", o.connect)))?;
    s.set_read_timeout(Some(o.timeout))
        .and_then(|_| s.set_write_timeout(Some(o.timeout)))
        .and_then(|_| s.set_nodelay(true))
        .map_err(|e| Fail::io(e, "socket setup"))?;
    Ok(s)
}

/// One request on `s`. Returns the latency from first byte sent until the
/// complete reply line was read.
fn request(s: &mut TcpStream, size: u64, seed: u64, buf: &mut [u8]) -> Result<Duration, Fail> {
    // Hash up front so that the measured latency covers network and server only.
    let expect = payload_digest(seed, size, &mut buf[8..]);
    let mut payload = Payload::new(seed);
    let start = Instant::now();

    buf[..8].copy_from_slice(&size.to_be_bytes());
    let mut sent = 0u64;
    let mut first = true;
    while first || sent < size {
        let n = (size - sent).min((buf.len() - 8) as u64) as usize;
        payload.fill(&mut buf[8..8 + n]);
        let from = if first { 0 } else { 8 };
        s.write_all(&buf[from..8 + n])
            .map_err(|e| Fail::io(e, &format!("send after {sent} of {size} bytes")))?;
        sent += n as u64;
        first = false;
    }

    let mut line = [0u8; MAX_REPLY];
    let mut got = 0;
    let end = loop {
        if got == line.len() {
            return Err(Fail::err("reply line too long".into()));
        }
        match s.read(&mut line[got..]) {
            Ok(0) => {
                return Err(Fail::err(format!(
                    "connection closed before complete reply (got {got} bytes)"
                )))
            }
            Ok(n) => {
                got += n;
                if let Some(p) = line[..got].iter().position(|&b| b == b'\n') {
                    break p;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::io(e, "waiting for reply")),
        }
    };
    let latency = start.elapsed();
    if end + 1 != got {
        return Err(Fail::err("unexpected data after reply line".into()));
    }
    let text = String::from_utf8_lossy(&line[..end]);
    let Some((len, digest)) = parse_reply(text.trim_end_matches('\r')) else {
        return Err(Fail::err(format!("malformed reply {:?}", text)));
    };
    if len != size || digest != expect {
        return Err(Fail {
            kind: Kind::Mismatch,
            msg: format!(
                "sent {size} bytes sha256 {expect}, server saw {len} bytes sha256 {digest}"
            ),
        });
    }
    Ok(latency)
}

/// Runs the requests `indices` of one phase sequentially over one connection,
/// reconnecting after a failure that may have desynchronised the stream.
fn worker(o: &RunOpts, size: u64, indices: Vec<u64>) -> Vec<Outcome> {
    let mut buf = vec![0u8; 8 + CHUNK];
    let mut conn: Option<TcpStream> = None;
    let mut out = Vec::with_capacity(indices.len());
    for i in indices {
        if conn.is_none() {
            match connect(o) {
                Ok(s) => conn = Some(s),
                Err(f) => {
                    out.push(Outcome {
                        kind: f.kind,
                        latency: None,
                        msg: Some(format!("request {i}: {}", f.msg)),
                    });
                    continue;
                }
            }
        }
        let s = conn.as_mut().expect("connected");
        match request(s, size, request_seed(o.seed, size, i), &mut buf) {
            Ok(lat) => out.push(Outcome {
                kind: Kind::Ok,
                latency: Some(lat),
                msg: None,
            }),
            Err(f) => {
                if f.kind != Kind::Mismatch {
                    conn = None;
                }
                out.push(Outcome {
                    kind: f.kind,
                    latency: None,
                    msg: Some(format!("request {i}: {}", f.msg)),
                });
            }
        }
    }
    out
}

fn run_phase(o: &RunOpts, size: u64) -> SizeStats {
    let conns = o.connections.min(o.requests).max(1);
    let mut per_conn: Vec<Vec<u64>> = vec![Vec::new(); conns as usize];
    for i in 0..o.requests {
        per_conn[(i % conns) as usize].push(i);
    }
    let start = Instant::now();
    let outcomes: Vec<Outcome> = std::thread::scope(|sc| {
        let handles: Vec<_> = per_conn
            .into_iter()
            .map(|idx| sc.spawn(move || worker(o, size, idx)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Outcome {
                        kind: Kind::Error,
                        latency: None,
                        msg: Some("worker thread panicked".into()),
                    }]
                })
            })
            .collect()
    });
    let elapsed = start.elapsed();

    let deadline = o.deadlines.get(size);
    let mut st = SizeStats {
        payload_bytes: size,
        requests: o.requests,
        connections: conns,
        deadline_ms: deadline,
        elapsed_ms: elapsed.as_secs_f64() * 1e3,
        ..Default::default()
    };
    let mut lat = Vec::new();
    for oc in &outcomes {
        match oc.kind {
            Kind::Ok => st.ok += 1,
            Kind::Mismatch => st.mismatches += 1,
            Kind::Timeout => st.timeouts += 1,
            Kind::Error => st.errors += 1,
        }
        if let Some(l) = oc.latency {
            let ms = l.as_secs_f64() * 1e3;
            if deadline.is_some_and(|d| ms > d as f64) {
                st.over_deadline += 1;
            }
            lat.push(ms);
        }
        if st.first_error.is_none() {
            st.first_error = oc.msg.clone();
        }
    }
    // A panicked worker loses its outcomes: account the missing ones as errors.
    let accounted = st.ok + st.mismatches + st.timeouts + st.errors;
    if accounted < st.requests {
        st.errors += st.requests - accounted;
    }
    st.bytes_ok = st.ok * size;
    lat.sort_by(f64::total_cmp);
    st.p50_ms = percentile(&lat, 50.0);
    st.p99_ms = percentile(&lat, 99.0);
    st.max_ms = lat.last().copied();
    let secs = elapsed.as_secs_f64();
    st.throughput_mbps = if secs > 0.0 {
        st.bytes_ok as f64 * 8.0 / secs / 1e6
    } else {
        0.0
    };
    st
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 1.0 => format!("{v:.3} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "- ms".into(),
    }
}

pub fn human_line(st: &SizeStats) -> String {
    let mut s = format!(
        "{}: {}/{} ok, p50 {}, p99 {}, max {}, {:.1} Mbit/s",
        format_size(st.payload_bytes),
        st.ok,
        st.requests,
        fmt_ms(st.p50_ms),
        fmt_ms(st.p99_ms),
        fmt_ms(st.max_ms),
        st.throughput_mbps
    );
    for (n, what) in [
        (st.mismatches, "mismatches"),
        (st.timeouts, "timeouts"),
        (st.errors, "errors"),
    ] {
        if n > 0 {
            let _ = write!(s, ", {n} {what}");
        }
    }
    if st.over_deadline > 0 {
        let _ = write!(
            s,
            ", {} over deadline {} ms",
            st.over_deadline,
            st.deadline_ms.unwrap_or(0)
        );
    }
    if let Some(e) = &st.first_error {
        let _ = write!(s, " (first failure: {e})");
    }
    s
}

/// The JSON report of `run`.
#[derive(Serialize)]
struct Report<'a> {
    target: std::net::SocketAddr,
    seed: u64,
    timeout_ms: u64,
    sizes: &'a [SizeStats],
    total_ok: u64,
    total_requests: u64,
    #[serde(serialize_with = "rounded")]
    elapsed_ms: f64,
    passed: bool,
}

fn report<'a>(o: &RunOpts, stats: &'a [SizeStats], elapsed: Duration) -> Report<'a> {
    Report {
        target: o.connect,
        seed: o.seed,
        timeout_ms: o.timeout.as_millis().try_into().unwrap_or(u64::MAX),
        sizes: stats,
        total_ok: stats.iter().map(|s| s.ok).sum(),
        total_requests: stats.iter().map(|s| s.requests).sum(),
        elapsed_ms: elapsed.as_secs_f64() * 1e3,
        passed: stats.iter().all(SizeStats::passed),
    }
}

/// Runs all phases; returns the exit status (0 pass, 1 failures).
pub fn run(o: &RunOpts) -> i32 {
    let start = Instant::now();
    let mut stats = Vec::new();
    for &size in &o.sizes {
        let st = run_phase(o, size);
        eprintln!("{}", human_line(&st));
        stats.push(st);
    }
    if !write_report(&report(o, &stats, start.elapsed()), &o.json, "run") {
        return 1;
    }
    if stats.iter().all(SizeStats::passed) {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{assert_keys, json_line};

    #[test]
    fn nearest_rank() {
        assert_eq!(percentile(&[], 50.0), None);
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(5.0));
        assert_eq!(percentile(&v, 99.0), Some(10.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
    }

    #[test]
    fn report_keys() {
        let o = RunOpts {
            connect: "[fd00::1]:8080".parse().unwrap(),
            bind: None,
            sizes: vec![1024, 2048],
            requests: 2,
            connections: 1,
            deadlines: Deadlines::default(),
            timeout: Duration::from_millis(10_000),
            connect_timeout: Duration::from_millis(10_000),
            seed: 7,
            json: JsonDest::Stdout,
        };
        let passed = SizeStats {
            payload_bytes: 1024,
            requests: 2,
            connections: 1,
            ok: 2,
            bytes_ok: 2048,
            deadline_ms: Some(50),
            p50_ms: Some(0.12345),
            p99_ms: Some(1.5),
            max_ms: Some(2.0),
            elapsed_ms: 3.0004,
            throughput_mbps: 5.4321,
            ..Default::default()
        };
        let failed = SizeStats {
            payload_bytes: 2048,
            requests: 2,
            connections: 1,
            timeouts: 2,
            first_error: Some("request 0: \"x\"\n".into()),
            throughput_mbps: f64::NAN,
            ..Default::default()
        };
        let stats = [passed, failed];
        let v = json_line(&report(&o, &stats, Duration::from_millis(7)));
        assert_keys(
            &v,
            &[
                "elapsed_ms",
                "passed",
                "seed",
                "sizes",
                "target",
                "timeout_ms",
                "total_ok",
                "total_requests",
            ],
        );
        assert_keys(
            &v["sizes"][0],
            &[
                "bytes_ok",
                "connections",
                "deadline_ms",
                "elapsed_ms",
                "errors",
                "first_error",
                "max_ms",
                "mismatches",
                "ok",
                "over_deadline",
                "p50_ms",
                "p99_ms",
                "payload_bytes",
                "requests",
                "throughput_mbps",
                "timeouts",
            ],
        );
        assert_eq!(v["target"], "[fd00::1]:8080");
        assert_eq!(
            (v["seed"].as_u64(), v["timeout_ms"].as_u64()),
            (Some(7), Some(10_000))
        );
        assert_eq!(
            (v["total_ok"].as_u64(), v["total_requests"].as_u64()),
            (Some(2), Some(4))
        );
        assert_eq!(v["elapsed_ms"].as_f64(), Some(7.0));
        assert_eq!(v["passed"], false);
        let (s0, s1) = (&v["sizes"][0], &v["sizes"][1]);
        assert_eq!(s0["deadline_ms"], 50);
        assert_eq!(s0["p50_ms"].as_f64(), Some(0.123));
        assert_eq!(s0["p99_ms"].as_f64(), Some(1.5));
        assert_eq!(s0["elapsed_ms"].as_f64(), Some(3.0));
        assert_eq!(s0["throughput_mbps"].as_f64(), Some(5.432));
        assert_eq!(s0["first_error"], serde_json::Value::Null);
        assert_eq!(s1["timeouts"], 2);
        for key in [
            "deadline_ms",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "throughput_mbps",
        ] {
            assert_eq!(s1[key], serde_json::Value::Null, "{key}");
        }
        assert_eq!(s1["first_error"], "request 0: \"x\"\n");
    }
}
