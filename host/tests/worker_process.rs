//! A provider in a worker process, started from the real binary: a crash
//! and a hang in vendor code are reported with the signal and the
//! deadline, and the agent's side survives both.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::{compile_c_shared, contract, private_dir};
use vif_plug_host::worker::process::{Failure, Limits, WorkerFailure, WorkerProcess};
use vif_plug_host::worker::protocol::{Answer, Call, Callback, FromWorker, Op, ToWorker};

const EXE: &str = env!("CARGO_BIN_EXE_vif-plug-host");

/// A provider that writes through NULL in `port_prepare` for logical port
/// "crash", and sleeps 5 s in it for "hang".
const FAULTY: &str = r#"
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "vif-plug-provider.h"

static bool faulty_prepare(const struct vif_plug_port_ctx_in *in,
                           struct vif_plug_port_ctx_out *out) {
    (void)out;
    if (!strcmp(in->lport_name, "crash")) {
        *(volatile int *)NULL = 1;
    }
    if (!strcmp(in->lport_name, "hang")) {
        sleep(5);
    }
    return false;
}

static void faulty_nothing(const struct vif_plug_port_ctx_in *in,
                           struct vif_plug_port_ctx_out *out) {
    (void)in;
    (void)out;
}

static const struct vif_plug_class faulty_class = {
    "faulty", NULL, NULL, NULL, NULL, faulty_prepare, faulty_nothing, faulty_nothing, NULL,
};

const struct vif_plug_class *vif_plug_provider_classes[] = { &faulty_class, NULL };

VIF_PLUG_DEFINE_ABI_INFO;
"#;

fn faulty(dir: &Path) -> PathBuf {
    let src = dir.join("faulty.c");
    fs::write(&src, FAULTY).unwrap();
    let so = dir.join("libfaulty.so");
    compile_c_shared(&src, &[], &so);
    so
}

fn call(id: u64, lport: &str) -> Call {
    Call {
        id,
        provider: "faulty".into(),
        op: Op::Create,
        lport_name: lport.into(),
        lport_options: vec![],
        iface: None,
        bridge: "br-int".into(),
        datapath_type: String::new(),
        dpdk_initialized: false,
        lport_macs: vec![],
    }
}

const LIMITS: Limits<'static> = Limits {
    per_call: Duration::from_secs(1),
    slow: Duration::from_millis(50),
    interrupted: None,
};

/// Asks `msg`, returns the reply.
fn ask(w: &mut WorkerProcess, msg: &ToWorker) -> Result<FromWorker, Failure> {
    w.call(msg, &LIMITS).map(|r| r.msg)
}

/// A worker for `so`, with class `type_name` initialised with `config`.
fn started(so: &Path, type_name: &str, config: Vec<(String, String)>) -> WorkerProcess {
    let (mut w, loaded) = WorkerProcess::spawn(Path::new(EXE), so, &LIMITS)
        .unwrap_or_else(|e| panic!("{:?}", e.map_err(|f| f.what.to_string())));
    assert!(
        loaded.classes.contains(&Ok(type_name.to_owned())),
        "{loaded:?}"
    );
    let reply = ask(
        &mut w,
        &ToWorker::Init {
            classes: vec![(type_name.into(), config)],
        },
    )
    .unwrap();
    assert!(
        matches!(&reply, FromWorker::Started(r) if r[0].1.is_ok()),
        "{reply:?}"
    );
    w
}

#[test]
fn a_crash_in_port_prepare_is_reported_with_its_signal() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let mut w = started(&so, "faulty", vec![]);
    let reply = ask(&mut w, &ToWorker::Prepare(vec![call(0, "ok")]));
    assert!(
        matches!(&reply, Ok(FromWorker::Prepared(a)) if matches!(a[..], [Answer::Declined(_)])),
        "{reply:?}"
    );
    // In a batch, the call that crashed is named by its mark.
    let e = ask(
        &mut w,
        &ToWorker::Prepare(vec![call(1, "ok"), call(2, "crash"), call(3, "ok")]),
    )
    .unwrap_err();
    assert_eq!(e.what.to_string(), "the worker died of signal 11 (SIGSEGV)");
    assert_eq!(e.what.short(), "crashed (SIGSEGV)");
    let during = e.during.expect("the call in flight");
    assert_eq!(
        (during.provider.as_str(), during.callback, during.id),
        ("faulty", Callback::PortPrepare, Some(2))
    );
    // A new worker serves the same library again.
    started(&so, "faulty", vec![]);
}

