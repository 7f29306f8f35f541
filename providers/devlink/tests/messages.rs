//! Devlink messages as the kernel sends them, per `linux/devlink.h`,
//! through the parser and the lookup table.

use netlink_packet_core::Nla;
use vif_plug_devlink::message::{consts::*, FunctionAttr, PortAttr};
use vif_plug_devlink::options::{Function, Lookup};
use vif_plug_devlink::port::{DevlinkPort, Flavour, PortKey};
use vif_plug_devlink::table::PortTable;

mod common;
use common::*;

/// A PCI_VF port message assembled byte by byte, as the kernel lays it out.
fn vf_port_bytes() -> Vec<u8> {
    let mut attrs = Vec::new();
    attrs.extend(nla(1, b"pci\0")); // DEVLINK_ATTR_BUS_NAME
    attrs.extend(nla(2, b"0000:03:00.0\0")); // DEVLINK_ATTR_DEV_NAME
    attrs.extend(nla(3, &2u32.to_ne_bytes())); // DEVLINK_ATTR_PORT_INDEX
    attrs.extend(nla(4, &2u16.to_ne_bytes())); // DEVLINK_ATTR_PORT_TYPE (eth)
    attrs.extend(nla(6, &10u32.to_ne_bytes())); // DEVLINK_ATTR_PORT_NETDEV_IFINDEX
    attrs.extend(nla(7, b"pf0vf3\0")); // DEVLINK_ATTR_PORT_NETDEV_NAME
    attrs.extend(nla(77, &4u16.to_ne_bytes())); // DEVLINK_ATTR_PORT_FLAVOUR: PCI_VF
    attrs.extend(nla(127, &0u16.to_ne_bytes())); // DEVLINK_ATTR_PORT_PCI_PF_NUMBER
    attrs.extend(nla(128, &3u16.to_ne_bytes())); // DEVLINK_ATTR_PORT_PCI_VF_NUMBER
    attrs.extend(nla(150, &0u32.to_ne_bytes())); // DEVLINK_ATTR_PORT_CONTROLLER_NUMBER
    let hw = nla(1, &[0x0c, 0x42, 0xa1, 0x00, 0x00, 0x13]); // DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR
    attrs.extend(nla(145 | 0x8000, &hw)); // DEVLINK_ATTR_PORT_FUNCTION, nested
    let mut msg = Vec::new();
    let total = 16 + 4 + attrs.len();
    msg.extend_from_slice(&(total as u32).to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&FAMILY_ID.to_ne_bytes()); // nlmsg_type
    msg.extend_from_slice(&0u16.to_ne_bytes()); // nlmsg_flags
    msg.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    msg.extend_from_slice(&[7, 1, 0, 0]); // genlmsghdr: PORT_NEW, version 1
    msg.extend(attrs);
    msg
}

fn vf_attrs() -> Vec<PortAttr> {
    vec![
        PortAttr::BusName("pci".into()),
        PortAttr::DevName("0000:03:00.0".into()),
        PortAttr::PortIndex(2),
        PortAttr::PortType(2),
        PortAttr::NetdevIfindex(10),
        PortAttr::NetdevName("pf0vf3".into()),
        PortAttr::Flavour(FLAVOUR_PCI_VF),
        PortAttr::PfNumber(0),
        PortAttr::VfNumber(3),
        PortAttr::ControllerNumber(0),
        PortAttr::Function(vec![FunctionAttr::HwAddr(vec![
            0x0c, 0x42, 0xa1, 0, 0, 0x13,
        ])]),
    ]
}

#[test]
fn emits_and_parses_the_kernel_layout_byte_for_byte() {
    let bytes = vf_port_bytes();
    assert_eq!(
        wire(CMD_PORT_NEW, vf_attrs()),
        bytes,
        "emitted bytes differ from devlink.h's layout"
    );
    let msg = parse(&bytes).unwrap();
    assert_eq!(msg.cmd, CMD_PORT_NEW);
    assert_eq!(msg.attrs, vf_attrs());
    let port = DevlinkPort::from_attrs(&msg.attrs).unwrap();
    assert_eq!(port.flavour, Flavour::PciVf);
    assert_eq!((port.pf, port.vf, port.controller), (Some(0), Some(3), 0));
    assert_eq!(port.netdev_name.as_deref(), Some("pf0vf3"));
    assert_eq!(port.netdev_ifindex, Some(10));
}

