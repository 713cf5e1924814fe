// SPDX-License-Identifier: GPL-2.0

//! The generic netlink connection to the module: resolves the `ipvs_gue` family through the
//! nlctrl controller, sends requests and collects their replies until the ack, or a dump's
//! messages until its end, starting a dump again when the table changed during it.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkBuffer, NetlinkDeserializable, NetlinkMessage, NetlinkPayload,
    ParseableParametrized, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};

use crate::extack::{error_tlvs, Refusal};
use crate::wire::{GueMessage, FAMILY_NAME};

/// Dumps tried before giving up on a table that keeps changing.
const DUMP_TRIES: u32 = 5;

/// Room the kernel wants in the send buffer beside the message (`netlink_sendmsg` refuses a
/// message longer than `sk_sndbuf - 32` with `EMSGSIZE`).
const SNDBUF_SLACK: usize = 32;

/// Why talking to the module failed.
#[derive(Debug)]
pub enum Error {
    /// No `ipvs_gue` family: the module is not loaded.
    NoFamily,
    /// A socket call failed (named).
    Io(&'static str, io::Error),
    /// The kernel refused the request.
    Refused(Refusal),
    /// A message that does not parse.
    Malformed(String),
    /// Every try of a dump overlapped a change of the table.
    DumpInterrupted,
    /// The request is larger than the send buffer could be made.
    TooLarge {
        /// The request's length.
        len: usize,
        /// The send buffer's size.
        sndbuf: usize,
    },
}

impl Error {
    /// The text for the user; `lines` as for [`Refusal::describe`].
    pub fn describe(&self, lines: &[usize]) -> String {
        match self {
            Error::Refused(refusal) => refusal.describe(lines),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoFamily => write!(
                f,
                "generic netlink family {FAMILY_NAME} not found: is the ipvs_gue module loaded? (insmod ipvs_gue.ko)"
            ),
            Error::Io(call, e) => write!(f, "netlink {call}: {e}"),
            Error::Refused(refusal) => f.write_str(&refusal.describe(&[])),
            Error::Malformed(why) => write!(f, "malformed netlink message: {why}"),
            Error::DumpInterrupted => write!(
                f,
                "the table kept changing during the dump ({DUMP_TRIES} tries); try again"
            ),
            Error::TooLarge { len, sndbuf } => write!(
                f,
                "the request is {len} bytes but the netlink send buffer is only {sndbuf} \
                 (SO_SNDBUFFORCE needs CAP_NET_ADMIN; or raise net.core.wmem_max)"
            ),
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Malformed(e.to_string())
    }
}

fn io_error(call: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::Io(call, e)
}

/// A socket talking to the module's family.
pub struct Connection {
    socket: Socket,
    /// The family's id, resolved when connecting.
    family: u16,
    /// Sequence number of the last request.
    seq: u32,
    /// Receive buffer, grown to the largest datagram seen.
    rx: Vec<u8>,
    /// From sending the last request to its answer (for `-R -v`).
    answered_in: Duration,
}

/// What one request brought back.
struct Exchange<F> {
    /// The family messages, in order.
    replies: Vec<F>,
    /// Whether a dump's messages span a change of the table.
    interrupted: bool,
}

/// Serializes `payload` as a request of `family` with `flags` and `seq`.
fn frame<F>(payload: F, family: u16, flags: u16, seq: u32) -> Vec<u8>
where
    F: GenlFamily + Emitable + fmt::Debug,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family);
    let mut message = NetlinkMessage::from(genl);
    message.header.flags = flags;
    message.header.sequence_number = seq;
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// The messages of one datagram, in order.
fn messages<I: NetlinkDeserializable>(datagram: &[u8]) -> Result<Vec<NetlinkMessage<I>>, Error> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let len = NetlinkBuffer::new_checked(rest)?.length() as usize;
        out.push(NetlinkMessage::deserialize(&rest[..len])?);
        // The next message starts 4-byte aligned; the last one may be unpadded.
        rest = rest.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(out)
}

