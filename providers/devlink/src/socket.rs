//! Talking to the kernel's devlink over generic netlink: resolving the
//! family, dumping the ports, and draining `config` multicast events
//! without blocking.

use crate::message::{consts::*, DevlinkMessage};
use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};
use std::fmt::Debug;
use std::io;

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

/// What draining the event socket gave.
#[derive(Debug)]
pub enum Drained {
    /// Port messages, possibly none.
    Messages(Vec<DevlinkMessage>),
    /// The socket overflowed (ENOBUFS): events were lost, dump again.
    Overflow,
}

/// Generic netlink sockets bound to the devlink family: a blocking one for
/// requests (family resolution, dumps), and a non-blocking one subscribed
/// to `config` events, so that queued events never mix into a dump.
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

/// Splits one datagram into messages. A message that does not decode is
/// reported in the second list and skipped; a broken frame ends the
/// datagram.
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
            Err(e) => bad.push(format!("undecodable devlink message: {e}")),
        }
        offset += (len + 3) & !3;
    }
    (out, bad)
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

    /// Dumps every devlink port on the request socket (blocking; done once
    /// at start-up and after events were lost). Only replies to this dump
    /// (its sequence number) are taken.
    pub fn dump_ports(&mut self) -> Result<Vec<DevlinkMessage>, String> {
        self.seq += 1;
        let request = DevlinkMessage {
            cmd: CMD_PORT_GET,
            attrs: Vec::new(),
        };
        send(
            &self.sock,
            self.seq,
            NLM_F_REQUEST | NLM_F_DUMP,
            self.family_id,
            request,
        )
        .map_err(|e| format!("devlink: port dump: {e}"))?;
        let mut out = Vec::new();
        loop {
            let (buf, _) = self
                .sock
                .recv_from_full()
                .map_err(|e| format!("devlink: port dump: {e}"))?;
            let (messages, bad) = split::<GenlMessage<DevlinkMessage>>(&buf);
            for e in bad {
                log::warn!("port dump: {e}; skipped");
            }
            for msg in messages {
                if msg.header.sequence_number != self.seq {
                    continue; // a reply to an earlier, abandoned request
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(g) => out.push(g.payload),
                    NetlinkPayload::Done(d) if d.code != 0 => {
                        return Err(format!(
                            "devlink: port dump ended with an error: {}",
                            io::Error::from_raw_os_error(-d.code)
                        ))
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        let code = e.code.map_or(0, |c| -c.get());
                        return Err(format!(
                            "devlink: port dump refused: {}",
                            io::Error::from_raw_os_error(code)
                        ));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Opens the event socket: a second socket, non-blocking, joined to
    /// the `config` multicast group, for [`DevlinkSocket::drain`].
    pub fn subscribe(&mut self) -> Result<(), String> {
        let group = self
            .config_group
            .ok_or("devlink: the family has no \"config\" multicast group")?;
        let err = |what: &str, e: io::Error| format!("devlink: {what}: {e}");
        let mut events = Socket::new(NETLINK_GENERIC).map_err(|e| err("event socket", e))?;
        events.bind_auto().map_err(|e| err("event socket", e))?;
        events
            .add_membership(group)
            .map_err(|e| err("joining the config group", e))?;
        events
            .set_non_blocking(true)
            .map_err(|e| err("event socket", e))?;
        self.events = Some(events);
        Ok(())
    }

    /// Reads every event already queued, without blocking. An event that
    /// does not decode counts as lost: the caller dumps again.
    pub fn drain(&mut self) -> Result<Drained, String> {
        let Some(events) = self.events.as_ref() else {
            return Ok(Drained::Messages(Vec::new()));
        };
        let mut out = Vec::new();
        let mut lost = false;
        loop {
            match events.recv_from_full() {
                Ok((buf, _)) => {
                    let (messages, bad) = split::<GenlMessage<DevlinkMessage>>(&buf);
                    for e in bad {
                        log::warn!("{e}");
                        lost = true;
                    }
                    for msg in messages {
                        if let NetlinkPayload::InnerMessage(g) = msg.payload {
                            out.push(g.payload);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && lost => {
                    return Ok(Drained::Overflow)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Drained::Messages(out))
                }
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => return Ok(Drained::Overflow),
                Err(e) => return Err(format!("devlink: reading events: {e}")),
            }
        }
    }
}
