//! Processes killed or stopped under the plugger, and the plugger killed.

use crate::contestant::{churned, Lcg, Run, Who, LIMIT};
use crate::Row;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::sandbox::Daemon;

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn duplicates(run: &Run) -> usize {
    run.by_lport().values().filter(|v| v.len() > 1).count()
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("not within the limit".into(), |d| {
        format!("{:.1} s", d.as_secs_f64())
    })
}

/// The local ovsdb-server SIGKILLed and started again `kills` times at
/// random moments (up to 1 s apart) while `n` ports arrive in batches of 50.
pub fn local_server_kills(who: Who, dir: &Path, n: usize, kills: usize) -> Row {
    let mut run = Run::start(who, dir);
    let all = names("k", n);
    let batches: Vec<&[String]> = all.chunks(50).collect();
    let every = (batches.len() / kills.max(1)).max(1);
    let mut rng = Lcg(0x5eed_0001);
    let mut seen = BTreeMap::new();
    let mut spurious = BTreeSet::new();
    let mut done = 0;
    let t0 = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        run.create(b);
        if done < kills && i % every == every - 1 {
            std::thread::sleep(Duration::from_millis(rng.below(1000)));
            run.sb.kill(Daemon::OvsDb).unwrap();
            run.sb.start_daemon(Daemon::OvsDb).unwrap();
            done += 1;
            spurious.extend(churned(&mut seen, &run.plugged()));
        }
    }
    while done < kills {
        std::thread::sleep(Duration::from_millis(rng.below(1000)));
        run.sb.kill(Daemon::OvsDb).unwrap();
        run.sb.start_daemon(Daemon::OvsDb).unwrap();
        done += 1;
        spurious.extend(churned(&mut seen, &run.plugged()));
    }
    let all_in = run.wait_plugged(n, LIMIT).map(|_| t0.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    spurious.extend(churned(&mut seen, &run.plugged()));
    let final_count = run.plugged().len();
    let dups = duplicates(&run);
    let contract = run.contract();
    Row::new(who)
        .cell("plugged at the end", format!("{final_count} of {n}"))
        .cell("duplicates", dups)
        .cell("removed or re-created", spurious.len())
        .cell("all plugged after", secs(all_in))
        .contract(contract)
}

/// The plugger SIGKILLed when `kill_at` of `n` ports (arriving in batches
/// of 100) are plugged, the rest created while it is down, then started
/// again.
pub fn plugger_kill(who: Who, dir: &Path, n: usize, kill_at: usize) -> Row {
    let mut run = Run::start(who, dir);
    let all = names("m", n);
    let mut batches = all.chunks(100);
    while run.plugged().len() < kill_at {
        match batches.next() {
            Some(b) => run.create(b),
            None => break,
        }
    }
    run.kill_plugger();
    let before = run.plugged();
    for b in batches {
        run.create(b);
    }
    let t0 = Instant::now();
    run.restart_plugger();
    let all_in = run.wait_plugged(n, LIMIT).map(|_| t0.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    let after = run.plugged();
    let churn = before
        .iter()
        .filter(|(name, uuid)| after.get(*name) != Some(uuid))
        .count();
    let dups = duplicates(&run);
    let contract = run.contract();
    Row::new(who)
        .cell("plugged when killed", before.len())
        .cell("of those removed or re-created", churn)
        .cell("duplicates", dups)
        .cell("all plugged after the restart", secs(all_in))
        .contract(contract)
}

/// The local ovsdb-server SIGSTOPped for `stop` while `more` ports are
/// created beside `n` plugged ones, then SIGCONTed.
pub fn local_server_stop(who: Who, dir: &Path, n: usize, more: usize, stop: Duration) -> Row {
    let mut run = Run::start(who, dir);
    run.create(&names("s", n));
    run.wait_plugged(n, LIMIT).unwrap();
    let before = run.plugged();
    run.sb.signal(Daemon::OvsDb, "STOP").unwrap();
    run.create(&names("t", more));
    std::thread::sleep(stop);
    let alive = testkit::sandbox::process_alive(run.plugger_pid());
    run.sb.signal(Daemon::OvsDb, "CONT").unwrap();
    let resumed = run.wait_plugged(n + more, LIMIT);
    std::thread::sleep(Duration::from_secs(2));
    let after = run.plugged();
    let churn = before
        .iter()
        .filter(|(name, uuid)| after.get(*name) != Some(uuid))
        .count();
    let contract = run.contract();
    Row::new(who)
        .cell(
            "plugger alive through the stop",
            if alive { "yes" } else { "no" },
        )
        .cell(
            format!("the {more} new ports plugged after SIGCONT"),
            secs(resumed),
        )
        .cell(format!("of the {n} removed or re-created"), churn)
        .contract(contract)
}
