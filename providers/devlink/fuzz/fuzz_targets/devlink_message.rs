//! Fuzzes the devlink message parser and the table: any bytes, as a whole
//! netlink message from the kernel, must be refused or parsed, never make
//! the parser or the table panic. What parses must emit to bytes that parse
//! back and emit identically (a fixed point), with every typed attribute
//! unchanged. (An unknown attribute carrying both the nested and the
//! network-byte-order flag loses the latter when emitted: netlink-packet-
//! core's set_nested_flag masks it away. The kernel never sends that for
//! devlink, and the provider only emits in tests.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{Emitable, NetlinkMessage, NetlinkPayload, ParseableParametrized};
use netlink_packet_generic::{GenlHeader, GenlMessage};
use vif_plug_devlink::message::DevlinkMessage;
use vif_plug_devlink::port::DevlinkPort;
use vif_plug_devlink::table::PortTable;
use vif_plug_devlink::wire::{self, Source};

fuzz_target!(|data: &[u8]| {
    // As a datagram on either socket, the way the channel decodes it.
    for source in [Source::Events, Source::Requests] {
        let _ = wire::decode(data, source);
    }
    // As a whole netlink message, the way the socket code parses it.
    if let Ok(msg) = NetlinkMessage::<GenlMessage<DevlinkMessage>>::deserialize(data) {
        if let NetlinkPayload::InnerMessage(g) = msg.payload {
            let mut table = PortTable::new();
            if let Ok(p) = DevlinkPort::from_attrs(&g.payload.attrs) {
                table.upsert(p.clone());
                table.remove(&p.key);
            }
        }
    }
    // As bare attributes, checking that what parses round-trips.
    let header = GenlHeader { cmd: 7, version: 1 };
    if let Ok(msg) = DevlinkMessage::parse_with_param(data, header) {
        let emit = |m: &DevlinkMessage| {
            let mut buf = vec![0; m.buffer_len()];
            m.emit(&mut buf);
            buf
        };
        let first = emit(&msg);
        let again = DevlinkMessage::parse_with_param(&first, header).expect("re-parse of emitted bytes");
        assert_eq!(emit(&again), first, "emitting is not a fixed point");
        // Typed attributes, at every level (unknown ones are compared as
        // bytes by the fixed-point check above).
        let typed = |m: &DevlinkMessage| {
            use vif_plug_devlink::message::{FunctionAttr, PortAttr};
            m.attrs
                .iter()
                .filter(|a| !matches!(a, PortAttr::Other(_)))
                .map(|a| match a {
                    PortAttr::Function(f) => PortAttr::Function(
                        f.iter()
                            .filter(|x| !matches!(x, FunctionAttr::Other(_)))
                            .cloned()
                            .collect(),
                    ),
                    other => other.clone(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(typed(&msg), typed(&again), "a typed attribute changed");
    }
});
