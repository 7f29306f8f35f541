//! The routine cloud events of docs/architecture.md ("The rules"), with N
//! ports plugged, for our agent and for Debian's `ovn-controller
//! --enable-dummy-vif-plug` doing the same job in the same kind of sandbox,
//! one after the other in one run:
//!
//! - **delete**: the baseline, a logical port deleted and nothing else;
//! - **re-registration**: `ovn-sbctl chassis-del` of our chassis (what
//!   `ovn-appctl -t ovn-controller exit` also does); ovn-controller
//!   registers it again at once;
//! - **rebuild**: the Southbound stopped, a port deleted meanwhile, and the
//!   Southbound started again from an empty database, repopulated by
//!   ovn-northd;
//! - **migration**: every port requested on `hv2,chassis-1` (an existing
//!   hv2, so that chassis-1 is additional), then on `hv2` alone.
//!
//! In the first two, one more logical port is deleted at the same time: it
//! must still go. For each, the table gives how many of the N plugged
//! interfaces were removed or re-created (their UUID changed), and how long
//! the deleted port took to go; for our agent also how long after its own
//! log said the view was current again. For the migration, how many of the
//! N were still plugged 30 s after they were requested on `hv2` alone.
//!
//!   cargo bench -p vif-plug-host --bench field_cases
//!
//! Environment: VIF_PLUG_BENCH_PORTS (default 100).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::sandbox::{wait_until, Daemon, Sandbox, SandboxOptions};

const LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Agent,
    Reference,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Case {
    /// Only the deletion: the baseline.
    Delete,
    Reregistration,
    Rebuild,
    Migration,
}

struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Name → UUID of the interfaces plugged by a VIF plug provider.
fn plugged(sb: &Sandbox) -> BTreeMap<String, String> {
    sb.vsctl(&[
        "--format=csv",
        "--data=bare",
        "--no-headings",
        "--columns=name,_uuid,external_ids",
        "list",
        "Interface",
    ])
    .unwrap()
    .lines()
    .filter(|l| l.contains("ovn-plugged="))
    .filter_map(|l| {
        let mut f = l.splitn(3, ',');
        Some((f.next()?.to_owned(), f.next()?.to_owned()))
    })
    .collect()
}

