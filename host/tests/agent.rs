//! The plugging agent against real daemons from Debian's packages: NB/SB and
//! local ovsdb-servers, ovn-northd, ovs-vswitchd (netdev datapath) and an
//! ovn-controller that does no plugging itself, driven with ovn-nbctl.

mod common;

use common::{plug, AgentProc, Env};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::pki::make_pki;
use testkit::sandbox::{Daemon, SandboxOptions};
use testkit::{cargo_cdylib, free_port, private_dir};

#[test]
fn plugs_with_options_and_mtu_and_ovn_controller_binds_it() {
    let env = Env::start();
    env.add_lsp(
        "lsp1",
        &[
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
            "vif-plug-mtu-request=1400",
        ],
    );
    env.wait("interface lsp1 plugged", || env.iface_exists("lsp1"));
    assert_eq!(env.iface("lsp1", "type").as_deref(), Some("internal"));
    assert_eq!(
        env.iface("lsp1", "options:vif-plug-dummy-option")
            .as_deref(),
        Some("value")
    );
    assert_eq!(
        env.iface("lsp1", "external_ids:iface-id").as_deref(),
        Some("lsp1")
    );
    assert_eq!(
        env.iface("lsp1", "external_ids:ovn-plugged").as_deref(),
        Some("dummy")
    );
    assert_eq!(env.iface("lsp1", "mtu_request").as_deref(), Some("1400"));
    assert_eq!(env.sb.vsctl(&["port-to-br", "lsp1"]).unwrap(), "br-int");
    env.wait("lsp1 up", || env.up("lsp1"));
    let log = env.agent.log();
    assert!(
        log.contains(
            "plugged logical port lsp1: interface lsp1 (type internal) on br-int, provider dummy"
        ),
        "{log}"
    );
}

#[test]
fn a_port_for_another_chassis_is_not_plugged() {
    let env = Env::start();
    env.add_lsp(
        "far",
        &["requested-chassis=chassis-2", "vif-plug-type=dummy"],
    );
    plug(&env, "near", &[]);
    // "near" was plugged after "far" was created: "far" had its chance.
    assert!(!env.iface_exists("far"));
    assert!(
        !env.agent.log().contains("logical port far"),
        "{}",
        env.agent.log()
    );
}

#[test]
fn option_and_mtu_updates_are_applied_in_place() {
    let env = Env::start();
    plug(&env, "lsp1", &["vif-plug-mtu-request=1400"]);
    let uuid = env.iface("lsp1", "_uuid");
    env.sb
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "lsp1",
            "options:vif-plug-mtu-request=1300",
        ])
        .unwrap();
    env.wait("mtu 1300", || {
        env.iface("lsp1", "mtu_request").as_deref() == Some("1300")
    });
    env.sb
        .nbctl(&[
            "remove",
            "Logical_Switch_Port",
            "lsp1",
            "options",
            "vif-plug-mtu-request",
        ])
        .unwrap();
    env.wait("mtu cleared", || {
        env.iface("lsp1", "mtu_request").as_deref() == Some("[]")
    });
    assert_eq!(
        env.iface("lsp1", "_uuid"),
        uuid,
        "updated in place, not recreated"
    );
    // A malformed MTU is refused with a warning, and the port stays plugged.
    env.sb
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "lsp1",
            "options:vif-plug-mtu-request=jumbo",
        ])
        .unwrap();
    env.wait("warning about the MTU", || {
        env.agent
            .log()
            .contains("vif-plug-mtu-request=\"jumbo\" is not a decimal number")
    });
    assert_eq!(env.iface("lsp1", "_uuid"), uuid);
}

#[test]
fn local_drift_is_reverted_and_foreign_options_are_kept() {
    let env = Env::start();
    plug(&env, "lsp1", &["vif-plug-mtu-request=1400"]);
    env.sb
        .vsctl(&[
            "set",
            "Interface",
            "lsp1",
            "options:vif-plug-dummy-option=tampered",
            "options:foreign=kept",
            "mtu_request=9000",
            "external_ids:owner=someone-else",
        ])
        .unwrap();
    env.wait("drift reverted", || {
        env.iface("lsp1", "options:vif-plug-dummy-option")
            .as_deref()
            == Some("value")
            && env.iface("lsp1", "mtu_request").as_deref() == Some("1400")
    });
    assert_eq!(
        env.iface("lsp1", "options:foreign").as_deref(),
        Some("kept")
    );
    assert_eq!(
        env.iface("lsp1", "external_ids:owner").as_deref(),
        Some("someone-else")
    );
    // The maintained option removed by someone: put back; foreign stays.
    env.sb
        .vsctl(&[
            "remove",
            "Interface",
            "lsp1",
            "options",
            "vif-plug-dummy-option",
        ])
        .unwrap();
    env.wait("option restored", || {
        env.iface("lsp1", "options:vif-plug-dummy-option")
            .as_deref()
            == Some("value")
    });
    assert_eq!(
        env.iface("lsp1", "options:foreign").as_deref(),
        Some("kept")
    );
}

