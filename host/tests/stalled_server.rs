//! A local ovsdb-server that stops reading (SIGSTOP) while the agent writes a
//! large transaction to it: the agent's event loop must not block on the
//! socket. It keeps answering signals, and finishes the work when the server
//! comes back.

mod common;

use common::Env;
use std::time::{Duration, Instant};
use testkit::sandbox::Daemon;

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits until the agent has decided `n` operations at once: the
/// transaction carrying them is being written.
fn wait_for_batch(env: &Env, n: usize) {
    let needle = format!("{n} operation(s) to commit");
    env.wait(&format!("the agent decided {n} operations"), || {
        env.agent.log().contains(&needle)
    });
}

#[test]
fn a_stopped_local_server_blocks_neither_signals_nor_the_resumption() {
    let mut env = Env::start();
    env.wait("the agent connected to both databases", || {
        let log = env.agent.log();
        log.contains("local: connected") && log.contains("southbound: connected")
    });
    let ovsdb = env.sb.pid(Daemon::OvsDb).expect("local ovsdb-server pid");

    // Some 2,000 inserts are far more than a Unix socket buffers: the write
    // cannot complete while the server is stopped.
    let first: Vec<String> = (0..2000).map(|i| format!("big{i}")).collect();
    signal(ovsdb, "-STOP");
    env.add_plugged_lsps(&first, &[]);
    wait_for_batch(&env, first.len());
    // A silent server is not silent in the agent's log.
    env.wait("the unanswered transaction logged", || {
        env.agent.log().contains("local: no answer for 5")
    });
    signal(ovsdb, "-CONT");
    env.wait_for(
        Duration::from_secs(120),
        "every port plugged once the server reads again",
        || env.plugged().len() == first.len(),
    );
    env.wait("the answer logged", || {
        env.agent
            .log()
            .contains("local: the transaction is answered after")
    });
    let log = env.agent.log();
    assert!(
        log.contains("to the transaction of 2000 operation(s) (plugging big")
            && log.contains(", 1992 more): is ovsdb-server stopped or overloaded?"),
        "{log}"
    );

    // Stopped again under a second large batch: SIGTERM is still heard.
    let second: Vec<String> = (0..1000).map(|i| format!("more{i}")).collect();
    signal(ovsdb, "-STOP");
    env.add_plugged_lsps(&second, &[]);
    wait_for_batch(&env, second.len());
    std::thread::sleep(Duration::from_secs(1));
    let asked = Instant::now();
    let status = env.agent.stop();
    let took = asked.elapsed();
    signal(ovsdb, "-CONT");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM took {took:?} with the local server stopped:\n{}",
        env.agent.log()
    );
    assert!(
        env.agent
            .log()
            .contains("stopping with a transaction of 1000 operation(s) unanswered (plugging more"),
        "the abandoned transaction is named:\n{}",
        env.agent.log()
    );
    // Nothing already plugged was lost.
    assert_eq!(env.plugged().len(), first.len());
}
