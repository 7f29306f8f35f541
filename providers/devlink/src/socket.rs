//! Talking to the kernel's devlink over generic netlink: resolving the
//! family (once, at start-up), then a [`Channel`] of two non-blocking
//! sockets: one for requests and their answers, one joined to the
//! `config` multicast group for notifications, so that queued events never
//! mix into a dump.

use crate::channel::{Channel, Incoming, Request};
use crate::message::consts::*;
use crate::wire::{self, Source};
use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use std::fmt::Debug;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

const ENOENT: i32 = 2;
const ENOBUFS: i32 = 105;

/// Why devlink cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// This kernel has no devlink family (no devlink-capable driver).
    Unavailable(String),
    /// Anything else (permissions, socket errors).
    Failed(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Unavailable(s) | OpenError::Failed(s) => f.write_str(s),
        }
    }
}

/// How much the event socket may queue, in bytes. A NIC creating
/// thousands of VFs at once sends one notification of ~300 bytes each;
/// with the kernel's default (~200 KiB) they overflow a busy agent.
pub const EVENT_RECEIVE_BUFFER: usize = 8 << 20;

/// The kernel's devlink, through generic netlink sockets bound to the
/// devlink family (see the module documentation).
pub struct DevlinkSocket {
    sock: Socket,
    events: Option<Socket>,
    family_id: u16,
    config_group: Option<u32>,
    seq: u32,
}

fn failed(what: &str, e: io::Error) -> OpenError {
    OpenError::Failed(format!("devlink: {what}: {e}"))
}

/// Sends one generic netlink request.
fn send<F>(sock: &Socket, seq: u32, flags: u16, family_id: u16, payload: F) -> io::Result<()>
where
    F: GenlFamily + Debug + netlink_packet_core::Emitable,
    GenlMessage<F>: NetlinkSerializable,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family_id);
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    msg.finalize();
    let mut buf = vec![0; msg.header.length as usize];
    msg.serialize(&mut buf);
    sock.send(&buf, 0).map(|_| ())
}

/// Splits one datagram into messages; the second list says what did not
/// decode.
fn split<I>(buf: &[u8]) -> (Vec<NetlinkMessage<I>>, Vec<String>)
where
    I: NetlinkDeserializable + Debug,
{
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let len = match NetlinkBuffer::new_checked(&buf[offset..]) {
            Ok(b) => b.length() as usize,
            Err(e) => {
                bad.push(format!("bad netlink frame: {e}"));
                break;
            }
        };
        match NetlinkMessage::<I>::deserialize(&buf[offset..offset + len]) {
            Ok(msg) => out.push(msg),
            Err(e) => bad.push(format!("undecodable message: {e}")),
        }
        offset += (len + 3) & !3;
    }
    (out, bad)
}

/// Raises `sock`'s receive buffer to `bytes`: beyond `net.core.rmem_max`
/// when permitted (`SO_RCVBUFFORCE`, CAP_NET_ADMIN), else as far as that
/// limit allows. Returns the size the kernel reports.
pub fn raise_receive_buffer(sock: &Socket, bytes: usize) -> usize {
    let fd = sock.as_fd();
    if setsockopt(&fd, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &bytes);
    }
    nix::sys::socket::getsockopt(&fd, sockopt::RcvBuf).unwrap_or(0)
}