impl Connection {
    /// Opens a socket with extended acks (the kernel's messages) and capped acks (an error
    /// does not echo a multi-megabyte request back), and resolves the family.
    pub fn open() -> Result<Connection, Error> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(io_error("socket"))?;
        socket.bind_auto().map_err(io_error("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io_error("connect"))?;
        socket
            .set_ext_ack(true)
            .map_err(io_error("setsockopt NETLINK_EXT_ACK"))?;
        socket
            .set_cap_ack(true)
            .map_err(io_error("setsockopt NETLINK_CAP_ACK"))?;
        let mut connection = Connection {
            socket,
            family: 0,
            seq: 0,
            rx: vec![0; 32 * 1024],
            answered_in: Duration::ZERO,
        };
        connection.family = connection.resolve(FAMILY_NAME)?;
        Ok(connection)
    }

    /// The id of the generic netlink family `name` (nlctrl `getfamily`).
    fn resolve(&mut self, name: &str) -> Result<u16, Error> {
        let request = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
        };
        let reply = match self.exchange(request, 0, NLM_F_REQUEST | NLM_F_ACK) {
            Err(Error::Refused(refusal)) if refusal.errno == libc::ENOENT => {
                return Err(Error::NoFamily)
            }
            // Any attribute it names is nlctrl's, which the refusal would name as ours.
            Err(Error::Refused(refusal)) => {
                return Err(Error::Refused(Refusal {
                    bad: None,
                    missing: None,
                    ..refusal
                }))
            }
            other => other?,
        };
        reply
            .replies
            .iter()
            .flat_map(|ctrl: &GenlCtrl| &ctrl.nlas)
            .find_map(|nla| match nla {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| Error::Malformed(format!("nlctrl reply for {name} without a family id")))
    }

    /// Sends `request`, acked: the replies (a table change's summary), or the refusal.
    pub fn execute(&mut self, request: GueMessage) -> Result<Vec<GueMessage>, Error> {
        Ok(self
            .exchange(request, self.family, NLM_F_REQUEST | NLM_F_ACK)?
            .replies)
    }

    /// How long the last request took, from sending it to the first datagram answering it:
    /// for a table change, the module's work (the reply follows the new table's publication).
    pub fn answered_in(&self) -> Duration {
        self.answered_in
    }

    /// Dumps with `request`, started again while the table changes under it.
    pub fn dump(&mut self, request: &GueMessage) -> Result<Vec<GueMessage>, Error> {
        for _ in 0..DUMP_TRIES {
            let dump = self.exchange(request.clone(), self.family, NLM_F_REQUEST | NLM_F_DUMP)?;
            if !dump.interrupted {
                return Ok(dump.replies);
            }
        }
        Err(Error::DumpInterrupted)
    }

    /// Sends one request and reads what answers it, up to its ack or the end of its dump.
    fn exchange<F>(&mut self, payload: F, family: u16, flags: u16) -> Result<Exchange<F>, Error>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let request = frame(payload, family, flags, self.seq);
        self.make_room(request.len())?;
        let started = Instant::now();
        let sent = self.socket.send(&request, 0).map_err(io_error("send"))?;
        if sent != request.len() {
            let short = format!("sent {sent} of {} bytes", request.len());
            return Err(Error::Io("send", io::Error::other(short)));
        }
        let mut exchange = Exchange {
            replies: Vec::new(),
            interrupted: false,
        };
        loop {
            let len = self.receive()?;
            self.answered_in = started.elapsed();
            for message in messages::<GenlMessage<F>>(&self.rx[..len])? {
                if message.header.sequence_number != self.seq {
                    // A late answer to an earlier request.
                    continue;
                }
                exchange.interrupted |= message.header.flags & NLM_F_DUMP_INTR != 0;
                match message.payload {
                    NetlinkPayload::InnerMessage(genl) => exchange.replies.push(genl.payload),
                    NetlinkPayload::Error(error) => match error.code {
                        None => return Ok(exchange),
                        Some(code) => {
                            let tlvs = error_tlvs(message.header.flags, &error.header);
                            return Err(Error::Refused(Refusal::new(-code.get(), tlvs, &request)));
                        }
                    },
                    NetlinkPayload::Done(done) if done.code < 0 => {
                        return Err(Error::Refused(Refusal::new(
                            -done.code,
                            &done.extended_ack,
                            &request,
                        )));
                    }
                    NetlinkPayload::Done(_) => return Ok(exchange),
                    NetlinkPayload::Noop => {}
                    NetlinkPayload::Overrun(_) => return Err(Error::Malformed("overrun".into())),
                    _ => return Err(Error::Malformed("unknown message type".into())),
                }
            }
        }
    }

