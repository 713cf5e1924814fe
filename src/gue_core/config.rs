// SPDX-License-Identifier: GPL-2.0

//! The configuration language written to `/proc/net/ipvs_gue`, one command
//! per line:
//!
//! ```text
//! add <addr> port <1-65535> [csum none|udp|remcsum] [outer <addr>]
//! edit <addr> [port <1-65535>] [csum none|udp|remcsum] [outer <addr>]
//! del <addr>
//! flush
//! ```
//!
//! `<addr>` is the IPVS real server (destination) address; `outer` is where
//! the encapsulated packet is sent (default: the real server address; it may
//! be of the other family). Words are separated by spaces or tabs, `#`
//! starts a comment and blank lines do nothing. Errors carry a copy of the
//! offending word so their text can name it without allocating.

use core::fmt::{self, Write};
use core::str::FromStr;

use super::addr::InetAddr;
use super::table::MAX_REAL_SERVERS;
use super::text::FixedText;

/// Bytes of an offending word kept in a [`Token`]; longer words are cut.
pub const TOKEN_CAPACITY: usize = 64;

/// A word copied out of a command line for an error message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token {
    text: FixedText<TOKEN_CAPACITY>,
    truncated: bool,
}

impl Token {
    /// Copies up to [`TOKEN_CAPACITY`] bytes of `text`, cut at a character
    /// boundary.
    pub fn new(text: &str) -> Token {
        let mut stored = FixedText::new();
        // Writing into a `FixedText` never fails; it cuts instead.
        let _ = stored.write_str(text);
        Token {
            truncated: stored.as_str().len() < text.len(),
            text: stored,
        }
    }

    /// The stored text (possibly truncated).
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Token({:?}{})",
            self.as_str(),
            if self.truncated { "..." } else { "" }
        )
    }
}

/// How the outer UDP checksum is handled for a real server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ChecksumMode {
    /// UDP checksum 0 (`none`): cheapest; the inner packet keeps its own
    /// checksums.
    #[default]
    None,
    /// Full outer UDP checksum (`udp`).
    Udp,
    /// GUE remote checksum offload (`remcsum`): no outer checksum, the
    /// receiver completes the inner one.
    RemoteOffload,
}

impl ChecksumMode {
    /// The keyword used in commands and listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChecksumMode::None => "none",
            ChecksumMode::Udp => "udp",
            ChecksumMode::RemoteOffload => "remcsum",
        }
    }

    /// Parses `none`, `udp` or `remcsum`.
    pub fn parse(text: &str) -> Result<ChecksumMode, ConfigError> {
        match text {
            "none" => Ok(ChecksumMode::None),
            "udp" => Ok(ChecksumMode::Udp),
            "remcsum" => Ok(ChecksumMode::RemoteOffload),
            _ => Err(ConfigError::BadChecksumMode(Token::new(text))),
        }
    }
}

impl fmt::Display for ChecksumMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChecksumMode {
    type Err = ConfigError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ChecksumMode::parse(text)
    }
}

/// Encapsulation settings of one real server.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RealServerConfig {
    /// Destination of the outer IP header.
    pub outer: InetAddr,
    /// Destination UDP port (the receiver's GUE/FOU port), never 0.
    pub port: u16,
    /// Outer checksum handling.
    pub csum: ChecksumMode,
}

/// The settings an `edit` command changes; `None` keeps the current value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct EditFields {
    /// New destination UDP port.
    pub port: Option<u16>,
    /// New checksum mode.
    pub csum: Option<ChecksumMode>,
    /// New outer destination address.
    pub outer: Option<InetAddr>,
}

impl EditFields {
    /// `config` with these changes applied.
    pub fn apply_to(&self, config: &RealServerConfig) -> RealServerConfig {
        RealServerConfig {
            outer: self.outer.unwrap_or(config.outer),
            port: self.port.unwrap_or(config.port),
            csum: self.csum.unwrap_or(config.csum),
        }
    }

    /// Whether no field is set.
    pub const fn is_empty(&self) -> bool {
        self.port.is_none() && self.csum.is_none() && self.outer.is_none()
    }
}

/// One parsed configuration line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Command {
    /// `add`: a new real server.
    Add(InetAddr, RealServerConfig),
    /// `edit`: change an existing real server.
    Edit(InetAddr, EditFields),
    /// `del`: remove a real server.
    Delete(InetAddr),
    /// `flush`: remove all real servers.
    Flush,
    /// A blank or comment-only line.
    Nothing,
}

