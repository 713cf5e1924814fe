//! `gue-traffic serve`: verifying sink. Thread per connection.

use crate::proto::{hex, CHUNK};
use sha2::{Digest, Sha256};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

pub struct ServeOpts {
    pub listen: SocketAddr,
    /// Drop a connection when no data arrives for this long (None: never).
    pub idle_timeout: Option<Duration>,
    pub verbose: bool,
}

/// Runs forever unless binding fails (returns exit status 1).
pub fn serve(o: &ServeOpts) -> i32 {
    // std sets SO_REUSEADDR on Unix before bind().
    let listener = match TcpListener::bind(o.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gue-traffic serve: cannot listen on {}: {e}", o.listen);
            return 1;
        }
    };
    let local = listener.local_addr().unwrap_or(o.listen);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening on {local}");
        let _ = out.flush();
    }
    for conn in listener.incoming() {
        match conn {
            Ok(s) => {
                let idle = o.idle_timeout;
                let verbose = o.verbose;
                let spawned = std::thread::Builder::new()
                    .name("conn".into())
                    .spawn(move || handle(s, idle, verbose));
                if let Err(e) = spawned {
                    eprintln!("gue-traffic serve: cannot spawn connection thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("gue-traffic serve: accept: {e}");
                // Avoid a busy loop on e.g. EMFILE.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    0
}

fn handle(mut s: TcpStream, idle: Option<Duration>, verbose: bool) {
    let peer = s
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = s.set_nodelay(true);
    if let Err(e) = s.set_read_timeout(idle).and_then(|_| s.set_write_timeout(idle)) {
        eprintln!("gue-traffic serve: {peer}: set timeout: {e}");
    }
    if verbose {
        eprintln!("gue-traffic serve: {peer}: connected");
    }
    match serve_conn(&mut s) {
        Ok(n) => {
            if verbose {
                eprintln!("gue-traffic serve: {peer}: closed after {n} requests");
            }
        }
        Err(e) => eprintln!("gue-traffic serve: {peer}: {e}"),
    }
}

/// Serves requests until the client closes cleanly between requests; returns how many.
/// Generic over the stream so that `sctp-serve` speaks the same protocol over SCTP.
pub fn serve_conn<S: Read + Write>(s: &mut S) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut served = 0u64;
    loop {
        let mut hdr = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            match s.read(&mut hdr[got..]) {
                Ok(0) if got == 0 => return Ok(served),
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("request {served}: EOF inside length header"),
                    ))
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(annotate(e, served, "reading header")),
            }
        }
        let len = u64::from_be_bytes(hdr);
        let mut h = Sha256::new();
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            match s.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "request {served}: EOF after {} of {len} body bytes",
                            len - left
                        ),
                    ))
                }
                Ok(n) => {
                    h.update(&buf[..n]);
                    left -= n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(annotate(e, served, "reading body")),
            }
        }
        let line = format!("{len} {}\n", hex(&h.finalize()));
        s.write_all(line.as_bytes())
            .map_err(|e| annotate(e, served, "writing reply"))?;
        served += 1;
    }
}

fn annotate(e: io::Error, req: u64, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("request {req}: {what}: {e}"))
}
