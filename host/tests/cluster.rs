//! The agent against a three-member Raft Southbound whose leader is killed
//! under it: nothing plugged is touched, and ports created after each
//! fail-over are plugged.

mod common;

use common::{plug, Env};
use std::collections::BTreeMap;
use std::time::Duration;
use testkit::cargo_cdylib;
use testkit::sandbox::SandboxOptions;

#[test]
fn leader_kills_in_a_clustered_southbound_lose_nothing() {
    let env = Env::start_in(
        SandboxOptions {
            sb_cluster: true,
            ..SandboxOptions::default()
        },
        |_, dir| {
            cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
            Vec::new()
        },
    );
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    env.add_plugged_lsps(&names, &[]);
    env.wait("20 plugged", || env.plugged().len() == 20);
    let before: BTreeMap<String, String> = env.plugged();
    for round in 0..2 {
        let leader = env.sb.sb_leader().expect("a leader");
        env.sb.kill(leader).unwrap();
        // The two others elect a new leader; a port created now must be
        // plugged through whichever member the agent lands on.
        plug(&env, &format!("after{round}"), &[]);
        env.sb.start_daemon(leader).unwrap();
        env.sb.wait_sb_cluster().unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = env.plugged();
    for (name, uuid) in &before {
        assert_eq!(
            after.get(name),
            Some(uuid),
            "{name} removed or re-created:\n{}",
            env.agent.log()
        );
    }
    assert_eq!(after.len(), 22);
}

/// An `ovsdb-server` relay of the Southbound (`relay:OVN_Southbound:...`),
/// stopped by PID when dropped.
struct Relay {
    child: std::process::Child,
    sock: std::path::PathBuf,
}

impl Relay {
    fn start(sb: &testkit::sandbox::Sandbox) -> Relay {
        let sock = sb.dir().join("relay.sock");
        let child = sb
            .command("ovsdb-server")
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!(
                "--unixctl={}",
                sb.dir().join("relay.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                sb.dir().join("relay.log").display()
            ))
            .arg(format!("relay:OVN_Southbound:{}", sb.sb_remote()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the relay");
        testkit::sandbox::wait_until(Duration::from_secs(10), "the relay", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        })
        .unwrap();
        Relay { child, sock }
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.sock.display())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn plugs_through_a_southbound_relay_and_rides_out_a_lost_source() {
    let mut relay = None;
    let env = Env::start_with(|sb, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        let r = Relay::start(sb);
        let args = vec!["--ovnsb-remote".to_owned(), r.remote()];
        relay = Some(r);
        args
    });
    let relay = relay.unwrap();
    plug(&env, "lsp1", &[]);
    assert!(env
        .agent
        .log()
        .contains(&format!("southbound: connected to {}", relay.remote())));
    // The relay loses its source (Open vSwitch 3.1 relays still report
    // themselves connected in _Server): its view stops, and nothing is
    // unplugged meanwhile.
    env.sb.stop(testkit::sandbox::Daemon::SbDb).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(env.iface_exists("lsp1"));
    env.sb.start_daemon(testkit::sandbox::Daemon::SbDb).unwrap();
    plug(&env, "lsp2", &[]);
    assert!(env.iface_exists("lsp1"));
}
