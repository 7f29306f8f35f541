//! End-to-end check of the OVN sandbox: a port plugged by hand on `br-int`
//! is claimed by the sandbox's `ovn-controller`, survives restarts of the
//! Southbound and local database servers, and dropping the sandbox leaves
//! no daemon behind.
//!
//! These tests need Open vSwitch and OVN installed and fail without them.

use std::time::{Duration, Instant};

use testkit::sandbox::{process_alive, wait_until, Daemon, Sandbox, SandboxOptions};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The `_uuid` of our chassis in the Southbound database.
fn chassis_uuid(sandbox: &Sandbox) -> String {
    let uuid = sandbox
        .sbctl(&[
            "--bare",
            "--columns=_uuid",
            "find",
            "Chassis",
            &format!("name={}", sandbox.chassis_name()),
        ])
        .expect("find chassis");
    assert!(!uuid.is_empty(), "chassis is not registered");
    uuid
}

/// Whether logical port `lport` is bound to `chassis` in the Southbound
/// database and reported up in the Northbound database.
fn bound(sandbox: &Sandbox, lport: &str, chassis: &str) -> bool {
    let binding = sandbox.sbctl(&[
        "--bare",
        "--columns=chassis",
        "find",
        "Port_Binding",
        &format!("logical_port={lport}"),
    ]);
    let up = sandbox.nbctl(&["get", "Logical_Switch_Port", lport, "up"]);
    binding.as_deref() == Ok(chassis) && up.as_deref() == Ok("true")
}

/// Plugs an internal port named `lport` for logical port `lport`.
fn plug(sandbox: &Sandbox, lport: &str) {
    sandbox
        .vsctl(&[
            "add-port",
            "br-int",
            lport,
            "--",
            "set",
            "Interface",
            lport,
            "type=internal",
            &format!("external_ids:iface-id={lport}"),
        ])
        .expect("add-port");
}

fn wait_bound(sandbox: &Sandbox, lport: &str, chassis: &str, when: &str) {
    wait_until(
        TIMEOUT,
        &format!("{lport} bound to {chassis} and up {when}"),
        || bound(sandbox, lport, chassis),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\novn-controller log:\n{}",
            std::fs::read_to_string(sandbox.log_path(Daemon::OvnController)).unwrap_or_default()
        )
    });
}

/// ovn-controller reconnects to a restarted database on its own schedule;
/// this waits for the Southbound connection before checking anything that
/// depends on it.
fn wait_sb_connected(sandbox: &Sandbox) {
    wait_until(TIMEOUT, "ovn-controller to reconnect to the SB", || {
        sandbox
            .appctl(Daemon::OvnController, &["connection-status"])
            .is_ok_and(|s| s == "connected")
    })
    .unwrap();
}

#[test]
fn plugged_port_is_bound_and_survives_database_restarts() {
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxOptions::default()).expect("start the OVN sandbox");
    let dir = sandbox.dir().to_owned();
    assert!(sandbox.ovs_remote().starts_with("unix:/"));
    let chassis = chassis_uuid(&sandbox);

    sandbox.nbctl(&["ls-add", "sw0"]).unwrap();
    sandbox.nbctl(&["lsp-add", "sw0", "lsp1"]).unwrap();
    plug(&sandbox, "lsp1");
    wait_bound(&sandbox, "lsp1", &chassis, "after plugging");
    eprintln!("bound after {:?}", started.elapsed());

    let sb_pid = sandbox.pid(Daemon::SbDb).unwrap();
    sandbox
        .restart(Daemon::SbDb)
        .expect("restart the SB ovsdb-server");
    assert_ne!(sandbox.pid(Daemon::SbDb), Some(sb_pid));
    assert!(!process_alive(sb_pid));
    wait_sb_connected(&sandbox);
    // The database file was kept, so the chassis row and the binding are
    // the same as before.
    assert_eq!(chassis_uuid(&sandbox), chassis);
    wait_bound(&sandbox, "lsp1", &chassis, "after the SB restart");

    let ovs_pid = sandbox.pid(Daemon::OvsDb).unwrap();
    sandbox
        .restart(Daemon::OvsDb)
        .expect("restart the local ovsdb-server");
    assert_ne!(sandbox.pid(Daemon::OvsDb), Some(ovs_pid));
    assert_eq!(
        sandbox
            .vsctl(&["get", "Interface", "lsp1", "external_ids:iface-id"])
            .unwrap(),
        "lsp1"
    );
    wait_bound(&sandbox, "lsp1", &chassis, "after the local db restart");

    // The whole chain still works after both restarts: a new port gets
    // bound too.
    sandbox.nbctl(&["lsp-add", "sw0", "lsp2"]).unwrap();
    plug(&sandbox, "lsp2");
    wait_bound(&sandbox, "lsp2", &chassis, "after the restarts");

    // The extra Raft members exist only in a clustered sandbox.
    let pids: Vec<(Daemon, u32)> = Daemon::ALL
        .iter()
        .filter(|&&d| !matches!(d, Daemon::SbDb2 | Daemon::SbDb3))
        .map(|&d| {
            (
                d,
                sandbox
                    .pid(d)
                    .unwrap_or_else(|| panic!("{d:?} not running")),
            )
        })
        .collect();
    drop(sandbox);
    for (daemon, pid) in pids {
        assert!(!process_alive(pid), "{daemon:?} (pid {pid}) survived drop");
    }
    if std::env::var_os(testkit::sandbox::KEEP_ENV).is_none() {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
    eprintln!("done after {:?}", started.elapsed());
}

