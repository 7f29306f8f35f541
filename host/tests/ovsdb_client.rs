//! The OVSDB client against a real ovsdb-server (Debian's openvswitch
//! packages): every remote kind, monitors with conditions, transactions,
//! reconnection and the inactivity probe.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::pki::make_pki;
use testkit::{free_port, private_dir};
use vif_plug_host::ovsdb::client::{Client, ClientConfig, ClientEvent};
use vif_plug_host::ovsdb::connection::ConnEvent;
use vif_plug_host::ovsdb::replica::{col, Replica};
use vif_plug_host::ovsdb::stream::{TlsFiles, TlsSource};
use vif_plug_host::ovsdb::txn::{check_result, Txn};
use vif_plug_host::ovsdb::{remote, Atom, Datum};

const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

fn need(binary: &str) {
    assert!(
        Command::new("sh")
            .args(["-c", &format!("command -v {binary}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success(),
        "{binary} is missing: apt-get install openvswitch-switch (.ci/run does)"
    );
}

/// An ovsdb-server on a fresh Open_vSwitch database, killed on drop.
struct Server {
    child: Child,
    db: PathBuf,
    dir: PathBuf,
    remotes: Vec<String>,
    extra: Vec<String>,
}

impl Server {
    fn start(dir: &Path, remotes: &[String], extra: &[String]) -> Server {
        need("ovsdb-server");
        let db = dir.join("conf.db");
        if !db.exists() {
            let ok = Command::new("ovsdb-tool")
                .arg("create")
                .arg(&db)
                .arg(SCHEMA)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ovsdb-tool create");
        }
        let mut s = Server {
            child: Command::new("true").spawn().unwrap(),
            db,
            dir: dir.to_owned(),
            remotes: remotes.to_vec(),
            extra: extra.to_vec(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("ovsdb-server");
        cmd.arg(&self.db)
            .arg(format!("--unixctl={}", self.dir.join("ctl").display()))
            .arg(format!(
                "--log-file={}",
                self.dir.join("ovsdb-server.log").display()
            ))
            .arg("-vfile:dbg")
            .args(self.remotes.iter().map(|r| format!("--remote={r}")))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = cmd.spawn().expect("start ovsdb-server");
        // Ready once every listening remote accepts.
        let deadline = Instant::now() + Duration::from_secs(10);
        for r in &self.remotes {
            loop {
                let ok = if let Some(p) = r.strip_prefix("punix:") {
                    std::os::unix::net::UnixStream::connect(p).is_ok()
                } else {
                    // ptcp:PORT:ADDR / pssl:PORT:ADDR
                    let port = r.split(':').nth(1).unwrap();
                    let host = if r.contains("::1") {
                        "[::1]"
                    } else {
                        "127.0.0.1"
                    };
                    std::net::TcpStream::connect(format!("{host}:{port}")).is_ok()
                };
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "ovsdb-server did not listen on {r}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}

/// A client and the queue its connection threads post to.
struct Harness {
    client: Client,
    rx: Receiver<ConnEvent>,
    /// Events seen while waiting for something else.
    backlog: std::collections::VecDeque<ClientEvent>,
}

impl Harness {
    fn new(remotes: &str, tls: Option<TlsFiles>, probe: Option<Duration>) -> Harness {
        let (tx, rx) = channel();
        let tx = std::sync::Mutex::new(tx);
        let client = Client::new(
            ClientConfig {
                label: "test".into(),
                database: "Open_vSwitch".into(),
                remotes: remote::parse_list(remotes).unwrap(),
                tls: tls.map(|t| std::sync::Arc::new(TlsSource::new(t).unwrap())),
                probe_interval: probe,
                connect_timeout: Duration::from_secs(2),
                shuffle_remotes: false,
                required: &[],
            },
            Arc::new(move |ev| {
                let _ = tx.lock().unwrap().send(ev);
            }),
        );
        Harness {
            client,
            rx,
            backlog: Default::default(),
        }
    }

    /// Runs the client until `stop` accepts an event; returns that event.
    fn until(&mut self, what: &str, mut stop: impl FnMut(&ClientEvent) -> bool) -> ClientEvent {
        if let Some(i) = self.backlog.iter().position(&mut stop) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out waiting for {what}; saw {:?}",
                self.backlog
            );
            let (events, next) = self.client.tick(now);
            for e in events {
                if stop(&e) {
                    return e;
                }
                self.backlog.push_back(e);
            }
            let wait = next
                .map(|n| n.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(100))
                .min(Duration::from_millis(100));
            if let Ok(ev) = self.rx.recv_timeout(wait) {
                for e in self.client.handle(ev) {
                    if stop(&e) {
                        return e;
                    }
                    self.backlog.push_back(e);
                }
            }
        }
    }

    fn ready(&mut self) {
        self.until("Ready", |e| *e == ClientEvent::Ready);
    }

    /// Sends a request and waits for its reply.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.client.request(method, params).expect("connected");
        match self.until(method, |e| {
            matches!(e, ClientEvent::Reply { id: i, .. } | ClientEvent::Error { id: i, .. } if *i == id)
        }) {
            ClientEvent::Reply { result, .. } => Ok(result.value()),
            ClientEvent::Error { error, .. } => Err(error.value()),
            _ => unreachable!(),
        }
    }
}

#[test]
fn unix_monitor_cond_transact_and_condition_change() {
    let dir = private_dir();
    let sock = dir.path().join("db.sock");
    let _server = Server::start(dir.path(), &[format!("punix:{}", sock.display())], &[]);
    let mut h = Harness::new(&format!("unix:{}", sock.display()), None, None);
    h.ready();
    let schema = h.client.schema().unwrap().clone();
    assert_eq!(schema.name, "Open_vSwitch");
    assert!(schema.has(
        "Interface",
        &["name", "options", "external_ids", "mtu_request"]
    ));

    // Monitor bridges named br0 only.
    let mut replica = Replica::default();
    let initial = h
        .call(
            "monitor_cond",
            json!(["Open_vSwitch", "m1", {"Bridge": [{"columns": ["name", "external_ids"], "where": [["name", "==", "br0"]]}]}]),
        )
        .unwrap();
    replica
        .apply_update2(&schema, &initial.to_string())
        .unwrap();
    assert_eq!(replica.len("Bridge"), 0);

    let mut txn = Txn::new("Open_vSwitch");
    txn.insert(
        "Open_vSwitch",
        "ovs",
        &[(
            "bridges",
            Datum::set([Atom::NamedUuid("br0".into()), Atom::NamedUuid("br1".into())]),
        )],
    );
    txn.insert("Bridge", "br0", &[("name", Datum::string("br0"))]);
    txn.insert("Bridge", "br1", &[("name", Datum::string("br1"))]);
    check_result(&h.call("transact", txn.params()).unwrap()).unwrap();

    let update = |h: &mut Harness, replica: &mut Replica| {
        let ClientEvent::Notify { method, params } =
            h.until("update2", |e| matches!(e, ClientEvent::Notify { .. }))
        else {
            unreachable!()
        };
        assert_eq!(method, "update2");
        let params = params.value();
        assert_eq!(params[0], "m1");
        replica
            .apply_update2(&schema, &params[1].to_string())
            .unwrap()
    };
    let changes = update(&mut h, &mut replica);
    assert_eq!(changes.len(), 1, "only br0 matches the condition");
    let br0 = changes[0].uuid;
    assert_eq!(
        col(replica.get("Bridge", &br0).unwrap(), "name").as_str(),
        Some("br0")
    );

    let mut txn = Txn::new("Open_vSwitch");
    txn.mutate(
        "Bridge",
        br0,
        &[("external_ids", "insert", Datum::str_map([("k", "v")]))],
    );
    check_result(&h.call("transact", txn.params()).unwrap()).unwrap();
    update(&mut h, &mut replica);
    assert_eq!(
        col(replica.get("Bridge", &br0).unwrap(), "external_ids").map_get("k"),
        Some("v")
    );

    // Changing the condition: br0 leaves the monitor, br1 enters it.
    h.call(
        "monitor_cond_change",
        json!(["m1", "m1", {"Bridge": [{"where": [["name", "==", "br1"]]}]}]),
    )
    .unwrap();
    assert_eq!(replica.len("Bridge"), 1);
    let changes = update(&mut h, &mut replica);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(replica.get("Bridge", &br0).is_none());
    assert_eq!(replica.len("Bridge"), 1);

    // A failing operation is reported with its reason, and nothing of the
    // transaction is applied.
    let (br1, _) = replica.rows("Bridge").next().unwrap();
    let br1 = *br1;
    let mut bad = Txn::new("Open_vSwitch");
    bad.mutate(
        "Bridge",
        br1,
        &[(
            "external_ids",
            "insert",
            Datum::str_map([("applied", "yes")]),
        )],
    );
    bad.wait_equal("Bridge", br1, &[("name", Datum::string("not-br1"))]);
    let e = check_result(&h.call("transact", bad.params()).unwrap()).unwrap_err();
    assert!(e.starts_with("operation 1: timed out"), "{e}");
    let mut ok = Txn::new("Open_vSwitch");
    ok.wait_equal("Bridge", br1, &[("name", Datum::string("br1"))]);
    ok.comment("wait passes");
    check_result(&h.call("transact", ok.params()).unwrap()).unwrap();
    assert_eq!(
        col(replica.get("Bridge", &br1).unwrap(), "external_ids").map_get("applied"),
        None
    );
}

#[test]
fn tcp_over_ipv4_and_ipv6() {
    let dir = private_dir();
    let (p4, p6) = (free_port(), free_port());
    let _server = Server::start(
        dir.path(),
        &[format!("ptcp:{p4}:127.0.0.1"), format!("ptcp:{p6}:[::1]")],
        &[],
    );
    for r in [format!("tcp:127.0.0.1:{p4}"), format!("tcp:[::1]:{p6}")] {
        let mut h = Harness::new(&r, None, Some(Duration::from_secs(5)));
        h.ready();
        let dbs = h.call("list_dbs", json!([])).unwrap();
        assert!(
            dbs.as_array().unwrap().contains(&json!("Open_vSwitch")),
            "{r}: {dbs}"
        );
    }
}

#[test]
fn ssl_with_a_private_ca() {
    need("openssl");
    let dir = private_dir();
    make_pki(dir.path());
    let port = free_port();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let _server = Server::start(
        dir.path(),
        &[format!("pssl:{port}:127.0.0.1")],
        &[
            format!("--private-key={}", p("server-key.pem")),
            format!("--certificate={}", p("server.pem")),
            format!("--ca-cert={}", p("ca.pem")),
        ],
    );
    let tls = TlsFiles {
        private_key: dir.path().join("client-key.pem"),
        certificate: dir.path().join("client.pem"),
        ca_cert: dir.path().join("ca.pem"),
    };
    let mut h = Harness::new(&format!("ssl:127.0.0.1:{port}"), Some(tls.clone()), None);
    h.ready();
    let mut replica = Replica::default();
    let schema = h.client.schema().unwrap().clone();
    let initial = h
        .call(
            "monitor_cond",
            json!(["Open_vSwitch", null, {"Open_vSwitch": [{"columns": ["bridges"]}]}]),
        )
        .unwrap();
    replica
        .apply_update2(&schema, &initial.to_string())
        .unwrap();

    // A client whose CA does not match is refused, with the reason logged.
    let other = private_dir();
    make_pki(other.path());
    let wrong = TlsFiles {
        ca_cert: other.path().join("ca.pem"),
        ..tls
    };
    let mut h = Harness::new(&format!("ssl:127.0.0.1:{port}"), Some(wrong), None);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        let (_, _) = h.client.tick(Instant::now());
        if let Ok(ev) = h.rx.recv_timeout(Duration::from_millis(50)) {
            let events = h.client.handle(ev);
            assert!(
                !events.contains(&ClientEvent::Ready),
                "connected with the wrong CA"
            );
        }
    }
    assert!(!h.client.is_ready());
}

#[test]
fn tls_files_that_do_not_exist_are_a_clear_error() {
    let e = TlsFiles {
        private_key: "/nonexistent/key.pem".into(),
        certificate: "/nonexistent/cert.pem".into(),
        ca_cert: "/nonexistent/ca.pem".into(),
    }
    .load()
    .unwrap_err();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}

#[test]
fn tls_files_caught_half_rotated_keep_the_last_good_ones_until_whole_again() {
    let (old, new) = (private_dir(), private_dir());
    make_pki(old.path());
    make_pki(new.path());
    let live = private_dir();
    let files = TlsFiles {
        private_key: live.path().join("key.pem"),
        certificate: live.path().join("cert.pem"),
        ca_cert: live.path().join("ca.pem"),
    };
    let put = |pki: &std::path::Path, which: &[&str]| {
        for (from, to) in [
            ("client-key.pem", &files.private_key),
            ("client.pem", &files.certificate),
            ("ca.pem", &files.ca_cert),
        ] {
            if which.contains(&from) {
                std::fs::copy(pki.join(from), to).unwrap();
            }
        }
    };
    put(old.path(), &["client-key.pem", "client.pem", "ca.pem"]);
    let source = TlsSource::new(files.clone()).unwrap();
    let first = source.current();
    assert!(
        Arc::ptr_eq(&first, &source.current()),
        "unchanged: not reloaded"
    );
    // The new certificate is in place, its key not yet: it does not load,
    // and the old pair goes on being used.
    put(new.path(), &["client.pem"]);
    assert!(Arc::ptr_eq(&first, &source.current()));
    assert!(Arc::ptr_eq(&first, &source.current()));
    // Whole again: the new files are used.
    put(new.path(), &["client-key.pem", "ca.pem"]);
    let second = source.current();
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(Arc::ptr_eq(&second, &source.current()));
}

#[test]
fn reconnects_after_the_server_restarts() {
    let dir = private_dir();
    let sock = dir.path().join("db.sock");
    let mut server = Server::start(dir.path(), &[format!("punix:{}", sock.display())], &[]);
    let mut h = Harness::new(&format!("unix:{}", sock.display()), None, None);
    h.ready();
    let id = h.client.request(
        "monitor_cond",
        json!(["Open_vSwitch", null, {"Bridge": [{"columns": ["name"]}]}]),
    );
    assert!(id.is_some());
    server.kill();
    let e = h.until("Disconnected", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    });
    if let ClientEvent::Disconnected { in_flight, .. } = e {
        // The monitor request may or may not have been answered first.
        assert!(in_flight.len() <= 1);
    }
    assert!(!h.client.is_ready());
    server.spawn();
    h.ready();
    assert!(h.call("list_dbs", json!([])).is_ok());
}

#[test]
fn the_inactivity_probe_drops_a_server_that_stopped_answering() {
    let dir = private_dir();
    let sock = dir.path().join("db.sock");
    let server = Server::start(dir.path(), &[format!("punix:{}", sock.display())], &[]);
    let mut h = Harness::new(
        &format!("unix:{}", sock.display()),
        None,
        Some(Duration::from_millis(200)),
    );
    h.ready();
    // Idle for a while: our echoes are answered, the connection stays.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(800) {
        let (events, _) = h.client.tick(Instant::now());
        assert!(events.is_empty(), "{events:?}");
        if let Ok(ev) = h.rx.recv_timeout(Duration::from_millis(20)) {
            assert!(h.client.handle(ev).is_empty());
        }
    }
    assert!(h.client.is_ready());
    // A stopped server answers nothing: dropped after two intervals.
    server.signal("STOP");
    let e = h.until("Disconnected", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    });
    let ClientEvent::Disconnected { reason, .. } = e else {
        unreachable!()
    };
    assert!(reason.contains("inactivity probe"), "{reason}");
    server.signal("CONT");
    h.ready();
}

#[test]
fn a_cluster_member_not_connected_to_its_cluster_is_skipped() {
    need("ovsdb-tool");
    let dir = private_dir();
    let d = dir.path();
    let (ra, rc) = (free_port(), free_port());
    let unused = free_port();
    let tool = |args: &[String]| {
        let out = Command::new("ovsdb-tool").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ovsdb-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A one-member cluster A, and a member C that asked to join a cluster
    // at an address where nothing answers: C runs but is never connected.
    let a_dir = d.join("a");
    let c_dir = d.join("c");
    std::fs::create_dir(&a_dir).unwrap();
    std::fs::create_dir(&c_dir).unwrap();
    tool(&[
        "create-cluster".into(),
        a_dir.join("conf.db").display().to_string(),
        SCHEMA.into(),
        format!("tcp:127.0.0.1:{ra}"),
    ]);
    tool(&[
        "join-cluster".into(),
        c_dir.join("conf.db").display().to_string(),
        "Open_vSwitch".into(),
        format!("tcp:127.0.0.1:{rc}"),
        format!("tcp:127.0.0.1:{unused}"),
    ]);
    let a_sock = a_dir.join("db.sock");
    let c_sock = c_dir.join("db.sock");
    let _a = Server::start(&a_dir, &[format!("punix:{}", a_sock.display())], &[]);
    let _c = Server::start(&c_dir, &[format!("punix:{}", c_sock.display())], &[]);
    let mut h = Harness::new(
        &format!("unix:{},unix:{}", c_sock.display(), a_sock.display()),
        None,
        None,
    );
    h.ready();
    assert_eq!(
        h.client.remote().to_string(),
        format!("unix:{}", a_sock.display())
    );
}

/// Runs `ovsdb-tool` with `args`.
fn ovsdb_tool(args: &[String]) {
    let out = Command::new("ovsdb-tool").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ovsdb-tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A three-member Raft cluster of the Open_vSwitch database in `d`, each
/// member listening on `d/<name>/db.sock`; returned once all three are
/// cluster members.
fn three_member_cluster(d: &Path) -> Vec<(Server, PathBuf)> {
    need("ovsdb-tool");
    let ports = [free_port(), free_port(), free_port()];
    let mut members = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let dir = d.join(name);
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join("conf.db").display().to_string();
        let local = format!("tcp:127.0.0.1:{}", ports[i]);
        if i == 0 {
            ovsdb_tool(&["create-cluster".into(), db, SCHEMA.into(), local]);
        } else {
            let first = format!("tcp:127.0.0.1:{}", ports[0]);
            ovsdb_tool(&[
                "join-cluster".into(),
                db,
                "Open_vSwitch".into(),
                local,
                first,
            ]);
        }
        let sock = dir.join("db.sock");
        let server = Server::start(&dir, &[format!("punix:{}", sock.display())], &[]);
        members.push((server, sock));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in ["a", "b", "c"] {
        let ctl = d.join(name).join("ctl");
        loop {
            let out = Command::new("ovs-appctl")
                .arg("-t")
                .arg(&ctl)
                .args(["cluster/status", "Open_vSwitch"])
                .output()
                .unwrap();
            let status = String::from_utf8_lossy(&out.stdout);
            if status.contains("Status: cluster member")
                && status.contains("Leader: ")
                && !status.contains("Leader: unknown")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {name} never joined: {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    members
}

#[test]
fn a_member_that_loses_its_cluster_while_in_use_is_left_for_another() {
    let dir = private_dir();
    let members = three_member_cluster(dir.path());
    let remotes: Vec<String> = members
        .iter()
        .map(|(_, sock)| format!("unix:{}", sock.display()))
        .collect();
    let mut h = Harness::new(&remotes.join(","), None, None);
    h.ready();
    let used = h.client.remote().to_string();
    // The member in use loses its two peers: it no longer knows the
    // cluster's state, though it still answers, and says so in _Server.
    let others: Vec<&Server> = members
        .iter()
        .filter(|(_, sock)| format!("unix:{}", sock.display()) != used)
        .map(|(s, _)| s)
        .collect();
    for s in &others {
        s.signal("STOP");
    }
    let e = h.until("leaving the isolated member", |e| {
        matches!(e, ClientEvent::Disconnected { reason, .. } if reason.contains("lost contact with its cluster"))
    });
    let ClientEvent::Disconnected { reason, .. } = e else {
        unreachable!()
    };
    assert!(reason.starts_with(&used), "{reason}");
    for s in &others {
        s.signal("CONT");
    }
    // The cluster heals; the client is back on a connected member.
    h.ready();
}

/// The fallback for servers without monitor_cond: a plain monitor, whose
/// "update" notifications carry whole rows.
#[test]
fn plain_monitor_updates_apply() {
    let dir = private_dir();
    let sock = dir.path().join("db.sock");
    let _server = Server::start(dir.path(), &[format!("punix:{}", sock.display())], &[]);
    let mut h = Harness::new(&format!("unix:{}", sock.display()), None, None);
    h.ready();
    let mut replica = Replica::default();
    let initial = h
        .call(
            "monitor",
            json!(["Open_vSwitch", "plain", {"Bridge": {"columns": ["name", "external_ids"]}}]),
        )
        .unwrap();
    replica.apply_update(None, &initial.to_string()).unwrap();
    assert_eq!(replica.len("Bridge"), 0);
    let mut txn = Txn::new("Open_vSwitch");
    txn.insert(
        "Open_vSwitch",
        "ovs",
        &[("bridges", Datum::set([Atom::NamedUuid("br".into())]))],
    );
    txn.insert("Bridge", "br", &[("name", Datum::string("br0"))]);
    check_result(&h.call("transact", txn.params()).unwrap()).unwrap();
    let ClientEvent::Notify { method, params } =
        h.until("update", |e| matches!(e, ClientEvent::Notify { .. }))
    else {
        unreachable!()
    };
    assert_eq!(method, "update");
    replica
        .apply_update(None, &params.value()[1].to_string())
        .unwrap();
    let (uuid, row) = replica.rows("Bridge").next().unwrap();
    assert_eq!(col(row, "name").as_str(), Some("br0"));
    let uuid = *uuid;
    let mut txn = Txn::new("Open_vSwitch");
    txn.mutate(
        "Bridge",
        uuid,
        &[("external_ids", "insert", Datum::str_map([("k", "v")]))],
    );
    check_result(&h.call("transact", txn.params()).unwrap()).unwrap();
    let ClientEvent::Notify { params, .. } =
        h.until("update", |e| matches!(e, ClientEvent::Notify { .. }))
    else {
        unreachable!()
    };
    replica
        .apply_update(None, &params.value()[1].to_string())
        .unwrap();
    assert_eq!(
        col(replica.get("Bridge", &uuid).unwrap(), "external_ids").map_get("k"),
        Some("v")
    );
}

/// `ovsdb-client convert` of a clustered database to the same schema
/// version cancels every monitor on it; without `set_db_change_aware`
/// ovsdb-server does so without a word and the view stops advancing on a
/// healthy connection. Found by trying to break the agent.
#[test]
fn a_converted_clustered_database_is_read_afresh() {
    let dir = private_dir();
    let members = three_member_cluster(dir.path());
    let (_, sock) = &members[0];
    let remote = format!("unix:{}", sock.display());
    let mut h = Harness::new(&remote, None, None);
    h.ready();
    let monitor = json!(["Open_vSwitch", "m", {"Open_vSwitch": [{"columns": ["ovs_version"]}]}]);
    h.call("monitor_cond", monitor).expect("monitor_cond");
    let out = Command::new("ovsdb-client")
        .args(["convert", &remote, SCHEMA])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovsdb-client convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.until("the canceled monitor noticed", |e| {
        matches!(e, ClientEvent::Disconnected { reason, .. }
            if reason.contains("canceled our monitor of Open_vSwitch (the database was converted or replaced)"))
    });
    h.ready();
}
