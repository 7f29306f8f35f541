//! What the agent's integration tests share: the agent as a child process
//! against a private OVN sandbox, and helpers to drive and observe it.
#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use testkit::netns::NetNs;
use testkit::sandbox::{wait_until, Daemon, Sandbox, SandboxOptions};
use testkit::{cargo_cdylib, private_dir};

pub const WAIT: Duration = Duration::from_secs(20);

/// Our agent, started against a sandbox; stopped with SIGTERM on drop.
pub struct AgentProc {
    pub child: Option<Child>,
    pub log: PathBuf,
    /// Its `--rundir` (pidfile and control socket).
    pub rundir: PathBuf,
}

impl AgentProc {
    pub fn start(sb: &Sandbox, provider_dir: &Path, extra: &[&str]) -> AgentProc {
        AgentProc::start_in(sb, None, provider_dir, extra)
    }

    /// As [`AgentProc::start`], in network namespace `netns` if given
    /// (`ip netns exec`, which also gives it the namespace's sysfs). `ip`
    /// execs the agent without forking, so the child's PID is the agent's
    /// and SIGTERM reaches it.
    pub fn start_in(
        sb: &Sandbox,
        netns: Option<&str>,
        provider_dir: &Path,
        extra: &[&str],
    ) -> AgentProc {
        let prefix: Vec<&str> = match netns {
            Some(ns) => vec!["ip", "netns", "exec", ns],
            None => Vec::new(),
        };
        AgentProc::start_under(sb, &prefix, provider_dir, extra)
    }