/// Runs beside the test above, so it also shows that two sandboxes do not
/// get in each other's way.
#[test]
fn ovn_controller_args_enable_dummy_vif_plug() {
    let sandbox = Sandbox::start(SandboxOptions {
        chassis_name: "hv-dummy".into(),
        ovn_controller_args: vec!["--enable-dummy-vif-plug".into()],
        ..Default::default()
    })
    .expect("start the OVN sandbox");
    let chassis = chassis_uuid(&sandbox);
    sandbox.nbctl(&["ls-add", "sw0"]).unwrap();
    sandbox.nbctl(&["lsp-add", "sw0", "vif1"]).unwrap();
    // ovn-controller's own dummy provider creates the OVS port.
    sandbox
        .nbctl(&[
            "lsp-set-options",
            "vif1",
            "requested-chassis=hv-dummy",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    wait_bound(
        &sandbox,
        "vif1",
        &chassis,
        "after ovn-controller plugged it",
    );
    assert_eq!(
        sandbox
            .vsctl(&["get", "Interface", "vif1", "external_ids:ovn-plugged"])
            .unwrap(),
        "dummy"
    );
}

#[test]
fn failed_start_reports_the_log_and_stops_what_it_started() {
    let err = Sandbox::start(SandboxOptions {
        ovn_controller_args: vec!["--no-such-option".into()],
        ..Default::default()
    })
    .expect_err("ovn-controller must refuse the option");
    assert!(err.contains("OvnController"), "{err}");
    assert!(err.contains("unrecognized option"), "{err}");

    // The error names the directory; no process may still mention it.
    let dir = err
        .strip_prefix("OVN sandbox in ")
        .and_then(|rest| rest.split(": ").next())
        .unwrap_or_else(|| panic!("no directory in {err}"));
    let leftovers: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains(dir) && process_alive(pid)).then(|| format!("{pid}: {cmdline}"))
        })
        .collect();
    assert!(leftovers.is_empty(), "left running: {leftovers:?}");
    if std::env::var_os(testkit::sandbox::KEEP_ENV).is_none() {
        assert!(!std::path::Path::new(dir).exists(), "{dir} was not removed");
    }
}

/// With real devices in a private network namespace, `ovs-vswitchd` runs
/// there (its tap devices with it), is still the process the sandbox
/// signals and asks over `ovs-appctl`, and plugs a veth of the namespace.
#[test]
fn real_devices_live_in_the_network_namespace_given() {
    use std::os::unix::fs::MetadataExt;
    use testkit::netns::NetNs;
    let ns = NetNs::create(&format!("vifplug-tk-{}", std::process::id()))
        .expect("ip netns add (needs root)");
    let sandbox = Sandbox::start(SandboxOptions {
        dummy_netdevs: false,
        netns: Some(ns.name().to_owned()),
        ..Default::default()
    })
    .expect("start the OVN sandbox");
    let in_ns = |pid: u32| {
        let of = std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino();
        of == std::fs::metadata(format!("/run/netns/{}", ns.name()))
            .unwrap()
            .ino()
    };
    let pid = sandbox.pid(Daemon::Vswitchd).expect("ovs-vswitchd running");
    assert!(
        in_ns(pid),
        "ovs-vswitchd (pid {pid}) is not in {}",
        ns.name()
    );
    assert!(!in_ns(sandbox.pid(Daemon::OvnController).unwrap()));
    for dev in ["ovs-netdev", "br-int"] {
        ns.ifindex(dev)
            .unwrap_or_else(|e| panic!("{dev} not in the namespace: {e}"));
    }
    assert!(sandbox
        .appctl(Daemon::Vswitchd, &["version"])
        .unwrap()
        .contains("Open vSwitch"));

    // A restart goes back into the namespace and finds its devices.
    sandbox
        .restart(Daemon::Vswitchd)
        .expect("restart ovs-vswitchd");
    let pid = sandbox.pid(Daemon::Vswitchd).unwrap();
    assert!(in_ns(pid), "restarted ovs-vswitchd is not in {}", ns.name());

    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v0p"])
        .unwrap();
    ns.ip(&["link", "set", "v0", "up"]).unwrap();
    let chassis = chassis_uuid(&sandbox);
    sandbox.nbctl(&["ls-add", "sw0"]).unwrap();
    sandbox.nbctl(&["lsp-add", "sw0", "lsp1"]).unwrap();
    sandbox
        .vsctl(&[
            "add-port",
            "br-int",
            "v0",
            "--",
            "set",
            "Interface",
            "v0",
            "external_ids:iface-id=lsp1",
        ])
        .unwrap();
    let ofport = sandbox
        .vsctl(&["get", "Interface", "v0", "ofport"])
        .unwrap();
    assert!(
        ofport.parse::<i64>().is_ok_and(|p| p > 0),
        "ofport {ofport}"
    );
    wait_bound(&sandbox, "lsp1", &chassis, "after plugging the veth");

    drop(sandbox);
    assert!(
        !process_alive(pid),
        "ovs-vswitchd (pid {pid}) survived drop"
    );
    // `exit --cleanup` removed the datapath's tap devices.
    assert!(ns.ifindex("ovs-netdev").is_err());
}
