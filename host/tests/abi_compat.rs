//! A provider built from the ABI 1.0 header (`ffi-tests/c/abi-1.0/`) in the
//! agent of ABI 1.1, providers in process, under valgrind memcheck: the
//! whole life cycle (CREATE, a no-op re-check, a replacement's REMOVE and
//! CREATE, REMOVE, destroy) with
//! the host reading the shorter vtable and passing the shorter context.
//! (The worker mode is covered by `check_command.rs`.)

mod common;

use common::Env;
use std::time::Duration;
use testkit::sandbox::SandboxOptions;

#[test]
fn a_provider_built_for_abi_1_0_goes_through_its_life_cycle_in_the_agent_under_valgrind() {
    let logs = testkit::private_dir();
    let log_file = format!("--log-file={}/%p", logs.path().display());
    let prefix = [
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        "--error-exitcode=99",
        log_file.as_str(),
    ];
    let mut env = Env::start_under(SandboxOptions::default(), &prefix, |_, dir| {
        testkit::c_test_provider_1_0(dir, "libc_test_1_0.so");
        vec!["--provider-isolation".into(), "none".into()]
    });
    let slow = Duration::from_secs(90); // valgrind is slow to start
    env.wait_for(slow, "the agent under valgrind", || {
        env.agent.log().contains("agent started")
    });
    env.add_lsp(
        "vm1",
        &[
            "requested-chassis=chassis-1",
            "vif-plug-type=c-test",
            "vif-plug:c-test:name=vm1if",
        ],
    );
    env.wait_for(slow, "vm1 plugged", || env.iface_exists("vm1if"));
    // An option the provider does not read: asked again, same answer.
    env.sb
        .nbctl(&["set", "Logical_Switch_Port", "vm1", "options:extra=1"])
        .unwrap();
    // One it does: the interface is renamed, a replacement.
    env.sb
        .nbctl(&[
            "set",
            "Logical_Switch_Port",
            "vm1",
            "options:\"vif-plug:c-test:name\"=vm1if2",
        ])
        .unwrap();
    env.wait_for(slow, "vm1 replaced", || {
        env.iface_exists("vm1if2") && !env.iface_exists("vm1if")
    });
    env.sb.nbctl(&["lsp-del", "vm1"]).unwrap();
    env.wait_for(slow, "vm1 unplugged", || !env.iface_exists("vm1if2"));
    let status = env.agent.stop_within(slow);
    let reports: Vec<String> = std::fs::read_dir(logs.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(reports.len(), 1, "one process: providers in process");
    let report = &reports[0];
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "{report}\n--- agent log ---\n{}",
        env.agent.log()
    );
    assert!(
        !report.contains("definitely lost:") || report.contains("definitely lost: 0 bytes"),
        "{report}"
    );
    assert!(status.success(), "{status:?}\n{report}");
    let log = env.agent.log();
    for step in ["plugged logical port vm1", "unplugged logical port vm1"] {
        assert!(log.contains(step), "{step}\n{log}");
    }
}
