//! The two contestants of every scenario, in the same kind of sandbox:
//!
//! - **agent**: `vif-plug-host run` (release build) with the counting
//!   provider, beside an ovn-controller that does not plug;
//! - **reference**: Debian's `ovn-controller --enable-dummy-vif-plug`,
//!   plugging with its built-in dummy provider.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::contract;
use testkit::sandbox::{wait_until, Daemon, Sandbox, SandboxOptions};

/// How long any one wait in a scenario may take.
pub const LIMIT: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Who {
    Agent,
    Reference,
}

impl Who {
    pub fn label(self) -> &'static str {
        match self {
            Who::Agent => "vif-plug-host run",
            Who::Reference => "ovn-controller --enable-dummy-vif-plug",
        }
    }
}

/// One contestant in its own sandbox.
pub struct Run {
    pub who: Who,
    pub sb: Sandbox,
    agent: Option<Child>,
    provider: PathBuf,
    pub journal: PathBuf,
    pub log: PathBuf,
    /// Agent processes started (restarts included).
    starts: usize,
    /// More arguments for the agent (another provider, its configuration).
    pub extra: Vec<String>,
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop_agent();
    }
}

impl Run {
    /// A sandbox with logical switch sw0 and the contestant plugging;
    /// `provider_dir` holds the counting provider.
    pub fn start(who: Who, provider_dir: &Path) -> Run {
        Run::start_with(who, provider_dir, SandboxOptions::default())
    }

    /// Our agent, with `extra` arguments (a second provider).
    pub fn start_agent_with(provider_dir: &Path, extra: Vec<String>) -> Run {
        Run::start_full(Who::Agent, provider_dir, SandboxOptions::default(), extra)
    }

    /// As [`Run::start`], with sandbox options.
    pub fn start_with(who: Who, provider_dir: &Path, opts: SandboxOptions) -> Run {
        Run::start_full(who, provider_dir, opts, Vec::new())
    }

    fn start_full(who: Who, provider_dir: &Path, opts: SandboxOptions, extra: Vec<String>) -> Run {
        let mut opts = SandboxOptions {
            timeout: Duration::from_secs(120),
            ..opts
        };
        if who == Who::Reference {
            opts.ovn_controller_args
                .push("--enable-dummy-vif-plug".into());
        }
        let sb = Sandbox::start(opts).unwrap();
        sb.nbctl(&["ls-add", "sw0"]).unwrap();
        let journal = sb.dir().join("journal");
        let log = sb.dir().join("agent.log");
        let mut run = Run {
            who,
            sb,
            agent: None,
            provider: provider_dir.join("libcounting_provider.so"),
            journal,
            log,
            starts: 0,
            extra,
        };
        if who == Who::Agent {
            run.start_agent();
            // Measure from a steady state: after start, the agent unplugs
            // nothing until --unplug-settle has passed (by design; see
            // docs/architecture.md), which would show as unplug latency.
            let log = run.log.clone();
            wait_until(LIMIT, "the agent's view current", || {
                fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("the view is complete and current")
            })
            .unwrap();
        }
        run
    }

