//! A provider in a worker process, started from the real binary: a crash
//! and a hang in vendor code are reported with the signal and the
//! deadline, and the agent's side survives both.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::{compile_c_shared, contract, private_dir};
use vif_plug_host::worker::process::{WorkerFailure, WorkerProcess};
use vif_plug_host::worker::protocol::{Answer, Call, FromWorker, Op, ToWorker};

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
    "faulty", NULL, NULL, NULL, NULL, faulty_prepare, faulty_nothing, faulty_nothing,
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
        op: Op::Create,
        lport_name: lport.into(),
        lport_options: vec![],
        iface: None,
        bridge: "br-int".into(),
        datapath_type: String::new(),
        dpdk_initialized: false,
    }
}

const DEADLINE: Duration = Duration::from_secs(1);

/// A worker for class `type_name` of `so`, initialised with `config`.
fn started(so: &Path, type_name: &str, config: Vec<(String, String)>) -> WorkerProcess {
    let mut w = WorkerProcess::spawn(Path::new(EXE), so, type_name).unwrap();
    let reply = w.call(&ToWorker::Init { config }, DEADLINE).unwrap();
    assert!(matches!(reply, FromWorker::Started { .. }), "{reply:?}");
    w
}

#[test]
fn a_crash_in_port_prepare_is_reported_with_its_signal() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let mut w = started(&so, "faulty", vec![]);
    let reply = w.call(&ToWorker::Prepare(vec![call(0, "ok")]), DEADLINE);
    assert!(
        matches!(&reply, Ok(FromWorker::Prepared(a)) if a == &[Answer::Declined]),
        "{reply:?}"
    );
    let e = w
        .call(&ToWorker::Prepare(vec![call(1, "crash")]), DEADLINE)
        .unwrap_err();
    assert_eq!(e.to_string(), "the worker died of signal 11 (SIGSEGV)");
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
    let e = w
        .call(&ToWorker::Prepare(vec![call(0, "hang")]), DEADLINE)
        .unwrap_err();
    assert!(matches!(e, WorkerFailure::TimedOut(_)), "{e}");
    assert_eq!(e.to_string(), "did not return within 1000 ms");
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
        let reply = w
            .call(
                &ToWorker::Prepare(vec![call(0, "lsp0"), call(1, "lsp1")]),
                DEADLINE,
            )
            .unwrap();
        assert!(
            matches!(reply, FromWorker::Prepared(ref a) if a.len() == 2),
            "{reply:?}"
        );
        let reply = w
            .call(
                &ToWorker::Settle {
                    committed: vec![0],
                    dropped: vec![1],
                },
                DEADLINE,
            )
            .unwrap();
        assert_eq!(reply, FromWorker::Done);
        assert_eq!(
            w.call(&ToWorker::Destroy, DEADLINE).unwrap(),
            FromWorker::Done
        );
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
