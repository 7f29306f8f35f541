//! The short scenarios of the fault suite (`cargo bench -p vif-plug-host
//! --bench faults` runs them at full size, beside the reference): processes
//! killed under the agent and the agent killed itself, with the counting
//! provider checking the provider contract throughout.

mod common;

use common::{AgentProc, Env};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use testkit::contract;
use testkit::sandbox::Daemon;

/// The agent with the counting provider, journaling into the provider
/// directory; returns the environment, the agent's arguments (to restart
/// it) and the journal's path.
fn start_counting() -> (Env, Vec<String>, PathBuf) {
    start_counting_in("process")
}

/// As [`start_counting`], with `--provider-isolation ISOLATION`.
fn start_counting_in(isolation: &str) -> (Env, Vec<String>, PathBuf) {
    let mut journal = PathBuf::new();
    let mut args = Vec::new();
    let env = Env::start_with(|_, dir| {
        contract::counting_provider(dir);
        journal = dir.join("journal");
        args = vec![
            "--provider-config".to_owned(),
            format!("counting:journal={}", journal.display()),
            "--provider-isolation".to_owned(),
            isolation.to_owned(),
        ];
        args.clone()
    });
    (env, args, journal)
}

/// Every interface in the local database carrying `ovn-plugged`, by
/// logical port: (name, UUID) of each, so duplicates show.
fn by_lport(env: &Env) -> BTreeMap<String, Vec<(String, String)>> {
    let out = env
        .sb
        .vsctl(&[
            "--format=csv",
            "--data=bare",
            "--no-headings",
            "--columns=name,_uuid,external_ids",
            "list",
            "Interface",
        ])
        .unwrap();
    let mut map: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in out.lines().filter(|l| l.contains("ovn-plugged=")) {
        let mut f = line.splitn(3, ',');
        let (Some(name), Some(uuid), Some(ids)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let lport = ids
            .trim_matches('"')
            .split(' ')
            .find_map(|kv| kv.strip_prefix("iface-id="))
            .unwrap_or_default();
        map.entry(lport.to_owned())
            .or_default()
            .push((name.to_owned(), uuid.to_owned()));
    }
    map
}

/// Interfaces that changed UUID or went away since `seen` (name -> UUID),
/// which is then brought up to date with `now`.
fn churned(seen: &mut BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let gone: Vec<String> = seen
        .iter()
        .filter(|(name, uuid)| now.get(*name) != Some(uuid))
        .map(|(name, _)| name.clone())
        .collect();
    for (name, uuid) in now {
        seen.entry(name.clone()).or_insert_with(|| uuid.clone());
    }
    gone
}

fn assert_contract(env: &Env, journal: &std::path::Path) -> contract::Report {
    let present: BTreeSet<String> = env.plugged().into_keys().collect();
    let report = contract::check(journal, &present);
    assert!(
        report.violations.is_empty(),
        "{}\n{}\n--- agent log ---\n{}",
        report.summary(),
        report.violations.join("\n"),
        env.agent.log()
    );
    report
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn the_local_database_killed_again_and_again_during_a_plug_loses_and_duplicates_nothing() {
    let (env, _, journal) = start_counting();
    env.wait("the agent connected", || {
        env.agent.log().contains("southbound: connected")
    });
    let names: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    let mut seen = BTreeMap::new();
    let mut rng = Lcg(0x5eed);
    let mut spurious = Vec::new();
    // Ports arrive in batches while the local ovsdb-server is SIGKILLed and
    // started again five times at random moments.
    for (i, batch) in names.chunks(30).enumerate() {
        env.add_typed_lsps(batch, contract::TYPE, &[]);
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_millis(rng.below(400)));
            env.sb.kill(Daemon::OvsDb).unwrap();
            env.sb.start_daemon(Daemon::OvsDb).unwrap();
            spurious.extend(churned(&mut seen, &env.plugged()));
        }
    }
    env.wait_for(Duration::from_secs(60), "all 300 plugged", || {
        env.plugged().len() == names.len()
    });
    spurious.extend(churned(&mut seen, &env.plugged()));
    assert!(spurious.is_empty(), "removed or re-created: {spurious:?}");
    let dups: Vec<_> = by_lport(&env)
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let report = assert_contract(&env, &journal);
    assert!(report.creates >= names.len(), "{}", report.summary());
}

#[test]
fn the_agent_killed_mid_plug_and_restarted_churns_nothing() {
    agent_killed_mid_plug("process");
}

#[test]
fn the_agent_killed_mid_plug_and_restarted_churns_nothing_with_providers_in_process() {
    agent_killed_mid_plug("none");
}

/// With the agent's providers in worker processes, killing the agent
/// ends its workers too (they must not outlive it).
fn agent_killed_mid_plug(isolation: &str) {
    let (mut env, args, journal) = start_counting_in(isolation);
    env.wait("the agent connected", || {
        env.agent.log().contains("southbound: connected")
    });
    let names: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    let mut batches = names.chunks(100);
    while env.plugged().len() < 300 {
        match batches.next() {
            Some(b) => env.add_typed_lsps(b, contract::TYPE, &[]),
            None => break,
        }
    }
    // SIGKILL: no destroy, no ctx_destroy; the rest arrives while it is down.
    let mut child = env.agent.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let before = env.plugged();
    for b in batches {
        env.add_typed_lsps(b, contract::TYPE, &[]);
    }
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    env.agent = AgentProc::start(&env.sb, &env.provider_dir, &extra);
    env.wait_for(Duration::from_secs(60), "all 1000 plugged", || {
        env.plugged().len() == names.len()
    });
    let after = env.plugged();
    let churn: Vec<&String> = before
        .iter()
        .filter(|(n, u)| after.get(*n) != Some(u))
        .map(|(n, _)| n)
        .collect();
    assert!(churn.is_empty(), "re-created after the restart: {churn:?}");
    env.agent.stop();
    let report = assert_contract(&env, &journal);
    assert_eq!(report.processes, 2, "{report:?}");
    if isolation == "none" {
        assert_eq!(report.killed, 1, "{report:?}");
    } else {
        // The worker of the killed agent is killed with it, unless it read
        // the end of its socket first and destroyed (both keep the
        // contract).
        assert!(report.killed <= 1, "{report:?}");
    }
}
