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

/// A generic netlink socket bound to the devlink family.
pub struct DevlinkSocket {
    sock: Socket,
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

/// Splits one datagram into messages.
fn split<I>(buf: &[u8]) -> Result<Vec<NetlinkMessage<I>>, String>
where
    I: NetlinkDeserializable + Debug,
{
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let len = NetlinkBuffer::new_checked(&buf[offset..])
            .map_err(|e| format!("bad netlink message: {e}"))?
            .length() as usize;
        if len == 0 {
            break;
        }
        let msg = NetlinkMessage::<I>::deserialize(&buf[offset..offset + len])
            .map_err(|e| format!("bad netlink message: {e}"))?;
        out.push(msg);
        offset += (len + 3) & !3;
    }
    Ok(out)
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
            for msg in split::<GenlMessage<GenlCtrl>>(&buf).map_err(OpenError::Failed)? {
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

    /// Dumps every devlink port (blocking; done once at start-up and after
    /// an overflow).
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
            for msg in split::<GenlMessage<DevlinkMessage>>(&buf)? {
                match msg.payload {
                    NetlinkPayload::InnerMessage(g) => out.push(g.payload),
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

    /// Joins the `config` multicast group and makes the socket non-blocking,
    /// for [`DevlinkSocket::drain`].
    pub fn subscribe(&mut self) -> Result<(), String> {
        let group = self
            .config_group
            .ok_or("devlink: the family has no \"config\" multicast group")?;
        self.sock
            .add_membership(group)
            .map_err(|e| format!("devlink: joining the config group: {e}"))?;
        self.sock
            .set_non_blocking(true)
            .map_err(|e| format!("devlink: {e}"))
    }

    /// Reads every event already queued, without blocking.
    pub fn drain(&mut self) -> Result<Drained, String> {
        let mut out = Vec::new();
        loop {
            match self.sock.recv_from_full() {
                Ok((buf, _)) => {
                    for msg in split::<GenlMessage<DevlinkMessage>>(&buf)? {
                        if let NetlinkPayload::InnerMessage(g) = msg.payload {
                            out.push(g.payload);
                        }
                    }
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
