//! Southbound events: our chassis re-registered, the database replaced by an
//! empty one, and a clustered Southbound failing over.

use crate::contestant::{Run, Who, LIMIT};
use crate::watch::{Kind, Watch};
use crate::Row;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::sandbox::{wait_until, Daemon, SandboxOptions};

/// With `n` ports plugged: `ovn-sbctl chassis-del` of our chassis (what an
/// ovn-controller exit does; it registers again), then the Southbound
/// replaced by an empty database that ovn-northd repopulates. After each,
/// `watch` for changes; counted are the interfaces removed or re-created.
pub fn chassis_and_database(who: Who, dir: &Path, n: usize, watch: Duration) -> Row {
    let mut run = Run::start(who, dir);
    let names: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    run.create(&names);
    run.wait_plugged(n, LIMIT).unwrap();
    let before = run.plugged();
    let touched = |run: &Run| {
        let now = run.plugged();
        before
            .iter()
            .filter(|(name, uuid)| now.get(*name) != Some(uuid))
            .count()
    };
    run.sb
        .sbctl(&["chassis-del", run.sb.chassis_name()])
        .unwrap();
    std::thread::sleep(watch);
    let after_rereg = touched(&run);
    let t0 = Instant::now();
    run.sb.recreate_database(Daemon::SbDb).unwrap();
    // Repopulated: every port bound again.
    let rebound = wait_until(LIMIT, "bindings back", || {
        run.sb
            .sbctl(&[
                "--bare",
                "--columns=logical_port",
                "find",
                "Port_Binding",
                "up=true",
            ])
            .is_ok_and(|o| o.lines().filter(|l| !l.is_empty()).count() == n)
    })
    .ok()
    .map(|()| t0.elapsed());
    std::thread::sleep(watch);
    let after_rebuild = touched(&run);
    // And still working: a port created now is plugged.
    run.create(&["r-after".to_owned()]);
    let works = run.wait_plugged(n + 1, Duration::from_secs(60)).is_some();
    let contract = run.contract();
    Row::new(who)
        .cell("re-registration: removed or re-created", after_rereg)
        .cell("empty Southbound: removed or re-created", after_rebuild)
        .cell(
            "all up again after",
            rebound.map_or("not within the limit".into(), |d| {
                format!("{:.1} s", d.as_secs_f64())
            }),
        )
        .cell("a new port plugged after", if works { "yes" } else { "no" })
        .contract(contract)
}

/// A three-member Raft Southbound with `n` ports plugged: the leader killed
/// `kills` times, a port created after each fail-over (the time until it is
/// plugged is measured) and the member started again; then a follower
/// stopped while 100 ports are created, started again behind the leader,
/// and the leader killed at once, so that the plugger may fail over to the
/// member that is still catching up.
pub fn raft(who: Who, dir: &Path, n: usize, kills: usize) -> Row {
    let mut run = Run::start_with(
        who,
        dir,
        SandboxOptions {
            sb_cluster: true,
            ..SandboxOptions::default()
        },
    );
    let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
    run.create(&names);
    run.wait_plugged(n, LIMIT).unwrap();
    let before = run.plugged();
    // When ovn-northd, failing over too, has written each new binding: the
    // rest of the time is the plugger's.
    let bindings = Watch::start(&run.sb.sb_remote(), Kind::Bindings);
    let mut expected = n;
    let mut failover = Vec::new();
    let mut plugger_share = Vec::new();
    for round in 0..kills {
        let leader = run.sb.sb_leader().expect("a leader");
        run.sb.kill(leader).unwrap();
        let t0 = Instant::now();
        let name = format!("after{round}");
        run.create(std::slice::from_ref(&name));
        expected += 1;
        let plugged = run.wait_plugged(expected, LIMIT).map(|_| t0.elapsed());
        if let (Some(p), Some(b)) = (plugged, bindings.appeared(&name)) {
            plugger_share.push(p.saturating_sub(b - t0));
        }
        failover.push(plugged);
        run.sb.start_daemon(leader).unwrap();
        run.sb.wait_sb_cluster().unwrap();
    }
    // A follower left behind, back just as the leader goes.
    let leader = run.sb.sb_leader().expect("a leader");
    let follower = run
        .sb
        .sb_members()
        .into_iter()
        .find(|&m| m != leader)
        .unwrap();
    run.sb.kill(follower).unwrap();
    let more: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
    run.create(&more);
    expected += more.len();
    run.wait_plugged(expected, LIMIT).unwrap();
    run.sb.start_daemon(follower).unwrap();
    run.sb.kill(leader).unwrap();
    let t0 = Instant::now();
    run.create(&["after-follower".to_owned()]);
    expected += 1;
    let behind = run.wait_plugged(expected, LIMIT).map(|_| t0.elapsed());
    run.sb.start_daemon(leader).unwrap();
    run.sb.wait_sb_cluster().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let after = run.plugged();
    let touched = before
        .iter()
        .filter(|(name, uuid)| after.get(*name) != Some(uuid))
        .count();
    let final_count = after.len();
    let contract = run.contract();
    let secs = |d: &Option<Duration>| {
        d.map_or("not within the limit".to_owned(), |d| {
            format!("{:.1} s", d.as_secs_f64())
        })
    };
    Row::new(who)
        .cell(
            "new port plugged after each leader kill",
            failover.iter().map(secs).collect::<Vec<_>>().join(", "),
        )
        .cell(
            "of which after the binding existed",
            plugger_share
                .iter()
                .map(|d| format!("{:.2} s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .cell("… after the follower case", secs(&behind))
        .cell(format!("of the {n} removed or re-created"), touched)
        .cell("plugged at the end", format!("{final_count} of {expected}"))
        .contract(contract)
}