/// A dump: one NIC with two PFs, each with a physical port, its PF
/// representor (host MAC in the port function), VFs and an SF; and a
/// second controller (another host) on PF 0.
fn dump() -> Vec<Vec<u8>> {
    use PortAttr::*;
    let d = "0000:03:00.0";
    [
        port(d, 1, FLAVOUR_PHYSICAL, "p0", 100, vec![PortNumber(0)]),
        port(d, 2, FLAVOUR_PHYSICAL, "p1", 101, vec![PortNumber(1)]),
        port(
            d,
            3,
            FLAVOUR_PCI_PF,
            "pf0hpf",
            102,
            vec![PfNumber(0), hw("0c:42:a1:00:00:00")],
        ),
        port(
            d,
            4,
            FLAVOUR_PCI_PF,
            "pf1hpf",
            103,
            vec![PfNumber(1), hw("0c:42:a1:00:01:00")],
        ),
        port(
            d,
            5,
            FLAVOUR_PCI_VF,
            "pf0vf0",
            104,
            vec![PfNumber(0), VfNumber(0)],
        ),
        port(
            d,
            6,
            FLAVOUR_PCI_VF,
            "pf0vf1",
            105,
            vec![PfNumber(0), VfNumber(1)],
        ),
        port(
            d,
            7,
            FLAVOUR_PCI_VF,
            "pf1vf0",
            106,
            vec![PfNumber(1), VfNumber(0)],
        ),
        port(
            d,
            8,
            FLAVOUR_PCI_SF,
            "pf0sf88",
            107,
            vec![PfNumber(0), SfNumber(88)],
        ),
        // Controller 1: the same PF number on another host, another MAC.
        port(
            d,
            9,
            FLAVOUR_PCI_PF,
            "c1pf0",
            108,
            vec![
                PfNumber(0),
                ControllerNumber(1),
                External(1),
                hw("0c:42:a1:00:02:00"),
            ],
        ),
        port(
            d,
            10,
            FLAVOUR_PCI_VF,
            "c1pf0vf0",
            109,
            vec![PfNumber(0), VfNumber(0), ControllerNumber(1), External(1)],
        ),
    ]
    .into_iter()
    .map(|a| wire(CMD_PORT_NEW, a))
    .collect()
}

#[test]
fn a_dump_over_two_pfs_and_two_controllers_indexes_every_function() {
    let mut t = PortTable::new();
    load(&mut t, &dump());
    assert_eq!(t.len(), 10);
    assert_eq!(
        find(&t, "0c:42:a1:00:00:00", Function::Pf, 0),
        Some("pf0hpf")
    );
    assert_eq!(
        find(&t, "0c:42:a1:00:00:00", Function::Vf(1), 0),
        Some("pf0vf1")
    );
    assert_eq!(
        find(&t, "0c:42:a1:00:00:00", Function::Sf(88), 0),
        Some("pf0sf88")
    );
    assert_eq!(
        find(&t, "0c:42:a1:00:01:00", Function::Vf(0), 0),
        Some("pf1vf0")
    );
    assert_eq!(
        find(&t, "0c:42:a1:00:02:00", Function::Vf(0), 1),
        Some("c1pf0vf0")
    );
    // The right MAC with the wrong controller, or a VF that does not exist.
    assert_eq!(find(&t, "0c:42:a1:00:02:00", Function::Vf(0), 0), None);
    assert_eq!(find(&t, "0c:42:a1:00:00:00", Function::Vf(9), 0), None);
    assert_eq!(
        t.by_ifindex(104).unwrap().netdev_name.as_deref(),
        Some("pf0vf0")
    );
    assert_eq!(t.by_device("pci", "0000:03:00.0").count(), 10);
    assert_eq!(t.by_device("pci", "0000:04:00.0").count(), 0);
}

#[test]
fn port_new_and_del_sequences_keep_the_table_consistent() {
    let mut t = PortTable::new();
    load(&mut t, &dump());
    // Removal as the kernel does it: an empty PORT_NEW (the netdev is
    // gone), then PORT_DEL.
    let key = [
        PortAttr::BusName("pci".into()),
        PortAttr::DevName("0000:03:00.0".into()),
        PortAttr::PortIndex(6),
    ];
    load(&mut t, &[wire(CMD_PORT_NEW, key.to_vec())]);
    assert_eq!(
        find(&t, "0c:42:a1:00:00:00", Function::Vf(1), 0),
        None,
        "no longer a VF"
    );
    assert!(t.by_ifindex(105).is_none());
    load(&mut t, &[wire(CMD_PORT_DEL, key.to_vec())]);
    assert_eq!(t.len(), 9);
    // A new VF appears.
    load(
        &mut t,
        &[wire(
            CMD_PORT_NEW,
            port(
                "0000:03:00.0",
                11,
                FLAVOUR_PCI_VF,
                "pf0vf2",
                110,
                vec![PortAttr::PfNumber(0), PortAttr::VfNumber(2)],
            ),
        )],
    );
    assert_eq!(
        find(&t, "0c:42:a1:00:00:00", Function::Vf(2), 0),
        Some("pf0vf2")
    );
    // Deleting a port that is not there changes nothing.
    assert!(!t.remove(&PortKey {
        bus: "pci".into(),
        dev: "0000:03:00.0".into(),
        index: 99
    }));
}

