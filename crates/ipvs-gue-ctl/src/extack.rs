// SPDX-License-Identifier: GPL-2.0

//! What the kernel says about a refused request: the errno of an `NLMSG_ERROR` (or of the
//! `NLMSG_DONE` ending a dump) and its extended ack, whose attribute offsets are mapped back
//! to the request that was sent, so the user is told which server and which setting.

use std::io;

use gue_core::netlink::server_attr;
use netlink_packet_core::{
    NLA_F_NESTED, NLA_HEADER_SIZE, NLA_TYPE_MASK, NLM_F_ACK_TLVS, NLM_F_CAPPED,
};
use netlink_packet_generic::constants::GENL_HDRLEN;

use crate::wire::{attributes, server_attr_name};

// linux/netlink.h `enum nlmsgerr_attrs` (not in libc).
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;
const NLMSGERR_ATTR_MISS_TYPE: u16 = 5;
const NLMSGERR_ATTR_MISS_NEST: u16 = 6;

/// Length of a netlink message header.
const NLMSG_HDRLEN: usize = 16;

/// An attribute of the request, as the kernel pointed at it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Location {
    /// Index of the top-level nest (`table-replace`'s `server`) that it is or is in.
    pub server: Option<usize>,
    /// Its type (flags masked off), unless it is the nest itself.
    pub attr: Option<u16>,
}

/// A request the kernel refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Refusal {
    /// The (positive) errno.
    pub errno: i32,
    /// The kernel's message, if it gave one.
    pub message: Option<String>,
    /// The attribute at fault, if named.
    pub bad: Option<Location>,
    /// The attribute found missing, if named (its `attr` is set).
    pub missing: Option<Location>,
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// The extended ack attributes in what follows an `NLMSG_ERROR`'s errno: the request comes
/// back first (its header alone if `NLM_F_CAPPED`), the attributes after it if
/// `NLM_F_ACK_TLVS` (`flags` are those of the error message).
pub fn error_tlvs(flags: u16, echoed: &[u8]) -> &[u8] {
    if flags & NLM_F_ACK_TLVS == 0 {
        return &[];
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        echoed
            .get(..4)
            .and_then(|len| len.try_into().ok())
            .map_or(echoed.len(), |len| u32::from_ne_bytes(len) as usize)
    };
    echoed.get(align4(skip)..).unwrap_or(&[])
}

fn u32_of(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

impl Refusal {
    /// The refusal with errno `errno` (positive) and extended ack `tlvs`, of `request` (the
    /// whole message as sent).
    pub fn new(errno: i32, tlvs: &[u8], request: &[u8]) -> Refusal {
        let mut refusal = Refusal {
            errno,
            message: None,
            bad: None,
            missing: None,
        };
        let (mut missing_type, mut missing_nest) = (None, None);
        for (kind, value) in attributes(tlvs).map_while(Result::ok) {
            match kind {
                NLMSGERR_ATTR_MSG => {
                    let text = value.split(|&b| b == 0).next().unwrap_or_default();
                    refusal.message = Some(String::from_utf8_lossy(text).into_owned());
                }
                NLMSGERR_ATTR_OFFS => {
                    refusal.bad = u32_of(value).and_then(|at| locate(request, at))
                }
                NLMSGERR_ATTR_MISS_TYPE => missing_type = u32_of(value),
                NLMSGERR_ATTR_MISS_NEST => missing_nest = u32_of(value),
                _ => {}
            }
        }
        refusal.missing = missing_type
            .and_then(|ty| u16::try_from(ty).ok())
            .map(|ty| Location {
                server: missing_nest
                    .and_then(|at| locate(request, at))
                    .and_then(|nest| nest.server),
                attr: Some(ty),
            });
        refusal
    }

    /// The text for the user: the errno's, the kernel's message, and where it points.
    /// `lines[i]` is the input line the `i`th server nest came from, when it came from input.
    pub fn describe(&self, lines: &[usize]) -> String {
        let mut text = errno_text(self.errno);
        if let Some(message) = &self.message {
            text.push_str(": ");
            text.push_str(message);
        } else if self.errno == libc::EPERM {
            text.push_str(" (CAP_NET_ADMIN needed)");
        }
        let mut notes = Vec::new();
        for (location, missing) in [(self.bad, false), (self.missing, true)] {
            let Some(Location { server, attr }) = location else {
                continue;
            };
            if let Some(index) = server {
                notes.push(match lines.get(index) {
                    Some(line) => format!("input line {line}"),
                    None => format!("server {}", index + 1),
                });
            }
            match attr {
                // A single server's request names its address already.
                Some(server_attr::ADDRESS) if server.is_none() && !missing => {}
                Some(ty) => {
                    let name = server_attr_name(ty)
                        .map_or_else(|| format!("attribute {ty}"), |n| format!("attribute {n}"));
                    notes.push(if missing {
                        format!("missing {name}")
                    } else {
                        name
                    });
                }
                None => {}
            }
        }
        if !notes.is_empty() {
            text.push_str(&format!(" ({})", notes.join(", ")));
        }
        text
    }
}

/// The C library's text for `errno` ("File exists"), without std's " (os error N)".
fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.strip_suffix(&format!(" (os error {errno})")) {
        Some(bare) => bare.to_string(),
        None => text,
    }
}

