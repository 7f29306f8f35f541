//! Agent scale benchmarks, each against a reference run in the same session:
//!
//! 1. N logical ports created in one Northbound transaction: time until all
//!    N interfaces exist in the local database, for `vif-plug-host run`
//!    (beside a non-plugging ovn-controller) and for Debian's
//!    `ovn-controller --enable-dummy-vif-plug` doing the same job, several
//!    runs each, alternating. For each agent run, the agent's own log says
//!    when the Southbound update reached it and when its transaction left,
//!    and every daemon's CPU time over the run is read from /proc. A bare
//!    ovsdb-server committing the same N-port transaction gives the least
//!    the local database needs; with the time the Southbound update takes
//!    to arrive, that bounds from below what any plugging agent can reach.
//! 2. CPU used over an idle period with the largest N plugged, by the agent
//!    and by the reference ovn-controller.
//! 3. Bytes the agent receives from the Southbound database when it holds
//!    many Port_Bindings for other chassis, against an unconditional monitor
//!    of the same columns (what an agent without conditions would get).
//!
//!   cargo bench -p vif-plug-host --bench agent_scale
//!
//! Environment: VIF_PLUG_BENCH_SIZES (default "500,5000"),
//! VIF_PLUG_BENCH_RUNS (runs per size and contestant, default 3),
//! VIF_PLUG_BENCH_IDLE_SECS (default 60), VIF_PLUG_BENCH_OTHER_PBS (default
//! 20000), VIF_PLUG_BENCH_SVG (a path to write the plot to),
//! VIF_PLUG_BENCH_VERSUS (`reference`, the default, or `in-process`: the
//! agent with its providers in worker processes, as shipped, against the
//! agent with `--provider-isolation=none`, in the reference's column).

use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use testkit::sandbox::{wait_until, Daemon, Sandbox, SandboxOptions};
use vif_plug_host::ovsdb::client::{Client, ClientConfig, ClientEvent};
use vif_plug_host::ovsdb::connection::ConnEvent;
use vif_plug_host::ovsdb::remote;
use vif_plug_host::ovsdb::replica::{col, Replica};
use vif_plug_host::ovsdb::txn::Txn;
use vif_plug_host::ovsdb::{Atom, Datum};

const TIMEOUT: Duration = Duration::from_secs(900);

/// A minimal synchronous driver of our OVSDB client, for measuring.
struct Db {
    client: Client,
    rx: Receiver<ConnEvent>,
    backlog: Vec<ClientEvent>,
}

impl Db {
    fn connect(remote_str: &str, database: &str) -> Db {
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let client = Client::new(
            ClientConfig {
                label: "bench".into(),
                database: database.into(),
                remotes: remote::parse_list(remote_str).unwrap(),
                tls: None,
                probe_interval: None,
                connect_timeout: Duration::from_secs(5),
                shuffle_remotes: false,
                required: &[],
            },
            Arc::new(move |e| {
                let _ = tx.lock().unwrap().send(e);
            }),
        );
        let mut db = Db {
            client,
            rx,
            backlog: Vec::new(),
        };
        db.next(|e| *e == ClientEvent::Ready);
        db
    }

    fn next(&mut self, mut want: impl FnMut(&ClientEvent) -> bool) -> ClientEvent {
        if let Some(i) = self.backlog.iter().position(&mut want) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "benchmark timed out");
            let (events, _) = self.client.tick(Instant::now());
            for e in events {
                if want(&e) {
                    return e;
                }
                self.backlog.push(e);
            }
            if let Ok(ev) = self.rx.recv_timeout(Duration::from_millis(50)) {
                for e in self.client.handle(ev) {
                    if want(&e) {
                        return e;
                    }
                    self.backlog.push(e);
                }
            }
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.client.request(method, params).unwrap();
        match self.next(|e| matches!(e, ClientEvent::Reply { id: i, .. } | ClientEvent::Error { id: i, .. } if *i == id)) {
            ClientEvent::Reply { result, .. } => result.value(),
            other => panic!("{method} failed: {other:?}"),
        }
    }
}