#[test]
fn requested_chassis_moved_away_and_back() {
    let env = Env::start();
    plug(&env, "lsp1", &[]);
    env.wait("lsp1 up", || env.up("lsp1"));
    env.sb
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "lsp1",
            "options:requested-chassis=chassis-2",
        ])
        .unwrap();
    env.wait("lsp1 unplugged", || !env.iface_exists("lsp1"));
    assert!(env.sb.vsctl(&["list-ports", "br-int"]).unwrap().is_empty());
    env.sb
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "lsp1",
            "options:requested-chassis=chassis-1",
        ])
        .unwrap();
    env.wait("lsp1 plugged again", || env.iface_exists("lsp1"));
    env.wait("lsp1 up again", || env.up("lsp1"));
}

#[test]
fn a_deleted_port_is_unplugged() {
    let env = Env::start();
    plug(&env, "lsp1", &[]);
    plug(&env, "lsp2", &[]);
    env.sb.nbctl(&["lsp-del", "lsp1"]).unwrap();
    env.wait("lsp1 unplugged", || !env.iface_exists("lsp1"));
    assert!(env.iface_exists("lsp2"));
    env.wait_logged("unplugged logical port lsp1");
}

#[test]
fn a_stale_plugged_interface_is_removed_and_a_foreign_one_left_alone() {
    let env = Env::start();
    // Plugged by us (ovn-plugged) in an earlier life, for a port that no
    // longer exists: removed.
    env.sb
        .vsctl(&[
            "add-port",
            "br-int",
            "ghost",
            "--",
            "set",
            "Interface",
            "ghost",
            "type=internal",
            "external_ids:iface-id=ghost",
            "external_ids:ovn-plugged=dummy",
        ])
        .unwrap();
    // Someone else's interface for a port the CMS asks us to plug: left
    // alone, with a warning.
    env.sb
        .vsctl(&[
            "add-port",
            "br-int",
            "theirs",
            "--",
            "set",
            "Interface",
            "theirs",
            "type=internal",
            "external_ids:iface-id=lsp-theirs",
        ])
        .unwrap();
    // And one without any of our marks at all.
    env.sb
        .vsctl(&[
            "add-port",
            "br-int",
            "unrelated",
            "--",
            "set",
            "Interface",
            "unrelated",
            "type=internal",
        ])
        .unwrap();
    env.add_lsp(
        "lsp-theirs",
        &["requested-chassis=chassis-1", "vif-plug-type=dummy"],
    );
    env.wait("ghost removed", || !env.iface_exists("ghost"));
    env.wait("warning about the foreign interface", || {
        env.agent
            .log()
            .contains("logical port lsp-theirs: the CMS asks to plug it, but interface")
    });
    plug(&env, "lsp1", &[]);
    assert!(env.iface_exists("theirs"));
    assert!(env.iface_exists("unrelated"));
    assert_eq!(env.iface("theirs", "external_ids:ovn-plugged"), None);
    assert_eq!(
        env.agent.log().matches("the CMS asks to plug it").count(),
        1,
        "warned once"
    );
}

#[test]
fn an_unknown_type_is_a_warning_and_the_others_still_plug() {
    let env = Env::start();
    env.add_lsp(
        "odd",
        &["requested-chassis=chassis-1", "vif-plug-type=nonexistent"],
    );
    plug(&env, "lsp1", &[]);
    assert!(!env.iface_exists("odd"));
    let log = env.agent.log();
    assert!(
        log.contains("logical port odd: no provider for vif-plug-type \"nonexistent\" is loaded"),
        "{log}"
    );
    assert!(log.contains(" WARN "), "{log}");
    assert!(!log.contains(" ERROR "), "{log}");
}

