//! The routine events of a real cloud that must not cut traffic, and the
//! configurations that must come up, each against real daemons from
//! Debian's packages (see docs/architecture.md, "The rules"). Where a port
//! must be kept, the test counts Interface UUIDs before and after; where
//! one must go, a port deleted in the same run is the proof that the agent
//! was able to unplug and chose not to touch the others.

mod common;

use common::{plug, AgentProc, Env, Veth};
use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;
use testkit::cargo_cdylib;
use testkit::sandbox::Daemon;

/// A short settle time, so that tests that unplug need not wait the
/// default 10 s after the agent connects.
const SETTLE: &[&str] = &["--unplug-settle", "1000"];

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Plugs `n` ports `prefix0..` and `gone`, and returns the UUIDs of the
/// `n` once all are plugged.
fn plug_many(env: &Env, prefix: &str, n: usize) -> BTreeMap<String, String> {
    let mut all = names(prefix, n);
    all.push("gone".into());
    env.add_plugged_lsps(&all, &[]);
    env.wait_for(
        Duration::from_secs(60),
        &format!("{} ports plugged", n + 1),
        || env.plugged().len() == n + 1,
    );
    let mut uuids = env.plugged();
    uuids.remove("gone");
    uuids
}

#[test]
fn a_re_registered_chassis_unplugs_nothing_and_a_deleted_port_still_goes() {
    let env = Env::start_args(SETTLE);
    let before = plug_many(&env, "p", 100);

    // The chassis row deleted; ovn-controller registers it again at once,
    // under a new UUID, and ovn-northd re-resolves requested_chassis.
    env.sb.sbctl(&["chassis-del", "chassis-1"]).unwrap();
    env.sb.nbctl(&["lsp-del", "gone"]).unwrap();
    env.wait("the deleted port unplugged", || !env.iface_exists("gone"));
    assert_eq!(env.plugged(), before, "{}", env.agent.log());

    // ovn-controller stopping without --restart deletes its chassis; it is
    // away for a while, and a port is deleted meanwhile.
    plug(&env, "gone2", &[]);
    // Only what the agent logs from now on counts: the first step above
    // logged the same line.
    let exit_at = env.agent.log().len();
    env.sb
        .appctl(Daemon::OvnController, &["exit"])
        .expect("ovn-appctl exit");
    env.wait("the agent saw the chassis go", || {
        env.agent.log()[exit_at..]
            .contains("our Chassis row \"chassis-1\" is not in the Southbound")
    });
    env.sb.nbctl(&["lsp-del", "gone2"]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        env.iface_exists("gone2"),
        "nothing is unplugged while our chassis row is missing"
    );
    env.sb.start_daemon(Daemon::OvnController).unwrap();
    env.wait("the port deleted meanwhile unplugged", || {
        !env.iface_exists("gone2")
    });
    assert_eq!(env.plugged(), before, "{}", env.agent.log());
    env.wait("all bound again", || env.up("p0") && env.up("p99"));
}

#[test]
fn a_southbound_rebuilt_from_scratch_unplugs_nothing_and_a_deleted_port_still_goes() {
    let env = Env::start_args(SETTLE);
    let before = plug_many(&env, "p", 100);
    // ovn-controller has bound them before the database goes.
    env.wait_for(Duration::from_secs(60), "all bound", || {
        env.up("p0") && env.up("p99")
    });

    // Deleted while the Southbound is down: only the rebuilt database can
    // tell.
    env.sb.stop(Daemon::SbDb).unwrap();
    env.sb.nbctl(&["lsp-del", "gone"]).unwrap();
    env.sb.recreate_database(Daemon::SbDb).unwrap();
    env.wait_for(
        Duration::from_secs(60),
        "the deleted port unplugged once ovn-northd repopulated the Southbound",
        || !env.iface_exists("gone"),
    );
    assert_eq!(env.plugged(), before, "{}", env.agent.log());
    let log = env.agent.log();
    assert!(
        log.contains("has not been populated by ovn-northd")
            || log.contains("is not in the Southbound"),
        "the agent said why it waited:\n{log}"
    );
    // Binding is ovn-controller's part. Debian's ovn-controller (23.03)
    // has been seen, after its Southbound was replaced by an empty one and
    // rebuilt, to reconnect and then never claim the ports again (its log
    // silent, `recompute` no help), with every interface of the agent in
    // place: restarted, as an operator would, it claims them.
    let bound = |env: &Env| env.up("p0") && env.up("p99");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !bound(&env) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    if !bound(&env) {
        eprintln!("ovn-controller has not bound the ports after the rebuild: restarting it");
        env.sb.stop(Daemon::OvnController).unwrap();
        env.sb.start_daemon(Daemon::OvnController).unwrap();
    }
    env.wait_for(Duration::from_secs(60), "all bound again", || bound(&env));
    assert_eq!(env.plugged(), before, "{}", env.agent.log());
}

