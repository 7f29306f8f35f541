//! Helpers shared by the devlink tests: messages as the kernel sends them.
#![allow(dead_code)]

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use vif_plug_devlink::mac::MacAddr;
use vif_plug_devlink::message::{consts::*, DevlinkMessage, FunctionAttr, PortAttr};
use vif_plug_devlink::options::{Function, Lookup};
use vif_plug_devlink::port::DevlinkPort;
use vif_plug_devlink::table::PortTable;

pub const FAMILY_ID: u16 = 0x15;

/// A whole netlink message (nlmsghdr + genlmsghdr + attributes).
pub fn wire(cmd: u8, attrs: Vec<PortAttr>) -> Vec<u8> {
    let mut genl = GenlMessage::from_payload(DevlinkMessage { cmd, attrs });
    genl.set_resolved_family_id(FAMILY_ID);
    let mut msg = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(genl));
    msg.header.sequence_number = 1;
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

pub fn parse(bytes: &[u8]) -> Result<DevlinkMessage, String> {
    let msg = NetlinkMessage::<GenlMessage<DevlinkMessage>>::deserialize(bytes)
        .map_err(|e| e.to_string())?;
    match msg.payload {
        NetlinkPayload::InnerMessage(g) => Ok(g.payload),
        other => Err(format!("unexpected payload {other:?}")),
    }
}

pub fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut v = Vec::new();
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(value);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

pub fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

pub fn port(
    dev: &str,
    index: u32,
    flavour: u16,
    netdev: &str,
    ifindex: u32,
    rest: Vec<PortAttr>,
) -> Vec<PortAttr> {
    let mut a = vec![
        PortAttr::BusName("pci".into()),
        PortAttr::DevName(dev.into()),
        PortAttr::PortIndex(index),
        PortAttr::Flavour(flavour),
        PortAttr::NetdevName(netdev.into()),
        PortAttr::NetdevIfindex(ifindex),
    ];
    a.extend(rest);
    a
}

pub fn hw(m: &str) -> PortAttr {
    PortAttr::Function(vec![FunctionAttr::HwAddr(mac(m).0.to_vec())])
}

pub fn load(table: &mut PortTable, messages: &[Vec<u8>]) {
    for m in messages {
        let msg = parse(m).unwrap();
        let port = DevlinkPort::from_attrs(&msg.attrs).unwrap();
        match msg.cmd {
            CMD_PORT_NEW => {
                table.upsert(port);
            }
            CMD_PORT_DEL => {
                table.remove(&port.key);
            }
            other => panic!("command {other}"),
        }
    }
}

pub fn find<'a>(t: &'a PortTable, m: &str, function: Function, controller: u32) -> Option<&'a str> {
    t.lookup(&Lookup {
        pf_mac: mac(m),
        function,
        controller: Some(controller),
    })
    .expect("unambiguous")
    .and_then(|p| p.netdev_name.as_deref())
}

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vif_plug_devlink::channel::{Channel, Incoming, Request};
use vif_plug_devlink::wire::{self, Source};

/// A port message (`PORT_NEW`) of device 0000:03:00.0 with `rest`.
pub fn port_msg(index: u32, flavour: u16, netdev: &str, rest: Vec<PortAttr>) -> DevlinkMessage {
    DevlinkMessage {
        cmd: CMD_PORT_NEW,
        attrs: port("0000:03:00.0", index, flavour, netdev, 100 + index, rest),
    }
}

/// What the kernel queued on one of the two sockets, or an overflow of
/// the event socket.
#[derive(Debug, Clone)]
pub enum Queued {
    /// Bytes on a socket.
    Bytes(Source, Vec<u8>),
    /// `ENOBUFS` on the event socket: what follows stays queued.
    Overflow,
}

/// What the test scripts and what the provider sent.
#[derive(Debug, Default)]
pub struct Script {
    pub queue: VecDeque<Queued>,
    /// Every request sent, as bytes.
    pub sent: Vec<Vec<u8>>,
    seq: u32,
}

