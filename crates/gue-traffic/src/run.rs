//! `gue-traffic run`: load generator and verifier.

use crate::args::{format_size, Deadlines};
use crate::proto::{parse_reply, payload_digest, request_seed, Payload, CHUNK, MAX_REPLY};
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
    /// None or Some("-"): stdout.
    pub json: Option<String>,
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

/// Result of one size phase.
#[derive(Debug, Clone, Default)]
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
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub elapsed_ms: f64,
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
            msg: format!("sent {size} bytes sha256 {expect}, server saw {len} bytes sha256 {digest}"),
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

pub(crate) fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

fn json_opt_f(v: Option<f64>) -> String {
    v.map(json_f).unwrap_or_else(|| "null".into())
}

pub fn size_json(st: &SizeStats) -> String {
    format!(
        concat!(
            "{{\"payload_bytes\":{},\"requests\":{},\"connections\":{},\"ok\":{},",
            "\"bytes_ok\":{},\"mismatches\":{},\"timeouts\":{},\"errors\":{},",
            "\"over_deadline\":{},\"deadline_ms\":{},\"p50_ms\":{},\"p99_ms\":{},",
            "\"max_ms\":{},\"elapsed_ms\":{},\"throughput_mbps\":{},\"first_error\":{}}}"
        ),
        st.payload_bytes,
        st.requests,
        st.connections,
        st.ok,
        st.bytes_ok,
        st.mismatches,
        st.timeouts,
        st.errors,
        st.over_deadline,
        st.deadline_ms
            .map(|d| d.to_string())
            .unwrap_or_else(|| "null".into()),
        json_opt_f(st.p50_ms),
        json_opt_f(st.p99_ms),
        json_opt_f(st.max_ms),
        json_f(st.elapsed_ms),
        json_f(st.throughput_mbps),
        st.first_error
            .as_deref()
            .map(json_str)
            .unwrap_or_else(|| "null".into()),
    )
}

pub fn report_json(o: &RunOpts, stats: &[SizeStats], elapsed: Duration) -> String {
    let sizes: Vec<String> = stats.iter().map(size_json).collect();
    let total_ok: u64 = stats.iter().map(|s| s.ok).sum();
    let total_requests: u64 = stats.iter().map(|s| s.requests).sum();
    let passed = stats.iter().all(SizeStats::passed);
    format!(
        "{{\"target\":{},\"seed\":{},\"timeout_ms\":{},\"sizes\":[{}],\"total_ok\":{},\"total_requests\":{},\"elapsed_ms\":{},\"passed\":{}}}\n",
        json_str(&o.connect.to_string()),
        o.seed,
        o.timeout.as_millis(),
        sizes.join(","),
        total_ok,
        total_requests,
        json_f(elapsed.as_secs_f64() * 1e3),
        passed
    )
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
    let json = report_json(o, &stats, start.elapsed());
    let written = match o.json.as_deref() {
        None | Some("-") => {
            let mut out = io::stdout().lock();
            out.write_all(json.as_bytes()).and_then(|_| out.flush())
        }
        Some(path) => std::fs::write(path, json.as_bytes()),
    };
    if let Err(e) = written {
        eprintln!(
            "gue-traffic run: cannot write JSON to {}: {e}",
            o.json.as_deref().unwrap_or("stdout")
        );
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
    fn json_escaping() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
