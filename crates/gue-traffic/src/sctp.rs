//! `gue-traffic sctp-serve` / `gue-traffic sctp-run`: the `serve` / `run`
//! request protocol (8-byte length + body, reply "<len> <sha256hex>\n") over
//! one-to-one SCTP sockets (SOCK_STREAM, IPPROTO_SCTP), one stream.

use crate::args::{err, Options};
use crate::proto::{parse_reply, payload_digest, request_seed, Payload, MAX_REPLY};
use crate::report::{write_report, JsonDest};
use crate::run::MedianMax;
use crate::serve::serve_conn;
use crate::sock::{self, os_error, setsockopt_int};
use serde::Serialize;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub const USAGE: &str = "\
  gue-traffic sctp-serve --listen ADDR:PORT [--idle-timeout-ms MS]
  gue-traffic sctp-run --connect ADDR:PORT --sizes SIZE[,SIZE...] [--requests N]
                  [--bind ADDR] [--timeout-ms T] [--seed S] [--json PATH|-]
sctp-serve / sctp-run: the serve/run protocol over SCTP (one-to-one
       sockets, needs kernel SCTP). The server binds ADDR only (so the
       association has that one address) and prints \"listening on ADDR\"
       to stderr. The client sends REQUESTS (default 1) requests per SIZE
       over one association (reconnecting after a failure), bodies written
       in 16 KiB messages, and checks every digest. --timeout-ms (default
       10000) bounds the connect and each read/write. JSON per size
       {requests, ok, mismatches, errors, p50_ms, max_ms, first_error};
       exit 0 if all requests ok, 1 otherwise.
";

/// Largest message written at once (well under any socket buffer).
const MSG: usize = 16 * 1024;

/// An SCTP one-to-one socket of the family of `addr`, bound to it.
pub fn sctp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = sock::domain(&addr.ip());
    let fd = sock::socket(domain, libc::SOCK_STREAM, libc::IPPROTO_SCTP).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EPROTONOSUPPORT) | Some(libc::ESOCKTNOSUPPORT) => {
                " (no SCTP in this kernel)"
            }
            _ => "",
        };
        io::Error::new(e.kind(), format!("SCTP socket: {e}{hint}"))
    })?;
    // Best effort, so that a restarted server can bind its port again at once.
    let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "SO_REUSEADDR");
    if addr.is_ipv6() {
        setsockopt_int(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1, "IPV6_V6ONLY")?;
    }
    sock::bind(&fd, addr)?;
    Ok(fd)
}

/// Connects an SCTP association from `from` (port 0: any) to `to` within `timeout`.
pub fn connect(from: &SocketAddr, to: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let fd = sctp_socket(from)?;
    match crate::sock::connect_within(fd, to, timeout) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(io::Error::new(
            ErrorKind::TimedOut,
            format!("connect {to}: timed out"),
        )),
        Err(e) => Err(io::Error::new(e.kind(), format!("connect {to}: {e}"))),
    }
}

// ---- server --------------------------------------------------------------------------------

pub struct ServeOpts {
    pub listen: SocketAddr,
    pub idle_timeout: Duration,
}

pub fn serve_opts(mut a: Options) -> crate::args::Result<ServeOpts> {
    let mut listen = None;
    let mut idle_timeout = Duration::from_millis(30_000);
    while let Some(name) = a.next()? {
        match name.as_str() {
            "listen" => listen = Some(a.addr()?),
            "idle-timeout-ms" => idle_timeout = a.millis()?,
            _ => return Err(a.unknown()),
        }
    }
    let Some(listen) = listen else {
        return err("sctp-serve: --listen is required");
    };
    Ok(ServeOpts {
        listen,
        idle_timeout,
    })
}

