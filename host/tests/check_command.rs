//! `vif-plug-host check`, the vendor's conformance run, as a user runs it.

use std::path::Path;
use std::process::{Command, Output};
use testkit::{c_test_provider, cargo_cdylib, private_dir};

fn check(files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .arg("check")
        .args(files)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn dummy_passes_with_a_readable_report() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    for line in [
        "ok    loaded: ABI 1.1, struct sizes match, Rust type layout matches",
        "class \"dummy\"",
        "ok    maintained interface options: vif-plug-dummy-option",
        "ok    CREATE lsp1: prepare -> interface \"lsp1\", type \"internal\", options {vif-plug-dummy-option=value}",
        "ok    CREATE a-logical-port-name-longer-than-ifnamsiz: prepare -> interface \"a-logical-port-\"",
        "ok    UPDATE lsp1: finish, ctx_destroy",
        "ok    REMOVE lsp1: prepare (ctx_out NULL) -> true, finish",
        "ok    destroy",
        "PASS: 1 file(s), 1 class(es), 0 violation(s)",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}

#[test]
fn c_provider_passes() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("(no Rust layout exported: a C provider)"));
    // ABI 1.1: c-test describes itself; c-test-alt has no describe.
    assert!(report.contains("ok    describe -> 2 line(s)"), "{report}");
    assert!(report.contains("      prefix \"c-\""), "{report}");
    assert!(
        report.contains("note  describe: not provided (NULL, or built for ABI 1.0)"),
        "{report}"
    );
    assert!(
        report.contains("PASS: 1 file(s), 2 class(es), 0 violation(s)"),
        "{report}"
    );
}

#[test]
fn null_name_is_a_violation() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &["BAD_NULL_NAME"], "libnull_name.so");
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(
            "FAIL  CREATE lsp1: the provider returned an unusable answer: interface name is NULL"
        ),
        "{report}"
    );
    assert!(
        // The steps that need an interface say they were not checked.
        report.contains("FAIL: 1 file(s), 2 class(es), 2 violation(s)"),
        "{report}"
    );
}

#[test]
fn over_long_name_is_a_violation() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &["BAD_LONG_NAME"], "liblong_name.so");
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(
            "interface name \"a-name-far-longer-than-fifteen-bytes\" is 36 bytes, longer than 15"
        ),
        "{report}"
    );
}

#[test]
fn two_classes_of_one_type_are_a_violation() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &["BAD_DUP_TYPE"], "libdup.so");
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(
            "FAIL  provider type \"c-test\" is exported twice by this file: the agent registers the first class and refuses the second"
        ),
        "{report}"
    );
}

#[test]
fn the_uncommitted_paths_are_driven() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let report = String::from_utf8_lossy(&check(&[&so]).stdout).into_owned();
    assert!(
        report.contains("ok    CREATE lsp1 (not committed): prepare, ctx_destroy without finish"),
        "{report}"
    );
    assert!(
        report.contains(
            "ok    REMOVE lsp1 (not committed): prepare (ctx_out NULL) -> true, no finish"
        ),
        "{report}"
    );
}

#[test]
fn empty_option_key_is_a_violation() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &["BAD_OPTION_KEY"], "libempty_key.so");
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("option #0 has an empty key"), "{report}");
}

#[test]
fn a_negative_errno_from_init_is_explained() {
    let dir = private_dir();
    let lib = c_test_provider(dir.path(), &[], "libneg.so");
    let out = check_with(
        &[&lib],
        &["--provider-config", "c-test:init-returns=-22"],
        "warn",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(
            "init returned -22: errno values are positive, and -22 looks like -EINVAL (Invalid argument): return EINVAL"
        ),
        "{report}"
    );
}