impl fmt::Display for Command {
    /// The canonical line for the command (no newline); parsing it gives the
    /// command back. `Nothing` is the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Add(addr, c) => {
                write!(
                    f,
                    "add {addr} port {} csum {} outer {}",
                    c.port, c.csum, c.outer
                )
            }
            Command::Edit(addr, e) => {
                write!(f, "edit {addr}")?;
                if let Some(port) = e.port {
                    write!(f, " port {port}")?;
                }
                if let Some(csum) = e.csum {
                    write!(f, " csum {csum}")?;
                }
                if let Some(outer) = e.outer {
                    write!(f, " outer {outer}")?;
                }
                Ok(())
            }
            Command::Delete(addr) => write!(f, "del {addr}"),
            Command::Flush => f.write_str("flush"),
            Command::Nothing => Ok(()),
        }
    }
}

/// Why a command was refused. The `Display` text is what the kernel logs
/// and the CLI prints.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// A NUL, control or non-ASCII byte; `column` is 1-based.
    InvalidByte {
        /// The byte.
        byte: u8,
        /// Its 1-based position in the line.
        column: usize,
    },
    /// The first word is not a command.
    UnknownCommand(Token),
    /// The command (named) lacks its real server address.
    MissingAddress(&'static str),
    /// A word that should be an address is not one.
    BadAddress(Token),
    /// An option name that does not exist.
    UnknownKeyword(Token),
    /// The option (named) has no value.
    MissingValue(&'static str),
    /// A port that is not a decimal number.
    BadPort(Token),
    /// A port number outside 1-65535.
    PortOutOfRange(Token),
    /// A checksum mode other than none/udp/remcsum.
    BadChecksumMode(Token),
    /// The option (named) is given twice.
    DuplicateOption(&'static str),
    /// `add` without `port`.
    MissingPort,
    /// `edit` without any option.
    NothingToEdit,
    /// Words after a complete command.
    TrailingText(Token),
    /// `add` of an address already in the table.
    AlreadyExists(InetAddr),
    /// `edit`/`del` of an address not in the table.
    NotFound(InetAddr),
    /// `add` with no room left: [`MAX_REAL_SERVERS`] slots in use or freed by the same change.
    TableFull,
}

/// `EINVAL`, see [`ConfigError::errno`].
pub const EINVAL: i32 = 22;
/// `EEXIST`, see [`ConfigError::errno`].
pub const EEXIST: i32 = 17;
/// `ENOENT`, see [`ConfigError::errno`].
pub const ENOENT: i32 = 2;
/// `ENOSPC`, see [`ConfigError::errno`].
pub const ENOSPC: i32 = 28;

impl ConfigError {
    /// The (positive) errno the proc write fails with, so userspace can
    /// tell the table errors apart from syntax errors (`EINVAL`).
    pub const fn errno(&self) -> i32 {
        match self {
            ConfigError::AlreadyExists(_) => EEXIST,
            ConfigError::NotFound(_) => ENOENT,
            ConfigError::TableFull => ENOSPC,
            _ => EINVAL,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidByte { byte, column } => write!(
                f,
                "invalid byte {byte:#04x} at column {column}: only printable ASCII is accepted"
            ),
            ConfigError::UnknownCommand(t) => {
                write!(
                    f,
                    "unknown command '{t}' (expected add, edit, del or flush)"
                )
            }
            ConfigError::MissingAddress(cmd) => {
                write!(f, "missing real server address after '{cmd}'")
            }
            ConfigError::BadAddress(t) => write!(f, "'{t}' is not an IPv4 or IPv6 address"),
            ConfigError::UnknownKeyword(t) => {
                write!(f, "unknown keyword '{t}' (expected port, csum or outer)")
            }
            ConfigError::MissingValue(kw) => write!(f, "missing value after '{kw}'"),
            ConfigError::BadPort(t) => write!(f, "invalid port '{t}': expected a number 1-65535"),
            ConfigError::PortOutOfRange(t) => write!(f, "port {t} out of range 1-65535"),
            ConfigError::BadChecksumMode(t) => {
                write!(
                    f,
                    "unknown checksum mode '{t}' (expected none, udp or remcsum)"
                )
            }
            ConfigError::DuplicateOption(kw) => write!(f, "duplicate option '{kw}'"),
            ConfigError::MissingPort => f.write_str("missing port: add needs 'port <1-65535>'"),
            ConfigError::NothingToEdit => {
                f.write_str("nothing to edit: give at least one of port, csum, outer")
            }
            ConfigError::TrailingText(t) => write!(f, "trailing text '{t}'"),
            ConfigError::AlreadyExists(a) => write!(f, "real server {a} already exists; use edit"),
            ConfigError::NotFound(a) => write!(f, "real server {a} does not exist"),
            ConfigError::TableFull => {
                write!(f, "table full: at most {MAX_REAL_SERVERS} real servers")
            }
        }
    }
}

/// Parses one line given as raw bytes (what a proc write delivers): checks
/// the bytes, then [`parse_command`].
pub fn parse_command_bytes(line: &[u8]) -> Result<Command, ConfigError> {
    check_bytes(line)?;
    match core::str::from_utf8(line) {
        Ok(text) => parse_command(text),
        // Unreachable after `check_bytes`, but never panic on input.
        Err(e) => Err(invalid_byte(line, e.valid_up_to())),
    }
}

/// Parses one line. A trailing `\n` or `\r\n` is allowed; NUL, other control
/// characters and non-ASCII text are refused.
pub fn parse_command(line: &str) -> Result<Command, ConfigError> {
    check_bytes(line.as_bytes())?;
    let mut words = Words {
        inner: line.split_ascii_whitespace(),
        in_comment: false,
    };
    let Some(cmd) = words.next() else {
        return Ok(Command::Nothing);
    };
    let command = match cmd {
        "add" => {
            let addr = parse_addr(words.next().ok_or(ConfigError::MissingAddress("add"))?)?;
            let opts = parse_options(&mut words)?;
            Command::Add(
                addr,
                RealServerConfig {
                    outer: opts.outer.unwrap_or(addr),
                    port: opts.port.ok_or(ConfigError::MissingPort)?,
                    csum: opts.csum.unwrap_or_default(),
                },
            )
        }
        "edit" => {
            let addr = parse_addr(words.next().ok_or(ConfigError::MissingAddress("edit"))?)?;
            let opts = parse_options(&mut words)?;
            if opts.is_empty() {
                return Err(ConfigError::NothingToEdit);
            }
            Command::Edit(addr, opts)
        }
        "del" => Command::Delete(parse_addr(
            words.next().ok_or(ConfigError::MissingAddress("del"))?,
        )?),
        "flush" => Command::Flush,
        other => return Err(ConfigError::UnknownCommand(Token::new(other))),
    };
    match words.next() {
        None => Ok(command),
        Some(extra) => Err(ConfigError::TrailingText(Token::new(extra))),
    }
}

/// Parses an address argument.
pub fn parse_addr(text: &str) -> Result<InetAddr, ConfigError> {
    InetAddr::parse(text).map_err(|_| ConfigError::BadAddress(Token::new(text)))
}

/// Parses a port argument: decimal, 1-65535.
pub fn parse_port(text: &str) -> Result<u16, ConfigError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::BadPort(Token::new(text)));
    }
    // Saturate so that absurdly long numbers report "out of range", not
    // overflow.
    let value = text.bytes().fold(0u32, |acc, d| {
        acc.saturating_mul(10)
            .saturating_add(u32::from(d.saturating_sub(b'0')))
    });
    match u16::try_from(value) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(ConfigError::PortOutOfRange(Token::new(text))),
    }
}

