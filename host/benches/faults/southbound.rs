//! Southbound events: our chassis re-registered, the database replaced by an
//! empty one.

use crate::contestant::{Run, Who, LIMIT};
use crate::Row;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::sandbox::{wait_until, Daemon};

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
