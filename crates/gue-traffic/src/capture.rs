//! `gue-traffic capture`: AF_PACKET capture of GUE packets on one interface,
//! decoded to one JSON object per packet (see decode.rs), optionally also
//! written to a pcap file.

use crate::decode::{decode, CsumState, InnerKind, Meta, OuterIp, Packet};
use crate::report::{write_line, JsonDest};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Any,
    Out,
    In,
}

pub struct CaptureOpts {
    pub iface: String,
    pub port: u16,
    pub count: u64,
    pub timeout: Duration,
    pub json: JsonDest,
    /// Also write the captured frames here.
    pub pcap: Option<PathBuf>,
    pub summary: bool,
    pub direction: Direction,
}

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_STATISTICS: libc::c_int = 6;
const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;
/// Large enough for a 64 KiB GSO super-packet plus headers.
const BUF_LEN: usize = 256 * 1024;
/// Receive timeout slice; the overall deadline is checked after every wake-up.
const RECV_SLICE: Duration = Duration::from_millis(100);

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: val points to a live T of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

struct Capture {
    fd: OwnedFd,
    vnet: bool,
}

fn open(iface: &str) -> Result<Capture, String> {
    let cname = CString::new(iface).map_err(|_| format!("invalid interface name '{iface}'"))?;
    // SAFETY: cname is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(format!(
            "no such interface '{iface}': {}",
            io::Error::last_os_error()
        ));
    }
    // Protocol 0 at creation: the socket receives nothing until bind() below
    // selects ETH_P_ALL on this interface only (no frames from other devices).
    // SAFETY: plain syscall.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => format!(
                "cannot open AF_PACKET socket: {e} (capture needs CAP_NET_RAW: run as root)"
            ),
            _ => format!("cannot open AF_PACKET socket: {e}"),
        });
    }
    // SAFETY: raw is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // virtio_net_hdr in front of every frame: tells us about CHECKSUM_PARTIAL
    // (csum_start/offset still to be filled by the device) and GSO super-packets.
    let vnet = setsockopt(&fd, libc::SOL_PACKET, PACKET_VNET_HDR, &1 as &libc::c_int).is_ok();
    let _ = setsockopt(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        &(8 << 20) as &libc::c_int,
    );
    let tv = libc::timeval {
        tv_sec: RECV_SLICE.as_secs() as libc::time_t,
        tv_usec: RECV_SLICE.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ALL.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the given size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(format!("bind to '{iface}': {}", last_err("bind")));
    }
    Ok(Capture { fd, vnet })
}

enum Recv {
    Frame {
        /// Bytes in the buffer.
        len: usize,
        /// Bytes the kernel had (more than `len`: truncated to the buffer).
        wire_len: usize,
        outgoing: bool,
    },
    Timeout,
    /// The kernel could not describe the packet in a virtio_net_hdr (e.g. an
    /// unsupported GSO type); it was dropped by recvmsg with EINVAL.
    Unrepresentable,
}

impl Capture {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Recv> {
        loop {
            // SAFETY: zeroed sockaddr_ll is valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut slen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf and sll are valid for writes of the given sizes.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut slen,
                )
            };
            if n >= 0 {
                let n = n as usize;
                return Ok(Recv::Frame {
                    len: n.min(buf.len()),
                    wire_len: n,
                    outgoing: sll.sll_pkttype == PACKET_OUTGOING,
                });
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(Recv::Timeout),
                Some(libc::EINVAL) if self.vnet => return Ok(Recv::Unrepresentable),
                _ => return Err(e),
            }
        }
    }

    /// (packets seen, drops) since the last call; resets the kernel counters.
    fn stats(&self) -> Option<(u32, u32)> {
        let mut st = [0u32; 2];
        let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
        // SAFETY: st is valid for writes of len bytes (struct tpacket_stats).
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                st.as_mut_ptr().cast(),
                &mut len,
            )
        };
        (r == 0).then_some((st[0], st[1]))
    }
}

/// Splits the virtio_net_hdr (native endian for legacy virtio) off a frame.
pub fn split_vnet(b: &[u8]) -> Option<(Meta, &[u8])> {
    if b.len() < VNET_HDR_LEN {
        return None;
    }
    let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let (flags, gso_type) = (b[0], b[1]);
    let meta = Meta {
        pending_csum: (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0).then(|| (u16_at(6), u16_at(8))),
        gso: (gso_type & !VIRTIO_NET_HDR_GSO_ECN != 0).then(|| (gso_type, u16_at(4))),
    };
    Some((meta, &b[VNET_HDR_LEN..]))
}