    /// As [`AgentProc::start`], the agent's command line run by `prefix`
    /// (`ip netns exec NS`, `valgrind ...`), which must exec it without
    /// forking so that SIGTERM reaches it.
    pub fn start_under(
        sb: &Sandbox,
        prefix: &[&str],
        provider_dir: &Path,
        extra: &[&str],
    ) -> AgentProc {
        let log = sb.dir().join(format!("agent-{}.log", std::process::id()));
        let log = next_free(log);
        let agent = env!("CARGO_BIN_EXE_vif-plug-host");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = sb.command(program);
                cmd.args(args).arg(agent);
                cmd
            }
            None => sb.command(agent),
        };
        cmd.arg("run");
        if !extra.contains(&"--ovs-remote") {
            cmd.arg("--ovs-remote").arg(sb.ovs_remote());
        }
        // A rundir of its own: several agents may share a sandbox.
        let rundir = log.with_extension("run");
        if !extra.contains(&"--rundir") {
            fs::create_dir_all(&rundir).unwrap();
            cmd.arg("--rundir").arg(&rundir);
        }
        // The suite runs in the default mode (workers); the test script
        // runs the agent's behaviour tests again with providers in process.
        if let Ok(mode) = std::env::var("VIF_PLUG_TEST_ISOLATION") {
            if !extra.contains(&"--provider-isolation") {
                cmd.args(["--provider-isolation", &mode]);
            }
        }
        let child = cmd
            .arg("--provider-dir")
            .arg(provider_dir)
            .args(extra)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start vif-plug-host run");
        AgentProc {
            child: Some(child),
            log,
            rundir,
        }
    }

    /// `ovs-appctl -t vif-plug-host ARGS` with `OVS_RUNDIR` set to its
    /// rundir, as an operator runs it (the name is resolved through the
    /// pidfile): the output, or the error text and exit status.
    pub fn appctl(&self, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new("ovs-appctl")
            .env("OVS_RUNDIR", &self.rundir)
            .args(["-t", "vif-plug-host"])
            .args(args)
            .output()
            .expect("ovs-appctl (openvswitch-common)");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{} ({})",
                String::from_utf8_lossy(&out.stderr).trim(),
                out.status
            ))
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.stop_within(Duration::from_secs(5))
    }

    /// Waits up to `limit` for the agent to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        let child = self.child.as_mut().expect("running");
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent did not exit within {limit:?}:\n{}", self.log());
    }

    /// SIGTERM, and the exit status, waiting up to `limit`.
    pub fn stop_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("agent did not stop on SIGTERM:\n{}", self.log());
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn next_free(p: PathBuf) -> PathBuf {
    let mut n = 0;
    loop {
        let candidate = p.with_extension(format!("{n}.log"));
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// A sandbox, a provider directory holding the dummy, and the agent.
pub struct Env {
    pub sb: Sandbox,
    pub _providers: tempfile::TempDir,
    pub provider_dir: PathBuf,
    pub agent: AgentProc,
    /// The network namespace of a devlink environment. Declared last so
    /// that it is deleted after the sandbox and the agent have stopped.
    pub netns: Option<NetNs>,
}

impl Env {
    /// A sandbox with logical switch sw0 and the agent running the dummy.
    pub fn start() -> Env {
        Env::start_with(|_, dir| {
            cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
            Vec::new()
        })
    }

    /// A sandbox with logical switch sw0, and the agent started after
    /// `setup` prepared the sandbox and the provider directory; `setup`
    /// returns extra agent arguments.
    pub fn start_with(setup: impl FnOnce(&Sandbox, &Path) -> Vec<String>) -> Env {
        Env::start_in(SandboxOptions::default(), setup)
    }

    /// As [`Env::start_with`], in a sandbox built with `opts`.
    pub fn start_in(
        opts: SandboxOptions,
        setup: impl FnOnce(&Sandbox, &Path) -> Vec<String>,
    ) -> Env {
        Env::start_under(opts, &[], setup)
    }

    /// As [`Env::start_in`], the agent run by `prefix` (see
    /// [`AgentProc::start_under`]).
    pub fn start_under(
        opts: SandboxOptions,
        prefix: &[&str],
        setup: impl FnOnce(&Sandbox, &Path) -> Vec<String>,
    ) -> Env {
        let sb = Sandbox::start(opts).expect("OVN sandbox");
        let providers = private_dir();
        let extra = setup(&sb, providers.path());
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let agent = AgentProc::start_under(&sb, prefix, providers.path(), &extra);
        sb.nbctl(&["ls-add", "sw0"]).unwrap();
        Env {
            provider_dir: providers.path().to_owned(),
            _providers: providers,
            sb,
            agent,
            netns: None,
        }
    }

    pub fn wait(&self, what: &str, cond: impl FnMut() -> bool) {
        self.wait_for(WAIT, what, cond)
    }

    /// As [`Env::wait`], for up to `limit`.
    pub fn wait_for(&self, limit: Duration, what: &str, cond: impl FnMut() -> bool) {
        if let Err(e) = wait_until(limit, what, cond) {
            panic!(
                "{e}\n--- agent log ---\n{}{}{}",
                self.agent.log(),
                self.daemon_tail(Daemon::OvnController),
                self.daemon_tail(Daemon::Northd)
            );
        }
    }

    /// Waits until the agent's log holds `needle`. An interface shows in
    /// OVSDB before the agent has read its transaction's reply and logged
    /// it, so a log line is waited for, never read right after a change.
    pub fn wait_logged(&self, needle: &str) {
        self.wait(&format!("the agent to log {needle:?}"), || {
            self.agent.log().contains(needle)
        })
    }

    /// The last lines of a daemon's log, so that a wait that times out on
    /// what OVN does (a port bound, `up` set) shows where OVN stood.
    fn daemon_tail(&self, daemon: Daemon) -> String {
        let text = std::fs::read_to_string(self.sb.log_path(daemon)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        format!("\n--- {daemon:?} log (last lines) ---\n{tail}")
    }

    /// A sandbox on real devices (so a veth is what OVS opens), with
    /// logical switch sw0, and the agent running the devlink provider fed
    /// from `replay` (replay-file lines), with `extra` arguments;
    /// `ovs-vswitchd` and the agent run in `netns` (see [`private_netns`]),
    /// which the environment owns and deletes last.
    pub fn start_devlink(netns: NetNs, replay: &str, extra: &[&str]) -> Env {
        let sb = Sandbox::start(SandboxOptions {
            dummy_netdevs: false,
            netns: Some(netns.name().to_owned()),
            ..SandboxOptions::default()
        })
        .expect("OVN sandbox");
        let providers = private_dir();
        cargo_cdylib("vif-plug-devlink", "vif_plug_devlink", providers.path());
        let replay_file = providers.path().join("devlink.replay");
        fs::write(&replay_file, replay).unwrap();
        let config = format!("representor:replay={}", replay_file.display());
        let mut args = vec!["--provider-config", config.as_str()];
        args.extend_from_slice(extra);
        let agent = AgentProc::start_in(&sb, Some(netns.name()), providers.path(), &args);
        sb.nbctl(&["ls-add", "sw0"]).unwrap();
        Env {
            sb,
            provider_dir: providers.path().to_owned(),
            _providers: providers,
            agent,
            netns: Some(netns),
        }
    }

    /// The dummy, and the agent started with `args`.
    pub fn start_args(args: &[&str]) -> Env {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Env::start_with(|_, dir| {
            cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
            args
        })
    }

    /// Name → UUID of every interface we plugged (`ovn-plugged` set).
    pub fn plugged(&self) -> BTreeMap<String, String> {
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
            .unwrap();
        out.lines()
            .filter(|l| l.contains("ovn-plugged="))
            .filter_map(|l| {
                let mut f = l.splitn(3, ',');
                Some((f.next()?.to_owned(), f.next()?.to_owned()))
            })
            .collect()
    }

    /// Creates `names` in one Northbound transaction, each requested on
    /// chassis-1 with `vif-plug-type=dummy` and `extra` options.
    pub fn add_plugged_lsps(&self, names: &[String], extra: &[&str]) {
        self.add_typed_lsps(names, "dummy", extra)
    }

    /// As [`Env::add_plugged_lsps`], with `vif-plug-type=TYPE`.
    pub fn add_typed_lsps(&self, names: &[String], plug_type: &str, extra: &[&str]) {
        let mut args: Vec<String> = Vec::new();
        for n in names {
            args.extend(["--", "lsp-add", "sw0", n].map(String::from));
            args.extend(["--", "lsp-set-options", n].map(String::from));
            args.push("requested-chassis=chassis-1".into());
            args.push(format!("vif-plug-type={plug_type}"));
            args.extend(extra.iter().map(|e| e.to_string()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.sb.nbctl(&args).unwrap();
    }

    /// The agent's log lines that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.agent
            .log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    pub fn add_lsp(&self, lsp: &str, options: &[&str]) {
        self.sb.nbctl(&["lsp-add", "sw0", lsp]).unwrap();
        let mut args = vec!["lsp-set-options", lsp];
        args.extend_from_slice(options);
        self.sb.nbctl(&args).unwrap();
    }

    pub fn iface(&self, name: &str, column: &str) -> Option<String> {
        self.sb
            .vsctl(&["--if-exists", "get", "Interface", name, column])
            .ok()
            .filter(|s| !s.is_empty())
    }

    pub fn iface_exists(&self, name: &str) -> bool {
        self.sb
            .vsctl(&[
                "--bare",
                "--columns=name",
                "find",
                "Interface",
                &format!("name={name}"),
            ])
            .is_ok_and(|s| !s.is_empty())
    }

    pub fn up(&self, lsp: &str) -> bool {
        self.sb
            .nbctl(&["get", "Logical_Switch_Port", lsp, "up"])
            .is_ok_and(|s| s == "true")
    }
}

pub fn plug(env: &Env, lsp: &str, extra: &[&str]) {
    let mut opts = vec!["requested-chassis=chassis-1", "vif-plug-type=dummy"];
    opts.extend_from_slice(extra);
    env.add_lsp(lsp, &opts);
    env.wait(&format!("interface {lsp} plugged"), || {
        env.iface_exists(lsp)
    });
}

/// A network namespace for one test's devices and daemons, named
/// `vifplug-<pid>-<n>` so that concurrent tests and test runs never share
/// one: a second netdev-datapath Open vSwitch in the same namespace would
/// fail to create its `ovs-netdev` tap device.
pub fn private_netns() -> NetNs {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vifplug-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    NetNs::create(&name).expect("ip netns add (needs root)")
}

/// A veth pair (up) in a test's network namespace; it goes with the
/// namespace.
pub struct Veth {
    netns: String,
    pub name: String,
}

impl Veth {
    pub fn create(netns: &NetNs, name: &str) -> Veth {
        let peer = format!("{name}p");
        netns
            .ip(&["link", "add", name, "type", "veth", "peer", "name", &peer])
            .expect("ip link add type veth (needs root)");
        for dev in [name, peer.as_str()] {
            netns.ip(&["link", "set", dev, "up"]).unwrap();
        }
        Veth {
            netns: netns.name().to_owned(),
            name: name.to_owned(),
        }
    }

    /// Renames the device, as udev does (down, rename, up).
    pub fn rename(&mut self, to: &str) {
        for args in [
            vec!["link", "set", self.name.as_str(), "down"],
            vec!["link", "set", self.name.as_str(), "name", to],
            vec!["link", "set", to, "up"],
        ] {
            let mut all = vec!["-n", self.netns.as_str()];
            all.extend(args);
            let ok = std::process::Command::new("ip")
                .args(&all)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip {all:?}");
        }
        self.name = to.to_owned();
    }
}

/// A recorded devlink PORT_NEW for port `index` of PCI device 0000:03:00.0,
/// as a replay-file line (see the devlink provider's `replay` option).
pub fn devlink_port_new(
    index: u32,
    flavour: u16,
    netdev: &str,
    rest: Vec<vif_plug_devlink::message::PortAttr>,
) -> String {
    use vif_plug_devlink::message::{consts::CMD_PORT_NEW, DevlinkMessage, PortAttr};
    let mut attrs = vec![
        PortAttr::BusName("pci".into()),
        PortAttr::DevName("0000:03:00.0".into()),
        PortAttr::PortIndex(index),
        PortAttr::Flavour(flavour),
        PortAttr::NetdevName(netdev.into()),
    ];
    attrs.extend(rest);
    vif_plug_devlink::replay::encode(
        &DevlinkMessage {
            cmd: CMD_PORT_NEW,
            attrs,
        },
        0x15,
    )
}

/// PF 0 of the device, whose host-side MAC is 0c:42:a1:00:00:00.
pub fn devlink_pf0() -> String {
    use vif_plug_devlink::message::{consts::FLAVOUR_PCI_PF, FunctionAttr, PortAttr};
    devlink_port_new(
        1,
        FLAVOUR_PCI_PF,
        "pf0hpf",
        vec![
            PortAttr::PfNumber(0),
            PortAttr::Function(vec![FunctionAttr::HwAddr(vec![0x0c, 0x42, 0xa1, 0, 0, 0])]),
        ],
    )
}

/// Waits until the agent's log satisfies `cond`, or panics with the log.
pub fn wait_for_log(
    agent: &AgentProc,
    limit: Duration,
    what: &str,
    mut cond: impl FnMut(&str) -> bool,
) {
    if let Err(e) = wait_until(limit, what, || cond(&agent.log())) {
        panic!("{e}\n--- agent log ---\n{}", agent.log());
    }
}