#[test]
fn a_restarted_agent_adopts_ports_without_touching_them() {
    let mut env = Env::start();
    plug(&env, "lsp1", &["vif-plug-mtu-request=1400"]);
    plug(&env, "lsp2", &[]);
    env.wait("bound", || env.up("lsp1") && env.up("lsp2"));
    let uuids = (env.iface("lsp1", "_uuid"), env.iface("lsp2", "_uuid"));
    let status = env.agent.stop();
    assert!(status.success(), "exit {status}:\n{}", env.agent.log());
    assert!(env
        .agent
        .log()
        .contains("stopped; plugged ports are left in place"));
    assert!(
        env.iface_exists("lsp1") && env.iface_exists("lsp2"),
        "left in place"
    );

    env.agent = AgentProc::start(&env.sb, &env.provider_dir, &[]);
    env.wait("the new agent's view is complete", || {
        env.agent
            .log()
            .contains("southbound: the view is complete and current")
    });
    // Give it time to (wrongly) act, then check it did nothing.
    plug(&env, "lsp3", &[]);
    let log = env.agent.log();
    assert!(!log.contains("logical port lsp1"), "{log}");
    assert!(!log.contains("logical port lsp2"), "{log}");
    assert_eq!(
        (env.iface("lsp1", "_uuid"), env.iface("lsp2", "_uuid")),
        uuids
    );
}

#[test]
fn survives_a_local_ovsdb_server_restart() {
    let env = Env::start();
    plug(&env, "lsp1", &[]);
    env.sb.restart(Daemon::OvsDb).unwrap();
    plug(&env, "lsp2", &[]);
    assert!(env.iface_exists("lsp1"));
    env.wait("both up", || env.up("lsp1") && env.up("lsp2"));
}

#[test]
fn losing_the_southbound_unplugs_nothing_and_work_resumes() {
    let env = Env::start();
    plug(&env, "lsp1", &[]);
    env.sb.stop(Daemon::SbDb).unwrap();
    env.wait("the agent saw the disconnection", || {
        env.agent
            .log()
            .lines()
            .any(|l| l.contains("southbound: unix:") && l.contains("connection closed"))
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        env.iface_exists("lsp1"),
        "nothing unplugged while the Southbound is away"
    );
    env.sb.start_daemon(Daemon::SbDb).unwrap();
    plug(&env, "lsp2", &[]);
    assert!(env.iface_exists("lsp1"));
}

#[test]
fn a_declined_port_is_retried_when_the_provider_reports_a_change() {
    let env = Env::start_with(|_, dir| {
        testkit::c_test_provider(dir, &[], "libc_test_provider.so");
        [
            "--provider-config",
            "c-test:ready-after-runs=15",
            "--provider-run-interval",
            "100",
        ]
        .map(String::from)
        .to_vec()
    });
    env.add_lsp(
        "lsp1",
        &["requested-chassis=chassis-1", "vif-plug-type=c-test"],
    );
    // The provider declines until its 15th run, then reports the change;
    // nothing else changes, yet the port gets plugged.
    env.wait("declined", || {
        env.agent
            .log()
            .contains("provider c-test: the provider declined")
    });
    env.wait("plugged after the provider's change", || {
        env.iface_exists("c-lsp1")
    });
    // The interface shows before the agent has read the commit's reply
    // and logged it.
    env.wait("the plug logged", || {
        env.agent.log().contains("plugged logical port lsp1")
    });
    let log = env.agent.log();
    let ready = log
        .find("ready now")
        .expect("the provider said it is ready");
    let plugging = log.find("plugged logical port lsp1").expect("plugged");
    assert!(ready < plugging, "{log}");
    assert_eq!(
        env.iface("c-lsp1", "type").as_deref(),
        Some("\"\""),
        "a system interface"
    );
    assert_eq!(
        env.iface("c-lsp1", "options:c-test-datapath").as_deref(),
        Some("netdev")
    );
}

#[test]
fn follows_a_changed_ovn_remote() {
    let env = Env::start();
    plug(&env, "lsp1", &[]);
    // Let the Southbound server also listen on TCP, and point ovn-remote
    // (which the agent and ovn-controller both follow) there.
    let port = free_port();
    env.sb
        .appctl(
            Daemon::SbDb,
            &["ovsdb-server/add-remote", &format!("ptcp:{port}:127.0.0.1")],
        )
        .unwrap();
    let remote = format!("tcp:127.0.0.1:{port}");
    env.sb
        .vsctl(&[
            "set",
            "Open_vSwitch",
            ".",
            &format!("external_ids:ovn-remote={remote}"),
        ])
        .unwrap();
    env.wait("the agent switched", || {
        env.agent
            .log()
            .contains(&format!("southbound: connected to {remote}"))
    });
    plug(&env, "lsp2", &[]);
    assert!(env.iface_exists("lsp1"), "nothing unplugged by the switch");
}

/// A sandbox whose Southbound server also listens on TLS (`server.pem` of
/// a fresh PKI in `pki`), and the agent told to reach it at
/// `--ovnsb-remote REMOTES` with the client files of `client_pki`.
/// `{port}` in `remotes` is the TLS port.
fn start_with_tls_southbound(pki: &Path, client_pki: &Path, remotes: &str) -> (Env, u16) {
    let port = free_port();
    let f = |dir: &Path, name: &str| dir.join(name).display().to_string();
    let opts = SandboxOptions {
        sb_db_args: vec![
            format!("--remote=pssl:{port}:127.0.0.1"),
            format!("--private-key={}", f(pki, "server-key.pem")),
            format!("--certificate={}", f(pki, "server.pem")),
            format!("--ca-cert={}", f(pki, "ca.pem")),
        ],
        ..SandboxOptions::default()
    };
    let env = Env::start_in(opts, |_, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        vec![
            "--ovnsb-remote".into(),
            remotes.replace("{port}", &port.to_string()),
            "--private-key".into(),
            f(client_pki, "client-key.pem"),
            "--certificate".into(),
            f(client_pki, "client.pem"),
            "--ca-cert".into(),
            f(client_pki, "ca.pem"),
            "--probe-interval".into(),
            "1000".into(),
        ]
    });
    (env, port)
}

