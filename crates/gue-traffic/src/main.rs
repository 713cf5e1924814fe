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
mod report;
mod run;
mod sctp;
mod send;
mod serve;
mod sock;

use args::{err, parse_deadlines, Options, UsageError};
use report::JsonDest;
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage:
  gue-traffic serve --listen ADDR:PORT [--idle-timeout-ms MS] [--verbose]
  gue-traffic run --connect ADDR:PORT --sizes SIZE[,SIZE...] [--requests N]
                  [--connections C] [--deadline-ms SIZE=MS[,SIZE=MS...|,*=MS]]
                  [--timeout-ms T] [--connect-timeout-ms T] [--seed S] [--bind ADDR]
                  [--json PATH|-]
  gue-traffic capture --iface NAME --port PORT [--count N] [--timeout-ms T]
                  [--direction any|out|in] [--json PATH|-] [--pcap PATH] [--summary]
  gue-traffic send --to ADDR[:PORT] [--proto udp|esp|ah|NUM] [--bind ADDR[:PORT]]
                  [--count N] [--size BYTES] [--interval-ms MS] [--spi N] [--json PATH|-]
  gue-traffic icmp-error --to ADDR --quote-src ADDR:PORT --quote-dst ADDR:PORT
                  [--quote-proto udp|tcp] [--quote-len BYTES] [--mtu MTU] [--bind ADDR]
                  [--count N] [--interval-ms MS] [--json PATH|-]
  gue-traffic udp-sink --listen ADDR:PORT [--count N] [--timeout-ms T] [--json PATH|-]
  gue-traffic config-stress [--writers K] [--writes N] [--rounds R] [--single-pct P]
                  [--seed S] [--skip-model-update N] [--max-report N] [--verbose]

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
       --pcap: also write those packets, in the same order, to PATH as a
       pcap file (Ethernet link type) for tcpdump -r or Wireshark.
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
config-stress: K writer threads (default 4), each with its own socket, against the ipvs_gue
       generic netlink family of the process's namespace, N writes in all (default 10000):
       server-add/edit/del, new, listed and missing servers, and malformed requests (bad
       lengths, port 0, unknown csum, missing or unknown attributes, truncated). Every answer
       is checked (errno and extack message) and the server concerned fetched and compared
       with the writer's model. R rounds (default 4) of a single-writer phase (P % of the
       writes, default 20: table-flush, table-replace, also with one bad server; the
       generation must grow by one per accepted change; full dumps against the model) and a
       concurrent phase (each writer under a quota of 1024/K servers; a full dump after it).
       Flushes the table first. --skip-model-update N (self-test): the N-th accepted change is
       left out of the model, so the run must report a mismatch. Mismatches go to stderr
       (\"MISMATCH n ...\"); the last stdout line is \"config-stress summary key=value ...\".
       Exit 0 if no mismatch, 1 otherwise.
";

fn main() -> ExitCode {
    match dispatch(std::env::args_os().skip(1).collect()) {
        Ok(status) => ExitCode::from(status),
        Err(UsageError(msg)) => {
            eprintln!("gue-traffic: {msg}");
            eprintln!("Try 'gue-traffic --help' for more information.");
            ExitCode::from(2)
        }
    }
}

fn print_usage() {
    print!("{USAGE}{}{}", dgram::USAGE, sctp::USAGE);
}

/// Runs the subcommand `argv[0]`; its exit status (0 or 1).
fn dispatch(argv: Vec<OsString>) -> args::Result<u8> {
    let mut argv = argv.into_iter();
    let Some(cmd) = argv.next() else {
        return err("missing subcommand");
    };
    let rest: Vec<OsString> = argv.collect();
    // Help wins wherever it appears, even next to bad options.
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        print_usage();
        return Ok(0);
    }
    let a = Options::new(rest);
    let status = match cmd.to_string_lossy().as_ref() {
        "serve" => serve::serve(&serve_opts(a)?),
        "run" => run::run(&run_opts(a)?),
        "capture" => capture::capture(&capture_opts(a)?),
        "send" => send::send(&send_opts(a)?),
        "icmp-error" => send::icmp_error(&icmp_error_opts(a)?),
        "udp-sink" => send::udp_sink(&sink_opts(a)?),
        "config-stress" => config_stress::config_stress(&config_stress::stress_opts(a)?),
        "udp-echo" => dgram::udp_echo(&dgram::echo_opts(a)?),
        "udp-rr" => dgram::udp_rr(&dgram::rr_opts(a)?),
        "sctp-serve" => sctp::serve(&sctp::serve_opts(a)?),
        "sctp-run" => sctp::run(&sctp::run_opts(a)?),
        "help" | "--help" | "-h" => {
            print_usage();
            0
        }
        "--version" | "version" => {
            println!("gue-traffic {}", env!("CARGO_PKG_VERSION"));
            0
        }
        other => return err(format!("unknown subcommand '{other}'")),
    };
    Ok(u8::try_from(status).unwrap_or(1))
}

