// SPDX-License-Identifier: GPL-2.0
//! `parse_command_bytes` on arbitrary bytes: never panics; agrees with
//! `parse_command` on text; an accepted line only holds accepted bytes and its
//! canonical text (`Display`) parses back to the same command; every error
//! formats and is a syntax error (EINVAL), with `InvalidByte` pointing at the
//! offending byte.
#![no_main]

use std::fmt::Write;

use gue_core::config::{parse_command, parse_command_bytes, Command, ConfigError, EINVAL};
use gue_core::text::FixedText;
use libfuzzer_sys::fuzz_target;

fn accepted(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b)
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_command_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            parse_command(text),
            parsed,
            "str and bytes parsers disagree"
        );
    }
    match parsed {
        Ok(cmd) => {
            let body = data.strip_suffix(b"\n").unwrap_or(data);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            assert!(
                body.iter().all(|&b| accepted(b)),
                "accepted a line with a refused byte"
            );
            match cmd {
                Command::Add(_, c) => assert_ne!(c.port, 0, "add with port 0"),
                Command::Edit(_, f) => {
                    assert!(!f.is_empty(), "edit with nothing to edit");
                    assert_ne!(f.port, Some(0), "edit to port 0");
                }
                _ => {}
            }
            let line = cmd.to_string();
            assert_eq!(
                parse_command(&line),
                Ok(cmd),
                "canonical text {line:?} does not parse back"
            );
            let crlf = format!("{line}\r\n");
            assert_eq!(parse_command_bytes(crlf.as_bytes()), Ok(cmd));
        }
        Err(e) => {
            // The kernel formats the error into a fixed buffer; userspace into a String.
            let mut message = FixedText::<256>::new();
            let _ = write!(message, "line 1: {e}");
            assert!(message.as_str().len() > "line 1: ".len());
            assert!(!e.to_string().is_empty());
            assert_eq!(e.errno(), EINVAL, "parser returned a table error {e:?}");
            if let ConfigError::InvalidByte { byte, column } = e {
                assert!(column >= 1);
                assert_eq!(
                    data.get(column - 1),
                    Some(&byte),
                    "InvalidByte points elsewhere"
                );
                assert!(!accepted(byte) || byte == b'\n' || byte == b'\r');
            }
        }
    }
});
