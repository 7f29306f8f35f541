//! Memory of a long-running agent whose provider keeps logging errors: the
//! agent must not keep what its providers log (only `check` records their
//! error lines).
//!
//! Runs side by side, each against its own private sandbox:
//!
//! - **errors**: `vif-plug-host run` with the C test provider logging
//!   `VIF_PLUG_BENCH_ERRORS_PER_RUN` error lines (default 1) at each `run`,
//!   which an idle agent calls once a second;
//! - **quiet** (the reference): the same binary and provider, logging
//!   nothing;
//! - optionally **before**: another build of `vif-plug-host` given in
//!   `VIF_PLUG_BENCH_BEFORE_BIN` (for example the build before the fix),
//!   with the errors.
//!
//! It samples VmRSS of each agent every `VIF_PLUG_BENCH_SAMPLE_SECS`
//! (default 30) for `VIF_PLUG_BENCH_SECS` (default 600) and prints a
//! Markdown table.
//!
//!   cargo bench -p vif-plug-host --bench log_memory

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::sandbox::{wait_until, Sandbox, SandboxOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// VmRSS of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Run {
    label: String,
    _sandbox: Sandbox,
    child: Child,
    log: PathBuf,
    samples: Vec<u64>,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start(label: &str, bin: &Path, provider_dir: &Path, errors_per_run: u64) -> Run {
    let sandbox = Sandbox::start(SandboxOptions::default()).expect("OVN sandbox");
    let log = sandbox.dir().join("agent.log");
    let child = sandbox
        .command(bin)
        .args([
            "run",
            "--ovs-remote",
            &sandbox.ovs_remote(),
            "--provider-dir",
        ])
        .arg(provider_dir)
        .args([
            "--provider-config",
            &format!("c-test:errors-per-run={errors_per_run}"),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "agent connected", || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("southbound: connected")
    })
    .unwrap();
    Run {
        label: label.to_owned(),
        _sandbox: sandbox,
        child,
        log,
        samples: Vec::new(),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` (as `cargo test` does) lists nothing
    }
    let secs = env_u64("VIF_PLUG_BENCH_SECS", 600);
    let every = env_u64("VIF_PLUG_BENCH_SAMPLE_SECS", 30);
    let errors = env_u64("VIF_PLUG_BENCH_ERRORS_PER_RUN", 1);
    let dir = testkit::private_dir();
    testkit::c_test_provider(dir.path(), &[], "libc_test_provider.so");
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_vif-plug-host"));
    let mut runs = vec![
        start("errors", &ours, dir.path(), errors),
        start("quiet (reference)", &ours, dir.path(), 0),
    ];
    if let Ok(before) = std::env::var("VIF_PLUG_BENCH_BEFORE_BIN") {
        runs.push(start(
            "before the fix, errors",
            Path::new(&before),
            dir.path(),
            errors,
        ));
    }
    let t0 = Instant::now();
    let mut times = Vec::new();
    loop {
        let t = t0.elapsed().as_secs();
        times.push(t);
        for r in &mut runs {
            r.samples.push(rss_kib(r.child.id()));
        }
        if t >= secs {
            break;
        }
        std::thread::sleep(Duration::from_secs(every.min(secs - t).max(1)));
    }
    println!("{secs} s, {errors} provider error line(s) per run, VmRSS in KiB every {every} s\n");
    print!("| t (s) |");
    for r in &runs {
        print!(" {} |", r.label);
    }
    println!();
    print!("| ---: |");
    for _ in &runs {
        print!(" ---: |");
    }
    println!();
    for (i, t) in times.iter().enumerate() {
        print!("| {t} |");
        for r in &runs {
            print!(" {} |", r.samples[i]);
        }
        println!();
    }
    for r in &runs {
        let lines = fs::read_to_string(&r.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("provider::c-test") && l.contains("ERROR"))
            .count();
        let (first, last) = (r.samples[0], *r.samples.last().unwrap());
        println!(
            "\n{}: {lines} error line(s) logged; VmRSS {first} KiB at start, {last} KiB at the end ({:+} KiB)",
            r.label,
            last as i64 - first as i64
        );
    }
}