fn serve_opts(mut a: Options) -> args::Result<serve::ServeOpts> {
    let mut listen = None;
    let mut idle_timeout = None;
    let mut verbose = false;
    while let Some(name) = a.next()? {
        match name.as_str() {
            "listen" => listen = Some(a.addr()?),
            "idle-timeout-ms" => idle_timeout = Some(a.millis()?),
            "verbose" => verbose = true,
            _ => return Err(a.unknown()),
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

fn run_opts(mut a: Options) -> args::Result<run::RunOpts> {
    let mut connect = None;
    let mut bind = None;
    let mut sizes = None;
    let mut requests = 1;
    let mut connections = 1;
    let mut deadline_spec: Option<String> = None;
    let mut timeout = Duration::from_millis(10_000);
    let mut connect_timeout = None;
    let mut seed = 1;
    let mut json = JsonDest::Stdout;
    while let Some(name) = a.next()? {
        match name.as_str() {
            "connect" => connect = Some(a.addr()?),
            "bind" => bind = Some(a.endpoint()?),
            "sizes" => sizes = Some(a.sizes()?),
            "requests" => requests = a.positive()?,
            "connections" => connections = a.number_in(1, 4096)?,
            "deadline-ms" => deadline_spec = Some(a.text()?),
            "timeout-ms" => timeout = a.millis()?,
            "connect-timeout-ms" => connect_timeout = Some(a.millis()?),
            "seed" => seed = a.number()?,
            "json" => json = a.json()?,
            _ => return Err(a.unknown()),
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

fn capture_opts(mut a: Options) -> args::Result<capture::CaptureOpts> {
    let mut iface = None;
    let mut port = None;
    let mut count = 1;
    let mut timeout = Duration::from_millis(10_000);
    let mut json = JsonDest::Stdout;
    let mut pcap = None;
    let mut summary = false;
    let mut direction = capture::Direction::Any;
    while let Some(name) = a.next()? {
        match name.as_str() {
            "iface" => {
                let v = a.text()?;
                if v.is_empty() || v.len() >= 16 || v.contains('/') {
                    return a.invalid(format!("invalid interface name '{v}'"));
                }
                iface = Some(v)
            }
            "port" => port = Some(a.number_in(1, 65535)? as u16),
            "count" => count = a.positive()?,
            "timeout-ms" => timeout = a.millis()?,
            "json" => json = a.json()?,
            "pcap" => pcap = Some(a.path()?),
            "direction" => {
                direction = match a.text()?.as_str() {
                    "any" => capture::Direction::Any,
                    "out" => capture::Direction::Out,
                    "in" => capture::Direction::In,
                    v => return a.invalid(format!("expected any, out or in, got '{v}'")),
                }
            }
            "summary" => summary = true,
            _ => return Err(a.unknown()),
        }
    }
    let Some(iface) = iface else {
        return err("capture: --iface is required");
    };
    let Some(port) = port else {
        return err("capture: --port is required");
    };
    Ok(capture::CaptureOpts {
        iface,
        port,
        count,
        timeout,
        json,
        pcap,
        summary,
        direction,
    })
}

/// `--count` of the single-packet senders and the UDP sink.
fn packet_count(a: &mut Options) -> args::Result<u64> {
    a.number_in(1, u64::from(u32::MAX))
}

fn send_opts(mut a: Options) -> args::Result<send::SendOpts> {
    let mut to = None;
    let mut proto = send::Proto::Udp;
    let mut bind = None;
    let mut count = 1;
    let mut size = None;
    let mut interval = Duration::ZERO;
    let mut spi = 0x1000;
    let mut json = JsonDest::Stdout;
    while let Some(name) = a.next()? {
        match name.as_str() {
            "to" => to = Some(a.endpoint()?),
            "proto" => {
                let v = a.text()?;
                let Some(p) = send::Proto::parse(&v) else {
                    return a.invalid(format!("expected udp, esp, ah or 1-254, got '{v}'"));
                };
                proto = p
            }
            "bind" => bind = Some(a.endpoint()?),
            "count" => count = packet_count(&mut a)?,
            "size" => {
                let n = a.size()?;
                if n > 65507 {
                    return a.invalid("at most 65507 bytes");
                }
                size = Some(n as usize)
            }
            "interval-ms" => interval = Duration::from_millis(a.number()?),
            "spi" => spi = a.number_in(1, u64::from(u32::MAX))? as u32,
            "json" => json = a.json()?,
            _ => return Err(a.unknown()),
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

fn icmp_error_opts(mut a: Options) -> args::Result<send::IcmpErrorOpts> {
    let (mut to, mut bind, mut src, mut dst) = (None, None, None, None);
    let mut protocol = craft::IPPROTO_UDP;
    let mut len = None;
    let mut mtu = 1400;
    let mut count = 1;
    let mut interval = Duration::ZERO;
    let mut json = JsonDest::Stdout;
    while let Some(name) = a.next()? {
        match name.as_str() {
            "to" => to = Some(a.endpoint()?.ip()),
            "bind" => bind = Some(a.endpoint()?.ip()),
            "quote-src" => src = Some(a.addr()?),
            "quote-dst" => dst = Some(a.addr()?),
            "quote-proto" => {
                protocol = match a.text()?.as_str() {
                    "udp" => craft::IPPROTO_UDP,
                    "tcp" => craft::IPPROTO_TCP,
                    v => return a.invalid(format!("expected udp or tcp, got '{v}'")),
                }
            }
            "quote-len" => len = Some(a.number()?),
            "mtu" => mtu = a.number()?,
            "count" => count = packet_count(&mut a)?,
            "interval-ms" => interval = Duration::from_millis(a.number()?),
            "json" => json = a.json()?,
            _ => return Err(a.unknown()),
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

fn sink_opts(mut a: Options) -> args::Result<send::SinkOpts> {
    let mut listen = None;
    let mut count = None;
    let mut timeout = Duration::from_millis(5000);
    let mut json = JsonDest::Stdout;
    while let Some(name) = a.next()? {
        match name.as_str() {
            "listen" => listen = Some(a.addr()?),
            "count" => count = Some(packet_count(&mut a)?),
            "timeout-ms" => timeout = a.millis()?,
            "json" => json = a.json()?,
            _ => return Err(a.unknown()),
        }
    }
    let Some(listen) = listen else {
        return err("udp-sink: --listen is required");
    };
    Ok(send::SinkOpts {
        listen,
        count,
        timeout,
        json,
    })
}