#[test]
fn a_southbound_restored_from_an_older_copy_unplugs_nothing() {
    // The default settle time: this is what it is for.
    let env = Env::start();
    plug(&env, "old", &[]);
    // An operator's copy of the database, taken now...
    env.sb.stop(Daemon::SbDb).unwrap();
    let db = env.sb.dir().join("sb.db");
    let copy = env.sb.dir().join("sb.db.copy");
    fs::copy(&db, &copy).unwrap();
    env.sb.start_daemon(Daemon::SbDb).unwrap();
    // ...a port created after it...
    plug(&env, "new", &[]);
    let before = env.plugged();
    // ...and the copy restored: `new` has no binding until ovn-northd
    // brings the database up to date.
    env.sb.stop(Daemon::SbDb).unwrap();
    let restored_at = env.agent.log().len();
    fs::copy(&copy, &db).unwrap();
    env.sb.start_daemon(Daemon::SbDb).unwrap();
    env.wait_for(
        Duration::from_secs(30),
        "the view current again after the settle time",
        || env.agent.log()[restored_at..].contains("the view is complete and current"),
    );
    assert!(
        env.agent.log()[restored_at..].contains(
            "logical port new: binding not in view, and the Southbound held data at the first look"
        ),
        "{}",
        env.agent.log()
    );
    // A port deleted now still goes: the agent can unplug.
    env.sb.nbctl(&["lsp-del", "old"]).unwrap();
    env.wait("the deleted port unplugged", || !env.iface_exists("old"));
    let mut after = env.plugged();
    after.insert("old".into(), before["old"].clone());
    assert_eq!(after, before, "{}", env.agent.log());
}

#[test]
fn live_migration_keeps_the_port_until_it_is_requested_elsewhere_only() {
    let env = Env::start_args(SETTLE);
    plug(&env, "vm1", &[]);
    let uuid = env.iface("vm1", "_uuid");
    env.sb
        .sbctl(&["chassis-add", "hv2", "geneve", "127.0.0.2"])
        .unwrap();
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "vm1",
            "requested-chassis=hv2,chassis-1",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    env.wait("vm1 kept as additional", || {
        env.agent
            .log()
            .contains("logical port vm1: requested here as an additional chassis")
    });
    assert_eq!(env.iface("vm1", "_uuid"), uuid, "kept untouched");
    // Migrated: requested on hv2 alone.
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "vm1",
            "requested-chassis=hv2",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    env.wait("vm1 unplugged", || !env.iface_exists("vm1"));
    env.wait_logged(
        "unplugged logical port vm1: removed interface vm1, because it is requested on another chassis",
    );
}

#[test]
fn iface_id_ver_is_copied_so_ovn_controller_claims_the_port() {
    let env = Env::start();
    plug(&env, "lsp1", &["iface-id-ver=v1"]);
    env.wait("lsp1 up", || env.up("lsp1"));
    assert_eq!(
        env.iface("lsp1", "external_ids:iface-id-ver").as_deref(),
        Some("v1")
    );
    let uuid = env.iface("lsp1", "_uuid");
    // A new version is written in place, and the port stays claimed.
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "lsp1",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
            "iface-id-ver=v2",
        ])
        .unwrap();
    env.wait("iface-id-ver updated", || {
        env.iface("lsp1", "external_ids:iface-id-ver").as_deref() == Some("v2")
    });
    assert_eq!(env.iface("lsp1", "_uuid"), uuid, "updated in place");
    env.wait("lsp1 up with v2", || env.up("lsp1"));
    // Withdrawn: removed from the interface.
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "lsp1",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    env.wait("iface-id-ver removed", || {
        env.iface("lsp1", "external_ids:iface-id-ver").is_none()
    });
    assert_eq!(env.iface("lsp1", "_uuid"), uuid);
}

#[test]
fn an_interface_we_plugged_on_another_bridge_is_never_touched() {
    let env = Env::start_with(|sb, dir| {
        sb.vsctl(&[
            "add-br",
            "br-ex",
            "--",
            "set",
            "Bridge",
            "br-ex",
            "datapath_type=netdev",
            "--",
            "add-port",
            "br-ex",
            "exvif",
            "--",
            "set",
            "Interface",
            "exvif",
            "type=internal",
            "external_ids:iface-id=ex-lport",
            "external_ids:ovn-plugged=dummy",
        ])
        .unwrap();
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        SETTLE.iter().map(|s| s.to_string()).collect()
    });
    let uuid = env.iface("exvif", "_uuid");
    // Proof that the agent unplugs by now: a deleted port goes.
    plug(&env, "lsp1", &[]);
    env.sb.nbctl(&["lsp-del", "lsp1"]).unwrap();
    env.wait("lsp1 unplugged", || !env.iface_exists("lsp1"));
    // Its logical port does not exist; it is on br-ex: left alone.
    assert_eq!(env.iface("exvif", "_uuid"), uuid);
    assert_eq!(env.sb.vsctl(&["port-to-br", "exvif"]).unwrap(), "br-ex");
    let warnings = env.log_lines(
        "interface exvif (logical port ex-lport) carries external_ids:ovn-plugged but stands on bridge br-ex",
    );
    assert_eq!(warnings.len(), 1, "{}", env.agent.log());
}