    /// Receives one datagram into `rx`, grown first if it is larger; its length.
    fn receive(&mut self) -> Result<usize, Error> {
        loop {
            // The datagram's real size, left in the queue.
            match self
                .socket
                .recv(&mut &mut self.rx[..], libc::MSG_PEEK | libc::MSG_TRUNC)
            {
                Ok(len) if len > self.rx.len() => self.rx.resize(len, 0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io("recv", e)),
            }
            match self.socket.recv(&mut &mut self.rx[..], 0) {
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io("recv", e)),
            }
        }
    }

    /// Raises the send buffer for a request of `len` bytes if it is too small: forced past
    /// `net.core.wmem_max` if allowed (CAP_NET_ADMIN), else as far as that limit.
    fn make_room(&self, len: usize) -> Result<(), Error> {
        let fd = self.socket.as_raw_fd();
        let sndbuf = || sockopt::get(fd, libc::SO_SNDBUF).map_err(io_error("getsockopt SO_SNDBUF"));
        let wanted = len + SNDBUF_SLACK;
        if sndbuf()? >= wanted {
            return Ok(());
        }
        // The kernel doubles the value set.
        let value = wanted.div_ceil(2).try_into().unwrap_or(libc::c_int::MAX);
        if sockopt::set(fd, libc::SO_SNDBUFFORCE, value).is_err() {
            sockopt::set(fd, libc::SO_SNDBUF, value).map_err(io_error("setsockopt SO_SNDBUF"))?;
        }
        match sndbuf()? {
            sndbuf if sndbuf >= wanted => Ok(()),
            sndbuf => Err(Error::TooLarge { len, sndbuf }),
        }
    }
}

/// The integer `SOL_SOCKET` options netlink-sys has no call for.
mod sockopt {
    use std::io;
    use std::mem::size_of;
    use std::os::fd::RawFd;

    use libc::{c_int, c_void, socklen_t, SOL_SOCKET};

    const LEN: socklen_t = size_of::<c_int>() as socklen_t;