/// One output line per decoded packet. The keys are read by the harness's jq
/// (`.layout`, `.inner.*`, `.udp.sport`, `.ip.tos`, ...).
#[derive(Serialize)]
pub struct PacketRecord<'a> {
    n: u64,
    dir: &'a str,
    frame_len: usize,
    ip_version: u8,
    ip: OuterIpRecord<'a>,
    udp: UdpRecord,
    gue: GueRecord,
    inner: InnerRecord,
    offload: OffloadRecord,
    layout: String,
}

/// The outer IP header's fields, and its DS field split.
#[derive(Serialize)]
struct OuterIpRecord<'a> {
    #[serde(flatten)]
    header: &'a OuterIp,
    dscp: u8,
    ecn: u8,
}

#[derive(Serialize)]
struct UdpRecord {
    sport: u16,
    dport: u16,
    length: u16,
    ip_payload_length: u32,
    length_ok: bool,
    csum: u16,
    csum_zero: bool,
    /// null: not checkable (zero, or a GSO super-packet).
    csum_valid: Option<bool>,
    csum_state: &'static str,
    completed_pending_csum_at: Option<usize>,
}

#[derive(Serialize)]
struct GueRecord {
    version: u8,
    control: bool,
    hlen: u8,
    proto_ctype: u8,
    flags: u16,
    r#priv: bool,
    priv_flags: Option<u32>,
    remcsum: Option<RemcsumRecord>,
    header_len: usize,
}

#[derive(Serialize)]
struct RemcsumRecord {
    csum_start: u16,
    csum_start_plus_offset: u16,
    csum_offset: i32,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum InnerRecord {
    Ip {
        version: u8,
        protocol: u8,
        src: IpAddr,
        dst: IpAddr,
        total_length: u32,
        length_ok: bool,
        ttl: u8,
        sport: Option<u16>,
        dport: Option<u16>,
        dsfield: u8,
        dscp: u8,
        ecn: u8,
        /// Hex.
        options: String,
        ext_headers: Vec<u8>,
        upper_protocol: u8,
    },
    Control,
    Unknown,
}

#[derive(Serialize)]
struct OffloadRecord {
    pending_csum: Option<PendingCsumRecord>,
    gso: Option<GsoRecord>,
}

#[derive(Serialize)]
struct PendingCsumRecord {
    csum_start: u16,
    csum_offset: u16,
}

#[derive(Serialize)]
struct GsoRecord {
    r#type: u8,
    size: u16,
}

impl<'a> PacketRecord<'a> {
    /// The line for packet number `n` (1-based) captured in direction `dir`.
    pub fn new(n: u64, dir: &'a str, p: &'a Packet) -> Self {
        let (ip_version, dsfield, ip_payload_length) = match p.ip {
            OuterIp::V4 {
                tos,
                ihl,
                total_length,
                ..
            } => (4, tos, u32::from(total_length) - u32::from(ihl) * 4),
            OuterIp::V6 {
                traffic_class,
                payload_length,
                ..
            } => (6, traffic_class, u32::from(payload_length)),
        };
        let u = &p.udp;
        let g = &p.gue;
        PacketRecord {
            n,
            dir,
            frame_len: p.frame_len,
            ip_version,
            ip: OuterIpRecord {
                header: &p.ip,
                dscp: dsfield >> 2,
                ecn: dsfield & 3,
            },
            udp: UdpRecord {
                sport: u.sport,
                dport: u.dport,
                length: u.length,
                ip_payload_length,
                length_ok: u.length_ok,
                csum: u.csum,
                csum_zero: u.csum == 0,
                csum_valid: match u.csum_state {
                    CsumState::Valid => Some(true),
                    CsumState::Bad => Some(false),
                    CsumState::Zero | CsumState::Gso => None,
                },
                csum_state: u.csum_state.name(),
                completed_pending_csum_at: u.completed_pending_at,
            },
            gue: GueRecord {
                version: g.version,
                control: g.control,
                hlen: g.hlen,
                proto_ctype: g.proto_ctype,
                flags: g.flags,
                r#priv: g.priv_flags.is_some(),
                priv_flags: g.priv_flags,
                remcsum: g.remcsum.as_ref().map(|r| RemcsumRecord {
                    csum_start: r.start,
                    csum_start_plus_offset: r.end,
                    csum_offset: r.offset(),
                }),
                header_len: g.header_len,
            },
            inner: match &p.inner {
                InnerKind::Ip(i) => InnerRecord::Ip {
                    version: i.version,
                    protocol: i.protocol,
                    src: i.src,
                    dst: i.dst,
                    total_length: i.total_length,
                    length_ok: i.length_ok,
                    ttl: i.ttl,
                    sport: i.ports.map(|p| p.0),
                    dport: i.ports.map(|p| p.1),
                    dsfield: i.dsfield,
                    dscp: i.dsfield >> 2,
                    ecn: i.dsfield & 3,
                    options: crate::proto::hex(&i.options),
                    ext_headers: i.ext_headers.clone(),
                    upper_protocol: i.upper_protocol,
                },
                InnerKind::Control => InnerRecord::Control,
                InnerKind::Unknown => InnerRecord::Unknown,
            },
            offload: OffloadRecord {
                pending_csum: p.meta.pending_csum.map(|(csum_start, csum_offset)| {
                    PendingCsumRecord {
                        csum_start,
                        csum_offset,
                    }
                }),
                gso: p.meta.gso.map(|(r#type, size)| GsoRecord { r#type, size }),
            },
            layout: p.layout(),
        }
    }
}

/// The output line for a UDP packet to the port that did not decode.
#[derive(Serialize)]
pub struct MalformedRecord<'a> {
    n: u64,
    dir: &'a str,
    frame_len: usize,
    error: &'a str,
    layout: String,
}

impl<'a> MalformedRecord<'a> {
    pub fn new(n: u64, dir: &'a str, frame_len: usize, error: &'a str) -> Self {
        MalformedRecord {
            n,
            dir,
            frame_len,
            error,
            layout: format!("malformed: {error}"),
        }
    }
}

/// `--pcap`: the frames of the output lines, in the same order, for tcpdump and Wireshark.
/// The AF_PACKET socket is SOCK_RAW, so frames start at the link-layer header; capture reads
/// Ethernet (as `decode` does), hence LINKTYPE_ETHERNET.
struct PcapFile<W: Write> {
    name: String,
    writer: PcapWriter<W>,
}

impl PcapFile<BufWriter<File>> {
    fn create(path: &Path) -> Result<Self, String> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|e| format!("cannot create {name}: {e}"))?;
        PcapFile::new(name, BufWriter::new(file))
    }
}