#[test]
fn a_changed_integration_bridge_moves_the_plugged_ports() {
    let env = Env::start_args(SETTLE);
    plug(&env, "lsp1", &[]);
    plug(&env, "lsp2", &[]);
    env.sb
        .vsctl(&[
            "add-br",
            "br-new",
            "--",
            "set",
            "Bridge",
            "br-new",
            "datapath_type=netdev",
        ])
        .unwrap();
    env.sb
        .vsctl(&["set", "Open_vSwitch", ".", "external_ids:ovn-bridge=br-new"])
        .unwrap();
    env.wait("both moved to br-new", || {
        ["lsp1", "lsp2"]
            .iter()
            .all(|p| env.sb.vsctl(&["port-to-br", p]).ok().as_deref() == Some("br-new"))
    });
    env.wait_logged("integration bridge changed to br-new");
    env.wait_logged("replaced interface lsp1 of logical port lsp1 by lsp1 (type internal) on br-new, provider dummy, because it stands on br-int, which is no longer the integration bridge");
    assert_eq!(
        env.iface("lsp1", "external_ids:iface-id").as_deref(),
        Some("lsp1")
    );
    // Ports created from now on go to br-new too.
    plug(&env, "lsp3", &[]);
    assert_eq!(env.sb.vsctl(&["port-to-br", "lsp3"]).unwrap(), "br-new");
}

#[test]
fn a_second_agent_on_the_same_database_writes_nothing_until_the_first_stops() {
    let mut env = Env::start();
    plug(&env, "lsp1", &[]);
    let mut second = AgentProc::start(&env.sb, &env.provider_dir, &[]);
    let waiting = |a: &AgentProc| {
        a.log()
            .contains("another client holds lock \"vif_plug_host\" on the local database")
    };
    env.wait("the second agent waits for the lock", || waiting(&second));
    plug(&env, "lsp2", &[]);
    assert!(
        !second.log().contains("plugged logical port"),
        "{}",
        second.log()
    );
    // An operator asking the second one is told it stands by.
    let show = second.appctl(&["vif-plug/show"]).unwrap();
    assert!(
        show.starts_with("standby: another client (a second vif-plug-host?) holds the lock on the local database"),
        "{show}"
    );
    assert!(
        show.contains("lsp1: not decided (provider dummy, interface lsp1, ofport ")
            && show.contains("this agent decides and writes nothing"),
        "{show}"
    );
    // The first stops: the second takes over.
    assert!(env.agent.stop().success());
    env.wait("the second agent holds the lock", || {
        second.log().contains("acquired: writing from now on")
    });
    plug(&env, "lsp3", &[]);
    // The interface is visible before the agent reads the commit's reply.
    env.wait("the second agent logs the plug", || {
        second.log().contains("plugged logical port lsp3")
    });
    assert!(second.stop().success());
    env.agent = second;
}

#[test]
fn withdrawing_vif_plug_type_unplugs_the_port() {
    let env = Env::start_args(SETTLE);
    plug(&env, "lsp1", &[]);
    env.sb
        .nbctl(&["lsp-set-options", "lsp1", "requested-chassis=chassis-1"])
        .unwrap();
    env.wait("lsp1 unplugged", || !env.iface_exists("lsp1"));
    env.wait_logged(
        "unplugged logical port lsp1: removed interface lsp1, because the CMS removed vif-plug-type from it",
    );
}

#[test]
fn an_mtu_with_a_trailing_space_is_ignored_and_said_once() {
    let env = Env::start();
    plug(&env, "lsp1", &["vif-plug-mtu-request=1500 "]);
    assert_eq!(env.iface("lsp1", "mtu_request").as_deref(), Some("[]"));
    // Another change to the port: the same bad value is not said again.
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "lsp1",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
            "vif-plug-mtu-request=1500 ",
            "other=1",
        ])
        .unwrap();
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "lsp1",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
            "vif-plug-mtu-request=1400",
            "other=1",
        ])
        .unwrap();
    env.wait("the MTU once it is valid", || {
        env.iface("lsp1", "mtu_request").as_deref() == Some("1400")
    });
    let said = env.log_lines("vif-plug-mtu-request=\"1500 \" is not a decimal number");
    assert_eq!(said.len(), 1, "{}", env.agent.log());
}

#[test]
fn a_re_check_that_changes_nothing_is_finished_then_destroyed() {
    let mut env = Env::start_with(|_, dir| {
        testkit::c_test_provider(dir, &["LOG_CALLS"], "libc_test_provider.so");
        Vec::new()
    });
    env.add_lsp(
        "lsp1",
        &["requested-chassis=chassis-1", "vif-plug-type=c-test"],
    );
    env.wait("plugged", || env.iface_exists("c-lsp1"));
    let uuid = env.iface("c-lsp1", "_uuid");
    assert!(env.agent.stop().success());
    // A restarted agent adopts the port: it asks the provider, finds the
    // interface as it should be, and pairs finish with ctx_destroy.
    env.agent = AgentProc::start(&env.sb, &env.provider_dir, &[]);
    env.wait("adopted", || {
        env.agent.log().contains("call ctx-destroy:lsp1")
    });
    let calls: Vec<String> = env
        .log_lines("call ")
        .iter()
        .filter_map(|l| l.split("call ").nth(1).map(str::to_owned))
        .filter(|c| c.ends_with(":lsp1"))
        .collect();
    assert_eq!(
        calls,
        ["prepare:lsp1", "finish:lsp1", "ctx-destroy:lsp1"],
        "{}",
        env.agent.log()
    );
    assert_eq!(env.iface("c-lsp1", "_uuid"), uuid, "nothing written");
}

