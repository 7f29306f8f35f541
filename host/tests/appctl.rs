//! The agent operated with Debian's `ovs-appctl`, against real daemons:
//! the control socket answers every command, a port whose interface
//! ovs-vswitchd cannot open is never shown as simply plugged, log levels
//! change at run time, bad requests change nothing, and `exit` stops it.

mod common;

use common::{Env, Veth};
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use vif_plug_devlink::message::{consts::*, PortAttr};

const OPTIONS: &[&str] = &[
    "requested-chassis=chassis-1",
    "vif-plug-type=representor",
    "vif-plug:representor:pf-mac=0c:42:a1:00:00:00",
];

fn add_vf_port(env: &Env, lsp: &str, vf: &str) {
    let mut options = OPTIONS.to_vec();
    let vf = format!("vif-plug:representor:vf-num={vf}");
    options.push(&vf);
    env.add_lsp(lsp, &options);
}

#[test]
fn ovs_appctl_shows_ports_providers_and_errors_changes_log_levels_and_stops_the_agent() {
    let id = std::process::id() % 100_000;
    let (rep, ghost) = (format!("rap{id}"), format!("gho{id}"));
    let ns = common::private_netns();
    Veth::create(&ns, &rep);
    // VF 3 is a real veth; VF 4's representor netdev does not exist (it
    // vanished), so ovs-vswitchd cannot open it.
    let vf = |index, netdev: &str, n| {
        common::devlink_port_new(
            index,
            FLAVOUR_PCI_VF,
            netdev,
            vec![PortAttr::PfNumber(0), PortAttr::VfNumber(n)],
        )
    };
    let replay = [common::devlink_pf0(), vf(2, &rep, 3), vf(3, &ghost, 4)].join("\n");
    let mut env = Env::start_devlink(ns, &replay, &["--unplug-settle", "0"]);
    add_vf_port(&env, "vm1", "3");
    add_vf_port(&env, "vm2", "9");
    add_vf_port(&env, "vm3", "4");
    env.wait("vm1 up", || env.up("vm1"));
    env.wait("vm3's interface refused by ovs-vswitchd", || {
        env.agent
            .appctl(&["vif-plug/show"])
            .is_ok_and(|s| s.contains("vm3: plugged but NOT WORKING"))
    });

    // vif-plug/show, as text.
    let show = env.agent.appctl(&["vif-plug/show"]).unwrap();
    let line = |lport: &str| {
        show.lines()
            .find(|l| l.starts_with(&format!("{lport}: ")))
            .unwrap_or_else(|| panic!("no {lport} in:\n{show}"))
            .to_owned()
    };
    let vm1 = line("vm1");
    assert!(
        vm1.starts_with(&format!(
            "vm1: plugged (provider representor, interface {rep}, ofport "
        )),
        "{show}"
    );
    assert_eq!(
        line("vm2"),
        "vm2: declined (provider representor): the provider declined, saying: logical port vm2: no representor known for VF 9 of the PF with MAC 0c:42:a1:00:00:00; PF MACs known: 0c:42:a1:00:00:00; not plugging it",
        "{show}"
    );
    let vm3 = line("vm3");
    assert!(
        vm3.starts_with(&format!(
            "vm3: plugged but NOT WORKING (provider representor, interface {ghost}, error: "
        )),
        "{show}"
    );
    assert!(vm3.contains("No such device"), "{vm3}");
    // The same as JSON, for machines.
    let json: Value = serde_json::from_str(
        &env.agent
            .appctl(&["vif-plug/show", "--format", "json"])
            .unwrap(),
    )
    .unwrap();
    let vm3 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["lport"] == "vm3")
        .unwrap();
    assert_eq!(vm3["state"], "plugged but NOT WORKING");
    assert_eq!(vm3["interface"], ghost.as_str());
    assert!(
        vm3["error"].as_str().unwrap().contains("No such device"),
        "{vm3}"
    );
    // A logical port name with a line break forges no line, in
    // vif-plug/show or in the log.
    add_vf_port(&env, "evil\nvm9: plugged", "7");
    env.wait("the odd name shown", || {
        env.agent
            .appctl(&["vif-plug/show"])
            .is_ok_and(|s| s.contains("evil\\nvm9: plugged: declined"))
    });
    let show = env.agent.appctl(&["vif-plug/show"]).unwrap();
    assert!(!show.lines().any(|l| l.starts_with("vm9")), "{show}");
    let log = env.agent.log();
    assert!(log.contains("evil\\nvm9: plugged"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("vm9")), "{log}");
    env.sb.nbctl(&["lsp-del", "evil\nvm9: plugged"]).unwrap();

    // The error was logged once, as a warning.
    let warned = env.log_lines(&format!(
        "ovs-vswitchd reports interface {ghost} as not working"
    ));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("WARN"), "{warned:?}");

    // Providers and their inventory.
    let providers = env.agent.appctl(&["vif-plug/list-providers"]).unwrap();
    assert!(providers.starts_with("representor: "), "{providers}");
    assert!(
        providers.contains(
            "libvif_plug_devlink.so (ABI 1.1), maintains no interface option, worker pid "
        ),
        "{providers}"
    );
    assert!(providers.contains(", 0 restart(s)"), "{providers}");
    let inventory = env
        .agent
        .appctl(&["vif-plug/describe", "representor"])
        .unwrap();
    assert!(inventory.starts_with("devlink ports: 3\n"), "{inventory}");
    assert!(
        inventory.contains(&format!(
            "pci/0000:03:00.0/2 PciVf controller 0 pf 0 vf 3 netdev {rep} pf-mac 0c:42:a1:00:00:00"
        )),
        "{inventory}"
    );
    let e = env
        .agent
        .appctl(&["vif-plug/describe", "nope"])
        .unwrap_err();
    assert!(
        e.contains("no provider of type \"nope\" is registered"),
        "{e}"
    );

    // Counters, memory, version, the command list.
    let coverage = env.agent.appctl(&["coverage/show"]).unwrap();
    assert!(
        coverage.contains("plug                 total: 2"),
        "{coverage}"
    );
    assert!(env
        .agent
        .appctl(&["memory/show"])
        .unwrap()
        .contains("plugged:2"));
    assert!(env
        .agent
        .appctl(&["version"])
        .unwrap()
        .starts_with("vif-plug-host "));
    assert!(env
        .agent
        .appctl(&["list-commands"])
        .unwrap()
        .contains("vif-plug/show"));

    // Log levels at run time: with warnings only, a new plug says nothing;
    // back to info, the next one does.
    assert!(env
        .agent
        .appctl(&["vlog/set", "ANY:console:warn"])
        .unwrap()
        .is_empty());
    let list = env.agent.appctl(&["vlog/list"]).unwrap();
    assert!(list.contains("ANY (default)"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("vif_plug_host::agent") && l.ends_with("WARN")),
        "{list}"
    );
    let unplugs_before = unplugs(&env);
    env.sb.nbctl(&["lsp-del", "vm3"]).unwrap();
    env.wait("vm3 unplugged", || !env.iface_exists(&ghost));
    // The interface goes before the agent reads its commit's reply; the
    // unplug counter moves just after the (silenced) line would be written.
    env.wait("the agent has read vm3's commit", || {
        unplugs(&env) == unplugs_before + 1
    });
    assert!(env.log_lines("unplugged logical port vm3").is_empty());
    env.agent
        .appctl(&["vlog/set", "vif_plug_host::agent:info"])
        .unwrap();
    env.sb.nbctl(&["lsp-del", "vm1"]).unwrap();
    env.wait("vm1 unplug said", || {
        !env.log_lines("unplugged logical port vm1").is_empty()
    });

    // Bad requests: one error each, nothing changes, the agent carries on.
    for (args, needle) in [
        (
            vec!["no-such-command"],
            "\"no-such-command\" is not a valid command",
        ),
        (
            vec!["vif-plug/show", "--format", "xml"],
            "usage: vif-plug/show [--format text|json]",
        ),
        (vec!["vlog/set", "x:syslog:dbg"], "no syslog destination"),
        (
            vec!["exit", "now"],
            "\"exit\" command takes at most 0 arguments",
        ),
    ] {
        let e = env.agent.appctl(&args).unwrap_err();
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(e.contains("exit status: 2"), "{e}");
    }
    let pid = env.agent.child.as_ref().unwrap().id();
    let socket = env.agent.rundir.join(format!("vif-plug-host.{pid}.ctl"));
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o750, "socket mode");
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.write_all(b"{\"id\": 1, \"method\": ").unwrap();
    raw.write_all(b"]] not json").unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    raw.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("invalid JSON"), "{reply}");
    // Errors end with a newline, as OVS daemons' do (ovs-appctl prints
    // them as they are, then its own line).
    let reply: Value = serde_json::from_str(reply.trim()).unwrap();
    assert!(reply["error"].as_str().unwrap().ends_with('\n'), "{reply}");
    assert!(env
        .agent
        .appctl(&["vif-plug/show"])
        .unwrap()
        .contains("vm2: declined"));

    // A request over 1 MiB gets an error, not a silent reset.
    let mut big = UnixStream::connect(&socket).unwrap();
    let mut request = b"{\"method\": \"".to_vec();
    request.extend(std::iter::repeat_n(b'a', (1 << 20) + 10));
    let _ = big.write_all(&request);
    let mut reply = String::new();
    let _ = big.read_to_string(&mut reply);
    assert!(reply.contains("request longer than 1 MiB"), "{reply}");

    // Connections past the limit are told why, and do not lock the socket
    // for long: once the holders go, ovs-appctl is answered again.
    let holders: Vec<UnixStream> = (0..64)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Debian's ovs-appctl prints the refusal (it needs the request's id).
    let refused = env.agent.appctl(&["version"]).unwrap_err();
    assert!(
        refused.contains("64 control connections are open already; try again")
            && refused.contains("exit status: 2"),
        "{refused}"
    );
    drop(holders);
    env.wait("the socket answers again", || {
        env.agent.appctl(&["version"]).is_ok()
    });

    // A second agent on the same rundir is refused, naming the first
    // (found by the pidfile's lock), and the first carries on.
    let rundir = env.agent.rundir.to_str().unwrap().to_owned();
    let mut second = common::AgentProc::start(&env.sb, &env.provider_dir, &["--rundir", &rundir]);
    let status = second.wait_exit(std::time::Duration::from_secs(10));
    assert!(!status.success(), "{status:?}");
    let said = second.log();
    assert!(
        said.contains(&format!("is held by a running process (pid {pid})"))
            && said.contains("another agent uses this rundir"),
        "{said}"
    );
    assert!(env
        .agent
        .appctl(&["vif-plug/show"])
        .unwrap()
        .contains("vm2: declined"));

    // exit: a clean stop, ports left in place, socket and pidfile gone.
    assert_eq!(env.agent.appctl(&["exit"]).unwrap(), "");
    let status = env.agent.wait_exit(std::time::Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed");
    assert!(
        !env.agent.rundir.join("vif-plug-host.pid").exists(),
        "the pidfile is removed"
    );
    assert!(
        env.log_lines("exit requested through the control socket: stopping")
            .len()
            == 1
    );
}

