//! The fault and load suite: each scenario run for our agent and for the
//! reference (Debian's `ovn-controller --enable-dummy-vif-plug`) in the same
//! run, one after the other, each in a fresh sandbox; a Markdown table per
//! scenario on stdout, for `docs/reliability.md`.
//!
//!   cargo bench -p vif-plug-host --bench faults
//!
//! Our agent plugs with the counting provider
//! (`ffi-tests/c/counting_provider.c`), and the provider contract is
//! checked after each of its runs (`testkit::contract`): the last column.
//!
//! Environment: `VIF_PLUG_FAULTS` (comma-separated scenario names, default
//! all: local-kills, plugger-kill, southbound, raft, local-stop, latency,
//! churn, memory, fleet, vendor-crash), `VIF_PLUG_FAULTS_FLEET` (chassis counts, default
//! "20,40,80"), `VIF_PLUG_FAULTS_QUICK=1` (small sizes, for trying the suite).

mod contestant;
mod fleet;
mod kills;
mod southbound;
mod timing;
mod vendor;
mod watch;

use contestant::Who;
use std::fmt::Display;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::contract::Report;

/// One contestant's results in one scenario.
pub struct Row {
    who: Who,
    cells: Vec<(String, String)>,
}

impl Row {
    pub fn new(who: Who) -> Row {
        Row {
            who,
            cells: Vec::new(),
        }
    }

    pub fn cell(mut self, header: impl Display, value: impl Display) -> Row {
        self.cells.push((header.to_string(), value.to_string()));
        self
    }

    /// The contract column: the agent's report, or "—" for the reference
    /// (its built-in provider cannot be counted).
    pub fn contract(self, report: Option<Report>) -> Row {
        let text = match report {
            None => "—".to_owned(),
            Some(r) if r.violations.is_empty() => format!(
                "0 violations ({} create, {} finish, {} ctx_destroy, {} remove; {} process(es), {} killed)",
                r.creates, r.finishes, r.ctx_destroys, r.removes, r.processes, r.killed
            ),
            Some(r) => format!(
                "**{} violation(s)**: {}",
                r.violations.len(),
                r.violations
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        self.cell("provider contract", text)
    }
}

fn table(title: &str, rows: &[Row]) {
    println!("### {title}\n");
    let Some(first) = rows.first() else {
        return;
    };
    let headers: Vec<&str> = first.cells.iter().map(|(h, _)| h.as_str()).collect();
    println!("| who | {} |", headers.join(" | "));
    println!("| --- |{}", " ---: |".repeat(headers.len()));
    for r in rows {
        let values: Vec<&str> = r.cells.iter().map(|(_, v)| v.as_str()).collect();
        println!("| {} | {} |", r.who.label(), values.join(" | "));
    }
    println!();
}

/// Every scenario, in the order they run.
const SCENARIOS: &[&str] = &[
    "local-kills",
    "plugger-kill",
    "southbound",
    "raft",
    "local-stop",
    "latency",
    "churn",
    "memory",
    "fleet",
    "vendor-crash",
];

/// Says what is wrong and what is accepted, and exits with status 2.
fn usage(problem: &str) -> ! {
    eprintln!(
        "faults: {problem}\nscenarios (VIF_PLUG_FAULTS, comma-separated; default all): {}\n\
         VIF_PLUG_FAULTS_QUICK=1 for small sizes; VIF_PLUG_FAULTS_FLEET=20,40,80 for the fleet's chassis counts",
        SCENARIOS.join(", ")
    );
    std::process::exit(2)
}

fn both(f: impl Fn(Who) -> Row) -> Vec<Row> {
    [Who::Agent, Who::Reference].into_iter().map(f).collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = match std::env::var("VIF_PLUG_FAULTS_QUICK").ok().as_deref() {
        None | Some("" | "0" | "false" | "no") => false,
        Some("1" | "true" | "yes") => true,
        Some(other) => usage(&format!("VIF_PLUG_FAULTS_QUICK={other:?}: use 1 or 0")),
    };
    let wanted: Option<Vec<String>> = std::env::var("VIF_PLUG_FAULTS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if let Some(w) = &wanted {
        let unknown: Vec<&String> = w
            .iter()
            .filter(|n| !SCENARIOS.contains(&n.as_str()))
            .collect();
        if !unknown.is_empty() || w.is_empty() {
            usage(&format!("VIF_PLUG_FAULTS: unknown scenario(s) {unknown:?}"));
        }
    }
    let want = |name: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == name));
    let dir = testkit::private_dir();
    testkit::contract::counting_provider(dir.path());
    let d: &Path = dir.path();
    let scale = |full: usize, small: usize| if quick { small } else { full };
    let started = Instant::now();
    println!(
        "Fault and load suite, {} (commit {})\n",
        if quick { "quick sizes" } else { "full sizes" },
        git_head()
    );

