//! The devlink provider in the agent, against real daemons: the devlink
//! table comes from a replay file (this kernel has no devlink), the
//! representors are real veths, and ovs-vswitchd and the agent run in a
//! private network namespace (see `Env::start_devlink`).

mod common;

use common::{plug, Env, Veth};
use std::path::Path;
use testkit::{cargo_cdylib, private_dir};
use vif_plug_devlink::channel::Request;
use vif_plug_devlink::mac::MacAddr;
use vif_plug_devlink::message::{consts::*, FunctionAttr, PortAttr};
use vif_plug_devlink::port::PortKey;
use vif_plug_devlink::replay::REPLAY_FAMILY_ID;
use vif_plug_devlink::wire;

#[test]
fn a_provider_failing_to_start_leaves_the_others_working() {
    // The devlink provider cannot start where devlink is absent (as here);
    // the agent logs why and carries on with the dummy.
    let env = Env::start_with(|_, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        cargo_cdylib("vif-plug-devlink", "vif_plug_devlink", dir);
        Vec::new()
    });
    plug(&env, "lsp1", &[]);
    let log = env.agent.log();
    if !log.contains("registered provider \"representor\"") {
        assert!(
            log.contains("devlink is unavailable on this machine"),
            "{log}"
        );
        assert!(
            log.contains("provider \"representor\" failed to initialise"),
            "{log}"
        );
    }
}

/// The requests in a replay capture file, as bytes.
fn captured(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// The `PORT_SET`s of a capture that set VF 3's function MAC to `mac`,
/// checked byte for byte against the request devlink(8) would send.
fn mac_sets(path: &Path, mac: &str) -> usize {
    let key = PortKey {
        bus: "pci".into(),
        dev: "0000:03:00.0".into(),
        index: 2,
    };
    let mac: MacAddr = mac.parse().unwrap();
    captured(path)
        .iter()
        .filter(|b| {
            let seq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
            **b == wire::request(
                &Request::SetFunctionMac(key.clone(), mac),
                REPLAY_FAMILY_ID,
                seq,
            )
        })
        .count()
}

/// A veth `rep` in a new namespace standing for VF 3 of PF 0, whose
/// function has MAC 02:00:00:00:00:99; the agent started with `extra`.
fn start(rep: &str, extra: &[&str]) -> Env {
    let ns = common::private_netns();
    Veth::create(&ns, rep);
    let replay = [
        common::devlink_pf0(),
        common::devlink_port_new(
            2,
            FLAVOUR_PCI_VF,
            rep,
            vec![
                PortAttr::PfNumber(0),
                PortAttr::VfNumber(3),
                PortAttr::Function(vec![FunctionAttr::HwAddr(vec![2, 0, 0, 0, 0, 0x99])]),
            ],
        ),
    ]
    .join("\n");
    Env::start_devlink(ns, &replay, extra)
}

/// Logical port `lsp` for VF 3 of PF 0c:42:a1:00:00:00, with `addresses`.
fn add_vf3_port(env: &Env, lsp: &str, addresses: &str) {
    env.sb.nbctl(&["lsp-add", "sw0", lsp]).unwrap();
    env.sb
        .nbctl(&["lsp-set-addresses", lsp, addresses])
        .unwrap();
    env.sb
        .nbctl(&[
            "lsp-set-options",
            lsp,
            "requested-chassis=chassis-1",
            "vif-plug-type=representor",
            "vif-plug:representor:pf-mac=0c:42:a1:00:00:00",
            "vif-plug:representor:vf-num=3",
        ])
        .unwrap();
}

#[test]
fn the_devlink_provider_programs_the_vf_mac_and_plugs_a_representor_that_ovn_controller_binds() {
    let rep = format!("rep{}", std::process::id() % 100_000);
    let dir = private_dir();
    let capture = dir.path().join("requests");
    let config = format!("representor:replay-capture={}", capture.display());
    let env = start(&rep, &["--provider-config", &config]);
    add_vf3_port(&env, "vm1", "fa:16:3e:00:00:01 10.0.0.5");

    env.wait("the representor plugged", || env.iface_exists(&rep));
    assert_eq!(
        mac_sets(&capture, "fa:16:3e:00:00:01"),
        1,
        "one PORT_SET with the logical port's MAC; captured:\n{}",
        std::fs::read_to_string(&capture).unwrap_or_default()
    );
    let log = env.agent.log();
    assert!(
        log.contains(&format!(
            "setting the function MAC of {rep} (pci/0000:03:00.0/2) to fa:16:3e:00:00:01 (was 02:00:00:00:00:99), attempt 1"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "the function MAC of {rep} (pci/0000:03:00.0/2) is fa:16:3e:00:00:01, confirmed"
        )),
        "{log}"
    );
    assert_eq!(
        env.iface(&rep, "type").as_deref(),
        Some("\"\""),
        "a system interface"
    );
    assert_eq!(
        env.iface(&rep, "external_ids:iface-id").as_deref(),
        Some("vm1")
    );
    assert_eq!(
        env.iface(&rep, "external_ids:ovn-plugged").as_deref(),
        Some("representor")
    );
    env.wait("an OpenFlow port for the veth", || {
        env.iface(&rep, "ofport")
            .is_some_and(|p| p.parse::<i64>().is_ok_and(|n| n > 0))
    });
    env.wait("vm1 bound by ovn-controller", || env.up("vm1"));

    // The CMS changes the port's MAC: the function follows, and the
    // interface stays as it is.
    let uuid = env.iface(&rep, "_uuid");
    env.sb
        .nbctl(&["lsp-set-addresses", "vm1", "fa:16:3e:00:00:02 10.0.0.5"])
        .unwrap();
    env.wait("the new MAC programmed", || {
        mac_sets(&capture, "fa:16:3e:00:00:02") == 1
            && env.agent.log().contains("is fa:16:3e:00:00:02, confirmed")
    });
    assert_eq!(env.iface(&rep, "_uuid"), uuid, "the same interface");
}

#[test]
fn a_device_that_cannot_set_function_macs_is_said_once_and_its_representors_plug() {
    let rep = format!("rpu{}", std::process::id() % 100_000);
    let env = start(
        &rep,
        &["--provider-config", "representor:replay-port-set=errno:95"],
    );
    add_vf3_port(&env, "vm1", "fa:16:3e:00:00:01 10.0.0.5");
    env.wait("the representor plugged", || env.iface_exists(&rep));
    // Another MAC for the same port: not asked again, nothing said again
    // (given the agent the time to ask).
    env.sb
        .nbctl(&["lsp-set-addresses", "vm1", "fa:16:3e:00:00:02 10.0.0.5"])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(env.iface_exists(&rep));
    let lines = env.log_lines("cannot set the MAC address of its functions");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("pci/0000:03:00.0 cannot set the MAC address of its functions (Operation not supported (os error 95)); its representors are plugged without it"),
        "{lines:?}"
    );
}

