//! Recorded devlink messages, for running the provider where devlink is
//! absent (tests, demos, reproducing a field report): a text file with one
//! netlink message per line, in hexadecimal, exactly as the kernel sent it
//! (nlmsghdr, genlmsghdr, attributes). Blank lines and lines starting with
//! '#' are ignored. Given with `--provider-config representor:replay=FILE`.
//!
//! The [`ReplayChannel`] then plays the kernel: it answers dumps, re-reads
//! and `PORT_SET`s from those messages with the bytes the kernel would
//! send, and can write what the provider asked to a capture file.

use crate::channel::{Channel, Incoming, Request};
use crate::mac::MacAddr;
use crate::message::{consts::*, DevlinkMessage, FunctionAttr, PortAttr};
use crate::port::{DevlinkPort, PortKey};
use crate::wire::{self, Source};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const ENODEV: i32 = 19;

/// One message's bytes as a line of hexadecimal.
pub fn encode_line(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A devlink message as the kernel would send it (family id `family_id`),
/// encoded as a replay line.
pub fn encode(msg: &DevlinkMessage, family_id: u16) -> String {
    let mut genl = GenlMessage::from_payload(msg.clone());
    genl.set_resolved_family_id(family_id);
    let mut nl = NetlinkMessage::new(
        netlink_packet_core::NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(genl),
    );
    nl.finalize();
    let mut buf = vec![0; nl.header.length as usize];
    nl.serialize(&mut buf);
    encode_line(&buf)
}

fn decode_line(line: &str) -> Result<Vec<u8>, String> {
    let line = line.trim();
    if let Some(c) = line.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{c:?} is not a hexadecimal digit"));
    }
    if line.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    (0..line.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&line[i..i + 2], 16)
                .map_err(|_| format!("{:?} is not hex", &line[i..i + 2]))
        })
        .collect()
}

/// Parses a replay file's text.
pub fn parse(text: &str) -> Result<Vec<DevlinkMessage>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let bytes = decode_line(line).map_err(at)?;
        let msg = NetlinkMessage::<GenlMessage<DevlinkMessage>>::deserialize(&bytes)
            .map_err(|e| at(e.to_string()))?;
        match msg.payload {
            NetlinkPayload::InnerMessage(g) => out.push(g.payload),
            _ => return Err(at("not a devlink message".into())),
        }
    }
    Ok(out)
}

/// Reads and parses a replay file.
pub fn load(path: &Path) -> Result<Vec<DevlinkMessage>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// How the replayed kernel answers a `PORT_SET` of a function's MAC
/// (provider configuration `replay-port-set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSetAnswer {
    /// `apply` (default): acknowledge, change the port, and notify its
    /// `PORT_NEW`, as a driver that supports it does.
    Apply,
    /// `apply-quietly`: acknowledge and change it without a notification
    /// (the provider must re-read the port to see it).
    ApplyQuietly,
    /// `ack-only`: acknowledge but change nothing (a firmware that lies).
    AckOnly,
    /// `errno:N`: refuse with errno N (95 is `EOPNOTSUPP`).
    Refuse(i32),
    /// `no-answer`: never answer.
    NoAnswer,
}

impl std::str::FromStr for PortSetAnswer {
    type Err = String;
    fn from_str(s: &str) -> Result<PortSetAnswer, String> {
        Ok(match s {
            "apply" => PortSetAnswer::Apply,
            "apply-quietly" => PortSetAnswer::ApplyQuietly,
            "ack-only" => PortSetAnswer::AckOnly,
            "no-answer" => PortSetAnswer::NoAnswer,
            _ => match s.strip_prefix("errno:").and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => PortSetAnswer::Refuse(n),
                _ => {
                    return Err(format!(
                        "{s:?} is not one of apply, apply-quietly, ack-only, no-answer, errno:N"
                    ))
                }
            },
        })
    }
}

/// Family id the replayed kernel uses in the bytes it makes up.
pub const REPLAY_FAMILY_ID: u16 = 0x1a;

/// A [`Channel`] that answers from recorded messages as the kernel would,
/// byte for byte (dumps, re-reads, `PORT_SET` per [`PortSetAnswer`]), and
/// writes every request it is sent to a capture file, one hex line each
/// after a `#` line naming it.
pub struct ReplayChannel {
    /// The replayed kernel's ports, in the order first announced.
    ports: Vec<(PortKey, DevlinkMessage)>,
    queue: VecDeque<(Source, Vec<u8>)>,
    seq: u32,
    capture: Option<std::fs::File>,
    port_set: PortSetAnswer,
}

impl ReplayChannel {
    /// The replayed kernel after `messages` (its `PORT_NEW`s and
    /// `PORT_DEL`s applied in order); requests are appended to `capture`.
    pub fn new(
        messages: &[DevlinkMessage],
        capture: Option<&Path>,
        port_set: PortSetAnswer,
    ) -> Result<ReplayChannel, String> {
        let capture = capture
            .map(|p| {
                // Not a FIFO or a device: opening one could block `init`.
                if p.exists() && !p.is_file() {
                    return Err(format!("{}: not a regular file", p.display()));
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("{}: {e}", p.display()))
            })
            .transpose()?;
        let mut channel = ReplayChannel {
            ports: Vec::new(),
            queue: VecDeque::new(),
            seq: 0,
            capture,
            port_set,
        };
        for m in messages {
            channel.learn(m);
        }
        Ok(channel)
    }