#[test]
fn a_log_level_outside_the_abi_is_flagged_once() {
    let dir = private_dir();
    let lib = c_test_provider(dir.path(), &[], "liblevel.so");
    let out = check_with(
        &[&lib],
        &["--provider-config", "c-test:log-at-level=9"],
        "warn",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    let flagged: Vec<&str> = said
        .lines()
        .filter(|l| {
            l.contains("logs at level 9, outside 1 (VIF_PLUG_LOG_ERROR) to 5 (VIF_PLUG_LOG_TRACE)")
        })
        .collect();
    assert_eq!(flagged.len(), 1, "{said}");
    // And in the report, once: a breach of the contract is a FAIL.
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(
        report
            .matches(
                "FAIL  init: provider \"c-test\" broke the contract: this provider logs at level 9"
            )
            .count(),
        1,
        "{report}"
    );
    assert!(
        said.lines()
            .any(|l| l.contains("ERROR provider::c-test] a line at an odd level")),
        "{said}"
    );
}

#[test]
fn a_configuration_key_given_twice_is_an_error_before_anything_is_loaded() {
    let dir = private_dir();
    let lib = c_test_provider(dir.path(), &[], "libtwice.so");
    let out = check_with(
        &[&lib],
        &[
            "--provider-config",
            "c-test:prefix=a",
            "--provider-config",
            "c-test:prefix=b",
        ],
        "warn",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("--provider-config c-test:prefix is given twice (prefix=a, then prefix=b): give each key once"),
        "{said}"
    );
    assert!(out.stdout.is_empty(), "nothing checked");
}

#[test]
fn refused_files_and_failed_init_are_violations_and_others_are_still_checked() {
    let dir = private_dir();
    let major = c_test_provider(dir.path(), &["BAD_MAJOR"], "libmajor.so");
    let init = c_test_provider(dir.path(), &["BAD_INIT_FAIL"], "libinit.so");
    let good = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let out = check(&[&major, &init, &good]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(report.contains("built for ABI version 2.0, but this host implements 1.1"));
    assert!(
        report.contains(
            "FAIL  provider \"c-test\" failed to initialise: init returned 19 (No such device)"
        ),
        "{report}"
    );
    assert!(
        report.contains("ok    destroy"),
        "the dummy was still checked:\n{report}"
    );
    assert!(
        report.contains("FAIL: 3 file(s), 3 class(es), 2 violation(s)"),
        "{report}"
    );
}

#[test]
fn usage_errors_exit_2_with_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: vif-plug-host check"));
}

/// The devlink provider on a machine without devlink (these test machines):
/// the report says so in plain words. Where devlink exists, the provider
/// loads and initialises instead.
#[test]
fn the_devlink_provider_says_plainly_that_devlink_is_unavailable() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-devlink", "vif_plug_devlink", dir.path());
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("Rust type layout matches"), "{report}");
    if !report.contains("ok    init") {
        assert_eq!(out.status.code(), Some(1), "{report}");
        assert!(
            report.contains("FAIL  provider \"representor\" failed to initialise: init returned 19 (No such device): devlink is unavailable on this machine"),
            "{report}"
        );
    }
}

use testkit::faulty_provider as faulty;

fn check_with(files: &[&Path], args: &[&str], rust_log: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .arg("check")
        .args(files)
        .args(args)
        .env("RUST_LOG", rust_log)
        .output()
        .unwrap()
}

#[test]
fn a_crash_or_a_hang_is_a_fail_naming_the_step_and_the_next_file_is_checked() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let good = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let out = check_with(
        &[&so, &good],
        &["--provider-config", "faulty:crash-lport=lsp1"],
        "warn",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  CREATE lsp1: port_prepare crashed (SIGSEGV)"),
        "{report}"
    );
    assert!(
        report.contains("ok    destroy"),
        "the dummy was checked:\n{report}"
    );

    let t = std::time::Instant::now();
    let out = check_with(
        &[&so],
        &[
            "--provider-config",
            "faulty:hang-lport=lsp1",
            "--provider-timeout",
            "300",
        ],
        "warn",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  CREATE lsp1: port_prepare did not return within 300 ms"),
        "{report}"
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(10));

    let out = check_with(
        &[&so],
        &["--provider-config", "faulty:abort-in-init=true"],
        "warn",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  class \"faulty\": init crashed (SIGABRT)"),
        "{report}"
    );

    // The callback right after init is named as itself, not as init.
    let out = check_with(
        &[&so],
        &["--provider-config", "faulty:crash-in-maintained=true"],
        "warn",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  class \"faulty\": get_maintained_iface_options crashed (SIGSEGV)"),
        "{report}"
    );
    assert!(
        // One class, whose init had returned: nothing more to say of init.
        report.contains("note  the worker is gone: the rest of this file is not checked")
            && !report.contains("before it answered"),
        "{report}"
    );
}

#[test]
fn a_slow_callback_is_a_warning_and_answers_are_counted() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let out = check_with(
        &[&so],
        &["--provider-config", "faulty:slow-lport=lsp1"],
        "warn",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("WARN  CREATE lsp1: port_prepare took ")
            && report.contains("(more than 10 ms"),
        "{report}"
    );
    assert!(
        report.contains("PASS: 1 file(s), 1 class(es), 0 violation(s),")
            && report.contains("warning(s), 6 answer(s) validated"),
        "{report}"
    );
}

#[test]
fn a_panic_the_sdk_caught_is_a_fail_not_a_decline() {
    let dir = private_dir();
    let so = cargo_cdylib(
        "vif-plug-fixture-panicky",
        "vif_plug_fixture_panicky",
        dir.path(),
    );
    // Even with the provider's lines filtered out of the log.
    let out = check_with(&[&so], &[], "off");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(
            "FAIL  run: provider \"panicky\" panicked (caught by the SDK): run panicked at"
        ),
        "{report}"
    );
}

#[test]
fn c_host_logging_passes_through_the_worker_with_its_name_and_filter() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let shown = check_with(&[&so], &[], "info");
    let stderr = String::from_utf8_lossy(&shown.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("faulty provider ready (pid "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("INFO  provider::faulty]"), "{line}");
    let hidden = check_with(&[&so], &[], "info,provider::faulty=warn");
    assert!(
        !String::from_utf8_lossy(&hidden.stderr).contains("faulty provider ready"),
        "RUST_LOG filters it"
    );
}

