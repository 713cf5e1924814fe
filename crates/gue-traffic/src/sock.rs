//! Socket helpers std does not offer: calls on plain descriptors (socket, bind,
//! setsockopt, sendto) for the UDP and SCTP sockets of `dgram` and `sctp`, a
//! connect with a timeout from a chosen local address, and raw IP sockets.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `struct sockaddr_in`/`sockaddr_in6` for `addr`, as storage plus length.
pub fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The address family of `ip`.
pub fn domain(ip: &IpAddr) -> libc::c_int {
    match ip {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    }
}

/// The last system error, put in the context `what`.
pub fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A new socket (close-on-exec); the error is the system's as it is.
pub fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket() takes integers only and touches no memory of ours.
    let raw = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a descriptor socket() just returned (checked >= 0); nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Binds `fd` to `addr`; the error names the address.
pub fn bind(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(addr);
    // SAFETY: ss holds a valid sockaddr of length len.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(os_error(&format!("bind {addr}")))
    }
}

/// Sets the socket option `level`/`name` to the bytes `val`; `what` names it in the error.
pub fn setsockopt_bytes(
    fd: &OwnedFd,
    level: i32,
    name: i32,
    val: &[u8],
    what: &str,
) -> io::Result<()> {
    // SAFETY: val is valid for reads of its length.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val.as_ptr().cast(),
            val.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(os_error(what))
    }
}

/// Sets an `int` socket option.
pub fn setsockopt_int(fd: &OwnedFd, level: i32, name: i32, v: i32, what: &str) -> io::Result<()> {
    setsockopt_bytes(fd, level, name, &v.to_ne_bytes(), what)
}

fn set_nonblocking(fd: &OwnedFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFL) takes integers only; fd stays open while borrowed.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: fcntl(F_SETFL, int) takes integers only; fd stays open while borrowed.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `TcpStream::connect_timeout` from the local address `from` (port 0: any port).
pub fn tcp_connect_from(
    from: &SocketAddr,
    to: &SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    if from.is_ipv4() != to.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bind address {from} and target {to} are of different families"),
        ));
    }
    let fd = socket(domain(&to.ip()), libc::SOCK_STREAM, 0)?;
    bind(&fd, from)?;
    // std's connect_timeout's words, so that `run` reports a timeout alike with and without --bind.
    connect_within(fd, to, timeout)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "connection timed out"))
}

/// Connects the stream socket `fd` (of the family of `to`, bound or not) to `to`, waiting
/// at most `timeout`; Ok(None) if the timeout passed first. The errors are the system's as
/// they are, for the caller to put in context.
pub fn connect_within(
    fd: OwnedFd,
    to: &SocketAddr,
    timeout: Duration,
) -> io::Result<Option<TcpStream>> {
    // Non-blocking so that connect() returns at once and poll() can bound the wait.
    set_nonblocking(&fd, true)?;
    let (ss, len) = sockaddr(to);
    // SAFETY: ss holds a valid sockaddr of length len.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // A deadline, not a fixed poll timeout, so that an interrupted poll does not
        // start the wait over.
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: pfd is one valid pollfd, live for the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n > 0 {
                break;
            }
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
        // Writable means the attempt ended; SO_ERROR says whether it failed.
        let mut soerr: libc::c_int = 0;
        let mut slen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: soerr is valid for writes of slen bytes.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut soerr as *mut libc::c_int).cast(),
                &mut slen,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if soerr != 0 {
            return Err(io::Error::from_raw_os_error(soerr));
        }
    }
    set_nonblocking(&fd, false)?;
    Ok(Some(TcpStream::from(fd)))
}

/// Sends `buf` as one datagram to `to`; the error is the system's as it is.
pub fn send_to(fd: &OwnedFd, buf: &[u8], to: &SocketAddr) -> io::Result<usize> {
    let (ss, len) = sockaddr(to);
    // SAFETY: buf is valid for reads of its length; ss holds a valid sockaddr of length len.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A raw IP socket of one protocol: the kernel builds the IP header.
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens a raw socket for `protocol` in the family of `like` (needs CAP_NET_RAW).
    pub fn open(like: &IpAddr, protocol: u8) -> io::Result<RawSocket> {
        let fd =
            socket(domain(like), libc::SOCK_RAW, libc::c_int::from(protocol)).map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => " (needs CAP_NET_RAW: run as root)",
                    _ => "",
                };
                io::Error::new(
                    e.kind(),
                    format!("raw socket for IP protocol {protocol}: {e}{hint}"),
                )
            })?;
        Ok(RawSocket { fd })
    }

    /// Fixes the source address.
    pub fn bind(&self, addr: &IpAddr) -> io::Result<()> {
        bind(&self.fd, &SocketAddr::new(*addr, 0))
    }

    /// Sends one packet (the IP payload) to `to`.
    pub fn send_to(&self, buf: &[u8], to: &IpAddr) -> io::Result<usize> {
        // Raw sockets take port 0 (IPv6 would read a non-zero port as the protocol).
        send_to(&self.fd, buf, &SocketAddr::new(*to, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_layout() {
        let (ss, len) = sockaddr(&"10.1.2.3:500".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in>());
        // SAFETY: sockaddr() wrote a sockaddr_in.
        let sin = unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
        assert_eq!(sin.sin_family as libc::c_int, libc::AF_INET);
        assert_eq!(u16::from_be(sin.sin_port), 500);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [10, 1, 2, 3]);
        let (ss, len) = sockaddr(&"[fd10::10]:8080".parse().unwrap());
        assert_eq!(len as usize, std::mem::size_of::<libc::sockaddr_in6>());
        // SAFETY: sockaddr() wrote a sockaddr_in6.
        let sin6 = unsafe { &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
        assert_eq!(sin6.sin6_family as libc::c_int, libc::AF_INET6);
        assert_eq!(u16::from_be(sin6.sin6_port), 8080);
        assert_eq!(sin6.sin6_addr.s6_addr[0..2], [0xfd, 0x10]);
        assert_eq!(sin6.sin6_addr.s6_addr[15], 0x10);
    }

    #[test]
    fn connect_from_loopback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = l.local_addr().unwrap();
        let s =
            tcp_connect_from(&"127.0.0.1:0".parse().unwrap(), &to, Duration::from_secs(2)).unwrap();
        let (peer, _) = l.accept().unwrap();
        assert_eq!(peer.peer_addr().unwrap(), s.local_addr().unwrap());
        assert!(
            tcp_connect_from(&"[::1]:0".parse().unwrap(), &to, Duration::from_secs(1)).is_err()
        );
    }
}