#[test]
fn a_representor_answer_that_changes_replaces_the_interface() {
    use vif_plug_devlink::message::{consts::*, PortAttr};
    // Two representors, real veths: VF 0 and VF 1 of one PF.
    let id = std::process::id() % 10_000;
    let (rep0, rep1, renamed) = (format!("vfa{id}"), format!("vfb{id}"), format!("vfc{id}"));
    // In the namespace of ovs-vswitchd and the agent, whose devlink
    // provider follows the rename there (rtnetlink and sysfs).
    let ns = common::private_netns();
    let _v0 = Veth::create(&ns, &rep0);
    let mut v1 = Veth::create(&ns, &rep1);
    let vf = |index: u32, netdev: &str, n: u16| {
        common::devlink_port_new(
            index,
            FLAVOUR_PCI_VF,
            netdev,
            vec![
                PortAttr::PfNumber(0),
                PortAttr::VfNumber(n),
                PortAttr::NetdevIfindex(ns.ifindex(netdev).unwrap()),
            ],
        )
    };
    let replay = [common::devlink_pf0(), vf(2, &rep0, 0), vf(3, &rep1, 1)].join("\n");
    let env = Env::start_devlink(ns, &replay, &["--provider-run-interval", "100"]);
    let options = |vf: &str| {
        vec![
            "requested-chassis=chassis-1".to_owned(),
            "vif-plug-type=representor".to_owned(),
            "vif-plug:representor:pf-mac=0c:42:a1:00:00:00".to_owned(),
            format!("vif-plug:representor:vf-num={vf}"),
        ]
    };
    let set = |vf: &str| {
        let mut args = vec!["lsp-set-options".to_owned(), "vm1".to_owned()];
        args.extend(options(vf));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.sb.nbctl(&args).unwrap();
    };
    env.sb.nbctl(&["lsp-add", "sw0", "vm1"]).unwrap();
    set("0");
    env.wait("VF 0 plugged", || env.iface_exists(&rep0));

    // The CMS moves the port to VF 1: one transaction removes the old
    // representor and plugs the new one.
    set("1");
    env.wait("VF 1 plugged instead", || {
        env.iface_exists(&rep1) && !env.iface_exists(&rep0)
    });
    assert_eq!(
        env.iface(&rep1, "external_ids:iface-id").as_deref(),
        Some("vm1")
    );
    env.wait_logged(&format!(
        "replaced interface {rep0} of logical port vm1 by {rep1}"
    ));

    // udev renames the representor after it was plugged.
    v1.rename(&renamed);
    env.wait("the renamed representor plugged instead", || {
        env.iface_exists(&renamed) && !env.iface_exists(&rep1)
    });
    env.wait_logged(&format!(
        "because the provider now names interface \"{renamed}\" instead of \"{rep1}\""
    ));
    env.wait("an OpenFlow port for the renamed representor", || {
        env.iface(&renamed, "ofport")
            .is_some_and(|p| p.parse::<i64>().is_ok_and(|p| p > 0))
    });
}

/// The agent with the C test provider (type `c-test`, names from the
/// option `vif-plug:c-test:name`) and the dummy.
fn start_with_c_test(extra: &[&str]) -> Env {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Env::start_with(|_, dir| {
        testkit::c_test_provider(dir, &[], "libc_test_provider.so");
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        extra
    })
}

/// Sets the options of logical port `lsp`, requested on chassis-1.
fn set_options(env: &Env, lsp: &str, options: &[&str]) {
    let mut args = vec!["lsp-set-options", lsp, "requested-chassis=chassis-1"];
    args.extend_from_slice(options);
    env.sb.nbctl(&args).unwrap();
}

/// The logical port an interface stands for.
fn iface_id(env: &Env, iface: &str) -> Option<String> {
    env.iface(iface, "external_ids:iface-id")
        .map(|s| s.trim_matches('"').to_owned())
}

#[test]
fn two_ports_that_swap_names_are_replaced_in_one_transaction() {
    let env = start_with_c_test(SETTLE);
    for (lsp, name) in [("ma", "n1"), ("mb", "n2")] {
        env.sb.nbctl(&["lsp-add", "sw0", lsp]).unwrap();
        let opt = format!("vif-plug:c-test:name={name}");
        set_options(&env, lsp, &["vif-plug-type=c-test", &opt]);
    }
    env.wait("both plugged", || {
        iface_id(&env, "n1").as_deref() == Some("ma")
            && iface_id(&env, "n2").as_deref() == Some("mb")
    });
    // The provider now names ma's interface n2 and mb's n1: each needs the
    // other's name, so neither can go first; together they can.
    env.sb
        .nbctl(&[
            "--",
            "lsp-set-options",
            "ma",
            "requested-chassis=chassis-1",
            "vif-plug-type=c-test",
            "vif-plug:c-test:name=n2",
            "--",
            "lsp-set-options",
            "mb",
            "requested-chassis=chassis-1",
            "vif-plug-type=c-test",
            "vif-plug:c-test:name=n1",
        ])
        .unwrap();
    env.wait("names swapped", || {
        iface_id(&env, "n2").as_deref() == Some("ma")
            && iface_id(&env, "n1").as_deref() == Some("mb")
    });
    env.wait_logged("replaced interface n1 of logical port ma by n2");
    env.wait_logged("replaced interface n2 of logical port mb by n1");
    let log = env.agent.log();
    assert!(!log.contains("is taken by"), "{log}");
}