    fn learn(&mut self, m: &DevlinkMessage) {
        let Ok(port) = DevlinkPort::from_attrs(&m.attrs) else {
            return;
        };
        let at = self.ports.iter().position(|(k, _)| *k == port.key);
        match (m.cmd, at) {
            (CMD_PORT_NEW, Some(i)) => self.ports[i].1 = m.clone(),
            (CMD_PORT_NEW, None) => self.ports.push((port.key, m.clone())),
            (CMD_PORT_DEL, Some(i)) => {
                self.ports.remove(i);
            }
            _ => {}
        }
    }

    fn port(&self, key: &PortKey) -> Option<&DevlinkMessage> {
        self.ports.iter().find(|(k, _)| k == key).map(|(_, m)| m)
    }

    fn set_mac(&mut self, key: &PortKey, mac: MacAddr) -> Option<DevlinkMessage> {
        let (_, msg) = self.ports.iter_mut().find(|(k, _)| k == key)?;
        msg.attrs.retain(|a| !matches!(a, PortAttr::Function(_)));
        msg.attrs.push(PortAttr::Function(vec![FunctionAttr::HwAddr(
            mac.0.to_vec(),
        )]));
        Some(msg.clone())
    }
}

impl Channel for ReplayChannel {
    fn send(&mut self, req: &Request) -> Result<u32, String> {
        self.seq += 1;
        let seq = self.seq;
        let bytes = wire::request(req, REPLAY_FAMILY_ID, seq);
        if let Some(f) = &mut self.capture {
            writeln!(f, "# {req}\n{}", encode_line(&bytes))
                .map_err(|e| format!("writing the replay capture: {e}"))?;
        }
        let answer =
            |q: &mut VecDeque<_>, errno| q.push_back((Source::Requests, wire::ack(&bytes, errno)));
        match req {
            Request::DumpPorts => {
                for (_, m) in &self.ports {
                    let r = wire::reply(m, REPLAY_FAMILY_ID, seq, true);
                    self.queue.push_back((Source::Requests, r));
                }
                self.queue.push_back((Source::Requests, wire::done(seq, 0)));
            }
            Request::GetPort(key) => match self.port(key).cloned() {
                Some(m) => {
                    let r = wire::reply(&m, REPLAY_FAMILY_ID, seq, false);
                    self.queue.push_back((Source::Requests, r));
                    answer(&mut self.queue, 0);
                }
                None => answer(&mut self.queue, ENODEV),
            },
            Request::SetFunctionMac(key, mac) => match self.port_set {
                _ if self.port(key).is_none() => answer(&mut self.queue, ENODEV),
                PortSetAnswer::Apply | PortSetAnswer::ApplyQuietly => {
                    let updated = self.set_mac(key, *mac).expect("the port exists");
                    answer(&mut self.queue, 0);
                    if self.port_set == PortSetAnswer::Apply {
                        let mut note = updated;
                        note.cmd = CMD_PORT_NEW;
                        let n = wire::reply(&note, REPLAY_FAMILY_ID, 0, false);
                        self.queue.push_back((Source::Events, n));
                    }
                }
                PortSetAnswer::AckOnly => answer(&mut self.queue, 0),
                PortSetAnswer::Refuse(errno) => answer(&mut self.queue, errno),
                PortSetAnswer::NoAnswer => {}
            },
        }
        Ok(seq)
    }

    fn receive(&mut self) -> Result<Vec<Incoming>, String> {
        Ok(self
            .queue
            .drain(..)
            .flat_map(|(source, bytes)| wire::decode(&bytes, source))
            .collect())
    }

    fn discard_events(&mut self) -> usize {
        let before = self.queue.len();
        self.queue.retain(|(s, _)| *s != Source::Events);
        before - self.queue.len()
    }

    fn wait(&mut self, _timeout: Duration) {}
}

#[cfg(test)]
mod tests {
    /// The example of docs/providers/devlink.md, "Writing a replay file".
    #[test]
    fn the_documented_example_parses_to_pf_0() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/providers/devlink.md"
        ))
        .unwrap();
        let block = doc.split("split at its fields:\n\n```\n").nth(1).unwrap();
        let block = block.split("```").next().unwrap();
        let hex: String = block
            .lines()
            .map(|l| l.split("   ").next().unwrap().replace(' ', ""))
            .collect();
        let msgs = super::parse(&hex).unwrap();
        let p = crate::port::DevlinkPort::from_attrs(&msgs[0].attrs).unwrap();
        assert_eq!(msgs[0].cmd, crate::message::consts::CMD_PORT_NEW);
        assert_eq!(p.netdev_name.as_deref(), Some("pf0hpf"));
        assert_eq!(p.flavour, crate::port::Flavour::PciPf);
        assert_eq!(
            p.hw_addr.map(|m| m.to_string()).as_deref(),
            Some("0c:42:a1:00:00:00")
        );
    }

    #[test]
    fn a_line_that_is_not_hex_is_an_error_not_a_panic() {
        for line in ["0\u{e9}0", "zz", "0"] {
            let e = super::parse(line).unwrap_err();
            assert!(e.starts_with("line 1: "), "{e}");
        }
    }
}
