//! Devlink requests and answers as bytes: what the provider writes to a
//! generic netlink socket, and how what it reads becomes [`Incoming`]
//! items. Framing per netlink(7) and `linux/netlink.h` (`nlmsghdr`,
//! `nlmsgerr`, `NLMSG_DONE`), payloads per `linux/genetlink.h` and
//! `linux/devlink.h`. The kernel's side of the same framing
//! ([`reply`], [`ack`], [`done`]) is here too, for the replay channel and
//! for byte fixtures.

use crate::channel::{Incoming, Request};
use crate::message::{consts::*, DevlinkMessage};
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_generic::GenlMessage;

/// `NLM_F_MULTI`: a part of a multipart answer (a dump).
const NLM_F_MULTI: u16 = 2;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;

/// Where bytes were read: the `config` multicast socket, or the socket
/// requests are sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Notifications.
    Events,
    /// Answers to requests.
    Requests,
}

/// One generic netlink message of family `family_id`, with `flags` and
/// `seq`, port id 0 (the kernel).
pub fn message(msg: &DevlinkMessage, family_id: u16, flags: u16, seq: u32) -> Vec<u8> {
    let mut genl = GenlMessage::from_payload(msg.clone());
    genl.set_resolved_family_id(family_id);
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    nl.finalize();
    let mut buf = vec![0; nl.header.length as usize];
    nl.serialize(&mut buf);
    buf
}

/// The bytes of request `req` with sequence number `seq`:
/// `NLM_F_REQUEST|NLM_F_DUMP` for a dump, `NLM_F_REQUEST|NLM_F_ACK`
/// otherwise.
pub fn request(req: &Request, family_id: u16, seq: u32) -> Vec<u8> {
    let (msg, flags) = match req {
        Request::DumpPorts => (
            DevlinkMessage {
                cmd: CMD_PORT_GET,
                attrs: Vec::new(),
            },
            NLM_F_REQUEST | NLM_F_DUMP,
        ),
        Request::GetPort(key) => (DevlinkMessage::port_get(key), NLM_F_REQUEST | NLM_F_ACK),
        Request::SetFunctionMac(key, mac) => (
            DevlinkMessage::port_set_function_mac(key, *mac),
            NLM_F_REQUEST | NLM_F_ACK,
        ),
    };
    message(&msg, family_id, flags, seq)
}

/// The kernel's reply `msg` to request `seq` (`NLM_F_MULTI` within a dump).
pub fn reply(msg: &DevlinkMessage, family_id: u16, seq: u32, in_dump: bool) -> Vec<u8> {
    message(msg, family_id, if in_dump { NLM_F_MULTI } else { 0 }, seq)
}

fn header(len: usize, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b
}

/// The kernel's `NLMSG_ERROR` for `request` (its bytes): an ack when
/// `errno` is 0, else the negative errno, followed by the request's
/// header (`struct nlmsgerr`).
pub fn ack(request: &[u8], errno: i32) -> Vec<u8> {
    let seq = u32::from_ne_bytes(request[8..12].try_into().expect("a netlink header"));
    let mut b = header(16 + 4 + 16, NLMSG_ERROR, 0, seq);
    b.extend_from_slice(&(-errno).to_ne_bytes());
    b.extend_from_slice(&request[..16]);
    b
}

/// The kernel's `NLMSG_DONE` ending dump `seq` (`errno` 0 on success).
pub fn done(seq: u32, errno: i32) -> Vec<u8> {
    let mut b = header(16 + 4, NLMSG_DONE, NLM_F_MULTI, seq);
    b.extend_from_slice(&(-errno).to_ne_bytes());
    b
}

/// Splits one datagram into what it says. On the event socket, a message
/// that does not decode counts as lost events; on the request socket it is
/// skipped with a warning (its request then times out). Broken framing
/// ends the datagram.
pub fn decode(buf: &[u8], source: Source) -> Vec<Incoming> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let len = match NetlinkBuffer::new_checked(&buf[offset..]) {
            Ok(b) => b.length() as usize,
            Err(e) => {
                log::warn!("devlink: bad netlink frame ({e}); rest of the datagram skipped");
                if source == Source::Events {
                    out.push(Incoming::EventsLost);
                }
                break;
            }
        };
        let bytes = &buf[offset..offset + len];
        offset += (len + 3) & !3;
        let msg = match NetlinkMessage::<GenlMessage<DevlinkMessage>>::deserialize(bytes) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("devlink: undecodable message ({e}); skipped");
                if source == Source::Events {
                    out.push(Incoming::EventsLost);
                }
                continue;
            }
        };
        let seq = msg.header.sequence_number;
        match (msg.payload, source) {
            (NetlinkPayload::InnerMessage(g), Source::Events) => {
                out.push(Incoming::Event(g.payload))
            }
            (NetlinkPayload::InnerMessage(g), Source::Requests) => out.push(Incoming::Reply {
                seq,
                msg: g.payload,
            }),
            (NetlinkPayload::Done(d), _) => out.push(Incoming::Done {
                seq,
                errno: -d.code,
            }),
            (NetlinkPayload::Error(e), _) => out.push(Incoming::Ack {
                seq,
                errno: e.code.map_or(0, |c| -c.get()),
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_and_a_refusal_decode_with_their_sequence_and_errno() {
        let req = request(&Request::DumpPorts, 0x15, 9);
        assert_eq!(
            decode(&ack(&req, 0), Source::Requests),
            vec![Incoming::Ack { seq: 9, errno: 0 }]
        );
        assert_eq!(
            decode(&ack(&req, 95), Source::Requests),
            vec![Incoming::Ack { seq: 9, errno: 95 }]
        );
        assert_eq!(
            decode(&done(9, 0), Source::Requests),
            vec![Incoming::Done { seq: 9, errno: 0 }]
        );
    }
}