#[test]
fn a_pf_mac_change_reindexes_its_functions() {
    let mut t = PortTable::new();
    load(&mut t, &dump());
    load(
        &mut t,
        &[wire(
            CMD_PORT_NEW,
            port(
                "0000:03:00.0",
                3,
                FLAVOUR_PCI_PF,
                "pf0hpf",
                102,
                vec![PortAttr::PfNumber(0), hw("0c:42:a1:00:00:aa")],
            ),
        )],
    );
    assert_eq!(find(&t, "0c:42:a1:00:00:00", Function::Vf(0), 0), None);
    assert_eq!(
        find(&t, "0c:42:a1:00:00:aa", Function::Vf(0), 0),
        Some("pf0vf0")
    );
    assert_eq!(
        find(&t, "0c:42:a1:00:00:aa", Function::Sf(88), 0),
        Some("pf0sf88")
    );
    // The PF's port goes: its functions cannot be found by MAC any more.
    load(
        &mut t,
        &[wire(
            CMD_PORT_DEL,
            vec![
                PortAttr::BusName("pci".into()),
                PortAttr::DevName("0000:03:00.0".into()),
                PortAttr::PortIndex(3),
            ],
        )],
    );
    assert_eq!(find(&t, "0c:42:a1:00:00:aa", Function::Vf(0), 0), None);
    // A MAC learnt elsewhere (sysfs) brings them back.
    assert!(t.set_fallback_pf_mac("pci", "0000:03:00.0", 0, mac("0c:42:a1:00:00:bb")));
    assert_eq!(
        find(&t, "0c:42:a1:00:00:bb", Function::Vf(0), 0),
        Some("pf0vf0")
    );
}

#[test]
fn renames_are_followed() {
    let mut t = PortTable::new();
    load(&mut t, &dump());
    assert!(t.rename(104, "eth_rep0"));
    assert_eq!(
        find(&t, "0c:42:a1:00:00:00", Function::Vf(0), 0),
        Some("eth_rep0")
    );
    assert!(!t.rename(104, "eth_rep0"), "no change the second time");
    assert!(!t.rename(999, "x"), "unknown ifindex");
}