impl Script {
    /// Queues a notification of `msg`.
    pub fn event(&mut self, msg: &DevlinkMessage) {
        let b = wire::reply(msg, FAMILY_ID, 0, false);
        self.queue.push_back(Queued::Bytes(Source::Events, b));
    }
    /// Queues a dump's answer: `msgs` then `NLMSG_DONE`.
    pub fn dump_answer(&mut self, seq: u32, msgs: &[DevlinkMessage]) {
        for m in msgs {
            self.dump_part(seq, m);
        }
        self.dump_done(seq);
    }
    pub fn dump_part(&mut self, seq: u32, m: &DevlinkMessage) {
        let b = wire::reply(m, FAMILY_ID, seq, true);
        self.queue.push_back(Queued::Bytes(Source::Requests, b));
    }
    pub fn dump_done(&mut self, seq: u32) {
        let b = wire::done(seq, 0);
        self.queue.push_back(Queued::Bytes(Source::Requests, b));
    }
    /// Queues the kernel's `NLMSG_ERROR` for the `n`th request sent.
    pub fn ack(&mut self, n: usize, errno: i32) {
        let b = wire::ack(&self.sent[n], errno);
        self.queue.push_back(Queued::Bytes(Source::Requests, b));
    }
    /// Queues a reply to the `n`th request sent (a re-read).
    pub fn reply(&mut self, n: usize, msg: &DevlinkMessage) {
        let seq = u32::from_ne_bytes(self.sent[n][8..12].try_into().unwrap());
        let b = wire::reply(msg, FAMILY_ID, seq, false);
        self.queue.push_back(Queued::Bytes(Source::Requests, b));
    }
    /// The sequence number of the `n`th request sent.
    pub fn seq_of(&self, n: usize) -> u32 {
        u32::from_ne_bytes(self.sent[n][8..12].try_into().unwrap())
    }
    /// The command of the `n`th request sent.
    pub fn cmd_of(&self, n: usize) -> u8 {
        self.sent[n][16]
    }
}

/// A [`Channel`] played from a [`Script`] the test holds too: an in-memory
/// stand-in for the two sockets, for the state machines' logic (the
/// kernel has no devlink here). Bytes go through the real encoder and
/// decoder.
pub struct Scripted(pub Arc<Mutex<Script>>);

impl Channel for Scripted {
    fn send(&mut self, req: &Request) -> Result<u32, String> {
        let mut s = self.0.lock().unwrap();
        s.seq += 1;
        let seq = s.seq;
        s.sent.push(wire::request(req, FAMILY_ID, seq));
        Ok(seq)
    }
    fn receive(&mut self) -> Result<Vec<Incoming>, String> {
        let mut s = self.0.lock().unwrap();
        let mut out = Vec::new();
        while let Some(q) = s.queue.pop_front() {
            match q {
                Queued::Bytes(source, b) => out.extend(wire::decode(&b, source)),
                Queued::Overflow => {
                    out.push(Incoming::EventsLost);
                    break;
                }
            }
        }
        Ok(out)
    }
    fn discard_events(&mut self) -> usize {
        let mut s = self.0.lock().unwrap();
        let before = s.queue.len();
        s.queue
            .retain(|q| matches!(q, Queued::Bytes(Source::Requests, _)));
        before - s.queue.len()
    }
    fn wait(&mut self, _: Duration) {}
}

/// A scripted channel and the script.
pub fn scripted() -> (Box<dyn Channel>, Arc<Mutex<Script>>) {
    let script = Arc::new(Mutex::new(Script::default()));
    (Box::new(Scripted(script.clone())), script)
}

use std::time::Instant;
use vif_plug_devlink::view::DevlinkView;

/// PF 0 of 0000:03:00.0 (port 3) with host MAC 0c:42:a1:00:00:00.
pub fn pf0() -> DevlinkMessage {
    port_msg(
        3,
        FLAVOUR_PCI_PF,
        "pf0hpf",
        vec![PortAttr::PfNumber(0), hw("0c:42:a1:00:00:00")],
    )
}

/// VF `vf` of PF 0 (port 10 + vf), its representor `netdev`, its
/// function's MAC `function_mac` if any.
pub fn vf0(vf: u16, netdev: &str, function_mac: Option<&str>) -> DevlinkMessage {
    let mut rest = vec![PortAttr::PfNumber(0), PortAttr::VfNumber(vf)];
    rest.extend(function_mac.map(hw));
    port_msg(10 + u32::from(vf), FLAVOUR_PCI_VF, netdev, rest)
}

/// A view whose first dump gave `msgs`, at `now`.
pub fn ready(msgs: &[DevlinkMessage], now: Instant) -> (DevlinkView, Arc<Mutex<Script>>) {
    let (channel, script) = scripted();
    let mut view = DevlinkView::new(channel, Duration::from_secs(5), now);
    view.poll(now);
    {
        let mut s = script.lock().unwrap();
        assert_eq!(s.cmd_of(0), CMD_PORT_GET, "the first request is the dump");
        let seq = s.seq_of(0);
        s.dump_answer(seq, msgs);
    }
    view.poll(now);
    assert!(view.sync().complete());
    (view, script)
}

/// The netdev the view finds for VF `vf` of PF MAC 0c:42:a1:00:00:00.
pub fn netdev_of_vf(view: &DevlinkView, vf: u16) -> Option<String> {
    view.table()
        .lookup(&Lookup {
            pf_mac: mac("0c:42:a1:00:00:00"),
            function: Function::Vf(vf),
            controller: None,
        })
        .unwrap()
        .and_then(|p| p.netdev_name.clone())
}
