//! `gue-traffic capture`: AF_PACKET capture of GUE packets on one interface,
//! decoded to one JSON object per packet (see decode.rs).

use crate::decode::{decode, CsumState, InnerKind, Meta, OuterIp, Packet};
use crate::run::json_str;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

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
    /// None or Some("-"): stdout.
    pub json: Option<String>,
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
        len: usize,
        truncated: bool,
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
                    truncated: n > buf.len(),
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

fn opt_num<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

/// One JSON object (no trailing newline) for a decoded packet.
pub fn packet_json(n: u64, dir: &str, p: &Packet) -> String {
    let mut s = String::with_capacity(1024);
    let _ = write!(
        s,
        "{{\"n\":{n},\"dir\":{},\"frame_len\":{},",
        json_str(dir),
        p.frame_len
    );
    let ip_payload_len = match &p.ip {
        OuterIp::V4 {
            tos,
            df,
            mf,
            frag_offset,
            ttl,
            protocol,
            id,
            ihl,
            total_length,
            hdr_csum,
            hdr_csum_valid,
            src,
            dst,
        } => {
            let _ = write!(
                s,
                concat!(
                    "\"ip_version\":4,\"ip\":{{\"tos\":{},\"dscp\":{},\"ecn\":{},\"df\":{},\"mf\":{},",
                    "\"frag_offset\":{},\"ttl\":{},\"protocol\":{},\"id\":{},\"ihl\":{},\"total_length\":{},",
                    "\"hdr_csum\":{},\"hdr_csum_valid\":{},\"src\":\"{}\",\"dst\":\"{}\"}},"
                ),
                tos,
                tos >> 2,
                tos & 3,
                df,
                mf,
                frag_offset,
                ttl,
                protocol,
                id,
                ihl,
                total_length,
                hdr_csum,
                hdr_csum_valid,
                src,
                dst
            );
            u32::from(*total_length) - u32::from(*ihl) * 4
        }
        OuterIp::V6 {
            traffic_class,
            flow_label,
            hop_limit,
            next_header,
            payload_length,
            src,
            dst,
        } => {
            let _ = write!(
                s,
                concat!(
                    "\"ip_version\":6,\"ip\":{{\"traffic_class\":{},\"dscp\":{},\"ecn\":{},\"flow_label\":{},",
                    "\"hop_limit\":{},\"next_header\":{},\"payload_length\":{},\"src\":\"{}\",\"dst\":\"{}\"}},"
                ),
                traffic_class,
                traffic_class >> 2,
                traffic_class & 3,
                flow_label,
                hop_limit,
                next_header,
                payload_length,
                src,
                dst
            );
            u32::from(*payload_length)
        }
    };
    let u = &p.udp;
    let csum_valid = match u.csum_state {
        CsumState::Valid => "true",
        CsumState::Bad => "false",
        CsumState::Zero | CsumState::Gso => "null",
    };
    let _ = write!(
        s,
        concat!(
            "\"udp\":{{\"sport\":{},\"dport\":{},\"length\":{},\"ip_payload_length\":{},\"length_ok\":{},",
            "\"csum\":{},\"csum_zero\":{},\"csum_valid\":{},\"csum_state\":\"{}\",\"completed_pending_csum_at\":{}}},"
        ),
        u.sport,
        u.dport,
        u.length,
        ip_payload_len,
        u.length_ok,
        u.csum,
        u.csum == 0,
        csum_valid,
        u.csum_state.name(),
        opt_num(u.completed_pending_at)
    );
    let g = &p.gue;
    let remcsum = match &g.remcsum {
        Some(r) => format!(
            "{{\"csum_start\":{},\"csum_start_plus_offset\":{},\"csum_offset\":{}}}",
            r.start,
            r.end,
            r.offset()
        ),
        None => "null".into(),
    };
    let _ = write!(
        s,
        concat!(
            "\"gue\":{{\"version\":{},\"control\":{},\"hlen\":{},\"proto_ctype\":{},\"flags\":{},",
            "\"priv\":{},\"priv_flags\":{},\"remcsum\":{},\"header_len\":{}}},"
        ),
        g.version,
        g.control,
        g.hlen,
        g.proto_ctype,
        g.flags,
        g.priv_flags.is_some(),
        opt_num(g.priv_flags),
        remcsum,
        g.header_len
    );
    match &p.inner {
        InnerKind::Ip(i) => {
            let _ = write!(
                s,
                concat!(
                    "\"inner\":{{\"kind\":\"ip\",\"version\":{},\"protocol\":{},\"src\":\"{}\",\"dst\":\"{}\",",
                    "\"total_length\":{},\"length_ok\":{},\"ttl\":{},\"sport\":{},\"dport\":{},",
                    "\"dsfield\":{},\"dscp\":{},\"ecn\":{},\"options\":\"{}\",\"ext_headers\":{:?},\"upper_protocol\":{}}},"
                ),
                i.version,
                i.protocol,
                i.src,
                i.dst,
                i.total_length,
                i.length_ok,
                i.ttl,
                opt_num(i.ports.map(|p| p.0)),
                opt_num(i.ports.map(|p| p.1)),
                i.dsfield,
                i.dsfield >> 2,
                i.dsfield & 3,
                crate::proto::hex(&i.options),
                i.ext_headers,
                i.upper_protocol
            );
        }
        InnerKind::Control => s.push_str("\"inner\":{\"kind\":\"control\"},"),
        InnerKind::Unknown => s.push_str("\"inner\":{\"kind\":\"unknown\"},"),
    }
    let pending = match p.meta.pending_csum {
        Some((st, off)) => format!("{{\"csum_start\":{st},\"csum_offset\":{off}}}"),
        None => "null".into(),
    };
    let gso = match p.meta.gso {
        Some((t, sz)) => format!("{{\"type\":{t},\"size\":{sz}}}"),
        None => "null".into(),
    };
    let _ = write!(
        s,
        "\"offload\":{{\"pending_csum\":{pending},\"gso\":{gso}}},\"layout\":{}}}",
        json_str(&p.layout())
    );
    s
}