#[test]
fn plugs_over_a_tls_southbound_given_as_a_cluster_list_with_a_dead_member() {
    let pki = private_dir();
    make_pki(pki.path());
    let dead = pki.path().join("no-such-server.sock");
    let (env, port) = start_with_tls_southbound(
        pki.path(),
        pki.path(),
        &format!("unix:{},ssl:127.0.0.1:{{port}}", dead.display()),
    );
    plug(&env, "lsp1", &["vif-plug-mtu-request=1400"]);
    env.wait("lsp1 up", || env.up("lsp1"));
    let log = env.agent.log();
    assert!(
        log.contains(&format!("southbound: connected to ssl:127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains(&dead.display().to_string()), "{log}");
    // The flag overrides external_ids:ovn-remote, which names the Unix
    // socket that ovn-controller uses.
    assert!(!log.contains("southbound: connected to unix:"), "{log}");
}

/// ovsdb-server (OpenSSL) refuses a resumed TLS session from a client that
/// presents a certificate; a client that offers one fails its first
/// attempt after every disconnection. Found by an operator's trial.
#[test]
fn a_tls_southbound_that_drops_us_is_reconnected_at_the_first_attempt() {
    let pki = private_dir();
    make_pki(pki.path());
    let (env, port) = start_with_tls_southbound(pki.path(), pki.path(), "ssl:127.0.0.1:{port}");
    plug(&env, "lsp1", &[]);
    env.wait("lsp1 up", || env.up("lsp1"));
    let connected = format!("southbound: connected to ssl:127.0.0.1:{port}");
    for n in 2..=3 {
        env.sb
            .appctl(Daemon::SbDb, &["ovsdb-server/reconnect"])
            .unwrap();
        env.wait("connected again", || {
            env.agent.log().matches(&connected).count() >= n
        });
    }
    let log = env.agent.log();
    assert!(!log.contains("TLS handshake failed"), "{log}");
    plug(&env, "lsp2", &[]);
}

/// A hand-made PKI (`openssl x509 -req` without extensions) gives X.509
/// version 1 certificates, which rustls refuses: the message says so and
/// what to do, instead of blaming the CA.
#[test]
fn a_version_1_server_certificate_is_named_as_such() {
    let pki = private_dir();
    make_pki(pki.path());
    testkit::pki::reissue_as_v1(pki.path(), "server");
    let (env, port) = start_with_tls_southbound(pki.path(), pki.path(), "ssl:127.0.0.1:{port}");
    env.wait("the refusal explained", || {
        env.agent.log().contains(
            "TLS handshake failed: the server's certificate was refused: \
             it is an X.509 version 1 certificate, and only version 3 is accepted",
        )
    });
    let log = env.agent.log();
    assert!(
        !log.contains(&format!("southbound: connected to ssl:127.0.0.1:{port}")),
        "{log}"
    );
}

/// OVS's OpenSSL presents an X.509 version 1 client certificate and
/// ovsdb-server accepts it: a PKI that works for ovn-controller works for
/// the agent. Found by an operator's trial: the agent refused to start.
#[test]
fn a_version_1_client_certificate_is_presented_as_ovs_presents_it() {
    let pki = private_dir();
    make_pki(pki.path());
    testkit::pki::reissue_as_v1(pki.path(), "client");
    let (env, port) = start_with_tls_southbound(pki.path(), pki.path(), "ssl:127.0.0.1:{port}");
    plug(&env, "lsp1", &[]);
    let log = env.agent.log();
    assert!(
        log.contains(&format!("southbound: connected to ssl:127.0.0.1:{port}")),
        "{log}"
    );
}

/// With TLS 1.3 ovsdb-server judges the client's certificate after the
/// client's side of the handshake is done, so the refusal arrives at the
/// first read; it is explained as a refused handshake is. Found by an
/// operator's trial ("protocol error: received fatal alert: UnknownCA").
#[test]
fn a_client_certificate_the_server_does_not_trust_is_named_as_such() {
    let pki = private_dir();
    make_pki(pki.path());
    let stranger = private_dir();
    make_pki(stranger.path());
    // Our certificate from another CA; the server's CA trusted.
    let ours = private_dir();
    fs::copy(
        stranger.path().join("client.pem"),
        ours.path().join("client.pem"),
    )
    .unwrap();
    fs::copy(
        stranger.path().join("client-key.pem"),
        ours.path().join("client-key.pem"),
    )
    .unwrap();
    fs::copy(pki.path().join("ca.pem"), ours.path().join("ca.pem")).unwrap();
    let (env, _) = start_with_tls_southbound(pki.path(), ours.path(), "ssl:127.0.0.1:{port}");
    env.add_lsp(
        "lsp1",
        &["requested-chassis=chassis-1", "vif-plug-type=dummy"],
    );
    env.wait("the refusal explained", || {
        env.agent.log().contains(
            "the server refused our certificate (UnknownCA): does it trust the CA that \
             signed --certificate",
        )
    });
    assert!(!env.iface_exists("lsp1"), "{}", env.agent.log());
}

#[test]
fn a_southbound_signed_by_another_ca_is_refused_and_nothing_is_plugged() {
    let pki = private_dir();
    make_pki(pki.path());
    let stranger = private_dir();
    make_pki(stranger.path());
    let (env, port) =
        start_with_tls_southbound(pki.path(), stranger.path(), "ssl:127.0.0.1:{port}");
    env.add_lsp(
        "lsp1",
        &["requested-chassis=chassis-1", "vif-plug-type=dummy"],
    );
    // Refused at least twice: the agent keeps trying, with back-off.
    env.wait("two refused TLS handshakes", || {
        env.agent
            .log()
            .matches(&format!("southbound: connecting to ssl:127.0.0.1:{port}"))
            .count()
            >= 2
            && env.agent.log().contains(
                "TLS handshake failed: the server's certificate was refused: \
                 BadSignature (is it signed by the CA given with --ca-cert?)",
            )
    });
    assert!(!env.iface_exists("lsp1"));
    let log = env.agent.log();
    assert!(!log.contains("southbound: connected to"), "{log}");
}

/// A gate between the agent and the real local database: forwards both
/// ways, and can hold what the agent sends until released. It lets a test
/// change the database between the agent's decision and its transaction.
struct Gate {
    held: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    path: PathBuf,
}

impl Gate {
    fn start(dir: &Path, upstream: &str) -> Gate {
        use std::io::{Read, Write};
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::{Arc, Condvar, Mutex};
        let path = dir.join("gate.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let upstream = PathBuf::from(upstream.strip_prefix("unix:").unwrap());
        let held = Arc::new((Mutex::new(false), Condvar::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, sn) = (held.clone(), seen.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = UnixStream::connect(&upstream) else {
                    break;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (h, sn) = (h.clone(), sn.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sn.lock().unwrap().extend_from_slice(&buf[..n]);
                        let (lock, cv) = &*h;
                        let mut g = lock.lock().unwrap();
                        while *g {
                            g = cv.wait(g).unwrap();
                        }
                        drop(g);
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Gate { held, seen, path }
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    fn hold(&self, on: bool) {
        let (lock, cv) = &*self.held;
        *lock.lock().unwrap() = on;
        cv.notify_all();
        if on {
            self.seen.lock().unwrap().clear();
        }
    }

    fn has_seen(&self, needle: &str) -> bool {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).contains(needle)
    }
}

#[test]
fn a_failed_transaction_is_recomputed_without_finish_and_blocks_no_other_port() {
    let mut gate = None;
    let env = Env::start_with(|sb, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        let g = Gate::start(sb.dir(), &sb.ovs_remote());
        let remote = g.remote();
        gate = Some(g);
        vec!["--ovs-remote".into(), remote]
    });
    let gate = gate.unwrap();
    plug(&env, "lsp1", &[]);

    // Hold the agent's next transaction, which plugs lsp9 and lsp10...
    gate.hold(true);
    env.sb
        .nbctl(&[
            "--",
            "lsp-add",
            "sw0",
            "lsp9",
            "--",
            "lsp-set-options",
            "lsp9",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
            "--",
            "lsp-add",
            "sw0",
            "lsp10",
            "--",
            "lsp-set-options",
            "lsp10",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    env.wait("the agent's transaction", || gate.has_seen("\"transact\""));
    // ...and meanwhile take the name lsp9 for an interface of another port:
    // the held transaction violates the Interface name index.
    env.sb
        .vsctl(&[
            "--",
            "--id=@i",
            "create",
            "Interface",
            "name=lsp9",
            "type=internal",
            "--",
            "--id=@p",
            "create",
            "Port",
            "name=holder",
            "interfaces=@i",
            "--",
            "add",
            "Bridge",
            "br-int",
            "ports",
            "@p",
        ])
        .unwrap();
    gate.hold(false);

    // ovsdb-server reports an index violation after the last operation,
    // naming no operation: the agent retries the two ports one by one.
    env.wait("the failure", || {
        env.agent
            .log()
            .contains("transaction of 2 operation(s) failed: operation 7: constraint violation")
    });
    // lsp10 is retried at once and plugged; lsp9 waits for its name.
    env.wait("lsp10 plugged", || {
        env.iface("lsp10", "external_ids:ovn-plugged").as_deref() == Some("dummy")
    });
    assert!(
        !env.agent.log().contains("finish: lsp9"),
        "no finish after a failure"
    );
    env.wait("lsp9 held back", || {
        env.agent.log().contains("not plugged until it is free")
    });
    env.sb.vsctl(&["del-port", "br-int", "holder"]).unwrap();
    env.wait("lsp9 plugged once its name is free", || {
        env.iface("lsp9", "external_ids:ovn-plugged").as_deref() == Some("dummy")
    });
    env.wait("finish logged", || env.agent.log().contains("finish: lsp9"));
    assert_eq!(
        env.agent.log().matches("finish: lsp9").count(),
        1,
        "{}",
        env.agent.log()
    );
}

#[test]
fn a_port_shared_after_the_agent_decided_is_not_deleted_with_its_interfaces() {
    let mut gate = None;
    let env = Env::start_with(|sb, dir| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        let g = Gate::start(sb.dir(), &sb.ovs_remote());
        let remote = g.remote();
        gate = Some(g);
        vec![
            "--ovs-remote".into(),
            remote,
            "--unplug-settle".into(),
            "0".into(),
        ]
    });
    let gate = gate.unwrap();
    plug(&env, "lsp1", &[]);
    // Hold the agent's unplug of lsp1, decided while lsp1's Port held only
    // our interface...
    gate.hold(true);
    env.sb.nbctl(&["lsp-del", "lsp1"]).unwrap();
    env.wait("the agent's transaction", || gate.has_seen("\"transact\""));
    // ...and meanwhile bond another program's interface into that Port.
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
    gate.hold(false);
    // The held transaction no longer matches the Port: it fails, and the
    // agent removes only its own interface from fresh state.
    env.wait("our interface gone", || !env.iface_exists("lsp1"));
    assert!(env.iface_exists("mate"), "{}", env.agent.log());
}

#[test]
fn a_stale_interface_left_while_the_agent_was_down_is_removed_at_start() {
    let env = Env::start_with(|sb, dir| {
        sb.vsctl(&[
            "add-port",
            "br-int",
            "ghost",
            "--",
            "set",
            "Interface",
            "ghost",
            "type=internal",
            "external_ids:iface-id=ghost",
            "external_ids:ovn-plugged=dummy",
        ])
        .unwrap();
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
        Vec::new()
    });
    env.wait("ghost removed once both views are complete", || {
        !env.iface_exists("ghost")
    });
    env.wait_logged("unplugged logical port ghost");
    let log = env.agent.log();
    let complete = log
        .find("southbound: the view is complete and current")
        .expect("complete");
    let unplug = log.find("unplugged logical port ghost").expect("unplugged");
    assert!(
        complete < unplug,
        "unplugged only after the views were complete:\n{log}"
    );
}

#[test]
fn two_ports_given_one_name_do_not_block_each_other_forever() {
    let env = Env::start();
    // The dummy cuts names to 15 bytes: both become "collision-lport".
    env.sb
        .nbctl(&[
            "--",
            "lsp-add",
            "sw0",
            "collision-lport-a",
            "--",
            "lsp-set-options",
            "collision-lport-a",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
            "--",
            "lsp-add",
            "sw0",
            "collision-lport-b",
            "--",
            "lsp-set-options",
            "collision-lport-b",
            "requested-chassis=chassis-1",
            "vif-plug-type=dummy",
        ])
        .unwrap();
    env.wait("one of them plugged", || {
        env.iface_exists("collision-lport")
    });
    let first = env
        .iface("collision-lport", "external_ids:iface-id")
        .unwrap();
    let other = if first.contains("-a") {
        "collision-lport-b"
    } else {
        "collision-lport-a"
    };
    env.wait("the other held back", || {
        env.agent.log().contains(&format!("logical port {other}: "))
    });
    plug(&env, "lsp1", &[]);
    // Deleting the first frees the name: the other is plugged.
    let first = first.trim_matches('"').to_owned();
    env.sb.nbctl(&["lsp-del", &first]).unwrap();
    env.wait("the other plugged", || {
        env.iface("collision-lport", "external_ids:iface-id")
            .is_some_and(|i| i.contains(other))
    });
}

#[test]
fn a_southbound_too_old_for_the_agent_is_said_once_and_retried_with_back_off() {
    let env = Env::start();
    // An OVN_Southbound from before requested_chassis (OVN 21.12).
    let (remote, _stop) =
        server_on_an_old_schema(&env, "/usr/share/ovn/ovn-sb.ovsschema", "old-sb", |old| {
            let columns = old["tables"]["Port_Binding"]["columns"]
                .as_object_mut()
                .unwrap();
            columns.remove("requested_chassis");
            columns.remove("requested_additional_chassis");
        });
    let agent = AgentProc::start(&env.sb, &env.provider_dir, &["--ovnsb-remote", &remote]);
    said_once_and_retried(
        &agent,
        "without Port_Binding.requested_chassis (OVN 21.12 or later)",
    );
}

#[test]
fn a_local_database_too_old_for_the_agent_is_said_once_and_retried_with_back_off() {
    let env = Env::start();
    // An Open_vSwitch schema from before Interface.mtu_request (OVS 2.6).
    let (remote, _stop) = server_on_an_old_schema(
        &env,
        "/usr/share/openvswitch/vswitch.ovsschema",
        "old-ovs",
        |old| {
            old["tables"]["Interface"]["columns"]
                .as_object_mut()
                .unwrap()
                .remove("mtu_request");
        },
    );
    let agent = AgentProc::start(&env.sb, &env.provider_dir, &["--ovs-remote", &remote]);
    said_once_and_retried(
        &agent,
        "without Interface.mtu_request (Open vSwitch 2.6 or later)",
    );
}

/// Stops an ovsdb-server started by [`server_on_an_old_schema`], by the
/// PID in its pidfile.
struct StopServer(PathBuf);

impl Drop for StopServer {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Starts an ovsdb-server in the sandbox's directory on a copy of the
/// installed schema at `installed`, edited by `edit` and given version
/// 20.20.0; returns its remote.
fn server_on_an_old_schema(
    env: &Env,
    installed: &str,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (String, StopServer) {
    let mut old: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(installed).expect("Debian's schema")).unwrap();
    edit(&mut old);
    old["version"] = serde_json::json!("20.20.0");
    let dir = env.sb.dir();
    let schema_file = dir.join(format!("{name}.ovsschema"));
    fs::write(&schema_file, old.to_string()).unwrap();
    let db = dir.join(format!("{name}.db"));
    let ok = std::process::Command::new("ovsdb-tool")
        .arg("create")
        .arg(&db)
        .arg(&schema_file)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ovsdb-tool create");
    let sock = dir.join(format!("{name}.sock"));
    let pidfile = dir.join(format!("{name}.pid"));
    let ok = env
        .sb
        .command("ovsdb-server")
        .arg("--detach")
        .arg(format!("--pidfile={}", pidfile.display()))
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!(
            "--unixctl={}",
            dir.join(format!("{name}.ctl")).display()
        ))
        .arg(format!(
            "--log-file={}",
            dir.join(format!("{name}.log")).display()
        ))
        .arg(&db)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ovsdb-server on the old schema");
    (format!("unix:{}", sock.display()), StopServer(pidfile))
}

/// Waits for the agent to refuse the old schema, then checks it said so in
/// one ERROR line naming `missing`, and tried once more per back-off.
fn said_once_and_retried(agent: &AgentProc, missing: &str) {
    let said = |a: &AgentProc| {
        a.log()
            .lines()
            .filter(|l| l.contains("this release is too old"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    common::wait_for_log(agent, Duration::from_secs(20), "the refusal", |log| {
        log.contains("this release is too old")
    });
    // Eleven seconds: the back-off is 8 s ±25 %, so one more attempt; a
    // loop would have made hundreds.
    std::thread::sleep(Duration::from_secs(11));
    let lines = said(agent);
    let errors: Vec<&String> = lines.iter().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "{}", agent.log());
    assert!(
        errors[0].contains(missing) && errors[0].contains("schema 20.20.0"),
        "{}",
        errors[0]
    );
    assert_eq!(
        lines.len(),
        2,
        "one attempt per back-off, not a loop: {lines:#?}"
    );
}

/// A fault injector in front of the real Southbound server: forwards
/// everything, but answers each `monitor_cond` with an error, as a
/// misbehaving member would. Counts the connections it accepts.
struct RefusesMonitors {
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RefusesMonitors {
    fn start(path: PathBuf, upstream: &str) -> RefusesMonitors {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        let listener = UnixListener::bind(&path).unwrap();
        let upstream = PathBuf::from(upstream.strip_prefix("unix:").unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                count.fetch_add(1, Ordering::Relaxed);
                let Ok(server) = UnixStream::connect(&upstream) else {
                    break;
                };
                // Both directions write to the client: one message at a time.
                let to_client = Arc::new(Mutex::new(client.try_clone().unwrap()));
                let mut to_server = server.try_clone().unwrap();
                let replies = to_client.clone();
                std::thread::spawn(move || {
                    // Our client writes one message per line.
                    for line in BufReader::new(client).lines() {
                        let Ok(line) = line else { break };
                        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                            break;
                        };
                        let sent = if msg["method"] == "monitor_cond" {
                            let reply = serde_json::json!({
                                "result": null,
                                "error": {"error": "permission error", "details": "refused by the test"},
                                "id": msg["id"],
                            });
                            replies
                                .lock()
                                .unwrap()
                                .write_all(format!("{reply}\n").as_bytes())
                        } else {
                            to_server.write_all(format!("{line}\n").as_bytes())
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut server = server;
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = server.read(&mut buf) {
                        if n == 0 || to_client.lock().unwrap().write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_client.lock().unwrap().shutdown(std::net::Shutdown::Both);
                });
            }
        });
        RefusesMonitors { connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[test]
fn three_members_that_refuse_the_monitor_are_retried_with_growing_back_off() {
    let env = Env::start();
    let members: Vec<(RefusesMonitors, PathBuf)> = (0..3)
        .map(|i| {
            let path = env.sb.dir().join(format!("member{i}.sock"));
            (
                RefusesMonitors::start(path.clone(), &env.sb.sb_remote()),
                path,
            )
        })
        .collect();
    let remotes = members
        .iter()
        .map(|(_, p)| format!("unix:{}", p.display()))
        .collect::<Vec<_>>()
        .join(",");
    let agent = AgentProc::start(&env.sb, &env.provider_dir, &["--ovnsb-remote", &remotes]);
    common::wait_for_log(&agent, Duration::from_secs(10), "a refusal", |log| {
        log.contains("monitor refused")
    });
    std::thread::sleep(Duration::from_secs(10));
    let attempts: usize = members.iter().map(|(m, _)| m.connections()).sum();
    // Back-off 0.25, 0.5, 1, 2, 4 s (±25 %) between rounds of three: about
    // 18 connections in 10 s, where resetting at each "ready" made hundreds.
    assert!(
        (6..=30).contains(&attempts),
        "{attempts} connections in about 10 s\n{}",
        agent.log()
    );
}