/// Each fault in `port_prepare` for lsp1, with the FAIL line it must give,
/// within a few seconds: the worker cannot stall `check` by closing its
/// socket, forging progress marks, or leaving a forked child behind, and a
/// huge answer is refused, not fatal.
#[test]
fn a_provider_that_attacks_its_channel_still_gets_a_fail_line() {
    let dir = private_dir();
    let so = faulty(dir.path());
    let table = [
        (
            "close-sockets-lport=lsp1",
            "FAIL  CREATE lsp1: port_prepare closed its connection (killed)",
        ),
        (
            "forge-lport=lsp1",
            "FAIL  CREATE lsp1: port_prepare sent garbage (2 call marks for a request of 1 call(s))",
        ),
        (
            "fork-crash-lport=lsp1",
            "FAIL  CREATE lsp1: port_prepare crashed (SIGSEGV)",
        ),
        (
            "big-option-lport=lsp1",
            "FAIL  CREATE lsp1: the provider returned an unusable answer: option \"faulty-big\" has a value of 100000 bytes, longer than 4096",
        ),
    ];
    for (config, line) in table {
        let t = std::time::Instant::now();
        let out = check_with(
            &[&so],
            &["--provider-config", &format!("faulty:{config}")],
            "warn",
        );
        let report = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{config}: {report}");
        assert!(report.contains(line), "{config}: {report}");
        if config.starts_with("forge") {
            // A record claiming the agent's own target is shown as the
            // worker's, never as the agent's.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(
                    "ERROR vif_plug_host::worker] worker for libfaulty.so: forged: unplugging everything"
                ),
                "{stderr}"
            );
            assert!(!stderr.contains("vif_plug_host::agent]"), "{stderr}");
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{config}: {:?}",
            t.elapsed()
        );
    }
}

/// A provider a vendor built before ABI 1.1, from the committed 1.0 header,
/// passes in this 1.1 host, which says which version it was built for.
#[test]
fn a_provider_built_for_abi_1_0_passes_and_is_reported_as_such() {
    let dir = private_dir();
    let so = testkit::c_test_provider_1_0(dir.path(), "libc_test_1_0.so");
    let out = check(&[&so]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains(
            "ok    loaded: ABI 1.0, struct sizes match (no Rust layout exported: a C provider)"
        ),
        "{report}"
    );
    assert!(
        report.contains("PASS: 1 file(s), 2 class(es), 0 violation(s)"),
        "{report}"
    );
}

/// The same 1.0 provider under valgrind memcheck in both isolation modes:
/// no invalid access and no leak, in the host reading a shorter vtable and
/// passing a longer context. In `process` mode `check` drives it through
/// its life cycle in a worker (which runs the host's in-process provider
/// code), memcheck following the check and the worker. `check` has no
/// in-process mode, so `none` is `list-providers --provider-isolation none`,
/// which loads, initialises and destroys it in the host's own process,
/// through the registry the agent uses in that mode.
#[test]
fn a_provider_built_for_abi_1_0_is_clean_under_valgrind() {
    let dir = private_dir();
    let so = testkit::c_test_provider_1_0(dir.path(), "libc_test_1_0.so");
    let so = so.to_str().expect("a UTF-8 path");
    let listed = format!("c-test\t{so}\tmaintains: c-test-lport,c-test-datapath");
    // (isolation, the host's arguments, the processes memcheck reports on,
    // what the output says)
    let cases: [(&str, Vec<&str>, usize, Vec<&str>); 2] = [
        (
            "process",
            vec!["check", "--provider-timeout", "60000", so],
            2,
            vec![
                "loaded: ABI 1.0",
                "PASS: 1 file(s), 2 class(es), 0 violation(s)",
            ],
        ),
        (
            "none",
            vec![
                "list-providers",
                "--provider-isolation",
                "none",
                "--provider",
                so,
            ],
            1,
            vec![listed.as_str()],
        ),
    ];
    for (isolation, args, processes, says) in cases {
        // One report per process.
        let logs = dir.path().join(format!("valgrind-{isolation}"));
        std::fs::create_dir(&logs).unwrap();
        let out = Command::new("valgrind")
            .args([
                "--tool=memcheck",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--error-exitcode=99",
                "--trace-children=yes",
            ])
            .arg(format!("--log-file={}/%p", logs.display()))
            .arg(env!("CARGO_BIN_EXE_vif-plug-host"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("valgrind is installed (apt-get install valgrind; .ci/run does it)");
        let report = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{isolation}: {report}\n{stderr}");
        for said in says {
            assert!(report.contains(said), "{isolation}: {report}");
        }
        let reports: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(reports.len(), processes, "{isolation}: {reports:?}");
        for r in &reports {
            assert!(r.contains("ERROR SUMMARY: 0 errors"), "{isolation}: {r}");
            assert!(
                r.contains("definitely lost: 0 bytes") || r.contains("All heap blocks were freed"),
                "{isolation}: {r}"
            );
        }
    }
}
