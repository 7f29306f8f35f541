//! Settings that operators of OVN chassis already set, followed by the agent
//! at run time as ovn-controller follows them: the Southbound inactivity
//! probe from `external_ids:ovn-remote-probe-interval` (and its per-chassis
//! variant), and TLS files rotated under a running agent.

mod common;

use common::{plug, Env};
use std::path::Path;
use std::time::Duration;
use testkit::pki::make_pki;
use testkit::sandbox::{Daemon, SandboxOptions};
use testkit::{cargo_cdylib, free_port, private_dir};

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn set_external_id(env: &Env, key: &str, value: &str) {
    env.sb
        .vsctl(&[
            "set",
            "Open_vSwitch",
            ".",
            &format!("external_ids:{key}={value}"),
        ])
        .unwrap();
}

/// Stops the Southbound server until the agent's probe gives up on it, and
/// returns the line that says so.
fn probe_failure(env: &Env) -> String {
    let before = env.log_lines("(inactivity probe)").len();
    let pid = env.sb.pid(Daemon::SbDb).unwrap();
    signal(pid, "-STOP");
    let mut line = String::new();
    let found =
        testkit::sandbox::wait_until(Duration::from_secs(30), "the probe to give up", || {
            let lines = env.log_lines("(inactivity probe)");
            lines.get(before).map(|l| line = l.clone()).is_some()
        });
    signal(pid, "-CONT");
    if let Err(e) = found {
        panic!("{e}\n{}", env.agent.log());
    }
    line
}

#[test]
fn the_southbound_probe_follows_external_ids_at_run_time() {
    let env = Env::start();
    plug(&env, "lsp1", &[]);
    // A TCP Southbound, so that the default probe is on.
    let port = free_port();
    env.sb
        .appctl(
            Daemon::SbDb,
            &["ovsdb-server/add-remote", &format!("ptcp:{port}:127.0.0.1")],
        )
        .unwrap();
    let remote = format!("tcp:127.0.0.1:{port}");
    set_external_id(&env, "ovn-remote-probe-interval", "1500");
    set_external_id(&env, "ovn-remote", &remote);
    env.wait("the agent on TCP with the operator's probe", || {
        let log = env.agent.log();
        log.contains(&format!("southbound: connected to {remote}"))
            && log.contains(
                "southbound: inactivity probe 1500 ms (external_ids:ovn-remote-probe-interval)",
            )
    });
    let line = probe_failure(&env);
    assert!(
        line.contains(&format!("no answer from {remote} for 3000 ms")),
        "{line}"
    );

    // The per-chassis key wins, and is followed without a restart.
    set_external_id(&env, "ovn-remote-probe-interval-chassis-1", "2500");
    env.wait("the per-chassis probe applied", || {
        env.agent.log().contains(
            "southbound: inactivity probe 2500 ms (external_ids:ovn-remote-probe-interval-chassis-1)",
        )
    });
    env.wait("reconnected", || {
        env.agent
            .log()
            .matches(&format!("southbound: connected to {remote}"))
            .count()
            >= 2
    });
    let line = probe_failure(&env);
    assert!(
        line.contains(&format!("no answer from {remote} for 5000 ms")),
        "{line}"
    );

    // Nonsense is said once and the default used.
    set_external_id(&env, "ovn-remote-probe-interval-chassis-1", "soon");
    env.wait("the complaint", || {
        env.agent.log().contains(
            "external_ids:ovn-remote-probe-interval-chassis-1=\"soon\" is not a number of milliseconds",
        ) && env
            .agent
            .log()
            .contains("southbound: inactivity probe 5000 ms (default for these remotes)")
    });
    plug(&env, "lsp2", &[]);
    assert!(env.iface_exists("lsp1"), "nothing unplugged on the way");
    assert_eq!(
        env.log_lines("is not a number of milliseconds").len(),
        1,
        "said once"
    );
}

/// Copies the files a side of a TLS connection uses from `pki` into `dir`.
fn install(pki: &Path, dir: &Path, side: &str) {
    for (from, to) in [
        (format!("{side}.pem"), "cert.pem"),
        (format!("{side}-key.pem"), "key.pem"),
        ("ca.pem".into(), "ca.pem"),
    ] {
        std::fs::copy(pki.join(from), dir.join(to)).unwrap();
    }
}

#[test]
fn rotated_tls_files_are_used_at_the_next_connection_without_a_restart() {
    let (old, new) = (private_dir(), private_dir());
    make_pki(old.path());
    make_pki(new.path());
    // What the server and the agent are configured with, rotated below.
    let (server, client) = (private_dir(), private_dir());
    install(old.path(), server.path(), "server");
    install(old.path(), client.path(), "client");
    let port = free_port();
    let f = |dir: &Path, name: &str| dir.join(name).display().to_string();
    let opts = SandboxOptions {
        sb_db_args: vec![
            format!("--remote=pssl:{port}:127.0.0.1"),
            format!("--private-key={}", f(server.path(), "key.pem")),
            format!("--certificate={}", f(server.path(), "cert.pem")),
            format!("--ca-cert={}", f(server.path(), "ca.pem")),
        ],
        ..SandboxOptions::default()
    };
    let client_dir = client.path().to_owned();
    let env = Env::start_in(opts, |_, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        vec![
            "--ovnsb-remote".into(),
            format!("ssl:127.0.0.1:{port}"),
            "--private-key".into(),
            f(&client_dir, "key.pem"),
            "--certificate".into(),
            f(&client_dir, "cert.pem"),
            "--ca-cert".into(),
            f(&client_dir, "ca.pem"),
        ]
    });
    plug(&env, "lsp1", &[]);

    // A whole new PKI (new CA) on both sides; the server restarts with it,
    // which drops the agent's session. The files the agent loaded at start
    // cannot talk to it any more.
    install(new.path(), client.path(), "client");
    install(new.path(), server.path(), "server");
    env.sb.restart(Daemon::SbDb).unwrap();
    plug(&env, "lsp2", &[]);
    let log = env.agent.log();
    assert!(
        log.contains(&format!(
            "TLS: {}, {}, {} changed: using the new files from this connection on",
            f(client.path(), "key.pem"),
            f(client.path(), "cert.pem"),
            f(client.path(), "ca.pem")
        )),
        "{log}"
    );
    assert!(!log.contains("TLS handshake failed"), "{log}");
    assert!(
        env.iface_exists("lsp1"),
        "nothing unplugged by the rotation"
    );
}
