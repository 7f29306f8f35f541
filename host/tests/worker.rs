//! The worker's side of the provider worker protocol, driven over a real
//! socketpair with the counting provider (C), whose journal shows the
//! provider contract kept: batched prepares, settles after a commit, and
//! the agent going away with an operation still held.

use std::collections::BTreeSet;
use std::os::unix::net::UnixStream;
use testkit::contract;
use testkit::private_dir;
use vif_plug_host::loader::load_library;
use vif_plug_host::worker::frame::{read_frame, write_frame};
use vif_plug_host::worker::protocol::{Answer, Call, FromWorker, Op, ToWorker};
use vif_plug_host::worker::serve::Outbox;

fn call(id: u64, op: Op, lport: &str) -> Call {
    Call {
        id,
        provider: contract::TYPE.into(),
        op,
        lport_name: lport.into(),
        lport_options: vec![("vif-plug-type".into(), contract::TYPE.into())],
        iface: None,
        bridge: "br-int".into(),
        datapath_type: "netdev".into(),
        dpdk_initialized: false,
        lport_macs: vec![],
    }
}

/// Sends `msg`, returns the reply after any log records and marks.
fn ask(s: &mut UnixStream, msg: &ToWorker) -> FromWorker {
    write_frame(s, msg).unwrap();
    loop {
        match read_frame::<_, FromWorker>(s).unwrap().expect("a reply") {
            FromWorker::Log { .. } | FromWorker::Entering { .. } => continue,
            reply => return reply,
        }
    }
}

#[test]
fn batches_are_served_and_the_contract_holds_when_the_agent_goes_away() {
    let dir = private_dir();
    let so = contract::counting_provider(dir.path());
    let journal = dir.path().join("journal");
    let (mut agent, mut worker) = UnixStream::pair().unwrap();
    let served = std::thread::spawn(move || {
        let lib = load_library(&so).unwrap();
        let out = Outbox::new(worker.try_clone().unwrap());
        vif_plug_host::worker::serve::serve(lib, &so, &mut worker, &out)
    });
    // The worker speaks first: what the library holds.
    match read_frame::<_, FromWorker>(&mut agent).unwrap() {
        Some(FromWorker::Loaded(l)) => {
            assert_eq!(l.classes, [Ok(contract::TYPE.to_owned())]);
        }
        other => panic!("{other:?}"),
    }
    let config = vec![("journal".to_owned(), journal.display().to_string())];
    let started = ask(
        &mut agent,
        &ToWorker::Init {
            classes: vec![(contract::TYPE.into(), config)],
        },
    );
    assert!(
        matches!(&started, FromWorker::Started(r) if r.len() == 1 && r[0].1.is_ok()),
        "{started:?}"
    );
    assert!(matches!(
        ask(&mut agent, &ToWorker::Run),
        FromWorker::Ran { .. }
    ));
    let FromWorker::Prepared(answers) = ask(
        &mut agent,
        &ToWorker::Prepare(vec![
            call(0, Op::Create, "lsp0"),
            call(1, Op::Create, "lsp1"),
            call(2, Op::Remove, "lsp9"),
        ]),
    ) else {
        panic!("not an answer to Prepare")
    };
    assert_eq!(answers.len(), 3);
    assert!(matches!(&answers[0], Answer::Create { name, .. } if name == "lsp0"));
    assert!(matches!(&answers[1], Answer::Create { .. }));
    assert_eq!(answers[2], Answer::Remove);
    // lsp0 and the removal committed; lsp1's transaction did not.
    assert_eq!(
        ask(
            &mut agent,
            &ToWorker::Settle {
                committed: vec![0, 2],
                dropped: vec![1],
            }
        ),
        FromWorker::Done
    );
    // Prepared again, then the agent goes away before settling it.
    let FromWorker::Prepared(again) = ask(
        &mut agent,
        &ToWorker::Prepare(vec![call(3, Op::Create, "lsp1")]),
    ) else {
        panic!("not an answer to Prepare")
    };
    assert!(matches!(&again[0], Answer::Create { .. }));
    drop(agent);
    served.join().unwrap().expect("a clean end of the stream");

    let present: BTreeSet<String> = ["lsp0".to_owned()].into();
    let report = contract::check(&journal, &present);
    assert!(report.violations.is_empty(), "{report:#?}");
    assert_eq!(
        (
            report.processes,
            report.killed,
            report.creates,
            report.finishes
        ),
        (1, 0, 3, 1),
        "{report:#?}"
    );
    assert_eq!(report.ctx_destroys, 3, "{report:#?}");
    assert_eq!(
        (report.removes, report.finish_removes),
        (1, 1),
        "{report:#?}"
    );
}
