//! A fleet: K simulated chassis against one Southbound, each with its own
//! local ovsdb-server and its own ovn-controller (no ovs-vswitchd: an
//! OpenFlow stub answers on `br-int.mgmt` so that ovn-controller runs its
//! processing), 100 ports requested on each.
//!
//! Compared are the deployed shape (our agent beside a non-plugging
//! ovn-controller on every chassis) and the plugging ovn-controller alone:
//! time until the last chassis has all its interfaces, and what the
//! Southbound ovsdb-server spent meanwhile (CPU, bytes written, sessions).

use crate::contestant::{Who, LIMIT};
use crate::watch::{Kind, Watch};
use crate::Row;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::openflow_stub::OpenFlowStub;
use testkit::sandbox::{wait_until, Daemon, Sandbox, SandboxOptions};

/// Ports requested on each chassis.
pub const PORTS: usize = 100;

/// A Unix-socket proxy in front of the Southbound that counts the bytes the
/// server sends through it (socket writes do not show in /proc/PID/io).
struct CountingProxy {
    path: PathBuf,
    down: Arc<AtomicU64>,
}

impl CountingProxy {
    fn start(path: PathBuf, upstream: PathBuf) -> CountingProxy {
        let listener = UnixListener::bind(&path).unwrap();
        let down = Arc::new(AtomicU64::new(0));
        let d = down.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
                let d = d.clone();
                let (mut s_in, mut c_out) = (server, client);
                // VIF_PLUG_FAULTS_DUMP=DIR: what the server sends, per session.
                let mut dump = std::env::var_os("VIF_PLUG_FAULTS_DUMP").map(|dir| {
                    let n = d.load(Ordering::Relaxed);
                    fs::File::create(
                        Path::new(&dir)
                            .join(format!("session-{n}-{:?}", std::thread::current().id())),
                    )
                    .unwrap()
                });
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let Some(f) = dump.as_mut() {
                            let _ = f.write_all(&buf[..n]);
                        }
                        d.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CountingProxy { path, down }
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    fn bytes(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }
}

/// One simulated chassis; its processes are killed (by PID) when dropped.
struct Chassis {
    name: String,
    dir: PathBuf,
    children: Vec<Child>,
    _stub: OpenFlowStub,
}

impl Drop for Chassis {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn command(program: &str, dir: &Path) -> Command {
    let mut c = Command::new(program);
    for var in [
        "OVS_RUNDIR",
        "OVS_LOGDIR",
        "OVS_DBDIR",
        "OVS_SYSCONFDIR",
        "OVN_RUNDIR",
        "OVN_LOGDIR",
        "OVN_DBDIR",
        "OVN_SYSCONFDIR",
    ] {
        c.env(var, dir);
    }
    c.stdin(Stdio::null()).stdout(Stdio::null());
    c
}

fn run(cmd: &mut Command) {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Chassis {
    /// `sb_remote` is what ovn-controller is given, `agent_sb` what our
    /// agent is given.
    fn start(
        who: Who,
        i: usize,
        root: &Path,
        (sb_remote, agent_sb): (&str, &str),
        provider: &Path,
    ) -> Chassis {
        let name = format!("hv{i}");
        let dir = root.join(&name);
        fs::create_dir_all(&dir).unwrap();
        let db = dir.join("conf.db");
        run(command("ovsdb-tool", &dir)
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"));
        let sock = dir.join("db.sock");
        let remote = format!("unix:{}", sock.display());
        let mut children = Vec::new();
        children.push(
            command("ovsdb-server", &dir)
                .arg(&db)
                .arg(format!("--remote=punix:{}", sock.display()))
                .arg(format!("--unixctl={}", dir.join("db.ctl").display()))
                .arg(format!("--log-file={}", dir.join("db.log").display()))
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_until(Duration::from_secs(30), "local ovsdb-server", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        })
        .unwrap();
        let encap = format!("127.1.{}.{}", i / 200, i % 200 + 1);
        run(command("ovs-vsctl", &dir).args([
            &format!("--db={remote}"),
            "--no-wait",
            "--",
            "init",
            "--",
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "fail_mode=secure",
            "datapath_type=netdev",
            "other_config:disable-in-band=true",
            "--",
            "set",
            "Open_vSwitch",
            ".",
            &format!("external_ids:system-id={name}"),
            &format!("external_ids:ovn-remote=\"{sb_remote}\""),
            "external_ids:ovn-encap-type=geneve",
            &format!("external_ids:ovn-encap-ip={encap}"),
            "external_ids:ovn-bridge=br-int",
        ]));
        let stub = OpenFlowStub::start(&dir.join("br-int.mgmt")).unwrap();
        let mut controller = command("ovn-controller", &dir);
        controller
            .arg(&remote)
            .arg(format!(
                "--log-file={}",
                dir.join("ovn-controller.log").display()
            ))
            .stderr(Stdio::null());
        if who == Who::Reference {
            controller.arg("--enable-dummy-vif-plug");
        }
        children.push(controller.spawn().unwrap());
        if who == Who::Agent {
            let log = fs::File::create(dir.join("agent.log")).unwrap();
            children.push(
                command(env!("CARGO_BIN_EXE_vif-plug-host"), &dir)
                    .args(["run", "--ovs-remote", &remote, "--ovnsb-remote", agent_sb])
                    .arg("--provider")
                    .arg(provider)
                    .arg("--provider-config")
                    .arg(format!(
                        "counting:journal={}",
                        dir.join("journal").display()
                    ))
                    .env("RUST_LOG", "info")
                    .stderr(log)
                    .spawn()
                    .unwrap(),
            );
        }
        Chassis {
            name,
            dir,
            children,
            _stub: stub,
        }
    }

    fn remote(&self) -> String {
        format!("unix:{}", self.dir.join("db.sock").display())
    }
}

/// CPU seconds (user + system) of `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// `sessions` of the server's `memory/show`.
fn sessions(sb: &Sandbox) -> String {
    sb.appctl(Daemon::SbDb, &["memory/show"])
        .ok()
        .and_then(|m| {
            m.split_whitespace()
                .find_map(|kv| kv.strip_prefix("sessions:").map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into())
}

/// K chassis, `PORTS` ports each.
pub fn fleet(who: Who, dir: &Path, k: usize) -> Row {
    let sb = Sandbox::start(SandboxOptions {
        start_ovn_controller: false,
        timeout: Duration::from_secs(300),
        ..SandboxOptions::default()
    })
    .unwrap();
    sb.nbctl(&["ls-add", "sw0"]).unwrap();
    let root = sb.dir().join("fleet");
    fs::create_dir_all(&root).unwrap();
    let provider = dir.join("libcounting_provider.so");
    let upstream = PathBuf::from(sb.sb_remote().trim_start_matches("unix:"));
    let for_controllers = CountingProxy::start(root.join("sb-controllers.sock"), upstream.clone());
    let for_agents = CountingProxy::start(root.join("sb-agents.sock"), upstream);
    let remotes = (for_controllers.remote(), for_agents.remote());
    let chassis: Vec<Chassis> = (1..=k)
        .map(|i| Chassis::start(who, i, &root, (&remotes.0, &remotes.1), &provider))
        .collect();
    wait_until(LIMIT, "every chassis registered", || {
        sb.sbctl(&["--bare", "--columns=name", "list", "Chassis"])
            .is_ok_and(|o| o.lines().filter(|l| !l.is_empty()).count() == k)
    })
    .unwrap();
    if who == Who::Agent {
        wait_until(LIMIT, "every agent connected", || {
            chassis.iter().all(|c| {
                fs::read_to_string(c.dir.join("agent.log"))
                    .unwrap_or_default()
                    .contains("port binding(s) in view for chassis")
            })
        })
        .unwrap();
    }
    let watches: Vec<Watch> = chassis
        .iter()
        .map(|c| Watch::start(&c.remote(), Kind::PluggedInterfaces))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let sb_pid = sb.pid(Daemon::SbDb).unwrap();
    let cpu0 = cpu_seconds(sb_pid);
    let bytes0 = (for_controllers.bytes(), for_agents.bytes());
    let t0 = Instant::now();
    let names: Vec<(String, String)> = chassis
        .iter()
        .flat_map(|c| (0..PORTS).map(move |p| (format!("{}-p{p}", c.name), c.name.clone())))
        .collect();
    let plug_type = match who {
        Who::Agent => testkit::contract::TYPE,
        Who::Reference => "dummy",
    };
    for batch in names.chunks(500) {
        let mut args: Vec<String> = Vec::new();
        for (lsp, hv) in batch {
            args.extend(["--", "lsp-add", "sw0", lsp].map(String::from));
            args.extend(["--", "lsp-set-options", lsp].map(String::from));
            args.push(format!("requested-chassis={hv}"));
            args.push(format!("vif-plug-type={plug_type}"));
        }
        sb.nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
    }
    let done = wait_until(LIMIT, "every chassis plugged", || {
        watches
            .iter()
            .all(|w| w.seen.lock().unwrap().appeared.len() >= PORTS)
    });
    let last = done.ok().map(|()| t0.elapsed());
    let cpu1 = cpu_seconds(sb_pid);
    let bytes1 = (for_controllers.bytes(), for_agents.bytes());
    let sessions = sessions(&sb);
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu = cpu_seconds(sb_pid) - cpu1;
    let contracts: Vec<_> = if who == Who::Agent {
        chassis
            .iter()
            .map(|c| {
                let present = watches_present(&watches, c);
                testkit::contract::check(&c.dir.join("journal"), &present)
            })
            .collect()
    } else {
        Vec::new()
    };
    drop(watches);
    drop(chassis);
    let violations: usize = contracts.iter().map(|r| r.violations.len()).sum();
    Row::new(who)
        .cell("chassis", k)
        .cell(
            "last chassis plugged after",
            last.map_or("not within the limit".into(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            }),
        )
        .cell(
            "Southbound CPU while plugging",
            format!("{:.2} s", cpu1 - cpu0),
        )
        .cell(
            "Southbound bytes sent: to ovn-controllers + to agents",
            format!(
                "{:.0} + {:.0} kB",
                (bytes1.0 - bytes0.0) as f64 / 1e3,
                (bytes1.1 - bytes0.1) as f64 / 1e3
            ),
        )
        .cell("Southbound sessions", sessions)
        .cell("Southbound CPU, next 10 s idle", format!("{idle_cpu:.2} s"))
        .cell(
            "provider contract",
            if who == Who::Agent {
                format!("{violations} violation(s) on {} chassis", contracts.len())
            } else {
                "—".into()
            },
        )
}

/// The interfaces `c`'s agent plugged (from its watcher, which keys them
/// by logical port; interfaces are named after the port).
fn watches_present(watches: &[Watch], c: &Chassis) -> std::collections::BTreeSet<String> {
    let prefix = format!("{}-", c.name);
    watches
        .iter()
        .flat_map(|w| {
            let seen = w.seen.lock().unwrap();
            seen.appeared
                .keys()
                .filter(|k| k.starts_with(&prefix) && !seen.gone.contains_key(*k))
                .map(|k| k.chars().take(15).collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect()
}