/// CPU seconds (user + system) used so far by process `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The agent as shipped: providers in worker processes.
    Agent,
    /// ovn-controller --enable-dummy-vif-plug.
    Reference,
    /// The agent with --provider-isolation=none (VIF_PLUG_BENCH_VERSUS=
    /// in-process puts it in the reference's place).
    AgentInProcess,
}

struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return; // already exited
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn start_agent(sb: &Sandbox, provider_dir: &Path, log: &Path, in_process: bool) -> AgentProc {
    let isolation = if in_process { "none" } else { "process" };
    let child = sb
        .command(env!("CARGO_BIN_EXE_vif-plug-host"))
        .args(["run", "--ovs-remote", &sb.ovs_remote(), "--provider-dir"])
        .arg(provider_dir)
        .args(["--provider-isolation", isolation])
        // The agent's debug lines (a handful per transaction) time its
        // steps; per-port lines stay at info.
        .env(
            "RUST_LOG",
            std::env::var("VIF_PLUG_BENCH_AGENT_LOG")
                .unwrap_or_else(|_| "info,vif_plug_host::agent=debug".into()),
        )
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let agent = AgentProc(child);
    wait_until(Duration::from_secs(30), "agent ready", || {
        fs::read_to_string(log)
            .unwrap_or_default()
            .contains("port binding(s) in view for chassis")
    })
    .unwrap();
    agent
}

/// Creates `n` logical ports named `{prefix}{i}` on sw0 in one transaction.
fn create_lsps(nb: &mut Db, sw: &str, prefix: &str, n: usize, chassis: &str) {
    let mut ops = vec![json!("OVN_Northbound")];
    let mut names = Vec::new();
    for i in 0..n {
        let uuid_name = format!("lsp{i}");
        ops.push(
            json!({"op": "insert", "table": "Logical_Switch_Port", "uuid-name": uuid_name,
            "row": {"name": format!("{prefix}{i:05}"), "options": ["map", [
                ["requested-chassis", chassis], ["vif-plug-type", "dummy"]]]}}),
        );
        names.push(json!(["named-uuid", uuid_name]));
    }
    ops.push(
        json!({"op": "mutate", "table": "Logical_Switch", "where": [["_uuid", "==", ["uuid", sw]]],
        "mutations": [["ports", "insert", ["set", names]]]}),
    );
    let r = nb.call("transact", Value::Array(ops));
    vif_plug_host::ovsdb::txn::check_result(&r).unwrap();
}

/// Seconds since midnight UTC, for comparing with log timestamps.
fn day_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .rem_euclid(86_400.0)
}

