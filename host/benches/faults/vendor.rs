//! A vendor's bug under load: the faulty C provider
//! (`ffi-tests/c/faulty_provider.c`) writes through NULL in `port_prepare`
//! for one logical port, beside the counting provider, while ports of both
//! come and go. Our agent only: the reference loads its providers into
//! ovn-controller, where the same bug ends the process.

use crate::contestant::{churned, memory_kib, percentile, Run, Who, LIMIT};
use crate::watch::{Kind, Watch};
use crate::Row;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// `base` counting ports and `base` faulty ports plugged, one faulty port
/// ("bad") crashing its worker at every call; then for `secs` seconds,
/// every 2 s one faulty port created and the oldest deleted.
pub fn crash_loop(dir: &Path, base: usize, secs: u64) -> Row {
    let so = dir.join("libfaulty.so");
    if !so.exists() {
        testkit::faulty_provider(dir);
    }
    let extra = vec![
        "--provider".to_owned(),
        so.display().to_string(),
        "--provider-config".to_owned(),
        "faulty:crash-lport=bad".to_owned(),
    ];
    let mut run = Run::start_agent_with(dir, extra);
    let ifaces = Watch::start(&run.sb.ovs_remote(), Kind::PluggedInterfaces);
    let counted: Vec<String> = (0..base).map(|i| format!("c{i}")).collect();
    run.create(&counted);
    let mut faulty: Vec<String> = (0..base).map(|i| format!("f{i}")).collect();
    run.create_typed(&faulty, "faulty");
    run.wait_plugged(2 * base, LIMIT).unwrap();
    let mut seen: BTreeMap<String, String> = run.plugged();
    let counted_before: BTreeMap<String, String> = seen
        .iter()
        .filter(|(n, _)| n.starts_with('c'))
        .map(|(n, u)| (n.clone(), u.clone()))
        .collect();
    run.create_typed(&["bad".to_owned()], "faulty");
    let (rss_before, _) = memory_kib(run.plugger_pid());
    let (mut plug, mut unplug) = (Vec::new(), Vec::new());
    let t_end = Instant::now() + Duration::from_secs(secs);
    let mut next = base;
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    while Instant::now() < t_end {
        let name = format!("f{next}");
        next += 1;
        run.create_typed(std::slice::from_ref(&name), "faulty");
        created.push((name.clone(), Instant::now()));
        faulty.push(name);
        let old = faulty.remove(0);
        run.delete(std::slice::from_ref(&old));
        deleted.push((old, Instant::now()));
        std::thread::sleep(Duration::from_secs(2));
    }
    std::thread::sleep(Duration::from_secs(5));
    for (name, t0) in &created {
        if let Some(t) = ifaces.appeared(name) {
            plug.push((t - *t0).as_secs_f64());
        }
    }
    for (name, t0) in &deleted {
        if let Some(t) = ifaces.gone(name) {
            unplug.push((t - *t0).as_secs_f64());
        }
    }
    let (rss_after, _) = memory_kib(run.plugger_pid());
    let now = run.plugged();
    let counted_now: BTreeMap<String, String> = now
        .iter()
        .filter(|(n, _)| n.starts_with('c'))
        .map(|(n, u)| (n.clone(), u.clone()))
        .collect();
    let wrong = churned(&mut counted_before.clone(), &counted_now).len();
    let _ = churned(&mut seen, &now);
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    let crashes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("port_prepare crashed (SIGSEGV) for logical port bad"))
        .collect();
    let holds: Vec<String> = crashes
        .iter()
        .filter_map(|l| {
            let t = l.split("bad quarantined for ").nth(1)?;
            Some(t.split(' ').next()?.to_owned())
        })
        .collect();
    let restarts = log.matches("worker restarted (pid").count();
    let missing = created.len() - plug.len();
    let not_unplugged = deleted.len() - unplug.len();
    let ms = |v: f64| {
        if v.is_nan() {
            "—".to_owned()
        } else {
            format!("{:.0} ms", v * 1000.0)
        }
    };
    let contract = run.contract();
    Row::new(Who::Agent)
        .cell("crashes of the worker", crashes.len())
        .cell("quarantine of \"bad\", ms, in order", holds.join(", "))
        .cell("worker restarts", restarts)
        .cell(
            "faulty ports created / plugged, p99",
            format!(
                "{} / {}, {}",
                created.len(),
                created.len() - missing,
                ms(percentile(&mut plug, 99.0))
            ),
        )
        .cell(
            "deleted / unplugged, p99",
            format!(
                "{} / {}, {}",
                deleted.len(),
                deleted.len() - not_unplugged,
                ms(percentile(&mut unplug, 99.0))
            ),
        )
        .cell("counting ports removed or re-created", wrong)
        .cell(
            "RSS (agent + workers)",
            format!(
                "{:.1} → {:.1} MiB",
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0
            ),
        )
        .contract(contract)
}
