//! The devlink provider through the ABI, as the agent uses it: fed from a
//! replay file of devlink messages (there is no devlink on these machines),
//! with the sysfs fallback on a fake sysfs tree, and every kind of bad
//! logical port option refused with one clear line.

use std::fs;
use std::path::{Path, PathBuf};
use testkit::{capture_logs, cargo_cdylib, logs_matching, private_dir};
use vif_plug_devlink::message::{consts::*, DevlinkMessage, FunctionAttr, PortAttr};
use vif_plug_devlink::replay;
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{PortRequest, PrepareError};
use vif_plug_host::{ProviderConfig, Registry};

const DEV: &str = "0000:03:00.0";

fn port(index: u32, flavour: u16, netdev: &str, rest: Vec<PortAttr>) -> DevlinkMessage {
    let mut attrs = vec![
        PortAttr::BusName("pci".into()),
        PortAttr::DevName(DEV.into()),
        PortAttr::PortIndex(index),
        PortAttr::Flavour(flavour),
        PortAttr::NetdevName(netdev.into()),
        PortAttr::NetdevIfindex(100 + index),
    ];
    attrs.extend(rest);
    DevlinkMessage {
        cmd: CMD_PORT_NEW,
        attrs,
    }
}

/// A replay with PF 0 reporting its host MAC through devlink, and PF 1
/// reporting none (its MAC only in sysfs, behind physical port p1).
fn write_replay(dir: &Path) -> PathBuf {
    use PortAttr::*;
    let msgs = [
        port(1, FLAVOUR_PHYSICAL, "p0", vec![PortNumber(0)]),
        port(2, FLAVOUR_PHYSICAL, "p1", vec![PortNumber(1)]),
        port(
            3,
            FLAVOUR_PCI_PF,
            "pf0hpf",
            vec![
                PfNumber(0),
                Function(vec![FunctionAttr::HwAddr(vec![0x0c, 0x42, 0xa1, 0, 0, 0])]),
            ],
        ),
        port(4, FLAVOUR_PCI_PF, "pf1hpf", vec![PfNumber(1)]),
        port(5, FLAVOUR_PCI_VF, "pf0vf3", vec![PfNumber(0), VfNumber(3)]),
        port(6, FLAVOUR_PCI_VF, "pf1vf0", vec![PfNumber(1), VfNumber(0)]),
        port(
            7,
            FLAVOUR_PCI_SF,
            "pf0sf88",
            vec![PfNumber(0), SfNumber(88)],
        ),
    ];
    let mut text = String::from("# recorded devlink port dump\n");
    for m in &msgs {
        text += &replay::encode(m, 0x15);
        text.push('\n');
    }
    let path = dir.join("devlink.replay");
    fs::write(&path, text).unwrap();
    path
}

fn fake_sysfs(dir: &Path) -> PathBuf {
    let root = dir.join("sys");
    let cfg = root.join("class/net/p1/smart_nic/pf");
    fs::create_dir_all(&cfg).unwrap();
    fs::write(
        cfg.join("config"),
        "MAC        : 0c:42:a1:00:01:00\nMaxTxRate  : 0\nState      : Up\n",
    )
    .unwrap();
    root
}

fn registry(dir: &Path) -> Registry {
    let so = cargo_cdylib("vif-plug-devlink", "vif_plug_devlink", dir);
    let mut config = ProviderConfig::default();
    config
        .add(&format!(
            "representor:replay={}",
            write_replay(dir).display()
        ))
        .unwrap();
    config
        .add(&format!(
            "representor:sysfs-root={}",
            fake_sysfs(dir).display()
        ))
        .unwrap();
    let mut r = Registry::new();
    for class in load_library(&so).unwrap().classes {
        r.register(class.unwrap(), &config).unwrap();
    }
    r
}

fn request(lport: &str, options: &[(&str, &str)]) -> PortRequest {
    options.iter().fold(
        PortRequest::new(lport, "br-int").with_option("vif-plug-type", "representor"),
        |r, (k, v)| r.with_option(*k, *v),
    )
}

fn answer(
    r: &Registry,
    lport: &str,
    options: &[(&str, &str)],
) -> Result<(String, Option<String>), PrepareError> {
    let op = r
        .get("representor")
        .unwrap()
        .prepare_create(&request(lport, options))?;
    Ok((op.output().name.clone(), op.output().iface_type.clone()))
}

