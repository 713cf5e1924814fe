// SPDX-License-Identifier: GPL-2.0

//! `ipvs-gue-ctl`: configures the `ipvs_gue` kernel module through
//! `/proc/net/ipvs_gue`, with `ipvsadm`-like options.
//!
//! Every change is turned into one line of the module's command language,
//! validated with the same `gue_core` parser the module uses (so errors read
//! the same), checked against the current table when it can be read, and
//! written with a single `write(2)`.

mod args;
mod list;
mod listing;

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use args::{parse_args, Args, Mode, UsageError, DEFAULT_PROC, USAGE};
use gue_core::config::{
    parse_addr, parse_command, parse_port, ChecksumMode, Command, ConfigError, EditFields,
    RealServerConfig, EEXIST, ENOENT, ENOSPC,
};
use gue_core::table::RealServerTable;

const PROG: &str = "ipvs-gue-ctl";

/// A failure and the exit status it maps to.
enum Failure {
    /// Bad arguments: exit 2.
    Usage(String),
    /// The operation failed: exit 1.
    Runtime(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e.0)
    }
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
    let proc_path = args
        .proc_path
        .clone()
        .or_else(|| std::env::var_os("IPVS_GUE_PROC").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROC));
    match args.mode {
        Some(Mode::Help) => {
            print!("{USAGE}");
            Ok(())
        }
        Some(Mode::Version) => {
            println!("{PROG} {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(Mode::List) => list(&proc_path, &args),
        _ => {
            let cmd = build_command(&args)?;
            execute(&proc_path, &cmd)
        }
    }
}

/// Strips the brackets of `[2001:db8::1]`, the form ipvsadm uses for IPv6.
fn unbracket(text: &str) -> &str {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
}

/// Builds the command from the arguments, validating each value with the
/// module's own parsers.
fn build_command(args: &Args) -> Result<Command, Failure> {
    let bad = |e: ConfigError| Failure::Usage(e.to_string());
    let addr = |text: &Option<String>| {
        text.as_deref()
            .map(|t| parse_addr(unbracket(t)).map_err(bad))
            .transpose()
    };
    let real = addr(&args.real_server)?;
    let outer = addr(&args.outer)?;
    let port = args
        .gue_port
        .as_deref()
        .map(|p| parse_port(p).map_err(bad))
        .transpose()?;
    let csum = args
        .csum
        .as_deref()
        .map(|c| ChecksumMode::parse(c).map_err(bad))
        .transpose()?;
    let need_real = || real.ok_or_else(|| Failure::Usage("missing -r/--real-server".into()));
    Ok(match args.mode {
        Some(Mode::Add) => {
            let real = need_real()?;
            let port = port.ok_or_else(|| Failure::Usage("-a needs --gue-port PORT".into()))?;
            Command::Add(
                real,
                RealServerConfig {
                    outer: outer.unwrap_or(real),
                    port,
                    csum: csum.unwrap_or_default(),
                },
            )
        }
        Some(Mode::Edit) => Command::Edit(need_real()?, EditFields { port, csum, outer }),
        Some(Mode::Delete) => Command::Delete(need_real()?),
        Some(Mode::Clear) => Command::Flush,
        _ => return Err(Failure::Usage("no command given".into())),
    })
}

fn not_found(path: &Path) -> Failure {
    Failure::Runtime(format!(
        "{} not found: is the ipvs_gue module loaded? (insmod ipvs_gue.ko)",
        path.display()
    ))
}

fn open_error(path: &Path, e: &io::Error) -> Failure {
    match e.kind() {
        ErrorKind::NotFound => not_found(path),
        ErrorKind::PermissionDenied => Failure::Runtime(format!(
            "{}: permission denied (root or CAP_NET_ADMIN needed)",
            path.display()
        )),
        _ => Failure::Runtime(format!("{}: {e}", path.display())),
    }
}

fn execute(path: &Path, cmd: &Command) -> Result<(), Failure> {
    let line = cmd.to_string();
    // Round-trip through the module's parser: what we write is exactly what
    // it will accept.
    match parse_command(&line) {
        Ok(parsed) if parsed == *cmd => {}
        Ok(_) => {
            return Err(Failure::Runtime(format!(
                "internal error: '{line}' does not round-trip"
            )))
        }
        Err(e) => return Err(Failure::Usage(e.to_string())),
    }
    // Best effort pre-check against the current table, for the same messages
    // the module would log; the module stays the authority.
    if let Ok(text) = fs::read_to_string(path) {
        if let Some(table) = table_from_listing(&text) {
            table
                .clone()
                .apply_in_place(cmd)
                .map_err(|e| Failure::Runtime(e.to_string()))?;
        }
    }
    // Append mode: harmless for a proc file, and lets tests point --proc at
    // a regular file and read back what was written.
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| open_error(path, &e))?;
    let data = format!("{line}\n");
    match file.write(data.as_bytes()) {
        Ok(n) if n == data.len() => Ok(()),
        Ok(n) => Err(Failure::Runtime(format!(
            "short write to {} ({n} of {} bytes)",
            path.display(),
            data.len()
        ))),
        Err(e) => Err(Failure::Runtime(write_error(cmd, &line, &e))),
    }
}

/// Turns the errno of a refused write back into the module's message.
fn write_error(cmd: &Command, line: &str, e: &io::Error) -> String {
    let target = match cmd {
        Command::Add(a, _) | Command::Edit(a, _) | Command::Delete(a) => Some(*a),
        Command::Flush | Command::Nothing => None,
    };
    match (e.raw_os_error(), target) {
        (Some(EEXIST), Some(a)) => ConfigError::AlreadyExists(a).to_string(),
        (Some(ENOENT), Some(a)) => ConfigError::NotFound(a).to_string(),
        (Some(ENOSPC), _) => ConfigError::TableFull.to_string(),
        _ => format!("kernel rejected '{line}': {e} (see dmesg)"),
    }
}

/// The table the listing describes, or `None` if any line is not a
/// well-formed row (then no pre-check is done).
fn table_from_listing(text: &str) -> Option<RealServerTable> {
    let (rows, warnings) = list::parse_listing(text);
    if !warnings.is_empty() {
        return None;
    }
    let mut table = RealServerTable::new();
    for row in rows {
        table
            .apply_in_place(&Command::Add(row.addr, row.config))
            .ok()?;
    }
    Some(table)
}

fn list(path: &Path, args: &Args) -> Result<(), Failure> {
    let text = fs::read_to_string(path).map_err(|e| open_error(path, &e))?;
    let (rows, warnings) = list::parse_listing(&text);
    for w in warnings {
        eprintln!("{PROG}: warning: {}: {w}", path.display());
    }
    print!("{}", list::render(&rows, args.stats, args.exact));
    Ok(())
}
