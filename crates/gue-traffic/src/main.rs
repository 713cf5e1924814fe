//! gue-traffic: TCP traffic generator (`run`), verifying sink (`serve`),
//! GUE packet capture/decoder (`capture`), and single-packet senders and a
//! UDP sink (`send`, `icmp-error`, `udp-sink`)
//! for the ipvs-gue QEMU test harness. Built as a static binary for a busybox guest.

mod args;
mod capture;
mod config_stress;
mod craft;
mod decode;
mod dgram;
mod proto;
mod run;
mod sctp;
mod send;
mod serve;
mod sock;

use args::{
    err, parse_addr, parse_deadlines, parse_endpoint, parse_opts, parse_size, parse_sizes,
    parse_u64, Item, UsageError,
};
use std::time::Duration;

const USAGE: &str = "\
usage:
  gue-traffic serve --listen ADDR:PORT [--idle-timeout-ms MS] [--verbose]
  gue-traffic run --connect ADDR:PORT --sizes SIZE[,SIZE...] [--requests N]
                  [--connections C] [--deadline-ms SIZE=MS[,SIZE=MS...|,*=MS]]
                  [--timeout-ms T] [--connect-timeout-ms T] [--seed S] [--bind ADDR]
                  [--json PATH|-]
  gue-traffic capture --iface NAME --port PORT [--count N] [--timeout-ms T]
                  [--direction any|out|in] [--json PATH|-] [--summary]
  gue-traffic send --to ADDR[:PORT] [--proto udp|esp|ah|NUM] [--bind ADDR[:PORT]]
                  [--count N] [--size BYTES] [--interval-ms MS] [--spi N] [--json PATH|-]
  gue-traffic icmp-error --to ADDR --quote-src ADDR:PORT --quote-dst ADDR:PORT
                  [--quote-proto udp|tcp] [--quote-len BYTES] [--mtu MTU] [--bind ADDR]
                  [--count N] [--interval-ms MS] [--json PATH|-]
  gue-traffic udp-sink --listen ADDR:PORT [--count N] [--timeout-ms T] [--json PATH|-]
  gue-traffic config-stress [--proc PATH] [--writers K] [--writes N] [--rounds R]
                  [--single-pct P] [--strict-pct P] [--seed S] [--skip-model-update N]
                  [--max-report N] [--verbose]

Protocol (per request, many per connection): client sends 8-byte big-endian
length + body; server replies \"<len> <sha256hex>\\n\".

serve: prints \"listening on ADDR:PORT\" on stdout once bound (port 0 = ephemeral).
run:   SIZE is bytes or with K/M/G suffix (KiB/MiB/GiB). Defaults: --requests 1
       (per size), --connections 1, --timeout-ms 10000, --connect-timeout-ms =
       --timeout-ms, --seed 1, JSON to stdout. Exit 0 if all requests ok and
       none over deadline, 1 otherwise, 2 on usage errors. --bind: connect
       from this local address (any port).