const PF_MAC: &str = "vif-plug:representor:pf-mac";
const VF: &str = "vif-plug:representor:vf-num";
const SF: &str = "vif-plug:representor:sf-num";

// One test function, because the provider is one instance per process:
// a second registration of the same library would be refused (EBUSY).
#[test]
fn representors_are_found_and_bad_input_refused() {
    capture_logs();
    let dir = private_dir();
    let r = registry(dir.path());

    // The existing deployments' options: PF MAC + VF number; PF alone.
    assert_eq!(
        answer(&r, "vm1", &[(PF_MAC, "0c:42:a1:00:00:00"), (VF, "3")]).unwrap(),
        ("pf0vf3".to_owned(), None),
        "a system interface named after the representor"
    );
    assert_eq!(
        answer(&r, "vm2", &[(PF_MAC, "0C:42:A1:00:00:00")])
            .unwrap()
            .0,
        "pf0hpf"
    );
    // Subfunctions.
    assert_eq!(
        answer(&r, "vm3", &[(PF_MAC, "0c:42:a1:00:00:00"), (SF, "88")])
            .unwrap()
            .0,
        "pf0sf88"
    );
    // PF 1's MAC comes only from the sysfs fallback.
    assert_eq!(
        answer(&r, "vm4", &[(PF_MAC, "0c:42:a1:00:01:00"), (VF, "0")])
            .unwrap()
            .0,
        "pf1vf0"
    );

    // Not (yet) known: declined, to be retried when run reports a change.
    assert!(matches!(
        answer(&r, "vm5", &[(PF_MAC, "0c:42:a1:00:00:00"), (VF, "4")]).err(),
        Some(PrepareError::Declined(_))
    ));
    assert_eq!(
        logs_matching(
            "logical port vm5: no representor known for VF 4 of the PF with MAC 0c:42:a1:00:00:00; PF MACs known: 0c:42:a1:00:00:00, 0c:42:a1:00:01:00; not plugging it"
        )
        .len(),
        1
    );

    // Strict input: refused with one clear line naming the port and value.
    for (lport, options, needle) in [
        ("bad-mac", vec![(PF_MAC, "0c:42:a1:00:00")], "logical port bad-mac: vif-plug:representor:pf-mac: \"0c:42:a1:00:00\" is not a MAC address"),
        ("bad-vf", vec![(PF_MAC, "0c:42:a1:00:00:00"), (VF, "three")], "logical port bad-vf: vif-plug:representor:vf-num=\"three\" is not a number from 0 to 65535"),
        ("big-vf", vec![(PF_MAC, "0c:42:a1:00:00:00"), (VF, "65536")], "logical port big-vf: vif-plug:representor:vf-num=\"65536\""),
        ("no-mac", vec![(VF, "3")], "logical port no-mac: vif-plug:representor:pf-mac is missing"),
        ("both", vec![(PF_MAC, "0c:42:a1:00:00:00"), (VF, "3"), (SF, "88")], "logical port both: vif-plug:representor:vf-num and vif-plug:representor:sf-num are both given"),
    ] {
        // What the provider logged is the decline's reason.
        match answer(&r, lport, &options).err() {
            Some(PrepareError::Declined(Some(said))) => assert!(said.contains(needle), "{said}"),
            other => panic!("{lport}: {other:?}"),
        }
        let lines = logs_matching(needle);
        assert_eq!(lines.len(), 1, "{needle}: {lines:?}");
        assert_eq!(lines[0].level, log::Level::Error);
        assert_eq!(lines[0].target, "provider::representor");
    }
    // REMOVE needs nothing from devlink.
    r.get("representor")
        .unwrap()
        .prepare_remove(&request("vm1", &[]))
        .unwrap()
        .finish();
}

#[test]
fn a_broken_replay_file_fails_init_with_its_line_number() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-devlink", "vif_plug_devlink", dir.path());
    let path = dir.path().join("bad.replay");
    fs::write(&path, "# ok\nzz\n").unwrap();
    // A separate process: each test binary gets its own provider instance.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .args(["check", "--provider-config"])
        .arg(format!("representor:replay={}", path.display()))
        .arg(&so)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("bad.replay: line 2:"), "{report}");
}