#[test]
fn a_replacement_waits_for_a_current_view() {
    // The default settle time: a Southbound restored from an older copy
    // names the old provider again for a moment.
    let env = start_with_c_test(&[]);
    env.sb.nbctl(&["lsp-add", "sw0", "c1"]).unwrap();
    set_options(&env, "c1", &["vif-plug-type=c-test"]);
    env.wait("plugged by c-test", || env.iface_exists("c-c1"));
    env.sb.stop(Daemon::SbDb).unwrap();
    let db = env.sb.dir().join("sb.db");
    let copy = env.sb.dir().join("sb.db.copy");
    fs::copy(&db, &copy).unwrap();
    env.sb.start_daemon(Daemon::SbDb).unwrap();
    // The CMS moves c1 to the dummy provider: replaced, once the agent's
    // start-up settle time has passed.
    set_options(&env, "c1", &["vif-plug-type=dummy"]);
    env.wait_for(Duration::from_secs(30), "plugged by the dummy", || {
        env.iface("c1", "external_ids:ovn-plugged").as_deref() == Some("dummy")
    });
    let uuid = env.iface("c1", "_uuid");
    // The older copy says c-test again until ovn-northd brings it up to
    // date: no replacement back and forth.
    env.sb.stop(Daemon::SbDb).unwrap();
    let restored_at = env.agent.log().len();
    fs::copy(&copy, &db).unwrap();
    env.sb.start_daemon(Daemon::SbDb).unwrap();
    env.wait_for(Duration::from_secs(30), "the view current again", || {
        env.agent.log()[restored_at..].contains("the view is complete and current")
    });
    assert_eq!(env.iface("c1", "_uuid"), uuid, "{}", env.agent.log());
    assert!(!env.iface_exists("c-c1"));
    assert!(
        env.agent.log()[restored_at..].contains("logical port c1: interface due to be replaced because vif-plug-type no longer names \"dummy\""),
        "{}",
        env.agent.log()
    );
}

#[test]
fn a_chassis_re_created_without_its_hostname_keeps_ports_requested_by_hostname() {
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let env = Env::start_args(SETTLE);
    let requested = format!("requested-chassis={hostname}");
    env.sb.nbctl(&["lsp-add", "sw0", "h1"]).unwrap();
    env.sb
        .nbctl(&["lsp-set-options", "h1", &requested, "vif-plug-type=dummy"])
        .unwrap();
    env.wait("plugged, requested by hostname", || env.iface_exists("h1"));
    let uuid = env.iface("h1", "_uuid");
    // The chassis row re-created by hand, with no hostname, while
    // ovn-controller cannot fix it.
    let pid = env.sb.pid(Daemon::OvnController).unwrap().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    signal("-STOP");
    env.sb
        .sbctl(&[
            "chassis-del",
            "chassis-1",
            "--",
            "chassis-add",
            "chassis-1",
            "geneve",
            "127.0.0.1",
        ])
        .unwrap();
    plug(&env, "gone", &[]);
    env.sb.nbctl(&["lsp-del", "gone"]).unwrap();
    env.wait("the agent can unplug meanwhile", || {
        !env.iface_exists("gone")
    });
    signal("-CONT");
    assert_eq!(env.iface("h1", "_uuid"), uuid, "{}", env.agent.log());
    env.wait("h1 up again", || env.up("h1"));
    assert_eq!(env.iface("h1", "_uuid"), uuid, "{}", env.agent.log());
}

#[test]
fn an_empty_iface_id_ver_is_copied_and_the_port_comes_up() {
    let env = Env::start();
    plug(&env, "lsp1", &["iface-id-ver="]);
    assert_eq!(
        env.iface("lsp1", "external_ids:iface-id-ver").as_deref(),
        Some("\"\"")
    );
    env.wait("lsp1 up", || env.up("lsp1"));
}

#[test]
fn unplugging_from_a_port_shared_with_another_program_keeps_its_interfaces() {
    let env = Env::start_args(SETTLE);
    plug(&env, "lsp1", &[]);
    // Another program bonds an interface of its own into our Port.
    env.sb
        .vsctl(&[
            "--",
            "--id=@i",
            "create",
            "Interface",
            "name=mate",
            "type=internal",
            "--",
            "add",
            "Port",
            "lsp1",
            "interfaces",
            "@i",
        ])
        .unwrap();
    env.sb.nbctl(&["lsp-del", "lsp1"]).unwrap();
    env.wait("our interface gone", || !env.iface_exists("lsp1"));
    assert!(env.iface_exists("mate"), "{}", env.agent.log());
    assert_eq!(env.sb.vsctl(&["iface-to-br", "mate"]).unwrap(), "br-int");
}

