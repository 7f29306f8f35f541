//! Recorded devlink messages, for running the provider where devlink is
//! absent (tests, demos, reproducing a field report): a text file with one
//! netlink message per line, in hexadecimal, exactly as the kernel sent it
//! (nlmsghdr, genlmsghdr, attributes). Blank lines and lines starting with
//! '#' are ignored. Given with `--provider-config representor:replay=FILE`.

use crate::message::DevlinkMessage;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use std::path::Path;

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
