//! Choosing the right port, in the cases DPU operators report: the sysfs
//! PF MAC fallback for external controllers only, external functions
//! preferred when no controller is named, any order of announcements, a
//! host switchdev NIC without a PCI_PF port, all-zero PF MACs, and PF MAC
//! changes. Messages as the kernel sends them (bytes, through the parser).

mod common;
use common::*;
use vif_plug_devlink::message::{consts::*, FunctionAttr, PortAttr};
use vif_plug_devlink::options::{Function, Lookup};
use vif_plug_devlink::table::PortTable;
use PortAttr::{ControllerNumber, External, PfNumber, PortNumber, SfNumber, VfNumber};

const D: &str = "0000:03:00.0";

fn new(index: u32, flavour: u16, netdev: &str, rest: Vec<PortAttr>) -> Vec<u8> {
    wire(
        CMD_PORT_NEW,
        port(D, index, flavour, netdev, 100 + index, rest),
    )
}

fn lookup(
    t: &PortTable,
    pf_mac: &str,
    function: Function,
    controller: Option<u32>,
) -> Result<Option<String>, Vec<String>> {
    t.lookup(&Lookup {
        pf_mac: mac(pf_mac),
        function,
        controller,
    })
    .map(|p| p.and_then(|p| p.netdev_name.clone()))
}

#[test]
fn the_sysfs_fallback_applies_to_external_controllers_only() {
    let mut t = PortTable::new();
    load(
        &mut t,
        &[
            // The DPU's own PF 0 and a VF of it (controller 0, local), and
            // the host's PF 0 VF (controller 1, external); no PF reports a
            // MAC through devlink.
            new(1, FLAVOUR_PCI_PF, "pf0", vec![PfNumber(0), External(0)]),
            new(
                2,
                FLAVOUR_PCI_VF,
                "pf0vf0",
                vec![PfNumber(0), VfNumber(0), External(0)],
            ),
            new(
                3,
                FLAVOUR_PCI_VF,
                "c1pf0vf0",
                vec![PfNumber(0), VfNumber(0), ControllerNumber(1), External(1)],
            ),
        ],
    );
    // sysfs says the host's PF 0 has this MAC.
    assert!(t.set_fallback_pf_mac("pci", D, 0, mac("0c:42:a1:00:00:10")));
    assert_eq!(
        lookup(&t, "0c:42:a1:00:00:10", Function::Vf(0), None),
        Ok(Some("c1pf0vf0".into())),
        "the host's VF, and only it"
    );
    assert_eq!(
        lookup(&t, "0c:42:a1:00:00:10", Function::Vf(0), Some(0)),
        Ok(None)
    );
    assert_eq!(
        lookup(&t, "0c:42:a1:00:00:10", Function::Pf, None),
        Ok(None)
    );
    // A kernel that does not report the side (before 5.10): the fallback
    // applies as it always did.
    let mut old = PortTable::new();
    load(
        &mut old,
        &[new(
            2,
            FLAVOUR_PCI_VF,
            "pf0vf0",
            vec![PfNumber(0), VfNumber(0)],
        )],
    );
    assert!(old.set_fallback_pf_mac("pci", D, 0, mac("0c:42:a1:00:00:10")));
    assert_eq!(
        lookup(&old, "0c:42:a1:00:00:10", Function::Vf(0), None),
        Ok(Some("pf0vf0".into()))
    );
}

#[test]
fn without_a_controller_the_external_function_wins_and_a_tie_names_both() {
    let m = "0c:42:a1:00:00:20";
    let mut t = PortTable::new();
    load(
        &mut t,
        &[
            new(
                1,
                FLAVOUR_PCI_PF,
                "pf0",
                vec![PfNumber(0), External(0), hw(m)],
            ),
            new(
                2,
                FLAVOUR_PCI_VF,
                "pf0vf0",
                vec![PfNumber(0), VfNumber(0), External(0)],
            ),
            new(
                3,
                FLAVOUR_PCI_PF,
                "c1pf0",
                vec![PfNumber(0), ControllerNumber(1), External(1), hw(m)],
            ),
            new(
                4,
                FLAVOUR_PCI_VF,
                "c1pf0vf0",
                vec![PfNumber(0), VfNumber(0), ControllerNumber(1), External(1)],
            ),
        ],
    );
    assert_eq!(
        lookup(&t, m, Function::Vf(0), None),
        Ok(Some("c1pf0vf0".into()))
    );
    assert_eq!(
        lookup(&t, m, Function::Vf(0), Some(0)),
        Ok(Some("pf0vf0".into())),
        "named, the local one"
    );
    // A second external controller with the same MAC: a tie, both named.
    load(
        &mut t,
        &[
            new(
                5,
                FLAVOUR_PCI_PF,
                "c2pf0",
                vec![PfNumber(0), ControllerNumber(2), External(1), hw(m)],
            ),
            new(
                6,
                FLAVOUR_PCI_VF,
                "c2pf0vf0",
                vec![PfNumber(0), VfNumber(0), ControllerNumber(2), External(1)],
            ),
        ],
    );
    let e = lookup(&t, m, Function::Vf(0), None).unwrap_err();
    assert_eq!(e.len(), 3, "{e:?}");
    for want in [
        "c1pf0vf0 (pci/0000:03:00.0/4, controller 1, external)",
        "c2pf0vf0 (pci/0000:03:00.0/6, controller 2, external)",
        "pf0vf0 (pci/0000:03:00.0/2, controller 0, local)",
    ] {
        assert!(e.iter().any(|c| c == want), "{want} in {e:?}");
    }
    // A candidate whose side is not reported keeps it ambiguous too.
    let mut t = PortTable::new();
    load(
        &mut t,
        &[
            new(1, FLAVOUR_PCI_PF, "pf0", vec![PfNumber(0), hw(m)]),
            new(2, FLAVOUR_PCI_VF, "pf0vf0", vec![PfNumber(0), VfNumber(0)]),
            new(
                3,
                FLAVOUR_PCI_PF,
                "c1pf0",
                vec![PfNumber(0), ControllerNumber(1), External(1), hw(m)],
            ),
            new(
                4,
                FLAVOUR_PCI_VF,
                "c1pf0vf0",
                vec![PfNumber(0), VfNumber(0), ControllerNumber(1), External(1)],
            ),
        ],
    );
    assert_eq!(lookup(&t, m, Function::Vf(0), None).unwrap_err().len(), 2);
}

