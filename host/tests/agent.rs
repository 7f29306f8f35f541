//! The plugging agent against real daemons from Debian's packages: NB/SB and
//! local ovsdb-servers, ovn-northd, ovs-vswitchd (netdev datapath) and an
//! ovn-controller that does no plugging itself, driven with ovn-nbctl.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;
use testkit::sandbox::{wait_until, Daemon, Sandbox, SandboxOptions};
use testkit::{cargo_cdylib, private_dir};

const WAIT: Duration = Duration::from_secs(20);

/// Our agent, started against a sandbox; stopped with SIGTERM on drop.
struct AgentProc {
    child: Option<Child>,
    log: PathBuf,
}

impl AgentProc {
    fn start(sb: &Sandbox, provider_dir: &Path, extra: &[&str]) -> AgentProc {
        let log = sb.dir().join(format!("agent-{}.log", std::process::id()));
        let log = next_free(log);
        let child = sb
            .command(env!("CARGO_BIN_EXE_vif-plug-host"))
            .arg("run")
            .arg("--ovs-remote")
            .arg(sb.ovs_remote())
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
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
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

fn next_free(p: PathBuf) -> PathBuf {
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
struct Env {
    sb: Sandbox,
    _providers: tempfile::TempDir,
    provider_dir: PathBuf,
    agent: AgentProc,
}

impl Env {
    fn start() -> Env {
        let sb = Sandbox::start(SandboxOptions::default()).expect("OVN sandbox");
        let providers = private_dir();
        cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", providers.path());
        let agent = AgentProc::start(&sb, providers.path(), &[]);
        sb.nbctl(&["ls-add", "sw0"]).unwrap();
        Env {
            provider_dir: providers.path().to_owned(),
            _providers: providers,
            sb,
            agent,
        }
    }

    fn wait(&self, what: &str, cond: impl FnMut() -> bool) {
        if let Err(e) = wait_until(WAIT, what, cond) {
            panic!("{e}\n--- agent log ---\n{}", self.agent.log());
        }
    }

    fn add_lsp(&self, lsp: &str, options: &[&str]) {
        self.sb.nbctl(&["lsp-add", "sw0", lsp]).unwrap();
        let mut args = vec!["lsp-set-options", lsp];
        args.extend_from_slice(options);
        self.sb.nbctl(&args).unwrap();
    }

    fn iface(&self, name: &str, column: &str) -> Option<String> {
        self.sb
            .vsctl(&["--if-exists", "get", "Interface", name, column])
            .ok()
            .filter(|s| !s.is_empty())
    }

    fn iface_exists(&self, name: &str) -> bool {
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

    fn up(&self, lsp: &str) -> bool {
        self.sb
            .nbctl(&["get", "Logical_Switch_Port", lsp, "up"])
            .is_ok_and(|s| s == "true")
    }
}

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
            "plugging logical port lsp1: interface lsp1 (type internal) on br-int, provider dummy"
        ),
        "{log}"
    );
}
