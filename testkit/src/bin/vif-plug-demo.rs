//! `vif-plug-demo`: the main job end to end in a throwaway sandbox.
//!
//! Starts private OVN and Open vSwitch daemons in a temporary directory,
//! runs `vif-plug-host run` with the dummy provider beside ovn-controller,
//! asks OVN (through the Northbound database) to plug two logical ports on
//! this chassis, waits until both are plugged and bound, asks for a third
//! of a type no provider here serves, shows what `ovs-appctl` tells an
//! operator, unplugs one, and shows the state at each step. Everything is stopped and removed at the
//! end. Run it through `./scripts/demo`, which builds what it needs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::time::{Duration, Instant};
use testkit::sandbox::{wait_until, Sandbox, SandboxOptions};

const WAIT: Duration = Duration::from_secs(30);

fn release(name: &str) -> PathBuf {
    testkit::target_dir().join("release").join(name)
}

fn step(text: &str) {
    println!("\n== {text}");
}

fn show(label: &str, out: Result<String, String>) {
    match out {
        Ok(s) => println!("{label}:\n{}", indent(&s)),
        Err(e) => println!("{label}: {e}"),
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

struct Agent(Child, PathBuf);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn demo(started: Instant) -> Result<(), String> {
    let host = release("vif-plug-host");
    let dummy = release("libvif_plug_dummy.so");
    for f in [&host, &dummy] {
        if !f.exists() {
            return Err(format!(
                "{} is missing: run cargo build --release --workspace",
                f.display()
            ));
        }
    }

    step("starting a private OVN chassis (NB/SB databases, ovn-northd, ovsdb-server, ovs-vswitchd, ovn-controller)");
    let sb = Sandbox::start(SandboxOptions::default())?;
    println!("sandbox in {}", sb.dir().display());

    // Providers must not be writable by others: give the agent its own copy.
    let providers = sb.dir().join("providers");
    fs::create_dir(&providers).map_err(|e| e.to_string())?;
    fs::set_permissions(&providers, fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let so = providers.join("libvif_plug_dummy.so");
    fs::copy(&dummy, &so).map_err(|e| e.to_string())?;
    fs::set_permissions(&so, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;

    step("starting the agent: vif-plug-host run, with the dummy provider");
    let log_path = sb.dir().join("vif-plug-host.log");
    let child = sb
        .command(&host)
        .args(["run", "--ovs-remote", &sb.ovs_remote(), "--provider-dir"])
        .arg(&providers)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log_path).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", host.display()))?;
    let agent = Agent(child, log_path);

    step("asking OVN to plug vm1 and vm2 on this chassis (ovn-nbctl)");
    let chassis = sb.chassis_name().to_owned();
    let nb = |args: &[&str]| {
        println!("$ ovn-nbctl {}", args.join(" "));
        sb.nbctl(args)
    };
    nb(&["ls-add", "sw0"])?;
    for (lsp, mtu) in [("vm1", "1400"), ("vm2", "1500")] {
        nb(&["lsp-add", "sw0", lsp])?;
        nb(&[
            "lsp-set-options",
            lsp,
            &format!("requested-chassis={chassis}"),
            "vif-plug-type=dummy",
            &format!("vif-plug-mtu-request={mtu}"),
        ])?;
    }

    step("waiting until both are plugged by the agent and bound by ovn-controller");
    let up = |lsp: &str| {
        sb.nbctl(&["get", "Logical_Switch_Port", lsp, "up"])
            .is_ok_and(|s| s == "true")
    };
    wait_until(WAIT, "vm1 and vm2 up", || up("vm1") && up("vm2"))
        .map_err(|e| format!("{e}\n{}", fs::read_to_string(&agent.1).unwrap_or_default()))?;
    show(
        "interfaces on br-int",
        sb.vsctl(&[
            "--columns=name,type,options,external_ids,mtu_request,ofport",
            "list",
            "Interface",
        ])
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    show(
        "logical ports up (Northbound)",
        nb(&["--columns=name,up", "list", "Logical_Switch_Port"]),
    );
    show(
        "bindings (Southbound)",
        sb.sbctl(&["--columns=logical_port,chassis,up", "list", "Port_Binding"]),
    );

    step("asking for vm3 with a provider type this host does not have");
    nb(&["lsp-add", "sw0", "vm3"])?;
    nb(&[
        "lsp-set-options",
        "vm3",
        &format!("requested-chassis={chassis}"),
        "vif-plug-type=acme",
    ])?;

    step("what an operator sees: ovs-appctl -t vif-plug-host (pidfile and control socket in OVS_RUNDIR)");
    let appctl = |args: &[&str]| -> Result<String, String> {
        println!("$ ovs-appctl -t vif-plug-host {}", args.join(" "));
        let out = sb
            .command("ovs-appctl")
            .args(["-t", "vif-plug-host"])
            .args(args)
            .output()
            .map_err(|e| format!("ovs-appctl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    };
    let last = std::cell::RefCell::new(String::new());
    wait_until(WAIT, "vm3 refused", || {
        sb.command("ovs-appctl")
            .args(["-t", "vif-plug-host", "vif-plug/show"])
            .output()
            .is_ok_and(|o| {
                *last.borrow_mut() = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                last.borrow().contains("vm3: refused")
            })
    })
    .map_err(|e| format!("{e}; ovs-appctl said: {}", last.borrow().trim()))?;
    for args in [
        &["vif-plug/show"][..],
        &["vif-plug/show", "--format", "json"],
        &["vif-plug/list-providers"],
        &["vif-plug/describe", "dummy"],
        &["coverage/show"],
        &["memory/show"],
    ] {
        print!("{}", indent(&appctl(args)?));
    }

    step("deleting vm2 from the Northbound database: the agent unplugs it");
    nb(&["lsp-del", "vm2"])?;
    wait_until(WAIT, "vm2 unplugged", || {
        sb.vsctl(&["list-ports", "br-int"])
            .is_ok_and(|s| !s.lines().any(|l| l == "vm2"))
    })?;
    show("ports on br-int", sb.vsctl(&["list-ports", "br-int"]));

    step("agent log");
    print!(
        "{}",
        indent(&fs::read_to_string(&agent.1).unwrap_or_default())
    );
    drop(agent);
    drop(sb);
    println!(
        "\nOK: vm1 and vm2 plugged and bound, vm2 unplugged, in {:.1} s; sandbox removed.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

const USAGE: &str = "\
Usage: vif-plug-demo

Starts private OVN and Open vSwitch daemons in a temporary directory, runs
vif-plug-host run with the dummy provider beside ovn-controller, plugs two
logical ports, waits until both are plugged and bound, asks for a third of
a type no provider serves, shows ovs-appctl's view, unplugs one, and
removes everything. Takes no arguments; run it through ./scripts/demo,
which installs and builds what it needs.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprint!("vif-plug-demo: unexpected argument {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    match demo(Instant::now()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vif-plug-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