/// The time of day of an env_logger line, `[YYYY-MM-DDTHH:MM:SS.mmmZ ...`.
fn log_day_seconds(line: &str) -> Option<f64> {
    let t = line.get(12..24)?;
    let (h, rest) = t.split_once(':')?;
    let (m, s) = rest.split_once(':')?;
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// When, in seconds after `t0`, the agent's log first shows a line
/// containing `what` at or after `after` seconds.
fn agent_step(log: &str, t0: SystemTime, what: &str, after: f64) -> Option<f64> {
    let base = day_seconds(t0);
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(log_day_seconds)
        .map(|t| (t - base).rem_euclid(86_400.0))
        // Wrapped-around values are from before t0.
        .find(|&t| t >= after && t < 43_200.0)
}

const DAEMONS: [(Daemon, &str); 6] = [
    (Daemon::NbDb, "NB ovsdb-server"),
    (Daemon::SbDb, "SB ovsdb-server"),
    (Daemon::Northd, "ovn-northd"),
    (Daemon::OvsDb, "local ovsdb-server"),
    (Daemon::Vswitchd, "ovs-vswitchd"),
    (Daemon::OvnController, "ovn-controller"),
];

struct PlugRun {
    seconds: f64,
    idle_cpu: Option<f64>,
    /// Agent runs: when the Southbound update reached the agent, and when
    /// its transaction was written, in seconds after the Northbound one.
    sb_update: Option<f64>,
    txn_sent: Option<f64>,
    /// CPU seconds each process used during the run.
    cpu: Vec<(&'static str, f64)>,
}

fn plug_run(n: usize, mode: Mode, provider_dir: &Path, idle_secs: u64) -> PlugRun {
    let opts = SandboxOptions {
        ovn_controller_args: if mode == Mode::Reference {
            vec!["--enable-dummy-vif-plug".into()]
        } else {
            vec![]
        },
        timeout: Duration::from_secs(120),
        ..SandboxOptions::default()
    };
    let sb = Sandbox::start(opts).unwrap();
    let log = sb.dir().join("agent.log");
    let agent = (mode != Mode::Reference)
        .then(|| start_agent(&sb, provider_dir, &log, mode == Mode::AgentInProcess));
    sb.nbctl(&["ls-add", "sw0"]).unwrap();
    let sw = sb
        .nbctl(&["get", "Logical_Switch", "sw0", "_uuid"])
        .unwrap();

    let mut local = Db::connect(&sb.ovs_remote(), "Open_vSwitch");
    let schema = local.client.schema().unwrap().clone();
    let mut replica = Replica::default();
    let initial = local.call(
        "monitor_cond",
        json!(["Open_vSwitch", "bench", {"Interface": [{"columns": ["name", "external_ids"]}]}]),
    );
    replica
        .apply_update2(&schema, &initial.to_string())
        .unwrap();
    let plugged = |r: &Replica| {
        r.rows("Interface")
            .filter(|(_, row)| col(row, "external_ids").map_get("ovn-plugged").is_some())
            .count()
    };

    let mut nb = Db::connect(&sb.nb_remote(), "OVN_Northbound");
    let mut pids: Vec<(&'static str, u32)> = DAEMONS
        .iter()
        .map(|&(d, name)| (name, sb.pid(d).unwrap()))
        .collect();
    if let Some(a) = &agent {
        pids.push(("vif-plug-host", a.0.id()));
    }
    let cpu_before: Vec<f64> = pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
    let wall0 = SystemTime::now();
    let t0 = Instant::now();
    create_lsps(&mut nb, &sw, "p", n, sb.chassis_name());
    let mut count = plugged(&replica);
    while count < n {
        if let ClientEvent::Notify { params, .. } =
            local.next(|e| matches!(e, ClientEvent::Notify { .. }))
        {
            let changes = replica
                .apply_update2(&schema, &params.value()[1].to_string())
                .unwrap();
            // Count incrementally: inserts of plugged interfaces.
            if !changes.is_empty() {
                count = plugged(&replica);
            }
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = pids
        .iter()
        .zip(&cpu_before)
        .map(|((name, pid), before)| (*name, cpu_seconds(*pid) - before))
        .collect();

    let (sb_update, txn_sent) = match &agent {
        Some(_) => {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let update = agent_step(&text, wall0, "southbound: update of", 0.0);
            let sent = update.and_then(|u| agent_step(&text, wall0, "operation(s) sent", u));
            (update, sent)
        }
        None => (None, None),
    };

    let idle_cpu = (idle_secs > 0).then(|| {
        // Let both finish binding, then measure the plugging process alone.
        let pid = match &agent {
            Some(a) => a.0.id(),
            None => sb.pid(Daemon::OvnController).unwrap(),
        };
        std::thread::sleep(Duration::from_secs(5));
        let before = cpu_seconds(pid);
        std::thread::sleep(Duration::from_secs(idle_secs));
        cpu_seconds(pid) - before
    });
    drop(agent);
    PlugRun {
        seconds,
        idle_cpu,
        sb_update,
        txn_sent,
        cpu,
    }
}

/// The least the local database needs: a bare ovsdb-server (no other
/// client, so no monitor to feed) committing the agent's N-port
/// transaction, Interface + Port inserts and one `Bridge.ports` mutate.
/// Seconds from sending it to the reply. With `agent_monitor`, a second
/// client holds the agent's own monitor of the local database, to show
/// what feeding it costs the server.
fn bare_commit(n: usize, agent_monitor: bool) -> f64 {
    let sb = Sandbox::start(SandboxOptions {
        start_ovn_controller: false,
        timeout: Duration::from_secs(120),
        ..SandboxOptions::default()
    })
    .unwrap();
    sb.stop(Daemon::Vswitchd).unwrap();
    let bridge: vif_plug_host::ovsdb::Uuid = sb
        .vsctl(&["get", "Bridge", "br-int", "_uuid"])
        .unwrap()
        .parse()
        .unwrap();
    let mut txn = Txn::new("Open_vSwitch");
    let mut ports = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("p{i:05}");
        txn.insert(
            "Interface",
            &format!("iface{i}"),
            &[
                ("name", Datum::string(&name)),
                (
                    "external_ids",
                    Datum::str_map([("iface-id", name.as_str()), ("ovn-plugged", "dummy")]),
                ),
                ("type", Datum::string("internal")),
                (
                    "options",
                    Datum::str_map([("vif-plug-dummy-option", "value")]),
                ),
            ],
        );
        txn.insert(
            "Port",
            &format!("port{i}"),
            &[
                ("name", Datum::string(&name)),
                (
                    "interfaces",
                    Datum::scalar(Atom::NamedUuid(format!("iface{i}"))),
                ),
            ],
        );
        ports.push(Atom::NamedUuid(format!("port{i}")));
    }
    txn.mutate("Bridge", bridge, &[("ports", "insert", Datum::set(ports))]);
    let _watcher = agent_monitor.then(|| {
        let mut w = Db::connect(&sb.ovs_remote(), "Open_vSwitch");
        let params = vif_plug_host::agent::local_view::monitor_params(
            w.client.schema().unwrap(),
            &json!("agent"),
        );
        w.call("monitor_cond", params);
        w
    });
    let mut db = Db::connect(&sb.ovs_remote(), "Open_vSwitch");
    let t0 = Instant::now();
    let r = db.call("transact", txn.params());
    let seconds = t0.elapsed().as_secs_f64();
    vif_plug_host::ovsdb::txn::check_result(&r).unwrap();
    seconds
}

/// Bytes the agent receives with `others` bindings for another chassis and
/// `ours` for it, and what an unconditional Port_Binding monitor of the
/// same columns receives.
fn traffic(others: usize, ours: usize, provider_dir: &Path) -> (u64, u64) {
    let sb = Sandbox::start(SandboxOptions {
        timeout: Duration::from_secs(120),
        ..SandboxOptions::default()
    })
    .unwrap();
    sb.sbctl(&["chassis-add", "chassis-2", "geneve", "127.0.0.2"])
        .unwrap();
    sb.nbctl(&["ls-add", "sw0"]).unwrap();
    let sw = sb
        .nbctl(&["get", "Logical_Switch", "sw0", "_uuid"])
        .unwrap();
    let mut nb = Db::connect(&sb.nb_remote(), "OVN_Northbound");
    create_lsps(&mut nb, &sw, "other", others, "chassis-2");
    create_lsps(&mut nb, &sw, "mine", ours, sb.chassis_name());
    wait_until(TIMEOUT, "bindings in the Southbound", || {
        sb.sbctl(&[
            "--bare",
            "--columns=_uuid",
            "find",
            "Port_Binding",
            "type=\"\"",
        ])
        .map(|s| s.lines().filter(|l| !l.is_empty()).count() == others + ours)
        .unwrap_or(false)
    })
    .unwrap();

    let log = sb.dir().join("agent.log");
    let mut agent = start_agent(&sb, provider_dir, &log, false);
    wait_until(TIMEOUT, "our ports plugged", || {
        sb.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "Interface",
            "external_ids:ovn-plugged=dummy",
        ])
        .map(|s| s.lines().filter(|l| !l.is_empty()).count() == ours)
        .unwrap_or(false)
    })
    .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &agent.0.id().to_string()])
        .status();
    let _ = agent.0.wait();
    let text = fs::read_to_string(&log).unwrap();
    let agent_bytes: u64 = text
        .lines()
        .find_map(|l| l.split("southbound: received ").nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the agent reports its Southbound bytes");

    let mut plain = Db::connect(&sb.sb_remote(), "OVN_Southbound");
    let before = plain.client.rx_bytes();
    plain.call(
        "monitor_cond",
        json!(["OVN_Southbound", "all", {"Port_Binding": [{"columns": ["logical_port", "type", "options", "requested_chassis"]}]}]),
    );
    (agent_bytes, plain.client.rx_bytes() - before)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// One size's medians, for the summary and the plot.
struct Summary {
    n: usize,
    agent: f64,
    reference: f64,
    /// Median arrival of the Southbound update at the agent.
    upstream: f64,
    bare_commit: f64,
    /// The same with the agent's monitor attached.
    bare_commit_monitored: f64,
}

fn svg(rows: &[Summary]) -> String {
    let w = 680.0;
    let h = 380.0;
    let max = rows
        .iter()
        .map(|r| r.agent.max(r.reference))
        .fold(0.0, f64::max)
        * 1.2;
    let group = (w - 80.0) / rows.len() as f64;
    let bar = group / 4.0;
    let y = |v: f64| h - 40.0 - (v / max) * (h - 100.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">Time until N interfaces exist in the local database (s, median, lower is better)</text>\n\
         <line x1=\"60\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
        w / 2.0,
        h - 40.0,
        w - 20.0,
        h - 40.0
    );
    let colors = [
        ("#2b7bb9", "vif-plug-host run (dummy provider)"),
        ("#d95f02", "ovn-controller --enable-dummy-vif-plug"),
        (
            "#999999",
            "shared-path floor: Southbound arrival + bare local commit",
        ),
    ];
    for (i, r) in rows.iter().enumerate() {
        let x0 = 60.0 + i as f64 * group + bar / 2.0;
        let values = [r.agent, r.reference, r.upstream + r.bare_commit];
        for (j, (v, (color, label))) in values.iter().zip(colors).enumerate() {
            let x = x0 + j as f64 * bar;
            s += &format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{label}</title></rect>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v:.2}</text>\n",
                y(*v),
                bar * 0.9,
                h - 40.0 - y(*v),
                x + bar * 0.45,
                y(*v) - 4.0
            );
        }
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">N = {}</text>\n",
            x0 + 1.5 * bar,
            h - 22.0,
            r.n
        );
    }
    for (k, (color, label)) in colors.iter().enumerate() {
        let top = 32.0 + 18.0 * k as f64;
        s += &format!(
            "<rect x=\"80\" y=\"{top}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"96\" y=\"{}\">{label}</text>\n",
            top + 11.0
        );
    }
    s + "</svg>\n"
}

