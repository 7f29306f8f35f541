//! Latency, churn and memory.

use crate::contestant::{memory_kib, percentile, Run, Who, LIMIT};
use crate::watch::{Kind, Watch};
use crate::Row;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::sandbox::wait_until;

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{:.0} ms", v * 1000.0)
    }
}

/// `n` ports created one at a time: from the Northbound command to the
/// interface in the local database, and to `Port_Binding.up`.
pub fn latency(who: Who, dir: &Path, n: usize) -> Row {
    let mut run = Run::start(who, dir);
    let ifaces = Watch::start(&run.sb.ovs_remote(), Kind::PluggedInterfaces);
    let ups = Watch::start(&run.sb.sb_remote(), Kind::UpBindings);
    let (mut to_iface, mut to_up) = (Vec::new(), Vec::new());
    for i in 0..n {
        let name = format!("l{i}");
        let t0 = Instant::now();
        run.create(std::slice::from_ref(&name));
        let _ = wait_until(Duration::from_secs(30), "plugged and up", || {
            ifaces.appeared(&name).is_some() && ups.appeared(&name).is_some()
        });
        if let Some(t) = ifaces.appeared(&name) {
            to_iface.push((t - t0).as_secs_f64());
        }
        if let Some(t) = ups.appeared(&name) {
            to_up.push((t - t0).as_secs_f64());
        }
    }
    let missing = n - to_iface.len();
    let contract = run.contract();
    Row::new(who)
        .cell("to interface p50", ms(percentile(&mut to_iface, 50.0)))
        .cell("p99", ms(percentile(&mut to_iface, 99.0)))
        .cell("to Port_Binding.up p50", ms(percentile(&mut to_up, 50.0)))
        .cell("p99 ", ms(percentile(&mut to_up, 99.0)))
        .cell("never plugged", missing)
        .contract(contract)
}

/// `base` ports plugged, then every second `rate` created and the `rate`
/// oldest deleted, for `secs` seconds; plug and unplug latency, and the
/// plugger's memory before and after.
pub fn churn(who: Who, dir: &Path, base: usize, rate: usize, secs: usize) -> Row {
    let mut run = Run::start(who, dir);
    let ifaces = Watch::start(&run.sb.ovs_remote(), Kind::PluggedInterfaces);
    let first: Vec<String> = (0..base).map(|i| format!("c{i}")).collect();
    run.create(&first);
    run.wait_plugged(base, LIMIT).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (rss_before, _) = memory_kib(run.plugger_pid());
    let mut live: std::collections::VecDeque<String> = first.into();
    let mut created = Vec::new();
    let mut deleted = Vec::new();
    let mut next = base;
    let start = Instant::now();
    let mut samples = Vec::new();
    for tick in 0..secs {
        if tick % 10 == 0 {
            samples.push(memory_kib(run.plugger_pid()).0);
        }
        let due = start + Duration::from_secs(tick as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let new: Vec<String> = (next..next + rate).map(|i| format!("c{i}")).collect();
        next += rate;
        let t = Instant::now();
        run.create(&new);
        created.extend(new.iter().map(|n| (n.clone(), t)));
        live.extend(new);
        let old: Vec<String> = live.drain(..rate.min(live.len())).collect();
        let t = Instant::now();
        run.delete(&old);
        deleted.extend(old.into_iter().map(|n| (n, t)));
    }
    let _ = run.wait_plugged(base, LIMIT);
    std::thread::sleep(Duration::from_secs(3));
    let mut plug: Vec<f64> = Vec::new();
    let mut unplug: Vec<f64> = Vec::new();
    let mut lost = 0;
    for (n, t) in &created {
        match ifaces.appeared(n) {
            Some(a) => plug.push((a.max(*t) - *t).as_secs_f64()),
            None => lost += 1,
        }
    }
    for (n, t) in &deleted {
        match ifaces.gone(n) {
            Some(g) => unplug.push((g.max(*t) - *t).as_secs_f64()),
            None => lost += 1,
        }
    }
    let (rss_after, hwm) = memory_kib(run.plugger_pid());
    let final_count = run.plugged().len();
    let contract = run.contract();
    Row::new(who)
        .cell("plug p50", ms(percentile(&mut plug, 50.0)))
        .cell("plug p99", ms(percentile(&mut plug, 99.0)))
        .cell("unplug p50", ms(percentile(&mut unplug, 50.0)))
        .cell("unplug p99", ms(percentile(&mut unplug, 99.0)))
        .cell("never done", lost)
        .cell("plugged at the end", format!("{final_count} of {base}"))
        .cell(
            "plugger RSS before → after (peak)",
            format!(
                "{} → {} MiB ({})",
                mib(rss_before),
                mib(rss_after),
                mib(hwm)
            ),
        )
        .contract(contract)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The plugger's memory with `n` local ports plugged (created in one
/// Northbound transaction).
pub fn memory(who: Who, dir: &Path, n: usize) -> Row {
    let mut run = Run::start(who, dir);
    let (idle, _) = memory_kib(run.plugger_pid());
    let names: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
    run.create(&names);
    let took = run.wait_plugged(n, LIMIT);
    std::thread::sleep(Duration::from_secs(5));
    let (rss, hwm) = memory_kib(run.plugger_pid());
    let contract = run.contract();
    Row::new(who)
        .cell("RSS with no port", format!("{} MiB", mib(idle)))
        .cell(format!("RSS with {n}"), format!("{} MiB", mib(rss)))
        .cell("peak (VmHWM)", format!("{} MiB", mib(hwm)))
        .cell(
            "plugged in",
            took.map_or("—".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        )
        .contract(contract)
}