/// Word iterator that ends for good at a word starting with `#`: the rest
/// of the line is a comment.
struct Words<'a> {
    inner: core::str::SplitAsciiWhitespace<'a>,
    in_comment: bool,
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.in_comment {
            return None;
        }
        let word = self.inner.next()?;
        if word.starts_with('#') {
            self.in_comment = true;
            return None;
        }
        Some(word)
    }
}

fn parse_options(words: &mut Words<'_>) -> Result<EditFields, ConfigError> {
    let mut opts = EditFields::default();
    while let Some(keyword) = words.next() {
        match keyword {
            "port" => {
                let v = words.next().ok_or(ConfigError::MissingValue("port"))?;
                set_once(&mut opts.port, parse_port(v)?, "port")?;
            }
            "csum" => {
                let v = words.next().ok_or(ConfigError::MissingValue("csum"))?;
                set_once(&mut opts.csum, ChecksumMode::parse(v)?, "csum")?;
            }
            "outer" => {
                let v = words.next().ok_or(ConfigError::MissingValue("outer"))?;
                set_once(&mut opts.outer, parse_addr(v)?, "outer")?;
            }
            other => return Err(ConfigError::UnknownKeyword(Token::new(other))),
        }
    }
    Ok(opts)
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), ConfigError> {
    if slot.is_some() {
        return Err(ConfigError::DuplicateOption(name));
    }
    *slot = Some(value);
    Ok(())
}

/// Accepts printable ASCII and tabs, plus one trailing `\n` or `\r\n`.
fn check_bytes(line: &[u8]) -> Result<(), ConfigError> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    match body
        .iter()
        .position(|&b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
    {
        Some(pos) => Err(invalid_byte(line, pos)),
        None => Ok(()),
    }
}

fn invalid_byte(line: &[u8], pos: usize) -> ConfigError {
    ConfigError::InvalidByte {
        byte: line.get(pos).copied().unwrap_or(0),
        column: pos.saturating_add(1),
    }
}