    pub fn set(fd: RawFd, option: c_int, value: c_int) -> io::Result<()> {
        // SAFETY: `value` is a live `c_int` of the length given, read during the call only.
        let res = unsafe {
            libc::setsockopt(
                fd,
                SOL_SOCKET,
                option,
                (&raw const value).cast::<c_void>(),
                LEN,
            )
        };
        if res < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn get(fd: RawFd, option: c_int) -> io::Result<usize> {
        let (mut value, mut len): (c_int, socklen_t) = (0, LEN);
        // SAFETY: `value` and `len` are live and writable for the call; `len` says how much
        // of `value` the kernel may write.
        let res = unsafe {
            libc::getsockopt(
                fd,
                SOL_SOCKET,
                option,
                (&raw mut value).cast::<c_void>(),
                &raw mut len,
            )
        };
        if res < 0 {
            return Err(io::Error::last_os_error());
        }
        usize::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::table_replace;
    use gue_core::addr::InetAddr;
    use gue_core::config::{ChecksumMode, FlowLabelMode, RealServerConfig};
    use gue_core::netlink::{cmd, FAMILY_VERSION};
    use netlink_packet_core::{NLMSG_DONE, NLM_F_MULTIPART};
    use netlink_packet_generic::constants::{CTRL_CMD_GETFAMILY, CTRL_CMD_NEWFAMILY, GENL_ID_CTRL};

    /// A message as the kernel sends it.
    fn kernel_message(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(16 + payload.len()).unwrap();
        let mut out = [
            &len.to_ne_bytes()[..],
            &ty.to_ne_bytes(),
            &flags.to_ne_bytes(),
            &seq.to_ne_bytes(),
            &7u32.to_ne_bytes(),
        ]
        .concat();
        out.extend_from_slice(payload);
        out.resize((out.len() + 3) & !3, 0);
        out
    }

    #[test]
    fn frames_a_request() {
        let request = GueMessage {
            cmd: cmd::SERVER_DEL,
            attrs: vec![8, 0, 1, 0, 10, 0, 0, 1],
        };
        let bytes = frame(request, 0x1234, NLM_F_REQUEST | NLM_F_ACK, 9);
        assert_eq!(bytes.len(), 16 + 4 + 8);
        assert_eq!(&bytes[..4], &28u32.to_ne_bytes());
        assert_eq!(&bytes[4..6], &0x1234u16.to_ne_bytes());
        assert_eq!(&bytes[6..8], &(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        assert_eq!(&bytes[8..12], &9u32.to_ne_bytes());
        assert_eq!(&bytes[16..20], &[cmd::SERVER_DEL, FAMILY_VERSION, 0, 0]);
        assert_eq!(&bytes[20..], &[8, 0, 1, 0, 10, 0, 0, 1]);
    }

    #[test]
    fn splits_a_datagram_into_messages() {
        let server = [
            cmd::SERVER_GET,
            FAMILY_VERSION,
            0,
            0,
            8,
            0,
            1,
            0,
            10,
            0,
            0,
            1,
        ];
        let datagram = [
            kernel_message(0x20, NLM_F_MULTIPART, 3, &server),
            kernel_message(0x20, NLM_F_MULTIPART | NLM_F_DUMP_INTR, 3, &server),
            kernel_message(NLMSG_DONE, NLM_F_MULTIPART, 3, &0i32.to_ne_bytes()),
        ]
        .concat();
        let parsed = messages::<GenlMessage<GueMessage>>(&datagram).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].header.flags & NLM_F_DUMP_INTR, NLM_F_DUMP_INTR);
        let NetlinkPayload::InnerMessage(genl) = &parsed[0].payload else {
            panic!("{:?}", parsed[0])
        };
        assert_eq!(
            genl.payload,
            GueMessage {
                cmd: cmd::SERVER_GET,
                attrs: server[4..].to_vec()
            }
        );
        assert!(matches!(parsed[2].payload, NetlinkPayload::Done(_)));
        // A length running past the datagram.
        assert!(messages::<GenlMessage<GueMessage>>(&datagram[..datagram.len() - 2]).is_err());
    }

    /// A connection to nlctrl alone (no module needed), with a tiny receive buffer.
    fn nlctrl_connection() -> Connection {
        let mut socket = Socket::new(NETLINK_GENERIC).unwrap();
        socket.bind_auto().unwrap();
        socket.connect(&SocketAddr::new(0, 0)).unwrap();
        socket.set_ext_ack(true).unwrap();
        socket.set_cap_ack(true).unwrap();
        Connection {
            socket,
            family: GENL_ID_CTRL,
            seq: 0,
            rx: vec![0; 16],
            answered_in: Duration::ZERO,
        }
    }

    /// Resolving works on any kernel: nlctrl is its own family, at id 0x10.
    #[test]
    fn resolves_nlctrl() {
        let mut connection = nlctrl_connection();
        assert_eq!(connection.resolve("nlctrl").unwrap(), GENL_ID_CTRL);
        // The small buffer grew to the reply.
        assert!(connection.rx.len() > 16);
        assert!(matches!(
            connection.resolve("no_such_fam"),
            Err(Error::NoFamily)
        ));
        // A name longer than GENL_NAMSIZ: refused by nlctrl's policy, through the extack.
        match connection.resolve("ipvs_gue_name_too_long") {
            Err(Error::Refused(refusal)) => assert_eq!(
                refusal.describe(&[]),
                "Invalid argument: Attribute failed policy validation"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// A multipart dump up to its end: nlctrl lists its families, itself among them.
    #[test]
    fn dumps_until_done() {
        let mut connection = nlctrl_connection();
        let request = GueMessage {
            cmd: CTRL_CMD_GETFAMILY,
            attrs: Vec::new(),
        };
        let families = connection.dump(&request).unwrap();
        assert!(families.len() > 1, "{families:?}");
        assert!(families.iter().all(|f| f.cmd == CTRL_CMD_NEWFAMILY));
        let nlctrl = GenlCtrlAttrs::FamilyName("nlctrl".into());
        let named = |f: &GueMessage| {
            let mut bytes = vec![0; nlctrl.buffer_len()];
            nlctrl.emit(&mut bytes);
            f.attrs.windows(bytes.len()).any(|w| w == bytes)
        };
        assert!(families.iter().any(named));
        // The next request on the same socket is answered in turn.
        assert_eq!(connection.resolve("nlctrl").unwrap(), GENL_ID_CTRL);
    }

    /// A `table-replace` of 100 000 servers (megabytes) goes out whole once the send buffer
    /// is raised, and its refusal comes back capped (not echoing the request). nlctrl stands
    /// in for the module: it refuses a command it does not have.
    #[test]
    fn sends_a_request_of_megabytes() {
        let servers: Vec<_> = (0..100_000u32)
            .map(|i| {
                let mut octets = [0x20; 16];
                octets[12..].copy_from_slice(&i.to_be_bytes());
                let addr = InetAddr::v6(octets);
                (
                    addr,
                    RealServerConfig {
                        outer: addr,
                        port: 5501,
                        csum: ChecksumMode::Udp,
                        flow_label: FlowLabelMode::Zero,
                    },
                )
            })
            .collect();
        let table = table_replace(&servers);
        let len = table.attrs.len();
        assert!(len > 5 << 20, "{len}");
        let mut connection = nlctrl_connection();
        let request = GueMessage {
            cmd: 0xee,
            attrs: table.attrs,
        };
        match connection.exchange(request, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK) {
            Err(Error::Refused(refusal)) => assert_eq!(refusal.errno, libc::EOPNOTSUPP),
            // Not privileged enough to force the send buffer past net.core.wmem_max.
            Err(Error::TooLarge {
                len: wanted,
                sndbuf,
            }) => assert!(wanted > len && sndbuf < wanted),
            other => panic!("{:?}", other.map(|exchange| exchange.replies)),
        }
        assert!(connection.rx.len() < 4096, "the refusal echoed the request");
    }
}