pub fn serve(o: &ServeOpts) -> i32 {
    let fd = match sctp_socket(&o.listen) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gue-traffic sctp-serve: {e}");
            return 1;
        }
    };
    // SAFETY: listen on a bound socket we own.
    if unsafe { libc::listen(fd.as_raw_fd(), 64) } != 0 {
        eprintln!("gue-traffic sctp-serve: {}", os_error("listen"));
        return 1;
    }
    eprintln!("listening on {}", o.listen);
    loop {
        // SAFETY: accept on a listening socket; no address wanted.
        let c = unsafe {
            libc::accept4(
                fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c < 0 {
            eprintln!("gue-traffic sctp-serve: {}", os_error("accept"));
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        // SAFETY: c is a fresh descriptor we own.
        let mut s = TcpStream::from(unsafe { OwnedFd::from_raw_fd(c) });
        let idle = o.idle_timeout;
        let spawned = std::thread::Builder::new()
            .name("sctp".into())
            .spawn(move || {
                let _ = s
                    .set_read_timeout(Some(idle))
                    .and_then(|_| s.set_write_timeout(Some(idle)));
                if let Err(e) = serve_conn(&mut s) {
                    eprintln!("gue-traffic sctp-serve: {e}");
                }
            });
        if let Err(e) = spawned {
            eprintln!("gue-traffic sctp-serve: cannot spawn thread: {e}");
        }
    }
}

// ---- client --------------------------------------------------------------------------------

pub struct RunOpts {
    pub connect: SocketAddr,
    pub bind: Option<IpAddr>,
    pub sizes: Vec<u64>,
    pub requests: u64,
    pub timeout: Duration,
    pub seed: u64,
    pub json: JsonDest,
}

pub fn run_opts(mut a: Options) -> crate::args::Result<RunOpts> {
    let (mut connect, mut sizes, mut bind) = (None, None, None);
    let (mut requests, mut timeout, mut seed, mut json) =
        (1, Duration::from_millis(10_000), 1, JsonDest::Stdout);
    while let Some(name) = a.next()? {
        match name.as_str() {
            "connect" => connect = Some(a.addr()?),
            "sizes" => sizes = Some(a.sizes()?),
            "requests" => requests = a.positive()?,
            "bind" => bind = Some(a.endpoint()?.ip()),
            "timeout-ms" => timeout = a.millis()?,
            "seed" => seed = a.number()?,
            "json" => json = a.json()?,
            _ => return Err(a.unknown()),
        }
    }
    let Some(connect) = connect else {
        return err("sctp-run: --connect is required");
    };
    if connect.port() == 0 {
        return err("--connect: port must not be 0");
    }
    let Some(sizes) = sizes else {
        return err("sctp-run: --sizes is required");
    };
    if bind.is_some_and(|b: IpAddr| b.is_ipv4() != connect.is_ipv4()) {
        return err("--bind: must be of the family of --connect");
    }
    Ok(RunOpts {
        connect,
        bind,
        sizes,
        requests,
        timeout,
        seed,
        json,
    })
}

/// One element of the report's `sizes`.
#[derive(Serialize)]
struct SizeReport {
    payload_bytes: u64,
    requests: u64,
    ok: u64,
    mismatches: u64,
    errors: u64,
    #[serde(flatten)]
    latency: MedianMax,
    first_error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    connect: SocketAddr,
    sizes: Vec<SizeReport>,
    passed: bool,
}

/// One request over `s`; Ok(elapsed) if the reply names our length and digest.
fn one_request(
    s: &mut TcpStream,
    size: u64,
    seed: u64,
    buf: &mut [u8],
) -> Result<Duration, (bool, String)> {
    let t0 = Instant::now();
    let io = |e: io::Error, what: &str| (false, format!("{what}: {e}"));
    s.write_all(&size.to_be_bytes())
        .map_err(|e| io(e, "write header"))?;
    let mut p = Payload::new(seed);
    let mut left = size;
    while left > 0 {
        let n = left.min(MSG as u64) as usize;
        p.fill(&mut buf[..n]);
        s.write_all(&buf[..n]).map_err(|e| io(e, "write body"))?;
        left -= n as u64;
    }
    let mut line = Vec::with_capacity(MAX_REPLY);
    let mut b = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if line.len() >= MAX_REPLY {
            return Err((true, "reply line too long".into()));
        }
        match s.read(&mut b) {
            Ok(0) => {
                return Err((
                    false,
                    format!("closed before the reply ({} bytes)", line.len()),
                ))
            }
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e, "read reply")),
        }
    }
    let elapsed = t0.elapsed();
    let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
    let want = payload_digest(seed, size, buf);
    match parse_reply(&text) {
        Some((len, d)) if len == size && d == want => Ok(elapsed),
        _ => Err((
            true,
            format!("reply '{text}' does not match {size} bytes / {want}"),
        )),
    }
}

