//! Rename following on real rtnetlink events: a veth pair in a private
//! network namespace, renamed the way udev renames a representor.

use std::time::{Duration, Instant};
use testkit::netns::NetNs;
use vif_plug_devlink::links::{LinkDrain, LinkEvent, LinkSocket};
use vif_plug_devlink::message::{consts::*, FunctionAttr, PortAttr};
use vif_plug_devlink::options::{Function, Lookup};
use vif_plug_devlink::port::DevlinkPort;
use vif_plug_devlink::table::PortTable;

fn drain_until(sock: &mut LinkSocket, mut want: impl FnMut(&LinkEvent) -> bool) -> Vec<LinkEvent> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        match sock.drain().unwrap() {
            LinkDrain::Events(events) => {
                let done = events.iter().any(&mut want);
                seen.extend(events);
                if done {
                    return seen;
                }
            }
            LinkDrain::Overflow => panic!("overflow"),
        }
        assert!(Instant::now() < deadline, "no matching event; saw {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_table_follows_a_rename_seen_on_rtnetlink() {
    let ns = NetNs::create(&format!("vifplug-{}", std::process::id()))
        .expect("ip netns add (needs root)");
    let ns_name = ns.name().to_owned();
    let result = ns
        .run(move || {
            let ns = NetNsHandle(ns_name);
            let mut sock = LinkSocket::open().expect("rtnetlink socket");
            // The driver creates the representor under a kernel name...
            ns.ip(&[
                "link", "add", "eth3", "type", "veth", "peer", "name", "eth3p",
            ]);
            let events = drain_until(
                &mut sock,
                |e| matches!(e, LinkEvent::Named { name, .. } if name == "eth3"),
            );
            let ifindex = events
                .iter()
                .find_map(|e| match e {
                    LinkEvent::Named { ifindex, name } if name == "eth3" => Some(*ifindex),
                    _ => None,
                })
                .unwrap();
            // ...devlink announces it as VF 3 of PF 0...
            let mut table = PortTable::new();
            let port = |index: u32, flavour: u16, netdev: &str, ifi: u32, rest: Vec<PortAttr>| {
                let mut a = vec![
                    PortAttr::BusName("pci".into()),
                    PortAttr::DevName("0000:03:00.0".into()),
                    PortAttr::PortIndex(index),
                    PortAttr::Flavour(flavour),
                    PortAttr::NetdevName(netdev.into()),
                    PortAttr::NetdevIfindex(ifi),
                ];
                a.extend(rest);
                DevlinkPort::from_attrs(&a).unwrap()
            };
            table.upsert(port(
                1,
                FLAVOUR_PCI_PF,
                "pf0hpf",
                1000,
                vec![
                    PortAttr::PfNumber(0),
                    PortAttr::Function(vec![FunctionAttr::HwAddr(vec![0x0c, 0x42, 0xa1, 0, 0, 0])]),
                ],
            ));
            table.upsert(port(
                2,
                FLAVOUR_PCI_VF,
                "eth3",
                ifindex,
                vec![PortAttr::PfNumber(0), PortAttr::VfNumber(3)],
            ));
            let lookup = Lookup {
                pf_mac: "0c:42:a1:00:00:00".parse().unwrap(),
                function: Function::Vf(3),
                controller: Some(0),
            };
            let before = table.lookup(&lookup).unwrap().unwrap().netdev_name.clone();
            // ...and udev renames it.
            ns.ip(&["link", "set", "eth3", "name", "pf0vf3"]);
            let events = drain_until(
                &mut sock,
                |e| matches!(e, LinkEvent::Named { name, .. } if name == "pf0vf3"),
            );
            let mut changed = false;
            for e in &events {
                if let LinkEvent::Named { ifindex, name } = e {
                    changed |= table.rename(*ifindex, name);
                }
            }
            let after = table.lookup(&lookup).unwrap().unwrap().netdev_name.clone();
            // Deleting it is seen too.
            ns.ip(&["link", "del", "pf0vf3"]);
            let gone = drain_until(
                &mut sock,
                |e| matches!(e, LinkEvent::Removed { ifindex: i } if *i == ifindex),
            );
            (before, changed, after, gone.len())
        })
        .unwrap();
    assert_eq!(result.0.as_deref(), Some("eth3"));
    assert!(result.1, "the rename changed the table");
    assert_eq!(result.2.as_deref(), Some("pf0vf3"));
    assert!(result.3 >= 1);
}

/// `ip -n` from inside the namespace thread (the NetNs itself stays with
/// the test, which deletes it).
struct NetNsHandle(String);

impl NetNsHandle {
    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        let ok = std::process::Command::new("ip")
            .args(&all)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip {all:?}");
    }
}

#[test]
fn an_overflowing_socket_is_reported_so_the_table_can_be_rebuilt() {
    let ns = NetNs::create(&format!("vifplug-ovf-{}", std::process::id()))
        .expect("ip netns add (needs root)");
    let ns_name = ns.name().to_owned();
    let drained = ns
        .run(move || {
            let mut sock = LinkSocket::open().expect("rtnetlink socket");
            sock.set_receive_buffer(1).unwrap(); // the kernel's minimum
            let ns = NetNsHandle(ns_name);
            // Many link events, not drained: the socket overflows.
            for i in 0..40 {
                ns.ip(&[
                    "link",
                    "add",
                    &format!("v{i}"),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &format!("v{i}p"),
                ]);
            }
            sock.drain().unwrap()
        })
        .unwrap();
    assert!(matches!(drained, LinkDrain::Overflow), "{drained:?}");
}