/// `(offset, type with flags, length)` of the attributes in `message[from..to]`.
fn attributes_at(
    message: &[u8],
    from: usize,
    to: usize,
) -> impl Iterator<Item = (usize, u16, usize)> + '_ {
    let mut at = from;
    std::iter::from_fn(move || {
        let header = message.get(at..at + NLA_HEADER_SIZE)?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let ty = u16::from_ne_bytes([header[2], header[3]]);
        if len < NLA_HEADER_SIZE || at + len > to {
            return None;
        }
        let item = (at, ty, len);
        at += align4(len);
        Some(item)
    })
}

/// The attribute of `request` (a whole message: netlink and generic headers, attributes)
/// that starts at byte `offset`, or the nest that holds it.
fn locate(request: &[u8], offset: u32) -> Option<Location> {
    let offset = usize::try_from(offset).ok()?;
    let mut nests = 0;
    for (at, ty, len) in attributes_at(request, NLMSG_HDRLEN + GENL_HDRLEN, request.len()) {
        let nested = ty & NLA_F_NESTED != 0;
        let server = nested.then_some(nests);
        if offset == at {
            return Some(Location {
                server,
                attr: (!nested).then_some(ty & NLA_TYPE_MASK),
            });
        }
        if nested && (at..at + len).contains(&offset) {
            let inner = attributes_at(request, at + NLA_HEADER_SIZE, at + len)
                .find(|&(inner_at, ..)| inner_at == offset)
                .map(|(_, inner_ty, _)| inner_ty & NLA_TYPE_MASK);
            return Some(Location {
                server,
                attr: inner,
            });
        }
        nests += usize::from(nested);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{nla, request, table_replace};
    use gue_core::addr::InetAddr;
    use gue_core::config::{ChecksumMode, Command, FlowLabelMode, RealServerConfig};

    /// A request as sent: headers, then `attrs`.
    fn message(attrs: &[u8]) -> Vec<u8> {
        let mut out = vec![0; NLMSG_HDRLEN + GENL_HDRLEN];
        out.extend_from_slice(attrs);
        out
    }

    fn config(port: u16) -> RealServerConfig {
        RealServerConfig {
            outer: InetAddr::v4([192, 0, 2, 1]),
            port,
            csum: ChecksumMode::Udp,
            flow_label: FlowLabelMode::Zero,
        }
    }

    #[test]
    fn points_at_the_attribute_sent() {
        let add = message(
            &request(&Command::Add(InetAddr::v4([10, 0, 0, 1]), config(5501))).attrs,
        );
        // address (8 bytes) then port.
        assert_eq!(
            locate(&add, 20),
            Some(Location {
                server: None,
                attr: Some(server_attr::ADDRESS)
            })
        );
        assert_eq!(
            locate(&add, 28),
            Some(Location {
                server: None,
                attr: Some(server_attr::PORT)
            })
        );
        assert_eq!(locate(&add, 29), None);
        assert_eq!(locate(&add, 9999), None);

        let servers = [
            (InetAddr::v4([10, 0, 0, 1]), config(1)),
            (InetAddr::v6([0x20; 16]), config(2)),
        ];
        let replace = message(&table_replace(&servers).attrs);
        // Nest 0: 4 + address 8 + port 8 + csum 8 + outer 8 = 36 bytes.
        assert_eq!(
            locate(&replace, 20),
            Some(Location {
                server: Some(0),
                attr: None
            })
        );
        assert_eq!(
            locate(&replace, 56),
            Some(Location {
                server: Some(1),
                attr: None
            })
        );
        assert_eq!(
            locate(&replace, 60 + 20),
            Some(Location {
                server: Some(1),
                attr: Some(server_attr::PORT)
            })
        );
    }

    #[test]
    fn reads_a_capped_error_with_its_extended_ack() {
        let servers = [
            (InetAddr::v4([10, 0, 0, 1]), config(1)),
            (InetAddr::v4([10, 0, 0, 1]), config(2)),
        ];
        let sent = message(&table_replace(&servers).attrs);
        // After the errno: the request's header alone (capped), then the attributes.
        let echoed = [
            sent[..NLMSG_HDRLEN].to_vec(),
            nla(NLMSGERR_ATTR_MSG, b"server 2: 10.0.0.1 listed twice\0"),
            nla(NLMSGERR_ATTR_OFFS, &56u32.to_ne_bytes()),
        ]
        .concat();
        let tlvs = error_tlvs(NLM_F_CAPPED | NLM_F_ACK_TLVS, &echoed);
        let refusal = Refusal::new(17, tlvs, &sent);
        assert_eq!(
            refusal.bad,
            Some(Location {
                server: Some(1),
                attr: None
            })
        );
        assert_eq!(
            refusal.describe(&[3, 7]),
            "File exists: server 2: 10.0.0.1 listed twice (input line 7)"
        );
        assert_eq!(
            refusal.describe(&[]),
            "File exists: server 2: 10.0.0.1 listed twice (server 2)"
        );
        // No attributes without NLM_F_ACK_TLVS.
        assert_eq!(error_tlvs(NLM_F_CAPPED, &echoed), &[] as &[u8]);
    }

    #[test]
    fn skips_an_uncapped_echo() {
        let sent = message(&nla(server_attr::ADDRESS, &[10, 0, 0, 1]));
        let mut echo = sent.clone();
        echo[..4].copy_from_slice(&u32::try_from(sent.len()).unwrap().to_ne_bytes());
        let echoed = [
            echo,
            nla(
                NLMSGERR_ATTR_MSG,
                b"real server 10.0.0.1 already exists; use edit\0",
            ),
        ]
        .concat();
        let refusal = Refusal::new(17, error_tlvs(NLM_F_ACK_TLVS, &echoed), &sent);
        assert_eq!(
            refusal.describe(&[]),
            "File exists: real server 10.0.0.1 already exists; use edit"
        );
    }

    #[test]
    fn names_bad_and_missing_attributes() {
        let sent = message(
            &request(&Command::Add(InetAddr::v4([10, 0, 0, 1]), config(5501))).attrs,
        );
        let tlvs = [
            nla(NLMSGERR_ATTR_MSG, b"port must be 1-65535\0"),
            nla(NLMSGERR_ATTR_OFFS, &28u32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(
            Refusal::new(22, &tlvs, &sent).describe(&[]),
            "Invalid argument: port must be 1-65535 (attribute port)"
        );
        // The address is in the request's description already.
        let tlvs = [
            nla(NLMSGERR_ATTR_MSG, b"real server 10.0.0.1 does not exist\0"),
            nla(NLMSGERR_ATTR_OFFS, &20u32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(
            Refusal::new(2, &tlvs, &sent).describe(&[]),
            "No such file or directory: real server 10.0.0.1 does not exist"
        );

        let servers = [(InetAddr::v4([10, 0, 0, 1]), config(1))];
        let sent = message(&table_replace(&servers).attrs);
        let tlvs = [
            nla(NLMSGERR_ATTR_MSG, b"missing port: server-add needs one\0"),
            nla(
                NLMSGERR_ATTR_MISS_TYPE,
                &u32::from(server_attr::PORT).to_ne_bytes(),
            ),
            nla(NLMSGERR_ATTR_MISS_NEST, &20u32.to_ne_bytes()),
        ]
        .concat();
        let refusal = Refusal::new(22, &tlvs, &sent);
        assert_eq!(
            refusal.missing,
            Some(Location {
                server: Some(0),
                attr: Some(server_attr::PORT)
            })
        );
        assert_eq!(refusal.describe(&[4]), "Invalid argument: missing port: server-add needs one (input line 4, missing attribute port)");
        assert_eq!(
            Refusal::new(1, &[], &sent).describe(&[]),
            "Operation not permitted (CAP_NET_ADMIN needed)"
        );
    }
}