impl DevlinkSocket {
    /// Opens a socket and resolves the devlink family and its `config`
    /// multicast group.
    pub fn open() -> Result<DevlinkSocket, OpenError> {
        let mut sock = Socket::new(NETLINK_GENERIC).map_err(|e| failed("socket", e))?;
        sock.bind_auto().map_err(|e| failed("bind", e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| failed("connect", e))?;
        let request = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY_NAME.to_owned())],
        };
        send(&sock, 1, NLM_F_REQUEST | NLM_F_ACK, 0, request)
            .map_err(|e| failed("asking for the devlink family", e))?;
        let (mut family_id, mut config_group) = (None, None);
        loop {
            let (buf, _) = sock
                .recv_from_full()
                .map_err(|e| failed("reading the devlink family", e))?;
            let (messages, bad) = split::<GenlMessage<GenlCtrl>>(&buf);
            if let Some(e) = bad.first() {
                return Err(OpenError::Failed(format!("devlink family: {e}")));
            }
            for msg in messages {
                match msg.payload {
                    NetlinkPayload::InnerMessage(g) => {
                        for nla in g.payload.nlas {
                            match nla {
                                GenlCtrlAttrs::FamilyId(id) => family_id = Some(id),
                                GenlCtrlAttrs::McastGroups(groups) => {
                                    for g in groups {
                                        let name = g.iter().find_map(|a| match a {
                                            McastGrpAttrs::Name(n) => Some(n.as_str()),
                                            _ => None,
                                        });
                                        let id = g.iter().find_map(|a| match a {
                                            McastGrpAttrs::Id(i) => Some(*i),
                                            _ => None,
                                        });
                                        if name == Some(MCGRP_CONFIG) {
                                            config_group = id;
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    NetlinkPayload::Error(e) => match e.code {
                        None => {
                            let family_id = family_id.ok_or_else(|| {
                                OpenError::Failed("devlink: the kernel answered without a family id".into())
                            })?;
                            return Ok(DevlinkSocket {
                                sock,
                                events: None,
                                family_id,
                                config_group,
                                seq: 1,
                            });
                        }
                        Some(code) if -code.get() == ENOENT => {
                            return Err(OpenError::Unavailable(
                                "devlink is unavailable on this machine: the kernel has no \"devlink\" generic netlink family (no devlink-capable NIC driver is loaded)".into(),
                            ))
                        }
                        Some(code) => {
                            return Err(failed(
                                "resolving the devlink family",
                                io::Error::from_raw_os_error(-code.get()),
                            ))
                        }
                    },
                    _ => {}
                }
            }
        }
    }

    /// Opens the event socket: a second socket, non-blocking, with a large
    /// receive buffer ([`EVENT_RECEIVE_BUFFER`]), joined to the `config`
    /// multicast group. The request socket becomes non-blocking too.
    pub fn subscribe(&mut self) -> Result<(), String> {
        let group = self
            .config_group
            .ok_or("devlink: the family has no \"config\" multicast group")?;
        let err = |what: &str, e: io::Error| format!("devlink: {what}: {e}");
        let mut events = Socket::new(NETLINK_GENERIC).map_err(|e| err("event socket", e))?;
        events.bind_auto().map_err(|e| err("event socket", e))?;
        let size = raise_receive_buffer(&events, EVENT_RECEIVE_BUFFER);
        log::debug!("devlink: event socket receive buffer {size} bytes");
        events
            .add_membership(group)
            .map_err(|e| err("joining the config group", e))?;
        events
            .set_non_blocking(true)
            .map_err(|e| err("event socket", e))?;
        self.sock
            .set_non_blocking(true)
            .map_err(|e| err("request socket", e))?;
        self.events = Some(events);
        Ok(())
    }
}

/// Reads every datagram queued on `sock` into `out`, decoded per `source`.
/// Returns false if the socket overflowed (`ENOBUFS`).
fn read_all(sock: &Socket, source: Source, out: &mut Vec<Incoming>) -> Result<bool, String> {
    loop {
        match sock.recv_from_full() {
            Ok((buf, _)) => out.extend(wire::decode(&buf, source)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => return Ok(false),
            Err(e) => return Err(format!("devlink: reading: {e}")),
        }
    }
}

impl Channel for DevlinkSocket {
    fn send(&mut self, req: &Request) -> Result<u32, String> {
        self.seq = self.seq.wrapping_add(1).max(2);
        let bytes = wire::request(req, self.family_id, self.seq);
        self.sock
            .send(&bytes, 0)
            .map_err(|e| format!("devlink: sending {req:?}: {e}"))?;
        Ok(self.seq)
    }

    fn receive(&mut self) -> Result<Vec<Incoming>, String> {
        let mut out = Vec::new();
        // Requests first: a dump's end is then seen before the events that
        // followed it, which is only an order of processing (events during
        // a dump are held until it ends either way).
        if !read_all(&self.sock, Source::Requests, &mut out)? {
            // Answers are flow-controlled; an overflow here is a kernel
            // oddity. Requests in flight time out and are retried.
            log::warn!("devlink: the request socket overflowed");
        }
        if let Some(events) = &self.events {
            if !read_all(events, Source::Events, &mut out)? {
                out.push(Incoming::EventsLost);
            }
        }
        Ok(out)
    }

    fn discard_events(&mut self) -> usize {
        let Some(events) = &self.events else { return 0 };
        let mut n = 0;
        loop {
            match events.recv_from_full() {
                Ok(_) => n += 1,
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => n += 1,
                Err(_) => return n,
            }
        }
    }

    fn wait(&mut self, timeout: Duration) {
        let mut fds = vec![PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        if let Some(events) = &self.events {
            fds.push(PollFd::new(events.as_fd(), PollFlags::POLLIN));
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
    }
}