#[test]
fn malformed_frames_are_errors_and_malformed_attributes_are_skipped() {
    let good = vf_port_bytes();
    // Every truncation is refused or parsed, never a panic.
    for n in 0..good.len() {
        let _ = parse(&good[..n]);
    }
    // An attribute whose length runs past the message.
    let mut bad = good.clone();
    bad[20] = 0xff; // first attribute's nla_len
    assert!(parse(&bad).is_err());
    // A u32 attribute of the wrong size is skipped, not the message: the
    // port keeps everything else.
    let mut attrs = Vec::new();
    for (kind, value) in [
        (1, &b"pci\0"[..]),
        (2, b"0000:03:00.0\0"),
        (3, &2u32.to_ne_bytes()),
        (77, &4u16.to_ne_bytes()),
        (127, &0u16.to_ne_bytes()),
        (128, &[3, 0, 0, 0]), // PORT_PCI_VF_NUMBER with 4 bytes, not 2
        (7, b"pf0vf3\0"),
    ] {
        attrs.extend(nla(kind, value));
    }
    attrs.extend(nla(145 | 0x8000, &nla(1, &[0x0c, 0x42]))); // HW_ADDR of 2 bytes
    let mut msg = Vec::new();
    msg.extend_from_slice(&((20 + attrs.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&FAMILY_ID.to_ne_bytes());
    msg.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&[7, 1, 0, 0]);
    msg.extend(attrs);
    let parsed = parse(&msg).unwrap();
    assert!(
        matches!(&parsed.attrs[5], PortAttr::Other(n) if n.kind() == 128),
        "{:?}",
        parsed.attrs
    );
    let p = DevlinkPort::from_attrs(&parsed.attrs).unwrap();
    assert_eq!(p.flavour, Flavour::PciVf);
    assert_eq!((p.pf, p.vf), (Some(0), None), "the bad VF number only");
    assert_eq!(p.netdev_name.as_deref(), Some("pf0vf3"));
    assert_eq!(p.hw_addr, None, "a 2-byte address is no MAC");
    // A nested function whose inner attribute runs past it: skipped too.
    let mut bad_fn = msg.clone();
    let at = bad_fn.len() - 8; // the inner nla_len of HW_ADDR
    bad_fn[at] = 0x40;
    let parsed = parse(&bad_fn).unwrap();
    assert!(DevlinkPort::from_attrs(&parsed.attrs).is_ok());
    // Unknown attributes are kept and ignored.
    let mut a = vf_attrs();
    a.push(PortAttr::Other(netlink_packet_core::DefaultNla::new(
        999,
        vec![1, 2, 3, 4],
    )));
    let msg = parse(&wire(CMD_PORT_NEW, a)).unwrap();
    assert!(DevlinkPort::from_attrs(&msg.attrs).is_ok());
    // A port without its identity is refused by name.
    let e = DevlinkPort::from_attrs(&[PortAttr::BusName("pci".into())]).unwrap_err();
    assert!(e.contains("DEV_NAME"), "{e}");
}

/// On a kernel without devlink (as on the machines this project is tested
/// on) opening fails with a message that says so; where devlink exists,
/// opening works. Any other outcome is a bug.
#[test]
fn opening_devlink_works_or_says_plainly_that_it_is_unavailable() {
    use vif_plug_devlink::socket::{DevlinkSocket, OpenError};
    match DevlinkSocket::open() {
        Ok(_) => {}
        Err(OpenError::Unavailable(m)) => {
            assert!(m.contains("devlink is unavailable on this machine"), "{m}")
        }
        Err(OpenError::Failed(m)) => panic!("unexpected failure: {m}"),
    }
}

/// A lookup without a controller: the netdev, or the candidates.
fn any(t: &PortTable, m: &str, function: Function) -> Result<Option<String>, Vec<String>> {
    t.lookup(&Lookup {
        pf_mac: mac(m),
        function,
        controller: None,
    })
    .map(|p| p.and_then(|p| p.netdev_name.clone()))
}

#[test]
fn without_a_controller_any_controller_matches_unless_two_do() {
    use PortAttr::{ControllerNumber, External, PfNumber, VfNumber};
    let mut t = PortTable::new();
    load(&mut t, &dump());

    // As on a BlueField, where host functions sit on controller 1: the
    // options existing deployments use (no controller) still match.
    assert_eq!(
        any(&t, "0c:42:a1:00:02:00", Function::Vf(0)).unwrap(),
        Some("c1pf0vf0".to_owned())
    );
    // Two external controllers' PFs reporting the same MAC: ambiguous,
    // refused.
    let d = "0000:03:00.0";
    load(
        &mut t,
        &[
            wire(
                CMD_PORT_NEW,
                port(
                    d,
                    20,
                    FLAVOUR_PCI_PF,
                    "c2pf0",
                    120,
                    vec![
                        PfNumber(0),
                        ControllerNumber(2),
                        External(1),
                        hw("0c:42:a1:00:02:00"),
                    ],
                ),
            ),
            wire(
                CMD_PORT_NEW,
                port(
                    d,
                    21,
                    FLAVOUR_PCI_VF,
                    "c2pf0vf0",
                    121,
                    vec![PfNumber(0), VfNumber(0), ControllerNumber(2), External(1)],
                ),
            ),
        ],
    );
    let e = any(&t, "0c:42:a1:00:02:00", Function::Vf(0)).unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter().any(|c| c.contains("c1pf0vf0")) && e.iter().any(|c| c.contains("c2pf0vf0")),
        "{e:?}"
    );
    // Naming the controller resolves it.
    assert_eq!(
        find(&t, "0c:42:a1:00:02:00", Function::Vf(0), 2),
        Some("c2pf0vf0")
    );
    // Remove one claimant: the other is found again.
    load(
        &mut t,
        &[wire(
            CMD_PORT_DEL,
            port(d, 21, FLAVOUR_PCI_VF, "c2pf0vf0", 121, vec![]),
        )],
    );
    assert_eq!(
        any(&t, "0c:42:a1:00:02:00", Function::Vf(0)).unwrap(),
        Some("c1pf0vf0".to_owned())
    );
}
