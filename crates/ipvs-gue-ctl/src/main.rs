// SPDX-License-Identifier: GPL-2.0

//! `ipvs-gue-ctl`: configures the `ipvs_gue` kernel module through its generic netlink
//! family (`spec/ipvs_gue.yaml`), with `ipvsadm`-like options.
//!
//! Every value is checked with the `gue_core` parsers the module's own configuration uses
//! (so errors read the same) before anything is sent; the module stays the authority on the
//! table, and its refusals are shown with the message and attribute it names.

mod args;
mod list;
mod restore;

use std::ffi::OsString;
use std::io::{self, ErrorKind, Read, Write};
use std::process::ExitCode;

use args::{parse_args, Args, Mode, UsageError, USAGE};
use gue_core::addr::InetAddr;
use gue_core::config::Command;
use ipvs_gue_ctl::netlink::{self, Connection};
use ipvs_gue_ctl::wire::{self, op_name, Server};

const PROG: &str = "ipvs-gue-ctl";

/// A failure and the exit status it maps to.
enum Failure {
    /// Bad arguments or input: exit 2.
    Usage(String),
    /// The operation failed: exit 1.
    Runtime(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e.0)
    }
}

impl From<netlink::Error> for Failure {
    /// A failure before any request of the family (opening, resolving it).
    fn from(e: netlink::Error) -> Self {
        Failure::Runtime(e.to_string())
    }
}

/// A failed request: what it was (`context`), then why. `lines` maps `table-replace`'s
/// servers back to the input lines they came from.
fn refused(context: &str, e: &netlink::Error, lines: &[usize]) -> Failure {
    Failure::Runtime(format!("{context}: {}", e.describe(lines)))
}

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("{PROG}: {msg}");
            eprintln!("Try '{PROG} -h' for more information.");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("{PROG}: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(argv: impl IntoIterator<Item = OsString>) -> Result<(), Failure> {
    let args = parse_args(argv)?;
    match args.mode {
        Some(Mode::Help) => output(USAGE),
        Some(Mode::Version) => output(&format!("{PROG} {}\n", env!("CARGO_PKG_VERSION"))),
        Some(Mode::List) => list(&args),
        Some(Mode::Save) => output(&list::save(&dump()?)),
        Some(Mode::Restore) => restore(args.verbose),
        _ => change(&args.command()?),
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn output(text: &str) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => {
            Err(Failure::Runtime(format!("stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// `-a`, `-e`, `-d`, `-C`: one acked request.
fn change(command: &Command) -> Result<(), Failure> {
    let request = wire::request(command);
    let context = match command {
        Command::Add(addr, _) | Command::Edit(addr, _) | Command::Delete(addr) => {
            format!("{} {addr}", op_name(request.cmd))
        }
        Command::Flush => op_name(request.cmd).to_string(),
    };
    Connection::open()?
        .execute(request)
        .map_err(|e| refused(&context, &e, &[]))?;
    Ok(())
}

/// Every server, in the dump's order.
fn dump() -> Result<Vec<Server>, Failure> {
    let request = wire::server_dump();
    let context = op_name(request.cmd);
    let replies = Connection::open()?
        .dump(&request)
        .map_err(|e| refused(context, &e, &[]))?;
    replies
        .iter()
        .map(|reply| wire::decode_server(&reply.attrs))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Runtime(format!("{context}: {e}")))
}

/// The server at `addr` (`server-get`), as a one-row listing.
fn get(addr: InetAddr) -> Result<Vec<Server>, Failure> {
    let request = wire::server_get(addr);
    let context = format!("{} {addr}", op_name(request.cmd));
    let replies = Connection::open()?
        .execute(request)
        .map_err(|e| refused(&context, &e, &[]))?;
    replies
        .iter()
        .map(|reply| wire::decode_server(&reply.attrs))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Runtime(format!("{context}: {e}")))
}

fn list(args: &Args) -> Result<(), Failure> {
    let servers = match args.real_server_addr()? {
        Some(addr) => get(addr)?,
        None => dump()?,
    };
    if args.json {
        let text = list::json(&servers).map_err(|e| Failure::Runtime(format!("json: {e}")))?;
        output(&text)
    } else {
        output(&list::render(&servers, args.stats, args.exact))
    }
}

/// `-R`: stdin, checked whole, then one `table-replace`; with `verbose`, what it did.
fn restore(verbose: bool) -> Result<(), Failure> {
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| Failure::Runtime(format!("stdin: {e}")))?;
    let restore = restore::parse(&input)?;
    let request = wire::table_replace(&restore.servers);
    let context = op_name(request.cmd);
    let bytes = request.attrs.len();
    let mut connection = Connection::open()?;
    let replies = connection
        .execute(request)
        .map_err(|e| refused(context, &e, &restore.lines))?;
    if verbose {
        let summary = replies
            .first()
            .map(|reply| wire::decode_summary(&reply.attrs))
            .transpose()
            .map_err(|e| Failure::Runtime(format!("{context}: {e}")))?
            .unwrap_or_default();
        eprintln!(
            "{PROG}: restored {} servers ({bytes} bytes of attributes); the kernel answered in {} ms; table generation {}, {} servers",
            restore.servers.len(),
            connection.answered_in().as_millis(),
            summary.generation,
            summary.count
        );
    }
    Ok(())
}