    /// Starts (or restarts) our agent, and waits until it has its view.
    pub fn start_agent(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // VIF_PLUG_FAULTS_AGENT_WRAPPER="heaptrack -o /tmp/ht" (or valgrind
        // ...) runs the agent under a profiler.
        let wrapper: Vec<String> = std::env::var("VIF_PLUG_FAULTS_AGENT_WRAPPER")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let agent = env!("CARGO_BIN_EXE_vif-plug-host");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = self.sb.command(program);
                c.args(args).arg(agent);
                c
            }
            None => self.sb.command(agent),
        };
        let child = cmd
            .args(["run", "--ovs-remote", &self.sb.ovs_remote(), "--provider"])
            .arg(&self.provider)
            .arg("--provider-config")
            .arg(format!("counting:journal={}", self.journal.display()))
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.agent = Some(child);
        self.starts += 1;
        let starts = self.starts;
        let log = self.log.clone();
        wait_until(LIMIT, "the agent's view", || {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("port binding(s) in view for chassis")
                .count()
                >= starts
        })
        .unwrap();
    }

    fn stop_agent(&mut self) {
        if let Some(mut c) = self.agent.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// The `vif-plug-type` of this contestant's ports.
    pub fn plug_type(&self) -> &'static str {
        match self.who {
            Who::Agent => contract::TYPE,
            Who::Reference => "dummy",
        }
    }

    /// The process that plugs.
    pub fn plugger_pid(&self) -> u32 {
        match self.who {
            Who::Agent => self.agent.as_ref().unwrap().id(),
            Who::Reference => self.sb.pid(Daemon::OvnController).unwrap(),
        }
    }

    /// SIGKILLs the process that plugs.
    pub fn kill_plugger(&mut self) {
        match self.who {
            Who::Agent => {
                let mut c = self.agent.take().unwrap();
                c.kill().unwrap();
                c.wait().unwrap();
            }
            Who::Reference => self.sb.kill(Daemon::OvnController).unwrap(),
        }
    }

    /// Starts the process that plugs again.
    pub fn restart_plugger(&mut self) {
        match self.who {
            Who::Agent => self.start_agent(),
            Who::Reference => self.sb.start_daemon(Daemon::OvnController).unwrap(),
        }
    }

    /// Creates `names` in one Northbound transaction, requested here.
    pub fn create(&self, names: &[String]) {
        self.create_typed(names, self.plug_type());
    }

    /// As [`Run::create`], for provider type `plug_type`.
    pub fn create_typed(&self, names: &[String], plug_type: &str) {
        let mut args: Vec<String> = Vec::new();
        for n in names {
            args.extend(["--", "lsp-add", "sw0", n].map(String::from));
            args.extend(["--", "lsp-set-options", n].map(String::from));
            args.push("requested-chassis=chassis-1".into());
            args.push(format!("vif-plug-type={plug_type}"));
        }
        self.sb
            .nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
    }

    /// Deletes `names` in one Northbound transaction.
    pub fn delete(&self, names: &[String]) {
        let mut args: Vec<String> = Vec::new();
        for n in names {
            args.extend(["--", "lsp-del", n].map(String::from));
        }
        self.sb
            .nbctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
    }

    /// Plugged interfaces: name -> UUID.
    pub fn plugged(&self) -> BTreeMap<String, String> {
        self.by_lport()
            .into_values()
            .flatten()
            .collect::<BTreeMap<_, _>>()
    }

    /// Plugged interfaces by logical port, so that duplicates show.
    pub fn by_lport(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let out = self
            .sb
            .vsctl(&[
                "--format=csv",
                "--data=bare",
                "--no-headings",
                "--columns=name,_uuid,external_ids",
                "list",
                "Interface",
            ])
            .unwrap_or_default();
        let mut map: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for line in out.lines().filter(|l| l.contains("ovn-plugged=")) {
            let mut f = line.splitn(3, ',');
            let (Some(name), Some(uuid), Some(ids)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let lport = ids
                .trim_matches('"')
                .split(' ')
                .find_map(|kv| kv.strip_prefix("iface-id="))
                .unwrap_or_default();
            map.entry(lport.to_owned())
                .or_default()
                .push((name.to_owned(), uuid.to_owned()));
        }
        map
    }

    /// Waits until exactly `n` interfaces are plugged; the time it took,
    /// or `None` past the limit.
    pub fn wait_plugged(&self, n: usize, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        wait_until(limit, "plugged count", || self.plugged().len() == n)
            .ok()
            .map(|()| t0.elapsed())
    }

    /// The provider contract, for the agent (stopped first, so that its
    /// destroy is journaled).
    pub fn contract(&mut self) -> Option<contract::Report> {
        if self.who != Who::Agent {
            return None;
        }
        self.stop_agent();
        let present: BTreeSet<String> = self.plugged().into_keys().collect();
        Some(contract::check(&self.journal, &present))
    }
}

/// VmRSS and VmHWM of `pid` and of its child processes (our agent's
/// provider workers: the memory its plugging costs), in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .map(memory_kib_of)
        .fold(memory_kib_of(pid), |(r, h), (cr, ch)| (r + cr, h + ch))
}

/// VmRSS and VmHWM of `pid` alone, in KiB.
fn memory_kib_of(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

/// Names of interfaces that changed UUID or went away since `seen` (name
/// -> UUID, first seen); `seen` then learns the new ones.
pub fn churned(
    seen: &mut BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let gone = seen
        .iter()
        .filter(|(name, uuid)| now.get(*name) != Some(uuid))
        .map(|(name, _)| name.clone())
        .collect();
    for (name, uuid) in now {
        seen.entry(name.clone()).or_insert_with(|| uuid.clone());
    }
    gone
}

/// The `p`th percentile (0-100) of `v`, by nearest rank.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A small deterministic generator, so runs are repeatable.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