fn main() {
    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let sizes: Vec<usize> = env_or("VIF_PLUG_BENCH_SIZES", "500,5000")
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let runs: usize = env_or("VIF_PLUG_BENCH_RUNS", "3").parse().unwrap();
    let idle_secs: u64 = env_or("VIF_PLUG_BENCH_IDLE_SECS", "60").parse().unwrap();
    let others: usize = env_or("VIF_PLUG_BENCH_OTHER_PBS", "20000").parse().unwrap();

    let providers = testkit::private_dir();
    testkit::cargo_cdylib_in("vif-plug-dummy", "vif_plug_dummy", providers.path(), true);

    // VIF_PLUG_BENCH_VERSUS=in-process: the agent with providers in worker
    // processes against the agent with them in process, instead of against
    // the reference.
    let versus = if env_or("VIF_PLUG_BENCH_VERSUS", "reference") == "in-process" {
        Mode::AgentInProcess
    } else {
        Mode::Reference
    };
    let versus_label = if versus == Mode::Reference {
        "ovn-controller --enable-dummy-vif-plug"
    } else {
        "vif-plug-host run --provider-isolation=none"
    };
    println!("| N | run | vif-plug-host run | {versus_label} | agent / reference | SB update at the agent | agent's transaction sent |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut summaries = Vec::new();
    let mut cpu_lines = Vec::new();
    let mut idle = None;
    let largest = *sizes.iter().max().unwrap();
    for &n in &sizes {
        let (mut ours, mut refs, mut upstream) = (Vec::new(), Vec::new(), Vec::new());
        for run in 1..=runs {
            // The idle period is measured after the last run of the
            // largest size only.
            let measure_idle = if n == largest && run == runs {
                idle_secs
            } else {
                0
            };
            // Alternate who goes first, so that drift in the machine's
            // speed does not favour one.
            let (a, r) = if run % 2 == 1 {
                let a = plug_run(n, Mode::Agent, providers.path(), measure_idle);
                (a, plug_run(n, versus, providers.path(), measure_idle))
            } else {
                let r = plug_run(n, versus, providers.path(), measure_idle);
                (plug_run(n, Mode::Agent, providers.path(), measure_idle), r)
            };
            let ms = |t: Option<f64>| t.map_or("?".to_owned(), |t| format!("{:.2} s", t));
            println!(
                "| {n} | {run} | {:.2} s | {:.2} s | {:.2} | {} | {} |",
                a.seconds,
                r.seconds,
                a.seconds / r.seconds,
                ms(a.sb_update),
                ms(a.txn_sent)
            );
            ours.push(a.seconds);
            refs.push(r.seconds);
            upstream.extend(a.sb_update);
            for (who, p) in [("agent", &a), ("reference", &r)] {
                let parts: Vec<String> = p
                    .cpu
                    .iter()
                    .map(|(name, c)| format!("{name} {c:.2}"))
                    .collect();
                cpu_lines.push(format!("N={n} run {run} {who}: {}", parts.join(", ")));
            }
            if let (Some(ai), Some(ri)) = (a.idle_cpu, r.idle_cpu) {
                idle = Some((n, ai, ri));
            }
        }
        summaries.push(Summary {
            n,
            agent: median(&ours),
            reference: median(&refs),
            upstream: median(&upstream),
            bare_commit: bare_commit(n, false),
            bare_commit_monitored: bare_commit(n, true),
        });
    }

    println!("\n| N | agent (median) | reference (median) | agent / reference | SB update at the agent | bare local commit | floor / reference | bare commit feeding the agent's monitor |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in &summaries {
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} | {:.2} s | {:.2} s | {:.2} | {:.2} s |",
            s.n,
            s.agent,
            s.reference,
            s.agent / s.reference,
            s.upstream,
            s.bare_commit,
            (s.upstream + s.bare_commit) / s.reference,
            s.bare_commit_monitored
        );
    }
    println!("\nCPU seconds used by each process from the Northbound transaction until all interfaces were seen:");
    for l in &cpu_lines {
        println!("- {l}");
    }
    if let Some((n, a, r)) = idle {
        println!(
            "\nidle CPU over {idle_secs} s with {n} ports plugged: vif-plug-host {a:.2} s ({:.3} %), reference ovn-controller {r:.2} s ({:.3} %)",
            a / idle_secs as f64 * 100.0,
            r / idle_secs as f64 * 100.0
        );
    }
    if others > 0 {
        let (agent, all) = traffic(others, 10, providers.path());
        println!(
            "\nSouthbound bytes received with {others} bindings for another chassis and 10 for ours: vif-plug-host {agent} B, unconditional Port_Binding monitor {all} B, ratio {:.4}",
            agent as f64 / all as f64
        );
    }
    if let Ok(path) = std::env::var("VIF_PLUG_BENCH_SVG") {
        // cargo runs benchmarks in the package directory; a relative path
        // is taken from the workspace root, as the docs give it.
        let path = testkit::workspace_root().join(path);
        fs::write(&path, svg(&summaries))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("\nplot written to {}", path.display());
    }
}