#[test]
fn an_integration_bridge_changed_while_the_agent_was_down_still_moves_its_ports() {
    let mut env = Env::start();
    plug(&env, "lsp1", &[]);
    assert_eq!(
        env.iface("lsp1", "external_ids:vif-plug-bridge").as_deref(),
        Some("br-int")
    );
    assert!(env.agent.stop().success());
    env.sb
        .vsctl(&[
            "add-br",
            "br-new",
            "--",
            "set",
            "Bridge",
            "br-new",
            "datapath_type=netdev",
            "--",
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:ovn-bridge=br-new",
        ])
        .unwrap();
    env.agent = AgentProc::start(&env.sb, &env.provider_dir, &[]);
    env.wait("moved to br-new", || {
        env.sb.vsctl(&["port-to-br", "lsp1"]).ok().as_deref() == Some("br-new")
    });
    assert_eq!(
        env.iface("lsp1", "external_ids:vif-plug-bridge").as_deref(),
        Some("br-new")
    );
}

#[test]
fn a_plug_decides_only_the_ports_it_touches() {
    let env = Env::start();
    let names: Vec<String> = (0..20).map(|i| format!("q{i}")).collect();
    env.add_plugged_lsps(&names, &[]);
    env.wait("20 plugged", || env.plugged().len() == 20);
    // Claimed and up: ovn-controller and ovn-northd have written what they
    // write for those 20 (each such update touches them all), so that a
    // slow machine does not count those decisions against the next plug.
    env.wait("20 up", || names.iter().all(|n| env.up(n)));
    // Until the lookups of those 20 are answered and all is quiet.
    std::thread::sleep(Duration::from_secs(1));
    let from = env.agent.log().len();
    plug(&env, "one-more", &[]);
    std::thread::sleep(Duration::from_secs(1));
    let log = env.agent.log();
    let decided: Vec<usize> = log[from..]
        .lines()
        .filter_map(|l| l.split("decided ").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect();
    assert!(!decided.is_empty(), "{log}");
    assert!(
        decided.iter().all(|&n| n <= 2),
        "decisions per iteration after one plug: {decided:?}"
    );
}

#[test]
fn a_chassis_name_changed_for_a_moment_unplugs_nothing() {
    let env = Env::start_args(SETTLE);
    plug(&env, "lsp1", &[]);
    let uuid = env.iface("lsp1", "_uuid");
    env.sb
        .sbctl(&["chassis-add", "hv2", "geneve", "127.0.0.2"])
        .unwrap();
    env.wait("the start-up settle time over", || {
        env.agent.log().contains("the view is complete and current")
    });
    env.sb
        .vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=hv2"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    env.sb
        .vsctl(&[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:system-id=chassis-1",
        ])
        .unwrap();
    // Proof the agent unplugs again by now: a deleted port goes.
    plug(&env, "gone", &[]);
    env.sb.nbctl(&["lsp-del", "gone"]).unwrap();
    env.wait("the deleted port unplugged", || !env.iface_exists("gone"));
    assert_eq!(env.iface("lsp1", "_uuid"), uuid, "{}", env.agent.log());
    assert!(env
        .agent
        .log()
        .contains("chassis name changed from \"chassis-1\" to \"hv2\""));
}

#[test]
fn a_mistyped_mtu_leaves_the_interface_mtu_as_it_is() {
    let env = Env::start();
    plug(&env, "lsp1", &["vif-plug-mtu-request=1400"]);
    assert_eq!(env.iface("lsp1", "mtu_request").as_deref(), Some("1400"));
    set_options(
        &env,
        "lsp1",
        &["vif-plug-type=dummy", "vif-plug-mtu-request=1400x", "x=1"],
    );
    env.wait("the warning", || {
        env.agent
            .log()
            .contains("vif-plug-mtu-request=\"1400x\" is not a decimal number")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.iface("lsp1", "mtu_request").as_deref(), Some("1400"));
}

#[test]
fn a_southbound_restored_under_a_live_connection_unplugs_nothing() {
    let env = Env::start_args(SETTLE);
    plug(&env, "a1", &[]);
    env.wait("the start-up settle time over", || {
        env.agent.log().contains("the view is complete and current")
    });
    let backup = env.sb.dir().join("backup.db");
    let out = std::process::Command::new("ovsdb-client")
        .args(["backup", &env.sb.sb_remote(), "OVN_Southbound"])
        .output()
        .unwrap();
    assert!(out.status.success());
    fs::write(&backup, out.stdout).unwrap();
    plug(&env, "a2", &[]);
    let uuid = env.iface("a2", "_uuid");
    // Restored in one transaction, with ovn-northd paused for a moment (as
    // an operator would, or as a busy ovn-northd is): a2's binding is gone
    // until ovn-northd adds it again.
    env.sb.appctl(Daemon::Northd, &["pause"]).unwrap();
    let restore = std::process::Command::new("ovsdb-client")
        .args(["restore", &env.sb.sb_remote(), "OVN_Southbound"])
        .stdin(fs::File::open(&backup).unwrap())
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    env.sb.appctl(Daemon::Northd, &["resume"]).unwrap();
    // Past the settle time, with a port deleted to prove unplugs resumed.
    env.sb.nbctl(&["lsp-del", "a1"]).unwrap();
    env.wait("a1 unplugged", || !env.iface_exists("a1"));
    assert_eq!(env.iface("a2", "_uuid"), uuid, "{}", env.agent.log());
    assert!(env.agent.log().contains("SB_Global was replaced"));
}

#[test]
fn a_swap_asked_for_in_two_steps_still_commits() {
    let env = start_with_c_test(SETTLE);
    for (lsp, name) in [("ma", "n1"), ("mb", "n2")] {
        env.sb.nbctl(&["lsp-add", "sw0", lsp]).unwrap();
        let opt = format!("vif-plug:c-test:name={name}");
        set_options(&env, lsp, &["vif-plug-type=c-test", &opt]);
    }
    env.wait("both plugged", || {
        iface_id(&env, "n1").as_deref() == Some("ma")
            && iface_id(&env, "n2").as_deref() == Some("mb")
    });
    env.wait("the start-up settle time over", || {
        env.agent.log().contains("the view is complete and current")
    });
    // One half of the swap, then the other, each in its own transaction.
    set_options(
        &env,
        "ma",
        &["vif-plug-type=c-test", "vif-plug:c-test:name=n2"],
    );
    std::thread::sleep(Duration::from_millis(500));
    set_options(
        &env,
        "mb",
        &["vif-plug-type=c-test", "vif-plug:c-test:name=n1"],
    );
    env.wait("names swapped", || {
        iface_id(&env, "n2").as_deref() == Some("ma")
            && iface_id(&env, "n1").as_deref() == Some("mb")
    });
}

#[test]
fn a_chassis_re_created_keeps_ports_requested_by_its_per_chassis_hostname() {
    // ovn-controller registers external_ids:hostname-<chassis> before
    // external_ids:hostname and the system's.
    let env = Env::start_with(|sb, dir| {
        sb.vsctl(&[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:hostname-chassis-1=hv-special",
        ])
        .unwrap();
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        SETTLE.iter().map(|s| s.to_string()).collect()
    });
    env.wait("the chassis registered as hv-special", || {
        env.sb
            .sbctl(&["--bare", "--columns=hostname", "list", "Chassis"])
            .is_ok_and(|h| h.contains("hv-special"))
    });
    env.sb.nbctl(&["lsp-add", "sw0", "h1"]).unwrap();
    env.sb
        .nbctl(&[
            "lsp-set-options",
            "h1",
            "requested-chassis=hv-special",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    env.wait("plugged, requested by hostname", || env.iface_exists("h1"));
    let uuid = env.iface("h1", "_uuid");
    let pid = env.sb.pid(Daemon::OvnController).unwrap().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    signal("-STOP");
    env.sb
        .sbctl(&[
            "chassis-del",
            "chassis-1",
            "--",
            "chassis-add",
            "chassis-1",
            "geneve",
            "127.0.0.1",
        ])
        .unwrap();
    plug(&env, "gone", &[]);
    env.sb.nbctl(&["lsp-del", "gone"]).unwrap();
    env.wait("the agent can unplug meanwhile", || {
        !env.iface_exists("gone")
    });
    signal("-CONT");
    assert_eq!(env.iface("h1", "_uuid"), uuid, "{}", env.agent.log());
}

#[test]
fn a_copy_restored_into_an_empty_southbound_unplugs_nothing() {
    let env = Env::start_args(SETTLE);
    plug(&env, "a1", &[]);
    let out = std::process::Command::new("ovsdb-client")
        .args(["backup", &env.sb.sb_remote(), "OVN_Southbound"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let backup = env.sb.dir().join("backup.db");
    fs::write(&backup, out.stdout).unwrap();
    plug(&env, "a2", &[]);
    let uuid = env.iface("a2", "_uuid");
    env.wait("the start-up settle time over", || {
        env.agent.log().contains("the view is complete and current")
    });
    // An empty Southbound, then the copy (which lacks a2) restored into
    // it, with ovn-northd paused for a moment.
    env.sb.appctl(Daemon::Northd, &["pause"]).unwrap();
    env.sb.recreate_database(Daemon::SbDb).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let restore = std::process::Command::new("ovsdb-client")
        .args(["restore", &env.sb.sb_remote(), "OVN_Southbound"])
        .stdin(fs::File::open(&backup).unwrap())
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    env.sb.appctl(Daemon::Northd, &["resume"]).unwrap();
    env.sb.nbctl(&["lsp-del", "a1"]).unwrap();
    env.wait_for(Duration::from_secs(30), "a1 unplugged", || {
        !env.iface_exists("a1")
    });
    assert_eq!(env.iface("a2", "_uuid"), uuid, "{}", env.agent.log());
}

#[test]
fn a_per_chassis_integration_bridge_is_followed() {
    let env = Env::start_args(SETTLE);
    plug(&env, "lsp1", &[]);
    env.sb
        .vsctl(&[
            "add-br",
            "br-x",
            "--",
            "set",
            "Bridge",
            "br-x",
            "datapath_type=netdev",
            "--",
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:ovn-bridge-chassis-1=br-x",
        ])
        .unwrap();
    env.wait("moved to br-x", || {
        env.sb.vsctl(&["port-to-br", "lsp1"]).ok().as_deref() == Some("br-x")
    });
}

/// Between the agent and the Southbound: forwards both ways; while armed,
/// holds each `monitor_cond_change` the agent sends for `delay` on its way
/// to the server, and its reply as long again on the way back, so the
/// rows the change sends arrive well before its reply (our client writes
/// one message per line; the server's messages are read as a JSON stream).
struct CondChangeDelay {
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Condition changes forwarded, and how many were held.
    seen: std::sync::Arc<std::sync::Mutex<(Vec<String>, usize)>>,
    path: std::path::PathBuf,
}

impl CondChangeDelay {
    fn start(dir: &std::path::Path, upstream: &str, delay: Duration) -> CondChangeDelay {
        use serde_json::value::RawValue;
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        let path = dir.join("sb-delay.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let upstream = std::path::PathBuf::from(upstream.strip_prefix("unix:").unwrap());
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((Vec::new(), 0)));
        let (a, sn) = (armed.clone(), seen.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = UnixStream::connect(&upstream) else {
                    break;
                };
                let held_id: Arc<Mutex<Option<serde_json::Value>>> = Arc::default();
                let mut to_server = server.try_clone().unwrap();
                let from_agent = client.try_clone().unwrap();
                let (a, sn, held) = (a.clone(), sn.clone(), held_id.clone());
                std::thread::spawn(move || {
                    for line in BufReader::new(from_agent).lines() {
                        let Ok(line) = line else { break };
                        if line.contains("\"monitor_cond_change\"") {
                            if a.load(Ordering::SeqCst) {
                                let msg: serde_json::Value = serde_json::from_str(&line).unwrap();
                                *held.lock().unwrap() = Some(msg["id"].clone());
                                sn.lock().unwrap().1 += 1;
                                std::thread::sleep(delay);
                            }
                            sn.lock().unwrap().0.push(line.clone());
                        }
                        if to_server.write_all(format!("{line}\n").as_bytes()).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                });
                let mut to_agent = client;
                std::thread::spawn(move || {
                    let messages = serde_json::Deserializer::from_reader(BufReader::new(server))
                        .into_iter::<Box<RawValue>>();
                    for msg in messages {
                        let Ok(msg) = msg else { break };
                        let id = serde_json::from_str::<serde_json::Value>(msg.get())
                            .ok()
                            .map(|v| v["id"].clone());
                        let mut held = held_id.lock().unwrap();
                        if id.is_some() && *held == id && msg.get().contains("\"result\"") {
                            *held = None;
                            drop(held);
                            std::thread::sleep(delay);
                        } else {
                            drop(held);
                        }
                        if to_agent.write_all(msg.get().as_bytes()).is_err() {
                            break;
                        }
                    }
                    let _ = to_agent.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CondChangeDelay { armed, seen, path }
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    fn arm(&self, on: bool) {
        self.armed.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn forwarded(&self) -> Vec<String> {
        self.seen.lock().unwrap().0.clone()
    }

    fn held(&self) -> usize {
        self.seen.lock().unwrap().1
    }
}

/// Found by trying to break the agent: a lookup the server still has is
/// no proof while a condition change that drops it is on its way, since
/// the server may apply that change (and send the binding's row as
/// leaving the view) before the agent reads the reply.
#[test]
fn a_binding_leaving_the_view_while_its_lookup_is_being_dropped_is_kept() {
    let mut proxy = None;
    let env = Env::start_with(|sb, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        let p = CondChangeDelay::start(sb.dir(), &sb.sb_remote(), Duration::from_secs(2));
        let remote = p.remote();
        proxy = Some(p);
        let mut args = vec!["--ovnsb-remote".to_owned(), remote];
        args.extend(SETTLE.iter().map(|s| s.to_string()));
        args
    });
    let proxy = proxy.unwrap();
    let set = |options: &[&str]| {
        let mut args = vec!["lsp-set-options", "lsp1", "vif-plug-type=dummy"];
        args.extend_from_slice(options);
        env.sb.nbctl(&args).unwrap();
    };
    plug(&env, "lsp1", &[]);
    env.wait("the view current", || {
        env.agent.log().contains("the view is complete and current")
    });
    let before = env.plugged();
    let lookup = r#"["logical_port","==","lsp1"]"#;

    // Placed anywhere: the binding leaves the chassis clauses and the agent
    // looks it up by name.
    set(&[]);
    env.wait("the lookup of lsp1 sent", || {
        proxy.forwarded().iter().any(|l| l.contains(lookup))
    });
    std::thread::sleep(Duration::from_millis(500));

    // Requested here again: the agent drops the lookup, and that change is
    // held on its way...
    proxy.arm(true);
    set(&["requested-chassis=chassis-1"]);
    env.wait("the change dropping the lookup held", || proxy.held() == 1);
    // ...while the binding leaves the chassis clauses again. The server
    // sends a modification under the old condition, then, once the held
    // change arrives, the row as leaving the view, and then its reply,
    // which the proxy holds too.
    set(&[]);
    std::thread::sleep(Duration::from_millis(5000));
    proxy.arm(false);
    env.wait("the lookup of lsp1 sent again", || {
        proxy
            .forwarded()
            .iter()
            .filter(|l| l.contains(lookup))
            .count()
            >= 2
    });
    std::thread::sleep(Duration::from_millis(1000));
    let log = env.agent.log();
    assert!(
        !log.contains("unplugged logical port lsp1"),
        "lsp1 was unplugged without proof:\n{log}"
    );
    assert_eq!(env.plugged(), before, "{log}");
}
