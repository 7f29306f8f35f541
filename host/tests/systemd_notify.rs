//! The agent under a service manager (`Type=notify`), against real
//! daemons: it reports `READY=1` only once both the local database and
//! the Southbound are read, keeps a `STATUS=` line with its port counts,
//! hands the notify socket to no provider worker, and says `STOPPING=1`.
//!
//! The service manager's end is a datagram socket bound by the test, as
//! systemd binds its own (`sd_notify(3)`): this machine has no systemd.

mod common;

use common::{plug, Env};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};
use testkit::cargo_cdylib;
use testkit::sandbox::Daemon;

/// The service manager's end of `NOTIFY_SOCKET`.
struct Manager {
    socket: UnixDatagram,
    /// Every `KEY=VALUE` line received, in order.
    lines: Vec<String>,
}

impl Manager {
    /// Reads what arrives for up to `limit`, until `until` holds for a
    /// line; returns whether it did.
    fn read_until(&mut self, limit: Duration, mut until: impl FnMut(&str) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            let Ok(n) = self.socket.recv(&mut buf) else {
                return false;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let mut hit = false;
            for l in text.lines() {
                hit |= until(l);
                self.lines.push(l.to_owned());
            }
            if hit {
                return true;
            }
        }
    }

    fn told(&self) -> String {
        self.lines.join("\n")
    }
}

#[test]
fn ready_waits_for_both_databases_status_counts_ports_and_stopping_is_said() {
    let dir = testkit::private_dir();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    // The only test of this file (its own process): the agent inherits it.
    std::env::set_var("NOTIFY_SOCKET", &path);
    let mut manager = Manager {
        socket,
        lines: Vec::new(),
    };

    // The Southbound is down when the agent starts.
    let mut env = Env::start_with(|sb, providers| {
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", providers);
        sb.stop(Daemon::SbDb).unwrap();
        Vec::new()
    });
    let waiting = manager.read_until(common::WAIT, |l| {
        l == "STATUS=reading the OVN Southbound database"
    });
    assert!(
        waiting,
        "told: {}\n--- agent log ---\n{}",
        manager.told(),
        env.agent.log()
    );
    // Not ready while the Southbound stays down (its reconnect back-off
    // has several attempts in this time).
    manager.read_until(Duration::from_secs(3), |_| false);
    assert!(
        !manager.lines.iter().any(|l| l == "READY=1"),
        "ready without the Southbound: {}",
        manager.told()
    );

    env.sb.start_daemon(Daemon::SbDb).unwrap();
    let ready = manager.read_until(common::WAIT, |l| l == "READY=1");
    assert!(
        ready,
        "told: {}\n--- agent log ---\n{}",
        manager.told(),
        env.agent.log()
    );
    // Ready only once our chassis' bindings are in view (the server has
    // acknowledged the condition), not at the monitor's first reply. (The
    // agent logs that it told the manager just after the datagram left.)
    env.wait("the agent logs that it is ready", || {
        env.agent
            .log()
            .contains("told the service manager we are ready")
    });
    let log = env.agent.log();
    let (in_view, told) = (
        log.find("port binding(s) in view for chassis"),
        log.find("told the service manager we are ready"),
    );
    assert!(
        matches!((in_view, told), (Some(a), Some(b)) if a < b),
        "{log}"
    );

    plug(&env, "vm1", &[]);
    let counted = manager.read_until(common::WAIT, |l| {
        l.starts_with("STATUS=1 plugged") && !l.contains("unplugs held")
    });
    assert!(
        counted,
        "told: {}\n--- agent log ---\n{}",
        manager.told(),
        env.agent.log()
    );
    assert_eq!(
        manager.lines.iter().filter(|l| *l == "READY=1").count(),
        1,
        "{}",
        manager.told()
    );

    // The Southbound lost after READY: the counts stay, with why unplugs
    // are held, rather than a return to "reading".
    env.sb.stop(Daemon::SbDb).unwrap();
    let held = manager.read_until(common::WAIT, |l| {
        l == "STATUS=1 plugged; unplugs held: the Southbound is not connected"
    });
    assert!(held, "told: {}", manager.told());
    env.sb.start_daemon(Daemon::SbDb).unwrap();

    // Provider workers (the default isolation) are not handed the socket.
    let agent = env.agent.child.as_ref().unwrap().id();
    let workers = children_of(agent);
    if std::env::var("VIF_PLUG_TEST_ISOLATION").as_deref() != Ok("none") {
        assert!(!workers.is_empty(), "no worker process under {agent}");
    }
    for pid in workers {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        assert!(
            !environ
                .split(|b| *b == 0)
                .any(|kv| kv.starts_with(b"NOTIFY_SOCKET=")),
            "worker {pid} has NOTIFY_SOCKET"
        );
    }

    assert!(env.agent.stop().success());
    let stopping = manager.read_until(Duration::from_secs(5), |l| l == "STOPPING=1");
    assert!(stopping, "told: {}", manager.told());
}

/// The PIDs whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}
