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