impl<W: Write> PcapFile<W> {
    fn new(name: String, out: W) -> Result<Self, String> {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: BUF_LEN as u32,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        match PcapWriter::with_header(out, header) {
            Ok(writer) => Ok(PcapFile { name, writer }),
            Err(e) => Err(format!("cannot write pcap to {name}: {e}")),
        }
    }

    /// Appends `frame`, the first bytes of a frame of `wire_len` bytes, stamped now.
    fn write(&mut self, frame: &[u8], wire_len: usize) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let orig_len = u32::try_from(wire_len).unwrap_or(u32::MAX);
        self.writer
            .write_packet(&PcapPacket::new(now, orig_len, frame))
            .map(drop)
            .map_err(|e| format!("cannot write pcap to {}: {e}", self.name))
    }

    fn finish(self) -> Result<W, String> {
        let mut out = self.writer.into_writer();
        match out.flush() {
            Ok(()) => Ok(out),
            Err(e) => Err(format!("cannot write pcap to {}: {e}", self.name)),
        }
    }
}

/// Runs the capture; returns the exit status (0: >= 1 packet captured, 1 otherwise).
pub fn capture(o: &CaptureOpts) -> i32 {
    let mut out = match o.json.create() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("gue-traffic capture: cannot create {}: {e}", o.json.name());
            return 1;
        }
    };
    let mut pcap = match o.pcap.as_deref().map(PcapFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gue-traffic capture: {e}");
            return 1;
        }
    };
    let cap = match open(&o.iface) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gue-traffic capture: {e}");
            return 1;
        }
    };
    if !cap.vnet {
        eprintln!(
            "gue-traffic capture: warning: PACKET_VNET_HDR unavailable; checksums left to the NIC will show as bad"
        );
    }
    let _ = cap.stats(); // reset counters
    let start = Instant::now();
    let deadline = start + o.timeout;
    eprintln!(
        "gue-traffic capture: capturing on {} (UDP dport {}, up to {} packets, {} ms)",
        o.iface,
        o.port,
        o.count,
        o.timeout.as_millis()
    );
    let mut buf = vec![0u8; BUF_LEN];
    let mut matched = 0u64;
    let (mut seen, mut malformed, mut unrepresentable, mut truncated_frames) =
        (0u64, 0u64, 0u64, 0u64);
    let mut layouts: BTreeMap<String, u64> = BTreeMap::new();
    let mut write_failed = None;
    let json_failed = |e: io::Error| format!("cannot write JSON to {}: {e}", o.json.name());
    while matched < o.count && Instant::now() < deadline {
        let (len, wire_len, outgoing) = match cap.recv(&mut buf) {
            Ok(Recv::Frame {
                len,
                wire_len,
                outgoing,
            }) => (len, wire_len, outgoing),
            Ok(Recv::Timeout) => continue,
            Ok(Recv::Unrepresentable) => {
                unrepresentable += 1;
                continue;
            }
            Err(e) => {
                eprintln!("gue-traffic capture: recv on {}: {e}", o.iface);
                return 1;
            }
        };
        seen += 1;
        match (o.direction, outgoing) {
            (Direction::Out, false) | (Direction::In, true) => continue,
            _ => {}
        }
        let dir = if outgoing { "out" } else { "in" };
        let (meta, frame) = if cap.vnet {
            match split_vnet(&buf[..len]) {
                Some(x) => x,
                None => continue,
            }
        } else {
            (Meta::default(), &buf[..len])
        };
        let truncated = wire_len > len;
        if truncated {
            truncated_frames += 1;
        }
        let written = match decode(frame, o.port, meta) {
            Ok(None) => continue,
            Ok(Some(p)) => {
                matched += 1;
                let record = PacketRecord::new(matched, dir, &p);
                *layouts.entry(record.layout.clone()).or_default() += 1;
                write_line(&mut *out, &record)
            }
            Err(e) if e.port_matched => {
                matched += 1;
                let msg = if truncated {
                    format!("{} (frame larger than {BUF_LEN} byte buffer)", e.msg)
                } else {
                    e.msg
                };
                let record = MalformedRecord::new(matched, dir, frame.len(), &msg);
                *layouts.entry(record.layout.clone()).or_default() += 1;
                write_line(&mut *out, &record)
            }
            Err(_) => {
                malformed += 1;
                continue;
            }
        };
        // The bytes before `frame` (the virtio_net_hdr) are no part of the frame on the wire.
        let frame_wire_len = wire_len - (len - frame.len());
        let written = written.map_err(json_failed).and_then(|()| match &mut pcap {
            Some(p) => p.write(frame, frame_wire_len),
            None => Ok(()),
        });
        if let Err(e) = written {
            write_failed = Some(e);
            break;
        }
    }
    let elapsed = start.elapsed();
    if let Err(e) = out.flush() {
        write_failed.get_or_insert(json_failed(e));
    }
    if let Some(Err(e)) = pcap.map(PcapFile::finish) {
        write_failed.get_or_insert(e);
    }
    let drops = cap.stats().map(|(_, d)| d).unwrap_or(0);
    if o.summary {
        let mut v: Vec<(&String, &u64)> = layouts.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (l, c) in v {
            eprintln!("layout x{c}: {l}");
        }
    }
    let mut notes = String::new();
    if malformed > 0 {
        let _ = write!(notes, ", {malformed} undecodable other frames");
    }
    if unrepresentable > 0 {
        let _ = write!(
            notes,
            ", {unrepresentable} GSO frames the kernel could not describe (lost)"
        );
    }
    if truncated_frames > 0 {
        let _ = write!(notes, ", {truncated_frames} frames larger than the buffer");
    }
    if drops > 0 {
        let _ = write!(
            notes,
            ", {drops} dropped by the kernel (socket buffer full)"
        );
    }
    if let Some(e) = write_failed {
        eprintln!("gue-traffic capture: {e}");
        return 1;
    }
    let ms = elapsed.as_millis();
    if matched == 0 {
        eprintln!(
            "gue-traffic capture: no UDP packets to port {} seen on {} within {} ms ({seen} frames seen{notes})",
            o.port,
            o.iface,
            o.timeout.as_millis()
        );
        return 1;
    }
    if matched < o.count {
        eprintln!(
            "gue-traffic capture: timeout after {ms} ms: captured {matched} of {} packets on {} ({seen} frames seen{notes})",
            o.count, o.iface
        );
    } else {
        eprintln!(
            "gue-traffic capture: captured {matched} packets on {} in {ms} ms ({seen} frames seen{notes})",
            o.iface
        );
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::{frame_v4, frame_v6, gue_hdr, inner_v4_tcp, PORT};
    use crate::report::{assert_keys, json_line};

    #[test]
    fn vnet_header() {
        let mut b = vec![1u8, 0];
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&34u16.to_ne_bytes());
        b.extend_from_slice(&6u16.to_ne_bytes());
        b.push(0xee);
        let (m, rest) = split_vnet(&b).unwrap();
        assert_eq!(m.pending_csum, Some((34, 6)));
        assert_eq!(m.gso, None);
        assert_eq!(rest, &[0xee]);
        b[0] = 0;
        b[1] = 1;
        b[4..6].copy_from_slice(&1448u16.to_ne_bytes());
        let (m, _) = split_vnet(&b).unwrap();
        assert_eq!(m.pending_csum, None);
        assert_eq!(m.gso, Some((1, 1448)));
        assert!(split_vnet(&b[..9]).is_none());
    }

    #[test]
    fn packet_line_ipv4() {
        let mut pl = gue_hdr(4, Some((20, 36)));
        pl.extend(inner_v4_tcp(10));
        let f = frame_v4(&pl, true);
        let meta = Meta {
            pending_csum: Some((34, 6)),
            gso: Some((1, 1448)),
        };
        let p = decode(&f, PORT, meta).unwrap().unwrap();
        let v = json_line(&PacketRecord::new(3, "out", &p));
        assert_keys(
            &v,
            &[
                "dir",
                "frame_len",
                "gue",
                "inner",
                "ip",
                "ip_version",
                "layout",
                "n",
                "offload",
                "udp",
            ],
        );
        assert_keys(
            &v["ip"],
            &[
                "tos",
                "dscp",
                "ecn",
                "df",
                "mf",
                "frag_offset",
                "ttl",
                "protocol",
                "id",
                "ihl",
                "total_length",
                "hdr_csum",
                "hdr_csum_valid",
                "src",
                "dst",
            ],
        );
        assert_keys(
            &v["udp"],
            &[
                "sport",
                "dport",
                "length",
                "ip_payload_length",
                "length_ok",
                "csum",
                "csum_zero",
                "csum_valid",
                "csum_state",
                "completed_pending_csum_at",
            ],
        );
        assert_keys(
            &v["gue"],
            &[
                "version",
                "control",
                "hlen",
                "proto_ctype",
                "flags",
                "priv",
                "priv_flags",
                "remcsum",
                "header_len",
            ],
        );
        assert_keys(
            &v["inner"],
            &[
                "kind",
                "version",
                "protocol",
                "src",
                "dst",
                "total_length",
                "length_ok",
                "ttl",
                "sport",
                "dport",
                "dsfield",
                "dscp",
                "ecn",
                "options",
                "ext_headers",
                "upper_protocol",
            ],
        );
        assert_eq!(v["n"], 3);
        assert_eq!(v["dir"], "out");
        assert_eq!(v["frame_len"], f.len());
        assert_eq!(v["ip_version"], 4);
        assert_eq!(v["ip"]["df"], true);
        assert_eq!(v["ip"]["tos"], 0);
        assert_eq!(v["ip"]["src"], "192.168.1.1");
        assert_eq!(v["udp"]["ip_payload_length"], f.len() - 14 - 20);
        assert_eq!(v["udp"]["csum_zero"], false);
        assert_eq!(v["udp"]["length_ok"], true);
        assert_eq!(v["udp"]["csum_state"], p.udp.csum_state.name());
        assert_eq!(v["gue"]["priv"], true);
        assert_eq!(v["gue"]["priv_flags"], 0x8000_0000u32);
        assert_eq!(v["gue"]["remcsum"]["csum_start"], 20);
        assert_eq!(v["gue"]["remcsum"]["csum_start_plus_offset"], 36);
        assert_eq!(v["gue"]["remcsum"]["csum_offset"], 16);
        assert_eq!(v["inner"]["kind"], "ip");
        assert_eq!(v["inner"]["src"], "10.0.0.1");
        assert_eq!(v["inner"]["sport"], 40000);
        assert_eq!(v["inner"]["dport"], 8080);
        assert_eq!(v["inner"]["dsfield"], 0);
        assert_eq!(v["inner"]["options"], "");
        assert_eq!(v["inner"]["ext_headers"], serde_json::json!([]));
        assert_eq!(v["inner"]["upper_protocol"], 6);
        assert_eq!(
            v["offload"],
            serde_json::json!({"pending_csum": {"csum_start": 34, "csum_offset": 6},
                               "gso": {"type": 1, "size": 1448}})
        );
        assert_eq!(v["layout"], p.layout());
    }

    #[test]
    fn packet_line_ipv6_and_control() {
        let mut pl = gue_hdr(4, None);
        pl.extend(inner_v4_tcp(10));
        let p = decode(&frame_v6(&pl), PORT, Meta::default())
            .unwrap()
            .unwrap();
        let v = json_line(&PacketRecord::new(1, "in", &p));
        assert_eq!(v["ip_version"], 6);
        assert_keys(
            &v["ip"],
            &[
                "traffic_class",
                "dscp",
                "ecn",
                "flow_label",
                "hop_limit",
                "next_header",
                "payload_length",
                "src",
                "dst",
            ],
        );
        assert_eq!(
            (&v["ip"]["traffic_class"], &v["ip"]["dscp"], &v["ip"]["ecn"]),
            (&0x2e.into(), &11.into(), &2.into())
        );
        assert_eq!(v["ip"]["flow_label"], 0x12345);
        assert_eq!(v["ip"]["src"], "fd00::1");
        assert_eq!(v["udp"]["csum_valid"], true);
        assert_eq!(
            v["udp"]["completed_pending_csum_at"],
            serde_json::Value::Null
        );
        assert_eq!(v["gue"]["priv"], false);
        assert_eq!(v["gue"]["priv_flags"], serde_json::Value::Null);
        assert_eq!(v["gue"]["remcsum"], serde_json::Value::Null);
        assert_eq!(
            v["offload"],
            serde_json::json!({"pending_csum": null, "gso": null})
        );

        let p = decode(&frame_v4(&[0x20, 7, 0, 0], false), PORT, Meta::default())
            .unwrap()
            .unwrap();
        let v = json_line(&PacketRecord::new(2, "in", &p));
        assert_eq!(v["inner"], serde_json::json!({"kind": "control"}));
        assert_eq!(v["udp"]["csum_zero"], true);
        assert_eq!(v["udp"]["csum_valid"], serde_json::Value::Null);
    }

    #[test]
    fn malformed_line() {
        let v = json_line(&MalformedRecord::new(1, "in", 9, "x \"y\""));
        assert_eq!(
            v,
            serde_json::json!({"n": 1, "dir": "in", "frame_len": 9, "error": "x \"y\"",
                               "layout": "malformed: x \"y\""})
        );
    }

    #[test]
    fn pcap_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcap");
        let gue = |remcsum| {
            let mut pl = gue_hdr(4, remcsum);
            pl.extend(inner_v4_tcp(10));
            pl
        };
        let frames = [
            frame_v4(&gue(None), true),
            frame_v4(&gue(Some((20, 36))), true),
            frame_v6(&gue(None)),
        ];
        let mut pcap = PcapFile::create(&path).unwrap();
        for f in &frames {
            pcap.write(f, f.len()).unwrap();
        }
        // A frame cut to the buffer keeps its length on the wire.
        pcap.write(&frames[0][..40], 70_000).unwrap();
        pcap.finish().unwrap();

        let mut r = pcap_file::pcap::PcapReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        assert_eq!(r.header().snaplen, BUF_LEN as u32);
        let mut read = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            read.push((p.data.into_owned(), p.orig_len));
        }
        assert_eq!(read.len(), 4);
        for (f, (data, orig_len)) in frames.iter().zip(&read) {
            assert_eq!(data, f);
            assert_eq!(*orig_len as usize, f.len());
            assert!(decode(data, PORT, Meta::default()).unwrap().is_some());
        }
        assert_eq!(read[3], (frames[0][..40].to_vec(), 70_000));
    }
}