/// The time of day of an env_logger line, `[YYYY-MM-DDTHH:MM:SS.mmmZ ...`.
fn log_time(line: &str) -> Option<f64> {
    let t = line.get(12..24)?;
    let (h, rest) = t.split_once(':')?;
    let (m, s) = rest.split_once(':')?;
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

struct Outcome {
    touched: usize,
    /// Seconds from the event until the deleted port's interface was gone
    /// (`Some(None)`: not within the limit).
    deleted_gone: Option<Option<f64>>,
    /// Agent only: seconds from the agent's "view is complete and current"
    /// (the last before the unplug) to its unplug.
    after_current: Option<f64>,
    /// Migration: interfaces left after `hv2` alone.
    left_after_move: Option<usize>,
}

fn run(case: Case, who: Who, n: usize, provider_dir: &Path) -> Outcome {
    let sb = Sandbox::start(SandboxOptions {
        ovn_controller_args: if who == Who::Reference {
            vec!["--enable-dummy-vif-plug".into()]
        } else {
            vec![]
        },
        timeout: Duration::from_secs(120),
        ..SandboxOptions::default()
    })
    .unwrap();
    let log = sb.dir().join("agent.log");
    let _agent = (who == Who::Agent).then(|| {
        let child = sb
            .command(env!("CARGO_BIN_EXE_vif-plug-host"))
            .args(["run", "--ovs-remote", &sb.ovs_remote(), "--provider-dir"])
            .arg(provider_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        AgentProc(child)
    });
    sb.nbctl(&["ls-add", "sw0"]).unwrap();
    if case == Case::Migration {
        sb.sbctl(&["chassis-add", "hv2", "geneve", "127.0.0.2"])
            .unwrap();
    }
    let mut args: Vec<String> = Vec::new();
    for i in 0..=n {
        let name = if i == n {
            "gone".to_owned()
        } else {
            format!("p{i}")
        };
        args.extend(["--", "lsp-add", "sw0"].map(String::from));
        args.push(name.clone());
        args.extend(["--", "lsp-set-options"].map(String::from));
        args.push(name);
        args.push("requested-chassis=chassis-1".into());
        args.push("vif-plug-type=dummy".into());
    }
    sb.nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    wait_until(LIMIT, "all plugged", || plugged(&sb).len() == n + 1).unwrap();
    if who == Who::Agent {
        // The agent's own settle time after start must not count.
        wait_until(LIMIT, "agent current", || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("the view is complete and current")
        })
        .unwrap();
    }
    let mut before = plugged(&sb);
    before.remove("gone");
    let t0 = Instant::now();
    let mut left_after_move = None;
    match case {
        Case::Delete => {
            sb.nbctl(&["lsp-del", "gone"]).unwrap();
        }
        Case::Reregistration => {
            sb.sbctl(&["chassis-del", sb.chassis_name()]).unwrap();
            sb.nbctl(&["lsp-del", "gone"]).unwrap();
        }
        Case::Rebuild => {
            // Deleted while the Southbound is down, so that only the
            // rebuilt database can tell.
            sb.stop(Daemon::SbDb).unwrap();
            sb.nbctl(&["lsp-del", "gone"]).unwrap();
            sb.recreate_database(Daemon::SbDb).unwrap();
        }
        Case::Migration => {
            let set = |chassis: &str| {
                let mut args: Vec<String> = Vec::new();
                for i in 0..n {
                    args.extend(["--", "lsp-set-options"].map(String::from));
                    args.push(format!("p{i}"));
                    args.push(format!("requested-chassis={chassis}"));
                    args.push("vif-plug-type=dummy".into());
                }
                sb.nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
                    .unwrap();
            };
            set("hv2,chassis-1");
            // Let both act on it: until ovn-controller has released every
            // port as main (chassis-1 is additional now).
            wait_until(LIMIT, "ovn-northd and ovn-controller settled", || {
                sb.sbctl(&[
                    "--bare",
                    "--columns=chassis",
                    "find",
                    "Port_Binding",
                    "logical_port=p0",
                ])
                .is_ok_and(|c| c.is_empty())
            })
            .unwrap();
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    // `None`: not gone within the limit.
    let deleted_gone = (case != Case::Migration).then(|| {
        wait_until(LIMIT, "the deleted port gone", || {
            !plugged(&sb).contains_key("gone")
        })
        .ok()
        .map(|()| t0.elapsed().as_secs_f64())
    });
    // Let anything still to come come.
    std::thread::sleep(Duration::from_secs(3));
    let after = plugged(&sb);
    let touched = before
        .iter()
        .filter(|(name, uuid)| after.get(*name) != Some(uuid))
        .count();
    if case == Case::Migration {
        let mut args: Vec<String> = Vec::new();
        for i in 0..n {
            args.extend(["--", "lsp-set-options"].map(String::from));
            args.push(format!("p{i}"));
            args.push("requested-chassis=hv2".into());
            args.push("vif-plug-type=dummy".into());
        }
        sb.nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
        let moved = |sb: &Sandbox| plugged(sb).keys().filter(|k| k.starts_with('p')).count();
        let _ = wait_until(Duration::from_secs(30), "unplugged after hv2 alone", || {
            moved(&sb) == 0
        });
        left_after_move = Some(moved(&sb));
    }
    let after_current = (who == Who::Agent && case != Case::Migration)
        .then(|| {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let unplug = text
                .lines()
                .find(|l| l.contains("unplugged logical port gone"))
                .and_then(log_time)?;
            let current = text
                .lines()
                .filter(|l| l.contains("the view is complete and current"))
                .filter_map(log_time)
                .rfind(|&t| t <= unplug)?;
            Some(unplug - current)
        })
        .flatten();
    Outcome {
        touched,
        deleted_gone,
        after_current,
        left_after_move,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("VIF_PLUG_BENCH_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = testkit::private_dir();
    testkit::cargo_cdylib_in("vif-plug-dummy", "vif_plug_dummy", dir.path(), true);
    println!("{n} ports plugged on chassis-1\n");
    println!("| case | who | of {n}: removed or re-created | deleted port gone after | … after the agent's view was current | after `hv2` alone: left |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let secs = |v: Option<f64>| v.map_or("—".into(), |s| format!("{s:.2} s"));
    let gone = |v: Option<Option<f64>>| match v {
        None => "—".to_owned(),
        Some(None) => format!("not within {} s", LIMIT.as_secs()),
        Some(s) => secs(s),
    };
    for case in [
        Case::Delete,
        Case::Reregistration,
        Case::Rebuild,
        Case::Migration,
    ] {
        for who in [Who::Agent, Who::Reference] {
            let o = run(case, who, n, dir.path());
            println!(
                "| {case:?} | {} | {} | {} | {} | {} |",
                match who {
                    Who::Agent => "vif-plug-host run",
                    Who::Reference => "ovn-controller --enable-dummy-vif-plug",
                },
                o.touched,
                gone(o.deleted_gone),
                secs(o.after_current),
                o.left_after_move.map_or("—".into(), |l| l.to_string()),
            );
        }
    }
}