pub fn run(o: &RunOpts) -> i32 {
    let from = SocketAddr::new(
        o.bind.unwrap_or(if o.connect.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }),
        0,
    );
    let mut buf = vec![0u8; MSG.max(64 * 1024)];
    let mut conn: Option<TcpStream> = None;
    let mut sizes = Vec::with_capacity(o.sizes.len());
    for &size in &o.sizes {
        let (mut ok, mut mism, mut errs) = (0u64, 0u64, 0u64);
        let mut first: Option<String> = None;
        let mut times = Vec::new();
        for i in 0..o.requests {
            if conn.is_none() {
                match connect(&from, &o.connect, o.timeout).and_then(|s| {
                    s.set_read_timeout(Some(o.timeout))?;
                    s.set_write_timeout(Some(o.timeout))?;
                    Ok(s)
                }) {
                    Ok(s) => conn = Some(s),
                    Err(e) => {
                        errs += 1;
                        first.get_or_insert(e.to_string());
                        continue;
                    }
                }
            }
            let s = conn.as_mut().expect("connected");
            match one_request(s, size, request_seed(o.seed, size, i), &mut buf) {
                Ok(t) => {
                    ok += 1;
                    times.push(t.as_secs_f64() * 1e3);
                }
                Err((mismatch, e)) => {
                    if mismatch {
                        mism += 1;
                    } else {
                        errs += 1;
                    }
                    first.get_or_insert(format!("request {i}: {e}"));
                    conn = None;
                }
            }
        }
        eprintln!(
            "sctp-run {}: {size} B x{}: {ok} ok, {mism} mismatched, {errs} errors{}",
            o.connect,
            o.requests,
            first
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        sizes.push(SizeReport {
            payload_bytes: size,
            requests: o.requests,
            ok,
            mismatches: mism,
            errors: errs,
            latency: MedianMax::of(&times),
            first_error: first,
        });
    }
    let passed = sizes.iter().all(|s| s.ok == s.requests);
    let report = Report {
        connect: o.connect,
        sizes,
        passed,
    };
    if !write_report(&report, &o.json, "sctp-run") {
        return 1;
    }
    i32::from(!passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::options;
    use crate::report::{assert_keys, json_line};

    #[test]
    fn run_and_serve_options() {
        let o = run_opts(options(&[
            "--connect",
            "[fd10::10]:9",
            "--sizes",
            "1K,64K",
            "--requests",
            "3",
            "--bind",
            "fd01::1",
        ]))
        .unwrap();
        assert_eq!((o.sizes.clone(), o.requests), (vec![1024, 65536], 3));
        assert!(run_opts(options(&[
            "--connect",
            "10.0.0.1:9",
            "--sizes",
            "1K",
            "--bind",
            "fd01::1"
        ]))
        .is_err());
        assert!(run_opts(options(&["--connect", "10.0.0.1:0", "--sizes", "1K"])).is_err());
        assert!(run_opts(options(&["--sizes", "1K"])).is_err());
        assert!(run_opts(options(&[
            "--connect",
            "10.0.0.1:9",
            "--sizes",
            "1K",
            "--requests",
            "0"
        ]))
        .is_err());
        assert!(serve_opts(options(&[])).is_err());
        assert!(serve_opts(options(&[
            "--listen",
            "10.0.0.1:9",
            "--idle-timeout-ms",
            "0"
        ]))
        .is_err());
    }

    #[test]
    fn report_keys() {
        let v = json_line(&Report {
            connect: "10.0.0.1:7200".parse().unwrap(),
            sizes: vec![SizeReport {
                payload_bytes: 1024,
                requests: 2,
                ok: 1,
                mismatches: 0,
                errors: 1,
                latency: MedianMax::of(&[1.25]),
                first_error: Some("request 1: read reply: timed out".into()),
            }],
            passed: false,
        });
        assert_keys(&v, &["connect", "sizes", "passed"]);
        assert_keys(
            &v["sizes"][0],
            &[
                "payload_bytes",
                "requests",
                "ok",
                "mismatches",
                "errors",
                "p50_ms",
                "max_ms",
                "first_error",
            ],
        );
        assert_eq!(v["connect"], "10.0.0.1:7200");
        assert_eq!(v["sizes"][0]["p50_ms"].as_f64(), Some(1.25));
        assert_eq!(v["passed"], false);
    }

    /// The request loop against `serve_conn` over a local stream (TCP stands in for SCTP,
    /// which is not always available where the tests run).
    #[test]
    fn request_protocol_over_a_stream() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            serve_conn(&mut s).unwrap()
        });
        let mut s = TcpStream::connect(a).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        for (i, size) in [0u64, 1, 16 * 1024 + 3, 100_000].into_iter().enumerate() {
            one_request(&mut s, size, request_seed(1, size, i as u64), &mut buf).unwrap();
        }
        drop(s);
        assert_eq!(t.join().unwrap(), 4);
    }

    #[test]
    fn sctp_loopback_if_available() {
        let probe = match sctp_socket(&"127.0.0.1:0".parse().unwrap()) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipping: {e}");
                return;
            }
        };
        drop(probe);
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let fd = sctp_socket(&listen).unwrap();
        // SAFETY: listen on a socket we own.
        assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 4) }, 0);
        let t = std::thread::spawn(move || {
            // SAFETY: accept on our listening socket.
            let c =
                unsafe { libc::accept(fd.as_raw_fd(), std::ptr::null_mut(), std::ptr::null_mut()) };
            assert!(c >= 0);
            // SAFETY: `c` is a descriptor accept just returned (checked >= 0); nothing else owns it.
            let mut s = TcpStream::from(unsafe { OwnedFd::from_raw_fd(c) });
            serve_conn(&mut s).unwrap()
        });
        let mut s = connect(
            &"127.0.0.1:0".parse().unwrap(),
            &listen,
            Duration::from_secs(5),
        )
        .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        one_request(&mut s, 70_000, 9, &mut buf).unwrap();
        drop(s);
        assert_eq!(t.join().unwrap(), 1);
    }
}
