//! An OpenFlow switch stub on a Unix socket, for running `ovn-controller`
//! without `ovs-vswitchd`.
//!
//! `ovn-controller` does its work (binding and, with
//! `--enable-dummy-vif-plug`, plugging) only once the integration bridge's
//! management socket (`<OVS_RUNDIR>/br-int.mgmt`) speaks OpenFlow. A fleet
//! of simulated chassis needs that without an `ovs-vswitchd` each, so this
//! stub answers just enough (OpenFlow 1.0-1.5 framing, per the OpenFlow
//! switch specification 1.5.1 §7):
//!
//! - `HELLO` with the version the controller offered;
//! - `ECHO_REQUEST` with `ECHO_REPLY`, `BARRIER_REQUEST` with
//!   `BARRIER_REPLY`, `FEATURES_REQUEST` with a minimal `FEATURES_REPLY`;
//! - every other request that expects an answer (Nicira extensions such as
//!   the TLV table request, multipart and configuration requests) with an
//!   `ERROR` of type `BAD_REQUEST`, code `BAD_TYPE`, which `ovn-controller`
//!   treats as "not supported" and goes on;
//! - flow, group and meter modifications are accepted silently.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const HELLO: u8 = 0;
const ERROR: u8 = 1;
const ECHO_REQUEST: u8 = 2;
const ECHO_REPLY: u8 = 3;
const EXPERIMENTER: u8 = 4;
const FEATURES_REQUEST: u8 = 5;
const FEATURES_REPLY: u8 = 6;
const GET_CONFIG_REQUEST: u8 = 7;
/// `BARRIER_REQUEST`/`REPLY` and `MULTIPART_REQUEST` moved between 1.0 and
/// 1.1.
const OF10: u8 = 1;

/// A listening stub; stops accepting when dropped (connections already
/// open end when their peer closes them).
pub struct OpenFlowStub {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl OpenFlowStub {
    /// Listens on `path` (removed first if it exists).
    pub fn start(path: &Path) -> std::io::Result<OpenFlowStub> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::Builder::new()
            .name("openflow stub".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = std::thread::Builder::new()
                            .name("openflow stub conn".into())
                            .stack_size(64 * 1024)
                            .spawn(move || {
                                let _ = serve(conn);
                            });
                    }
                }
            })?;
        Ok(OpenFlowStub {
            path: path.to_owned(),
            stop,
        })
    }
}

impl Drop for OpenFlowStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the listener so it sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One message: its header fields and body.
struct Msg {
    version: u8,
    kind: u8,
    xid: [u8; 4],
    body: Vec<u8>,
}

fn read_msg(conn: &mut UnixStream) -> std::io::Result<Msg> {
    let mut header = [0u8; 8];
    conn.read_exact(&mut header)?;
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut body = vec![0u8; len.saturating_sub(8)];
    conn.read_exact(&mut body)?;
    Ok(Msg {
        version: header[0],
        kind: header[1],
        xid: [header[4], header[5], header[6], header[7]],
        body,
    })
}

fn frame(version: u8, kind: u8, xid: [u8; 4], body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + body.len()).unwrap_or(u16::MAX);
    let mut m = vec![version, kind];
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&xid);
    m.extend_from_slice(body);
    m
}

/// `ERROR` `BAD_REQUEST`/`BAD_TYPE` quoting the start of `msg`.
fn bad_type(msg: &Msg) -> Vec<u8> {
    let mut body = vec![0, 1, 0, 1];
    let mut quoted = frame(msg.version, msg.kind, msg.xid, &msg.body);
    quoted.truncate(64);
    body.extend_from_slice(&quoted);
    frame(msg.version, ERROR, msg.xid, &body)
}

fn serve(mut conn: UnixStream) -> std::io::Result<()> {
    let hello = read_msg(&mut conn)?;
    if hello.kind != HELLO {
        return Ok(());
    }
    let version = hello.version;
    conn.write_all(&frame(version, HELLO, [0; 4], &[]))?;
    let (barrier_request, barrier_reply, multipart_request) = if version == OF10 {
        (18, 19, 16)
    } else {
        (20, 21, 18)
    };
    loop {
        let msg = read_msg(&mut conn)?;
        let reply = match msg.kind {
            ECHO_REQUEST => Some(frame(version, ECHO_REPLY, msg.xid, &msg.body)),
            k if k == barrier_request => Some(frame(version, barrier_reply, msg.xid, &[])),
            FEATURES_REQUEST => {
                // datapath_id, n_buffers, n_tables, auxiliary_id, pad,
                // capabilities, reserved (1.3+ layout; 1.0 readers take
                // the same first fields).
                let mut body = vec![0u8; 24];
                body[7] = 1;
                body[12] = 254;
                Some(frame(version, FEATURES_REPLY, msg.xid, &body))
            }
            GET_CONFIG_REQUEST => Some(bad_type(&msg)),
            k if k == multipart_request => Some(bad_type(&msg)),
            EXPERIMENTER if expects_reply(&msg) => Some(bad_type(&msg)),
            _ => None,
        };
        if let Some(r) = reply {
            conn.write_all(&r)?;
        }
    }
}

/// Nicira extension requests that wait for an answer: the TLV table
/// request (subtype 25) and the other `*_REQUEST`s `ovn-controller` may
/// send. Everything else it sends through `EXPERIMENTER` is a setting.
fn expects_reply(msg: &Msg) -> bool {
    const NX_VENDOR: [u8; 4] = [0x00, 0x00, 0x23, 0x20];
    const NXT_TLV_TABLE_REQUEST: u32 = 25;
    if msg.body.len() < 8 || msg.body[..4] != NX_VENDOR {
        return false;
    }
    let subtype = u32::from_be_bytes([msg.body[4], msg.body[5], msg.body[6], msg.body[7]]);
    subtype == NXT_TLV_TABLE_REQUEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_hello_echo_barrier_and_refuses_requests_it_cannot_serve() {
        let dir = crate::private_dir();
        let path = dir.path().join("br-int.mgmt");
        let _stub = OpenFlowStub::start(&path).unwrap();
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(&frame(4, HELLO, [0, 0, 0, 1], &[])).unwrap();
        let h = read_msg(&mut c).unwrap();
        assert_eq!((h.version, h.kind), (4, HELLO));
        c.write_all(&frame(4, ECHO_REQUEST, [0, 0, 0, 2], b"ping"))
            .unwrap();
        let e = read_msg(&mut c).unwrap();
        assert_eq!(
            (e.kind, e.xid, e.body.as_slice()),
            (ECHO_REPLY, [0, 0, 0, 2], &b"ping"[..])
        );
        // A flow mod gets no answer; the barrier after it does.
        c.write_all(&frame(4, 14, [0, 0, 0, 3], &[0; 40])).unwrap();
        c.write_all(&frame(4, 20, [0, 0, 0, 4], &[])).unwrap();
        let b = read_msg(&mut c).unwrap();
        assert_eq!((b.kind, b.xid), (21, [0, 0, 0, 4]));
        let mut tlv = vec![0x00, 0x00, 0x23, 0x20];
        tlv.extend_from_slice(&25u32.to_be_bytes());
        c.write_all(&frame(4, EXPERIMENTER, [0, 0, 0, 5], &tlv))
            .unwrap();
        let r = read_msg(&mut c).unwrap();
        assert_eq!(
            (r.kind, r.xid, &r.body[..4]),
            (ERROR, [0, 0, 0, 5], &[0, 1, 0, 1][..])
        );
    }
}