#[test]
fn a_hang_in_port_prepare_is_cut_at_the_deadline_and_the_worker_killed() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let mut w = started(&so, "faulty", vec![]);
    let pid = w.pid();
    let t = std::time::Instant::now();
    let e = ask(
        &mut w,
        &ToWorker::Prepare(vec![call(0, "ok"), call(1, "hang")]),
    )
    .unwrap_err();
    assert!(matches!(e.what, WorkerFailure::TimedOut(_)), "{}", e.what);
    assert_eq!(e.what.to_string(), "did not return within 1000 ms");
    assert_eq!(e.during.and_then(|m| m.id), Some(1));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z ")),
        "the hung worker is killed"
    );
}

#[test]
fn the_counting_provider_keeps_its_contract_across_the_process_boundary() {
    let dir = private_dir();
    let so = contract::counting_provider(dir.path());
    let journal = dir.path().join("journal");
    {
        let mut w = started(
            &so,
            contract::TYPE,
            vec![("journal".into(), journal.display().to_string())],
        );
        let batch = [call(0, "lsp0"), call(1, "lsp1")].map(|c| Call {
            provider: contract::TYPE.into(),
            ..c
        });
        let reply = ask(&mut w, &ToWorker::Prepare(batch.to_vec())).unwrap();
        assert!(
            matches!(reply, FromWorker::Prepared(ref a) if a.len() == 2),
            "{reply:?}"
        );
        let reply = ask(
            &mut w,
            &ToWorker::Settle {
                committed: vec![0],
                dropped: vec![1],
            },
        )
        .unwrap();
        assert_eq!(reply, FromWorker::Done);
        assert_eq!(ask(&mut w, &ToWorker::Destroy).unwrap(), FromWorker::Done);
    }
    let report = contract::check(&journal, &["lsp0".to_owned()].into());
    assert!(report.violations.is_empty(), "{report:#?}");
    assert_eq!(
        (
            report.processes,
            report.killed,
            report.creates,
            report.finishes,
            report.ctx_destroys
        ),
        (1, 0, 2, 1, 2),
        "{report:#?}"
    );
}

#[test]
fn a_stopped_worker_that_does_not_read_its_batch_is_killed_at_the_deadline() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let mut w = started(&so, "faulty", vec![]);
    let pid = w.pid();
    std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    // Far more than a socket buffer holds.
    let big: Vec<Call> = (0..2000)
        .map(|i| Call {
            lport_options: vec![("pad".into(), "x".repeat(1000))],
            ..call(i, &format!("lsp{i}"))
        })
        .collect();
    let t = std::time::Instant::now();
    let e = ask(&mut w, &ToWorker::Prepare(big)).unwrap_err();
    assert!(matches!(e.what, WorkerFailure::Stuck(_)), "{}", e.what);
    assert_eq!(e.what.short(), "did not read its request within 1000 ms");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn a_stop_cuts_a_long_batch_of_quick_calls_short() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = private_dir();
    // The configurable faulty provider of the agent's tests (not the
    // inline one above).
    let so = testkit::faulty_provider(dir.path());
    let mut w = started(&so, "faulty", vec![("slow-lport".into(), "slow".into())]);
    // 40 calls of 60 ms each: 2.4 s, every call well within its deadline.
    let batch: Vec<Call> = (0..40).map(|i| call(i, "slow")).collect();
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        flag.store(true, Ordering::SeqCst);
    });
    let stop = move || stopped.load(Ordering::SeqCst);
    let limits = Limits {
        interrupted: Some(&stop),
        ..LIMITS
    };
    let t = std::time::Instant::now();
    let e = w.call(&ToWorker::Prepare(batch), &limits).unwrap_err();
    assert!(matches!(e.what, WorkerFailure::Interrupted), "{}", e.what);
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_forged_call_mark_ends_the_worker_and_the_blame_stays_with_the_forger() {
    let dir = private_dir();
    let so = testkit::faulty_provider(dir.path());
    let mut w = started(&so, "faulty", vec![("forge-lport".into(), "fg".into())]);
    // The forger marks operation 1 again while it runs for operation 2.
    let batch = vec![call(1, "a"), call(2, "fg"), call(3, "b")];
    let t = std::time::Instant::now();
    let e = ask(&mut w, &ToWorker::Prepare(batch)).unwrap_err();
    assert_eq!(
        e.what.short(),
        "sent garbage (a call mark out of order (operation Some(1)))"
    );
    assert_eq!(e.during.and_then(|m| m.id), Some(2));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
