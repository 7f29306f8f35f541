//! Vendor bugs against the agent in its default mode, each provider library
//! in a worker process, on real daemons: a crash, an abort, a C++
//! exception, a double free or a hang costs the calls in flight, is named
//! in one line, and never takes the agent or the other ports down.

mod common;

use common::{AgentProc, Env};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::{cargo_cdylib, include_dir, workspace_root};

fn faulty_source() -> PathBuf {
    workspace_root().join("ffi-tests/c/faulty_provider.c")
}

use testkit::faulty_provider as faulty_c;

/// The same provider built as C++, so that an exception can leave it.
fn faulty_cxx(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let so = dir.join("libfaultycxx.so");
    let ok = Command::new("g++")
        .args(["-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(include_dir())
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(faulty_source())
        .status()
        .expect("g++ (install g++)")
        .success();
    assert!(ok, "g++ failed");
    std::fs::set_permissions(&so, std::fs::Permissions::from_mode(0o755)).unwrap();
    so
}

/// The agent with the faulty provider built by `build`, configured with
/// `config` (KEY=VALUE for type faulty), and `extra` arguments.
fn start(build: fn(&Path) -> PathBuf, config: &[&str], extra: &[&str]) -> Env {
    let config: Vec<String> = config.iter().map(|c| c.to_string()).collect();
    let extra: Vec<String> = extra.iter().map(|c| c.to_string()).collect();
    Env::start_with(move |_, dir| {
        build(dir);
        let mut args = Vec::new();
        for c in config {
            args.push("--provider-config".to_owned());
            args.push(format!("faulty:{c}"));
        }
        args.extend(extra);
        args
    })
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// How many logical ports ovn-controller reports up.
fn up_count(env: &Env) -> usize {
    env.sb
        .nbctl(&["--bare", "--columns=up", "list", "Logical_Switch_Port"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim() == "true")
        .count()
}

fn alive(agent: &mut AgentProc) -> bool {
    agent
        .child
        .as_mut()
        .is_some_and(|c| c.try_wait().unwrap().is_none())
}

/// The agent's ERROR lines about crashed or hung workers.
fn crash_lines(env: &Env) -> Vec<String> {
    env.log_lines("restarting its worker in")
}

#[test]
fn a_provider_that_segfaults_for_one_port_costs_that_port_only() {
    let mut env = start(faulty_c, &["crash-lport=bad"], &[]);
    let mut all = names("good", 99);
    all.push("bad".into());
    env.add_typed_lsps(&all, "faulty", &[]);
    env.wait_for(Duration::from_secs(60), "99 ports plugged", || {
        env.plugged().len() == 99
    });
    env.wait_for(Duration::from_secs(60), "99 ports bound", || {
        up_count(&env) == 99
    });
    assert!(!env.iface_exists("bad"));
    assert!(alive(&mut env.agent), "{}", env.agent.log());
    let lines = crash_lines(&env);
    let first = lines.first().expect("a crash line");
    assert!(
        first.contains("ERROR")
            && first.contains("provider faulty (")
            && first.contains("libfaulty.so): port_prepare crashed (SIGSEGV) for logical port bad: bad quarantined for 500 ms; restarting its worker in 250 ms"),
        "{first}"
    );
    // Held back longer each time, and the worker restarted each time.
    env.wait("a second crash, after the quarantine", || {
        crash_lines(&env).len() >= 2
    });
    let second = &crash_lines(&env)[1];
    assert!(second.contains("bad quarantined for 1000 ms"), "{second}");
    assert!(
        env.agent.log().contains("worker restarted (pid "),
        "{}",
        env.agent.log()
    );
    assert!(env.agent.log().contains("released from quarantine: bad"));
    // Nothing was unplugged along the way.
    assert!(!env.agent.log().contains("unplugged logical port"));
    assert_eq!(env.plugged().len(), 99);
    // The bad port keeps crashing its worker, and its neighbours are still
    // served: a new port is plugged, a deleted one unplugged.
    env.add_typed_lsps(&["late".into()], "faulty", &[]);
    env.sb.nbctl(&["lsp-del", "good0"]).unwrap();
    env.wait("late plugged", || env.iface_exists("late"));
    env.wait("good0 unplugged", || !env.iface_exists("good0"));
    env.wait("a third crash", || crash_lines(&env).len() >= 3);
    assert!(
        crash_lines(&env)[2].contains("restarting its worker in 250 ms"),
        "a worker that answered comes back at once: {:?}",
        crash_lines(&env)
    );
    assert!(alive(&mut env.agent));
    assert!(env.agent.stop().success());
}

#[test]
fn an_abort_in_init_leaves_the_provider_out_and_the_others_plugging() {
    let env = Env::start_with(|_, dir| {
        faulty_c(dir);
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        vec![
            "--provider-config".into(),
            "faulty:abort-in-init=true".into(),
        ]
    });
    common::plug(&env, "lsp1", &[]);
    let log = env.agent.log();
    assert!(
        log.contains("provider \"faulty\" from ")
            && log.contains("libfaulty.so not registered: init crashed (SIGABRT)"),
        "{log}"
    );
    // The operator sees it among the providers, not just in the log.
    let list = env.agent.appctl(&["vif-plug/list-providers"]).unwrap();
    assert!(
        list.lines().any(|l| l.contains(
            "libfaulty.so: not registered (refused, or its init failed, at start: the log says why; `vif-plug-host check "
        )),
        "{list}"
    );
    assert!(list.starts_with("dummy: "), "{list}");
}

#[test]
fn a_cxx_exception_out_of_port_prepare_is_a_crash_of_that_call() {
    let env = start(faulty_cxx, &["throw-lport=bad"], &[]);
    env.add_typed_lsps(&["bad".into(), "good".into()], "faulty", &[]);
    env.wait("good plugged", || env.iface_exists("good"));
    env.wait("the crash said", || !crash_lines(&env).is_empty());
    let line = &crash_lines(&env)[0];
    // The exception cannot cross the ABI's C frames: the worker aborts
    // (or, depending on where the unwinder stops, faults).
    assert!(
        line.contains("libfaultycxx.so): port_prepare crashed (SIG")
            && line.contains(") for logical port bad"),
        "{line}"
    );
    assert!(!env.iface_exists("bad"));
}

#[test]
fn a_double_free_after_the_commit_keeps_the_port_plugged() {
    let env = start(faulty_c, &["double-free-lport=bad"], &[]);
    env.add_typed_lsps(&["bad".into()], "faulty", &[]);
    env.wait("the crash said", || !crash_lines(&env).is_empty());
    let line = &crash_lines(&env)[0];
    assert!(
        line.contains("port_ctx_destroy crashed (SIGABRT) for logical port bad"),
        "{line}"
    );
    // The transaction had committed: the interface stays, and stays after
    // the worker is back and checks it again.
    env.wait("bad plugged", || env.iface_exists("bad"));
    env.wait("the worker restarted", || {
        env.agent.log().contains("worker restarted")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(env.iface_exists("bad"));
    assert!(!env.agent.log().contains("unplugged logical port"));
}

#[test]
fn a_hang_in_port_prepare_is_cut_at_the_deadline() {
    let env = start(
        faulty_c,
        &["hang-lport=bad"],
        &["--provider-timeout", "500"],
    );
    env.add_typed_lsps(&["bad".into(), "good".into()], "faulty", &[]);
    env.wait("the hang said", || !crash_lines(&env).is_empty());
    env.wait("good plugged", || env.iface_exists("good"));
    let line = &crash_lines(&env)[0];
    assert!(
        line.contains("port_prepare did not return within 500 ms for logical port bad"),
        "{line}"
    );
}

#[test]
fn a_hang_in_run_restarts_the_worker_with_growing_back_off_and_sigterm_still_works() {
    // The dummy beside it is never blamed for the time the faulty one
    // takes, and keeps plugging.
    let mut env = Env::start_with(|_, dir| {
        faulty_c(dir);
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        [
            "--provider-config",
            "faulty:hang-in-run=true",
            "--provider-timeout",
            "300",
        ]
        .map(String::from)
        .to_vec()
    });
    env.wait_for(Duration::from_secs(30), "five hangs", || {
        crash_lines(&env).len() >= 5
    });
    let waits: Vec<u64> = crash_lines(&env)
        .iter()
        .filter_map(|l| {
            let tail = l.split("restarting its worker in ").nth(1)?;
            tail.split(' ').next()?.parse().ok()
        })
        .collect();
    assert_eq!(&waits[..5], [250, 500, 1000, 2000, 4000], "{waits:?}");
    assert!(crash_lines(&env)[0].contains("run did not return within 300 ms"));
    assert!(
        crash_lines(&env)
            .iter()
            .all(|l| l.contains("provider faulty (")),
        "{:?}",
        crash_lines(&env)
    );
    common::plug(&env, "lsp1", &[]);
    // The databases are not blamed for the time spent in the provider.
    assert!(!env.agent.log().contains("did not answer within"));
    let t = Instant::now();
    assert!(env.agent.stop().success());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// The pid of the worker serving `library` (from its registration line).
fn worker_pid(env: &Env, library: &str) -> u32 {
    let line = env
        .log_lines("worker pid ")
        .into_iter()
        .rev()
        .find(|l| l.contains(library))
        .expect("a registration line");
    line.split("worker pid ")
        .nth(1)
        .and_then(|t| t.trim_end_matches(')').parse().ok())
        .expect("a pid")
}

#[test]
fn a_worker_killed_from_outside_is_restarted_and_nothing_is_unplugged() {
    let env = start(faulty_c, &[], &[]);
    env.add_typed_lsps(&["p1".into()], "faulty", &[]);
    env.wait("p1 plugged", || env.iface_exists("p1"));
    let pid = worker_pid(&env, "libfaulty.so");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    env.wait("the death said", || !crash_lines(&env).is_empty());
    assert!(
        crash_lines(&env)[0].contains("crashed (SIGKILL) while no callback was running"),
        "{}",
        crash_lines(&env)[0]
    );
    env.wait("restarted", || env.agent.log().contains("worker restarted"));
    env.add_typed_lsps(&["p2".into()], "faulty", &[]);
    env.wait("p2 plugged", || env.iface_exists("p2"));
    assert!(env.iface_exists("p1"));
    assert!(!env.agent.log().contains("unplugged logical port"));
}

#[test]
fn a_provider_whose_init_crashes_at_every_restart_stays_down_and_the_others_go_on() {
    let flag = testkit::private_dir();
    let marker = flag.path().join("now-abort");
    let marker_arg = format!("faulty:abort-in-init-if={}", marker.display());
    let env = Env::start_with(|_, dir| {
        faulty_c(dir);
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        vec!["--provider-config".into(), marker_arg]
    });
    env.add_typed_lsps(&["p1".into()], "faulty", &[]);
    env.wait("p1 plugged", || env.iface_exists("p1"));
    std::fs::write(&marker, "").unwrap();
    let pid = worker_pid(&env, "libfaulty.so");
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    env.wait_for(Duration::from_secs(30), "given up", || {
        env.agent.log().contains("stays down")
    });
    let line = env.log_lines("stays down").pop().unwrap();
    assert!(
        line.contains("failed to start 5 times in a row (last: init crashed (SIGABRT))"),
        "{line}"
    );
    // Its port is kept; the other provider still plugs.
    common::plug(&env, "lsp1", &[]);
    assert!(env.iface_exists("p1"));
    assert!(!env.agent.log().contains("unplugged logical port"));
}