capture: AF_PACKET capture (needs CAP_NET_RAW) of UDP packets to PORT on NAME,
       both directions unless --direction; each is decoded as IPv4/IPv6 + UDP +
       GUE + inner IP/TCP and printed as one JSON object per line with a
       \"layout\" string of the fields two GUE encapsulators must agree on.
       Checksums the kernel left to the NIC are completed before verifying.
       Defaults: --count 1, --timeout-ms 10000. Stops after N packets or at
       the timeout; exit 0 if at least one packet was captured, 1 if none.
       --summary: count per distinct layout on stderr (\"layout xN: ...\").
       \"capturing on NAME\" is printed to stderr once the socket is bound.
send:  COUNT packets (default 1) SIZE bytes each (default 64; AH 24) to ADDR:
       UDP datagrams to ADDR:PORT from --bind (default any address and port),
       or raw IP packets of protocol esp (SPI, sequence number, filler), ah
       (header with a zero ICV) or NUM (filler; needs CAP_NET_RAW; no port).
       Payloads start with the sequence number. --spi default 4096,
       --interval-ms default 0. JSON {sent, bytes, errors}; exit 0 if all sent.
icmp-error: ICMP errors to ADDR quoting a packet QUOTE-SRC -> QUOTE-DST of
       QUOTE-PROTO (default udp) and QUOTE-LEN bytes (default MTU + 100), as a
       router sends when that packet is too big: IPv4 type 3 code 4 with
       next-hop MTU (checksums computed), IPv6 type 2 packet too big (the
       kernel fills the checksum). Needs CAP_NET_RAW. Defaults: --mtu 1400,
       --count 1. JSON {sent, errors}; exit 0 if all sent.
udp-sink: counts datagrams on ADDR:PORT until COUNT arrived or the timeout
       (default 5000 ms); prints \"listening on ADDR:PORT\" to stderr once bound
       and JSON {datagrams, bytes, min_bytes, max_bytes, sources}. Exit 0 if
       COUNT (without --count: at least one) arrived, 1 otherwise.
config-stress: K writer threads (default 4) against one namespace's /proc/net/ipvs_gue
       (default that path), N writes in all (default 10000): valid and adversarial
       add/edit/del/flush, batches, bad bytes, overlong and over-4095-byte writes. After
       every write: its result and errno, the '# last error:' text and the listed rows of
       the writer's own addresses against its model. R rounds (default 4) of a single-writer
       phase (P % of the writes, default 20; flush, exact capacity) and a concurrent phase;
       --strict-pct (default 50) of the rejected concurrent writes run alone so their error
       text is checked exactly. Flushes the table first. --skip-model-update N (self-test):
       the N-th accepted write that changes the table is left out of the model, so the run
       must report a mismatch. Mismatches go to stderr; the last stdout line is
       \"config-stress summary key=value ...\". Exit 0 if no mismatch, 1 otherwise.
";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match dispatch(&argv) {
        Ok(code) => code,
        Err(UsageError(msg)) => {
            eprintln!("gue-traffic: {msg}\n\n{USAGE}{}{}", dgram::USAGE, sctp::USAGE);
            2
        }
    };
    std::process::exit(code);
}