#[test]
fn program_mac_false_plugs_without_asking() {
    let rep = format!("rpf{}", std::process::id() % 100_000);
    let dir = private_dir();
    let capture = dir.path().join("requests");
    let config = format!("representor:replay-capture={}", capture.display());
    let env = start(&rep, &["--provider-config", &config]);
    env.sb.nbctl(&["lsp-add", "sw0", "vm1"]).unwrap();
    env.sb
        .nbctl(&["lsp-set-addresses", "vm1", "fa:16:3e:00:00:01"])
        .unwrap();
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "vm1",
            "requested-chassis=chassis-1",
            "vif-plug-type=representor",
            "vif-plug:representor:pf-mac=0c:42:a1:00:00:00",
            "vif-plug:representor:vf-num=3",
            "vif-plug:representor:program-mac=false",
        ])
        .unwrap();
    env.wait("the representor plugged", || env.iface_exists(&rep));
    assert_eq!(mac_sets(&capture, "fa:16:3e:00:00:01"), 0);
    assert!(
        captured(&capture).iter().all(|b| b[16] != CMD_PORT_SET),
        "no PORT_SET at all"
    );
}

/// Two logical ports asking for the same VF: the second is refused, and
/// the function keeps the MAC of the port that has it (it used to flip
/// between the two every second).
#[test]
fn a_second_logical_port_on_the_same_vf_never_changes_its_mac() {
    let rep = format!("rpd{}", std::process::id() % 100_000);
    let dir = private_dir();
    let capture = dir.path().join("requests");
    let config = format!("representor:replay-capture={}", capture.display());
    let env = start(
        &rep,
        &[
            "--provider-config",
            &config,
            "--provider-run-interval",
            "100",
        ],
    );
    add_vf3_port(&env, "vm1", "fa:16:3e:00:00:01");
    env.wait("vm1 plugged", || env.iface_exists(&rep));
    add_vf3_port(&env, "vm2", "fa:16:3e:00:00:02");
    env.wait("vm2 refused", || {
        !env
            .log_lines(&format!("logical port vm2: representor {rep} is plugged for logical port vm1: one logical port per function; not plugging it"))
            .is_empty()
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        mac_sets(&capture, "fa:16:3e:00:00:02"),
        0,
        "vm2's MAC never set"
    );
    assert_eq!(mac_sets(&capture, "fa:16:3e:00:00:01"), 1, "vm1's set once");
    assert_eq!(
        env.iface(&rep, "external_ids:iface-id").as_deref(),
        Some("vm1")
    );
    // vm1 goes: vm2 gets the function, with its MAC.
    env.sb.nbctl(&["lsp-del", "vm1"]).unwrap();
    env.wait("vm2 plugged instead", || {
        env.iface(&rep, "external_ids:iface-id").as_deref() == Some("vm2")
    });
    assert_eq!(mac_sets(&capture, "fa:16:3e:00:00:02"), 1);
}
