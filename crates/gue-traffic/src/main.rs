//! gue-traffic: TCP traffic generator (`run`), verifying sink (`serve`) and
//! GUE packet capture/decoder (`capture`)
//! for the ipvs-gue QEMU test harness. Built as a static binary for a busybox guest.

mod args;
mod capture;
mod decode;
mod proto;
mod run;
mod serve;

use args::{err, parse_addr, parse_deadlines, parse_opts, parse_sizes, parse_u64, Item, UsageError};
use std::time::Duration;

const USAGE: &str = "\
usage:
  gue-traffic serve --listen ADDR:PORT [--idle-timeout-ms MS] [--verbose]
  gue-traffic run --connect ADDR:PORT --sizes SIZE[,SIZE...] [--requests N]
                  [--connections C] [--deadline-ms SIZE=MS[,SIZE=MS...|,*=MS]]
                  [--timeout-ms T] [--connect-timeout-ms T] [--seed S] [--json PATH|-]
  gue-traffic capture --iface NAME --port PORT [--count N] [--timeout-ms T]
                  [--direction any|out|in] [--json PATH|-] [--summary]

Protocol (per request, many per connection): client sends 8-byte big-endian
length + body; server replies \"<len> <sha256hex>\\n\".

serve: prints \"listening on ADDR:PORT\" on stdout once bound (port 0 = ephemeral).
run:   SIZE is bytes or with K/M/G suffix (KiB/MiB/GiB). Defaults: --requests 1
       (per size), --connections 1, --timeout-ms 10000, --connect-timeout-ms =
       --timeout-ms, --seed 1, JSON to stdout. Exit 0 if all requests ok and
       none over deadline, 1 otherwise, 2 on usage errors.
capture: AF_PACKET capture (needs CAP_NET_RAW) of UDP packets to PORT on NAME,
       both directions unless --direction; each is decoded as IPv4/IPv6 + UDP +
       GUE + inner IP/TCP and printed as one JSON object per line with a
       \"layout\" string of the fields two GUE encapsulators must agree on.
       Checksums the kernel left to the NIC are completed before verifying.
       Defaults: --count 1, --timeout-ms 10000. Stops after N packets or at
       the timeout; exit 0 if at least one packet was captured, 1 if none.
       --summary: count per distinct layout on stderr (\"layout xN: ...\").
       \"capturing on NAME\" is printed to stderr once the socket is bound.
";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match dispatch(&argv) {
        Ok(code) => code,
        Err(UsageError(msg)) => {
            eprintln!("gue-traffic: {msg}\n\n{USAGE}");
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
        print!("{USAGE}");
        return Ok(0);
    }
    match cmd.as_str() {
        "serve" => Ok(serve::serve(&serve_opts(rest)?)),
        "run" => Ok(run::run(&run_opts(rest)?)),
        "capture" => Ok(capture::capture(&capture_opts(rest)?)),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
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
        | "connect-timeout-ms" | "seed" | "json" => Some(true),
        _ => None,
    })?;
    let mut connect = None;
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