fn dispatch(argv: &[String]) -> args::Result<i32> {
    let Some(cmd) = argv.first() else {
        return err("missing subcommand");
    };
    let rest = &argv[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}{}{}", dgram::USAGE, sctp::USAGE);
        return Ok(0);
    }
    match cmd.as_str() {
        "serve" => Ok(serve::serve(&serve_opts(rest)?)),
        "run" => Ok(run::run(&run_opts(rest)?)),
        "capture" => Ok(capture::capture(&capture_opts(rest)?)),
        "send" => Ok(send::send(&send_opts(rest)?)),
        "icmp-error" => Ok(send::icmp_error(&icmp_error_opts(rest)?)),
        "udp-sink" => Ok(send::udp_sink(&sink_opts(rest)?)),
        "config-stress" => Ok(config_stress::config_stress(&config_stress::stress_opts(rest)?)),
        "udp-echo" => Ok(dgram::udp_echo(&dgram::echo_opts(rest)?)),
        "udp-rr" => Ok(dgram::udp_rr(&dgram::rr_opts(rest)?)),
        "sctp-serve" => Ok(sctp::serve(&sctp::serve_opts(rest)?)),
        "sctp-run" => Ok(sctp::run(&sctp::run_opts(rest)?)),
        "help" | "--help" | "-h" => {
            print!("{USAGE}{}{}", dgram::USAGE, sctp::USAGE);
            Ok(0)
        }
        "--version" | "version" => {
            println!("gue-traffic {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        other => err(format!("unknown subcommand '{other}'")),
    }
}

fn ms(opt: &str, v: &str) -> args::Result<Duration> {
    let n = parse_u64(opt, v)?;
    if n == 0 {
        return err(format!("{opt}: must be > 0"));
    }
    Ok(Duration::from_millis(n))
}

fn serve_opts(a: &[String]) -> args::Result<serve::ServeOpts> {
    let items = parse_opts(a, |n| match n {
        "listen" | "idle-timeout-ms" => Some(true),
        "verbose" => Some(false),
        _ => None,
    })?;
    let mut listen = None;
    let mut idle_timeout = None;
    let mut verbose = false;
    for Item::Opt(name, v) in items {
        let v = v.unwrap_or_default();
        match name.as_str() {
            "listen" => listen = Some(parse_addr("--listen", &v)?),
            "idle-timeout-ms" => idle_timeout = Some(ms("--idle-timeout-ms", &v)?),
            "verbose" => verbose = true,
            _ => unreachable!(),
        }
    }
    let Some(listen) = listen else {
        return err("serve: --listen is required");
    };
    Ok(serve::ServeOpts {
        listen,
        idle_timeout,
        verbose,
    })
}

fn run_opts(a: &[String]) -> args::Result<run::RunOpts> {
    let items = parse_opts(a, |n| match n {
        "connect" | "sizes" | "requests" | "connections" | "deadline-ms" | "timeout-ms"
        | "connect-timeout-ms" | "seed" | "json" | "bind" => Some(true),
        _ => None,
    })?;
    let mut connect = None;
    let mut bind = None;
    let mut sizes = None;
    let mut requests = 1;
    let mut connections = 1;
    let mut deadline_spec: Option<String> = None;
    let mut timeout = Duration::from_millis(10_000);
    let mut connect_timeout = None;
    let mut seed = 1;
    let mut json = None;
    for Item::Opt(name, v) in items {
        let v = v.unwrap_or_default();
        match name.as_str() {
            "connect" => connect = Some(parse_addr("--connect", &v)?),
            "bind" => bind = Some(parse_endpoint("--bind", &v)?),
            "sizes" => sizes = Some(parse_sizes(&v)?),
            "requests" => requests = parse_u64("--requests", &v)?,
            "connections" => connections = parse_u64("--connections", &v)?,
            "deadline-ms" => deadline_spec = Some(v),
            "timeout-ms" => timeout = ms("--timeout-ms", &v)?,
            "connect-timeout-ms" => connect_timeout = Some(ms("--connect-timeout-ms", &v)?),
            "seed" => seed = parse_u64("--seed", &v)?,
            "json" => {
                if v.is_empty() {
                    return err("--json: empty path");
                }
                json = Some(v)
            }
            _ => unreachable!(),
        }
    }
    let Some(connect) = connect else {
        return err("run: --connect is required");
    };
    if connect.port() == 0 {
        return err("--connect: port must not be 0");
    }
    if bind.is_some_and(|b: std::net::SocketAddr| b.is_ipv4() != connect.is_ipv4()) {
        return err("--bind: must be of the family of --connect");
    }
    let Some(sizes) = sizes else {
        return err("run: --sizes is required");
    };
    if requests == 0 {
        return err("--requests: must be > 0");
    }
    if connections == 0 || connections > 4096 {
        return err("--connections: must be between 1 and 4096");
    }
    let deadlines = match deadline_spec {
        Some(s) => parse_deadlines(&s, &sizes)?,
        None => Default::default(),
    };
    Ok(run::RunOpts {
        connect,
        bind,
        sizes,
        requests,
        connections,
        deadlines,
        timeout,
        connect_timeout: connect_timeout.unwrap_or(timeout),
        seed,
        json,
    })
}

fn capture_opts(a: &[String]) -> args::Result<capture::CaptureOpts> {
    let items = parse_opts(a, |n| match n {
        "iface" | "port" | "count" | "timeout-ms" | "json" | "direction" => Some(true),
        "summary" => Some(false),
        _ => None,
    })?;
    let mut iface = None;
    let mut port = None;
    let mut count = 1;
    let mut timeout = Duration::from_millis(10_000);
    let mut json = None;
    let mut summary = false;
    let mut direction = capture::Direction::Any;
    for Item::Opt(name, v) in items {
        let v = v.unwrap_or_default();
        match name.as_str() {
            "iface" => {
                if v.is_empty() || v.len() >= 16 || v.contains('/') {
                    return err(format!("--iface: invalid interface name '{v}'"));
                }
                iface = Some(v)
            }
            "port" => {
                let p = parse_u64("--port", &v)?;
                if p == 0 || p > 65535 {
                    return err("--port: must be between 1 and 65535");
                }
                port = Some(p as u16)
            }
            "count" => count = parse_u64("--count", &v)?,
            "timeout-ms" => timeout = ms("--timeout-ms", &v)?,
            "json" => {
                if v.is_empty() {
                    return err("--json: empty path");
                }
                json = Some(v)
            }
            "direction" => {
                direction = match v.as_str() {
                    "any" => capture::Direction::Any,
                    "out" => capture::Direction::Out,
                    "in" => capture::Direction::In,
                    _ => return err(format!("--direction: expected any, out or in, got '{v}'")),
                }
            }
            "summary" => summary = true,
            _ => unreachable!(),
        }
    }
    let Some(iface) = iface else {
        return err("capture: --iface is required");
    };
    let Some(port) = port else {
        return err("capture: --port is required");
    };
    if count == 0 {
        return err("--count: must be > 0");
    }
    Ok(capture::CaptureOpts {
        iface,
        port,
        count,
        timeout,
        json,
        summary,
        direction,
    })
}

fn json_opt(v: String) -> args::Result<Option<String>> {
    if v.is_empty() {
        return err("--json: empty path");
    }
    Ok(Some(v))
}

fn count_opt(v: &str) -> args::Result<u64> {
    let n = parse_u64("--count", v)?;
    if n == 0 || n > u64::from(u32::MAX) {
        return err("--count: must be between 1 and 4294967295");
    }
    Ok(n)
}

fn interval_opt(v: &str) -> args::Result<Duration> {
    Ok(Duration::from_millis(parse_u64("--interval-ms", v)?))
}

fn send_opts(a: &[String]) -> args::Result<send::SendOpts> {
    let items = parse_opts(a, |n| match n {
        "to" | "proto" | "bind" | "count" | "size" | "interval-ms" | "spi" | "json" => Some(true),
        _ => None,
    })?;
    let mut to = None;
    let mut proto = send::Proto::Udp;
    let mut bind = None;
    let mut count = 1;
    let mut size = None;
    let mut interval = Duration::ZERO;
    let mut spi = 0x1000;
    let mut json = None;
    for Item::Opt(name, v) in items {
        let v = v.unwrap_or_default();
        match name.as_str() {
            "to" => to = Some(parse_endpoint("--to", &v)?),
            "proto" => {
                let Some(p) = send::Proto::parse(&v) else {
                    return err(format!("--proto: expected udp, esp, ah or 1-254, got '{v}'"));
                };
                proto = p
            }
            "bind" => bind = Some(parse_endpoint("--bind", &v)?),
            "count" => count = count_opt(&v)?,
            "size" => {
                let n = parse_size(&v).or_else(|e| err(format!("--size: {e}")))?;
                if n > 65507 {
                    return err("--size: at most 65507 bytes");
                }
                size = Some(n as usize)
            }
            "interval-ms" => interval = interval_opt(&v)?,
            "spi" => {
                let n = parse_u64("--spi", &v)?;
                let Some(n) = u32::try_from(n).ok().filter(|&s| s != 0) else {
                    return err("--spi: must be between 1 and 4294967295");
                };
                spi = n
            }
            "json" => json = json_opt(v)?,
            _ => unreachable!(),
        }
    }
    let Some(to) = to else {
        return err("send: --to is required");
    };
    if proto == send::Proto::Udp && to.port() == 0 {
        return err("send: --to needs a port for UDP");
    }
    if bind.is_some_and(|b| b.is_ipv4() != to.is_ipv4()) {
        return err("--bind: must be of the family of --to");
    }
    Ok(send::SendOpts {
        to,
        proto,
        bind,
        count,
        size: size.unwrap_or_else(|| proto.default_size()),
        interval,
        spi,
        json,
    })
}

fn icmp_error_opts(a: &[String]) -> args::Result<send::IcmpErrorOpts> {
    let items = parse_opts(a, |n| match n {
        "to" | "bind" | "quote-src" | "quote-dst" | "quote-proto" | "quote-len" | "mtu" | "count"
        | "interval-ms" | "json" => Some(true),
        _ => None,
    })?;
    let (mut to, mut bind, mut src, mut dst) = (None, None, None, None);
    let mut protocol = craft::IPPROTO_UDP;
    let mut len = None;
    let mut mtu = 1400;
    let mut count = 1;
    let mut interval = Duration::ZERO;
    let mut json = None;
    for Item::Opt(name, v) in items {
        let v = v.unwrap_or_default();
        match name.as_str() {
            "to" => to = Some(parse_endpoint("--to", &v)?.ip()),
            "bind" => bind = Some(parse_endpoint("--bind", &v)?.ip()),
            "quote-src" => src = Some(parse_addr("--quote-src", &v)?),
            "quote-dst" => dst = Some(parse_addr("--quote-dst", &v)?),
            "quote-proto" => {
                protocol = match v.as_str() {
                    "udp" => craft::IPPROTO_UDP,
                    "tcp" => craft::IPPROTO_TCP,
                    _ => return err(format!("--quote-proto: expected udp or tcp, got '{v}'")),
                }
            }
            "quote-len" => len = Some(parse_u64("--quote-len", &v)?),
            "mtu" => mtu = parse_u64("--mtu", &v)?,
            "count" => count = count_opt(&v)?,
            "interval-ms" => interval = interval_opt(&v)?,
            "json" => json = json_opt(v)?,
            _ => unreachable!(),
        }
    }
    let (Some(to), Some(src), Some(dst)) = (to, src, dst) else {
        return err("icmp-error: --to, --quote-src and --quote-dst are required");
    };
    let v4 = to.is_ipv4();
    let other_family = |a: std::net::IpAddr| a.is_ipv4() != v4;
    if other_family(src.ip()) || other_family(dst.ip()) || bind.is_some_and(other_family) {
        return err("icmp-error: --quote-src, --quote-dst and --bind must be of the family of --to");
    }
    let max_mtu = if v4 { 0xffff } else { u64::from(u32::MAX) };
    if mtu == 0 || mtu > max_mtu {
        return err(format!("--mtu: must be between 1 and {max_mtu}"));
    }
    let len = len.unwrap_or((mtu + 100).min(0xffff));
    let min_len = if v4 { 28 } else { 48 };
    if !(min_len..=0xffff).contains(&len) {
        return err(format!("--quote-len: must be between {min_len} and 65535"));
    }
    Ok(send::IcmpErrorOpts {
        to,
        bind,
        quoted: craft::Quoted { src, dst, protocol, len: len as u16 },
        mtu: mtu as u32,
        count,
        interval,
        json,
    })
}

fn sink_opts(a: &[String]) -> args::Result<send::SinkOpts> {
    let items = parse_opts(a, |n| match n {
        "listen" | "count" | "timeout-ms" | "json" => Some(true),
        _ => None,
    })?;
    let mut listen = None;
    let mut count = None;
    let mut timeout = Duration::from_millis(5000);
    let mut json = None;
    for Item::Opt(name, v) in items {
        let v = v.unwrap_or_default();
        match name.as_str() {
            "listen" => listen = Some(parse_addr("--listen", &v)?),
            "count" => count = Some(count_opt(&v)?),
            "timeout-ms" => timeout = ms("--timeout-ms", &v)?,
            "json" => json = json_opt(v)?,
            _ => unreachable!(),
        }
    }
    let Some(listen) = listen else {
        return err("udp-sink: --listen is required");
    };
    Ok(send::SinkOpts { listen, count, timeout, json })
}