/// Every order of three announcements.
fn permutations(items: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

#[test]
fn functions_announced_before_their_pf_are_found_once_it_arrives_in_any_order() {
    let m = "0c:42:a1:00:00:30";
    let messages = [
        new(1, FLAVOUR_PCI_PF, "pf0hpf", vec![PfNumber(0), hw(m)]),
        new(2, FLAVOUR_PCI_VF, "pf0vf0", vec![PfNumber(0), VfNumber(0)]),
        new(3, FLAVOUR_PCI_SF, "pf0sf7", vec![PfNumber(0), SfNumber(7)]),
        // The PF first without its MAC, then with it.
        new(1, FLAVOUR_PCI_PF, "pf0hpf", vec![PfNumber(0)]),
    ];
    for order in permutations(&messages[..3]) {
        let mut t = PortTable::new();
        load(&mut t, &order);
        assert_eq!(
            lookup(&t, m, Function::Vf(0), None),
            Ok(Some("pf0vf0".into()))
        );
        assert_eq!(
            lookup(&t, m, Function::Sf(7), None),
            Ok(Some("pf0sf7".into()))
        );
        assert_eq!(lookup(&t, m, Function::Pf, None), Ok(Some("pf0hpf".into())));
    }
    let mut t = PortTable::new();
    load(&mut t, &[messages[3].clone(), messages[1].clone()]);
    assert_eq!(lookup(&t, m, Function::Vf(0), None), Ok(None));
    load(&mut t, &[messages[0].clone()]);
    assert_eq!(
        lookup(&t, m, Function::Vf(0), None),
        Ok(Some("pf0vf0".into()))
    );
}

#[test]
fn a_host_switchdev_nic_without_a_pci_pf_port_is_declined_with_the_reason() {
    let mut t = PortTable::new();
    load(
        &mut t,
        &[
            new(1, FLAVOUR_PHYSICAL, "p0", vec![PortNumber(0)]),
            new(2, FLAVOUR_PCI_VF, "eth0vf0", vec![PfNumber(0), VfNumber(0)]),
        ],
    );
    let l = Lookup {
        pf_mac: mac("0c:42:a1:00:00:40"),
        function: Function::Vf(0),
        controller: None,
    };
    assert_eq!(t.lookup(&l), Ok(None));
    let why = t.why_not_found(&l);
    assert!(why.contains("the host MAC of pci/0000:03:00.0 PF 0 controller 0 is unknown: devlink reports no PCI_PF port for it"), "{why}");
    assert!(
        why.contains("switchdev NIC in the hypervisor itself"),
        "{why}"
    );
    // No representor at all says so instead.
    let empty = PortTable::new();
    assert!(empty
        .why_not_found(&l)
        .contains("devlink reports no PCI PF, VF or SF port"));
}

#[test]
fn an_all_zero_pf_mac_is_never_indexed_and_two_do_not_shadow_each_other() {
    let zero = "00:00:00:00:00:00";
    let zero_hw = || PortAttr::Function(vec![FunctionAttr::HwAddr(vec![0; 6])]);
    let mut t = PortTable::new();
    load(
        &mut t,
        &[
            new(1, FLAVOUR_PCI_PF, "pf0hpf", vec![PfNumber(0), zero_hw()]),
            new(2, FLAVOUR_PCI_PF, "pf1hpf", vec![PfNumber(1), zero_hw()]),
            new(3, FLAVOUR_PCI_VF, "pf0vf0", vec![PfNumber(0), VfNumber(0)]),
            new(4, FLAVOUR_PCI_VF, "pf1vf0", vec![PfNumber(1), VfNumber(0)]),
        ],
    );
    assert!(
        zero.parse::<vif_plug_devlink::mac::MacAddr>().is_err(),
        "no lookup can ask for it"
    );
    for p in t.ports() {
        assert_eq!(t.pf_mac_of(p), None, "{p:?}");
    }
    // PF 1 gets its MAC: its VF is found, PF 0's stays unknown.
    load(
        &mut t,
        &[new(
            2,
            FLAVOUR_PCI_PF,
            "pf1hpf",
            vec![PfNumber(1), hw("0c:42:a1:00:01:00")],
        )],
    );
    assert_eq!(
        lookup(&t, "0c:42:a1:00:01:00", Function::Vf(0), None),
        Ok(Some("pf1vf0".into()))
    );
    let pf0vf0 = t
        .ports()
        .find(|p| p.netdev_name.as_deref() == Some("pf0vf0"))
        .unwrap();
    assert_eq!(t.pf_mac_of(pf0vf0), None);
}
