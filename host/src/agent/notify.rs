//! The service manager's notification socket (`sd_notify(3)`): datagrams of
//! `KEY=VALUE` lines to the address in `NOTIFY_SOCKET`, a path or, with a
//! leading `@`, an abstract Linux address.
//!
//! Written here rather than with the `sd-notify` crate (0.4), which sends
//! with a blocking call (a manager that does not read, or a full queue,
//! would stall the agent's loop) and takes `@name` for a relative path.
//! Sends never block: a datagram the socket cannot take now is reported,
//! and the caller sends it again later.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A connection-less socket to the service manager.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `NOTIFY_SOCKET` as given, for messages.
    shown: String,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`: `None` when unset or empty (not run by a
    /// service manager that listens).
    ///
    /// Errors: the address is not one a Unix socket can have (too long,
    /// a NUL byte), or no socket can be made; the text says which.
    pub fn from_env() -> Option<Result<Notifier, String>> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        if value.is_empty() {
            return None;
        }
        Some(Notifier::new(&value))
    }

    /// For the address `value` (`/path` or `@abstract`).
    pub fn new(value: &std::ffi::OsStr) -> Result<Notifier, String> {
        use std::os::unix::ffi::OsStrExt;
        let shown = value.to_string_lossy().into_owned();
        let bytes = value.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            None => SocketAddr::from_pathname(value),
        }
        .map_err(|e| format!("NOTIFY_SOCKET={shown:?} is not a socket address: {e}"))?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("a socket for NOTIFY_SOCKET: {e}"))?;
        Ok(Notifier {
            socket,
            addr,
            shown,
        })
    }

    /// Sends `lines` (each `KEY=VALUE`) in one datagram, without waiting.
    ///
    /// Errors: the manager's socket does not take it now (`WouldBlock`: a
    /// full queue) or at all (no such socket, not a datagram socket, no
    /// permission).
    pub fn send(&self, lines: &[String]) -> io::Result<()> {
        let mut text = lines.join("\n");
        text.push('\n');
        let n = self.socket.send_to_addr(text.as_bytes(), &self.addr)?;
        if n != text.len() {
            return Err(io::Error::other("the datagram was cut"));
        }
        Ok(())
    }

    /// `NOTIFY_SOCKET` as given.
    pub fn address(&self) -> &str {
        &self.shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn paths_and_abstract_names_are_reached_and_a_full_queue_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.as_os_str()).unwrap();
        n.send(&["READY=1".into(), "STATUS=ok".into()]).unwrap();
        let mut buf = [0u8; 64];
        let got = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"READY=1\nSTATUS=ok\n");

        let name = format!("vif-plug-test-{}", std::process::id());
        let abs = {
            use std::os::linux::net::SocketAddrExt;
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap()
        };
        let n = Notifier::new(std::ffi::OsStr::new(&format!("@{name}"))).unwrap();
        n.send(&["STATUS=abstract".into()]).unwrap();
        let got = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"STATUS=abstract\n");

        // Nobody reads `manager`: sends fail with WouldBlock once its queue
        // is full, and never wait.
        let n = Notifier::new(path.as_os_str()).unwrap();
        let started = std::time::Instant::now();
        let mut full = None;
        for _ in 0..100_000 {
            if let Err(e) = n.send(&["STATUS=x".repeat(100)]) {
                full = Some(e);
                break;
            }
        }
        assert_eq!(full.unwrap().kind(), io::ErrorKind::WouldBlock);
        assert!(started.elapsed() < Duration::from_secs(5));

        // Nothing there: an error, not a wait.
        let n = Notifier::new(dir.path().join("nothing").as_os_str()).unwrap();
        assert!(n.send(&["READY=1".into()]).is_err());
        assert!(Notifier::new(std::ffi::OsStr::new(&"x".repeat(200))).is_err());
    }
}