/// Two agents started at the same instant on one rundir: exactly one
/// keeps it, every time (the pidfile is locked in place, not renamed over).
/// The pidfile is claimed before any database is reached, so no daemon is
/// needed here.
#[test]
fn of_two_agents_started_at_once_on_one_rundir_exactly_one_runs() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let providers = testkit::private_dir();
    testkit::cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", providers.path());
    let start = |rundir: &std::path::Path| {
        agent_without_databases(providers.path(), rundir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..10 {
        let rundir = testkit::private_dir();
        let mut agents = [start(rundir.path()), start(rundir.path())];
        // The loser exits at once; give it time, then see who runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = Vec::new();
        while Instant::now() < deadline && exited.is_empty() {
            for (i, a) in agents.iter_mut().enumerate() {
                if let Some(status) = a.try_wait().unwrap() {
                    exited.push((i, status));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        let running: Vec<usize> = (0..2)
            .filter(|i| agents[*i].try_wait().unwrap().is_none())
            .collect();
        for a in agents.iter_mut() {
            let _ = a.kill();
            let _ = a.wait();
        }
        assert_eq!(
            running.len(),
            1,
            "round {round}: running {running:?}, exited {exited:?}"
        );
        let loser = 1 - running[0];
        let mut said = String::new();
        agents[loser]
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut said)
            .unwrap();
        assert!(
            said.contains("another agent uses this rundir"),
            "round {round}: {said}"
        );
    }
}

/// The control socket never replaces what is not a stale socket of its
/// own, and refuses a path a Unix socket address cannot hold.
#[test]
fn the_control_socket_replaces_only_a_stale_socket() {
    let providers = testkit::private_dir();
    testkit::cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", providers.path());
    let dir = testkit::private_dir();
    let run = |unixctl: &std::path::Path| {
        agent_without_databases(providers.path(), dir.path())
            .arg("--unixctl")
            .arg(unixctl)
            .output()
            .unwrap()
    };
    let precious = dir.path().join("precious");
    std::fs::write(&precious, "keep me\n").unwrap();
    let out = run(&precious);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("exists and is not a socket: not replaced"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");

    let long = dir.path().join("x".repeat(120));
    let out = run(&long);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("a Unix socket path holds at most 107 (ovs-appctl could not reach it)"),
        "{said}"
    );
}

/// SIGHUP stops the agent cleanly, as SIGTERM does (OVS daemons treat a
/// hang-up as fatal and clean up): pidfile and socket removed, exit 0.
#[test]
fn a_hang_up_is_a_clean_stop() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let providers = testkit::private_dir();
    testkit::cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", providers.path());
    let dir = testkit::private_dir();
    let mut agent = agent_without_databases(providers.path(), dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join(format!("vif-plug-host.{}.ctl", agent.id()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(socket.exists());
    Command::new("kill")
        .args(["-HUP", &agent.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = agent.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGHUP");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists());
    assert!(!dir.path().join("vif-plug-host.pid").exists());
}

/// `vif-plug-host run` on `rundir` with the providers in `providers` and a
/// local database that does not exist: it claims its pidfile and control
/// socket, then retries the database, which is all the tests above need.
fn agent_without_databases(
    providers: &std::path::Path,
    rundir: &std::path::Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vif-plug-host"));
    cmd.args(["run", "--ovs-remote", "unix:/nonexistent/db.sock"])
        .arg("--rundir")
        .arg(rundir)
        .arg("--provider-dir")
        .arg(providers);
    cmd
}

/// The agent's `unplug` counter, from `coverage/show`.
fn unplugs(env: &Env) -> u64 {
    let shown = env.agent.appctl(&["coverage/show"]).unwrap();
    shown
        .lines()
        .find_map(|l| l.strip_prefix("unplug ")?.split("total: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no unplug counter in {shown}"))
}