    if want("local-kills") {
        let (n, k) = (scale(1000, 200), scale(20, 5));
        table(
            &format!("Local ovsdb-server SIGKILLed and restarted {k} times during a {n}-port plug"),
            &both(|w| kills::local_server_kills(w, d, n, k)),
        );
    }
    if want("plugger-kill") {
        let n = scale(2000, 400);
        table(
            &format!("The plugger SIGKILLed in the middle of a {n}-port plug, and restarted"),
            &both(|w| kills::plugger_kill(w, d, n, n * 3 / 10)),
        );
    }
    if want("southbound") {
        let n = scale(200, 50);
        table(
            &format!("Chassis deleted and re-registered, then the Southbound replaced by an empty database, {n} ports plugged"),
            &both(|w| southbound::chassis_and_database(w, d, n, Duration::from_secs(15))),
        );
    }
    if want("raft") {
        let (n, k) = (scale(200, 50), scale(3, 1));
        table(
            &format!("Three-member Raft Southbound: leader killed {k} times with {n} ports plugged, then a follower left behind"),
            &both(|w| southbound::raft(w, d, n, k)),
        );
    }
    if want("local-stop") {
        let s = Duration::from_secs(scale(10, 3) as u64);
        table(
            &format!(
                "Local ovsdb-server SIGSTOPped for {} s while 100 ports are created beside 200",
                s.as_secs()
            ),
            &both(|w| kills::local_server_stop(w, d, 200, 100, s)),
        );
    }
    if want("latency") {
        let n = scale(100, 20);
        table(
            &format!("Latency: {n} ports created one at a time"),
            &both(|w| timing::latency(w, d, n)),
        );
    }
    if want("churn") {
        let (base, secs) = (scale(1000, 200), scale(60, 10));
        table(
            &format!("Churn: {base} ports plugged, then 20 created and 20 deleted per second for {secs} s"),
            &both(|w| timing::churn(w, d, base, 20, secs)),
        );
    }
    if want("memory") {
        let n = scale(5000, 500);
        table(
            &format!("Memory: {n} local ports"),
            &both(|w| timing::memory(w, d, n)),
        );
    }
    if want("fleet") {
        let ks: Vec<usize> = match std::env::var("VIF_PLUG_FAULTS_FLEET") {
            Ok(v) => v
                .split(',')
                .map(|k| {
                    k.trim().parse().ok().filter(|&k| k > 0).unwrap_or_else(|| {
                        usage(&format!(
                            "VIF_PLUG_FAULTS_FLEET: {k:?} is not a chassis count"
                        ))
                    })
                })
                .collect(),
            Err(_) if quick => vec![3],
            Err(_) => vec![20, 40, 80],
        };
        let mut rows = Vec::new();
        for k in ks {
            rows.extend(both(|w| fleet::fleet(w, d, k)));
        }
        table(
            &format!(
                "Fleet: K chassis × {} ports against one Southbound (deployed shape: our agent beside a non-plugging ovn-controller on each chassis)",
                fleet::PORTS
            ),
            &rows,
        );
    }
    if want("vendor-crash") {
        let (n, secs) = (scale(100, 20), scale(180, 30) as u64);
        table(
            &format!(
                "A vendor's segfault: one logical port crashes its provider's worker at every call, for {secs} s, while {n} ports of that provider and {n} of another are plugged and one is created and one deleted every 2 s (our agent only: the reference loads providers into ovn-controller, which the same bug ends)"
            ),
            &[vendor::crash_loop(d, n, secs)],
        );
    }
    println!("Suite ran in {:.0} s.", started.elapsed().as_secs_f64());
}

fn git_head() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(testkit::workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