fn error_json(n: u64, dir: &str, frame_len: usize, msg: &str) -> String {
    format!(
        "{{\"n\":{n},\"dir\":{},\"frame_len\":{frame_len},\"error\":{},\"layout\":{}}}",
        json_str(dir),
        json_str(msg),
        json_str(&format!("malformed: {msg}"))
    )
}

/// Runs the capture; returns the exit status (0: >= 1 packet captured, 1 otherwise).
pub fn capture(o: &CaptureOpts) -> i32 {
    let mut out: Box<dyn Write> = match o.json.as_deref() {
        None | Some("-") => Box::new(io::stdout()),
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("gue-traffic capture: cannot create {path}: {e}");
                return 1;
            }
        },
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
    while matched < o.count && Instant::now() < deadline {
        let (len, truncated, outgoing) = match cap.recv(&mut buf) {
            Ok(Recv::Frame {
                len,
                truncated,
                outgoing,
            }) => (len, truncated, outgoing),
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
        if truncated {
            truncated_frames += 1;
        }
        let line = match decode(frame, o.port, meta) {
            Ok(None) => continue,
            Ok(Some(p)) => {
                matched += 1;
                *layouts.entry(p.layout()).or_default() += 1;
                packet_json(matched, dir, &p)
            }
            Err(e) if e.port_matched => {
                matched += 1;
                let msg = if truncated {
                    format!("{} (frame larger than {BUF_LEN} byte buffer)", e.msg)
                } else {
                    e.msg
                };
                *layouts.entry(format!("malformed: {msg}")).or_default() += 1;
                error_json(matched, dir, frame.len(), &msg)
            }
            Err(_) => {
                malformed += 1;
                continue;
            }
        };
        if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
            write_failed = Some(e);
            break;
        }
    }
    let elapsed = start.elapsed();
    if let Err(e) = out.flush() {
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
        eprintln!(
            "gue-traffic capture: cannot write JSON to {}: {e}",
            o.json.as_deref().unwrap_or("stdout")
        );
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
    use crate::decode::tests::{frame_v4, gue_hdr, inner_v4_tcp, PORT};

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
    fn json_is_one_line_with_layout() {
        let mut pl = gue_hdr(4, Some((20, 36)));
        pl.extend(inner_v4_tcp(10));
        let f = frame_v4(&pl, true);
        let p = decode(&f, PORT, Meta::default()).unwrap().unwrap();
        let j = packet_json(3, "out", &p);
        assert!(!j.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["n"], 3);
        assert_eq!(v["dir"], "out");
        assert_eq!(v["ip"]["df"], true);
        assert_eq!(v["udp"]["csum_valid"], true);
        assert_eq!(v["udp"]["length_ok"], true);
        assert_eq!(v["gue"]["remcsum"]["csum_start"], 20);
        assert_eq!(v["gue"]["remcsum"]["csum_offset"], 16);
        assert_eq!(v["inner"]["dport"], 8080);
        assert_eq!(v["inner"]["dsfield"], 0);
        assert_eq!(v["inner"]["options"], "");
        assert_eq!(v["inner"]["ext_headers"], serde_json::json!([]));
        assert_eq!(v["inner"]["upper_protocol"], 6);
        assert_eq!(v["layout"], p.layout());
        let e: serde_json::Value =
            serde_json::from_str(&error_json(1, "in", 9, "x \"y\"")).unwrap();
        assert_eq!(e["layout"], "malformed: x \"y\"");
    }
}
