//! `vif-plug-host check`'s inputs and verdicts as a hardware vendor needs
//! them: sample ports described as the agent would see them, a provider
//! that declines everything, answers the SDK could not pass, one type in two
//! files, and configuration for a class that was refused.

use std::path::Path;
use std::process::{Command, Output};
use testkit::{c_test_provider, cargo_cdylib, private_dir};

/// Runs `vif-plug-host check FILES ARGS` with RUST_LOG=`rust_log`.
fn run(files: &[&Path], args: &[&str], rust_log: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .arg("check")
        .args(files)
        .args(args)
        .env("RUST_LOG", rust_log)
        .output()
        .unwrap()
}

/// Its exit code and report, the log off.
fn check(files: &[&Path], args: &[&str]) -> (Option<i32>, String) {
    let out = run(files, args, "off");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn has(report: &str, lines: &[&str]) {
    for l in lines {
        assert!(report.contains(l), "missing {l:?} in:\n{report}");
    }
}

fn lacks(report: &str, lines: &[&str]) {
    for l in lines {
        assert!(!report.contains(l), "unexpected {l:?} in:\n{report}");
    }
}

#[test]
fn the_sample_ports_are_the_ones_given_with_the_bridge_facts_given() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let (code, report) = check(
        &[&so],
        &[
            "--lport",
            "vm1",
            "--lport",
            "vm2",
            "--datapath-type",
            "netdev",
        ],
    );
    assert_eq!(code, Some(0), "{report}");
    has(
        &report,
        &[
            // The test provider copies Bridge.datapath_type into an option.
            "CREATE vm1: prepare -> interface \"c-vm1\", type NULL (system), options {c-test-lport=vm1, c-test-datapath=netdev}",
            "CREATE vm2: prepare -> interface \"c-vm2\"",
            "UPDATE vm1: finish, ctx_destroy",
            "REMOVE vm1: prepare (ctx_out NULL) -> true, finish",
        ],
    );
    lacks(
        &report,
        &["lsp1", "a-logical-port-name-longer-than-ifnamsiz"],
    );
}

/// (provider configuration, check arguments) that make the c-test class
/// accept: each fact the provider needs, given or not.
#[test]
fn a_provider_that_needs_a_fact_gets_it_from_the_command_line() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let cases: [(&str, &[&str]); 2] = [
        ("c-test:needs=dpdk", &["--dpdk-initialized"]),
        ("c-test:needs=mac", &["--lport-mac", "0A:00:00:00:00:01"]),
    ];
    for (config, given) in cases {
        let (code, report) = check(&[&so], &["--provider-config", config]);
        assert_eq!(code, Some(1), "{config} without {given:?}: {report}");
        has(
            &report,
            &[
                "note  CREATE lsp1: declined (prepare returned false)",
                "FAIL  every CREATE and UPDATE (2) was declined, so the create, update and finish paths were not checked",
            ],
        );
        let mut args = vec!["--provider-config", config];
        args.extend_from_slice(given);
        let (code, report) = check(&[&so], &args);
        assert_eq!(code, Some(0), "{config} with {given:?}: {report}");
        has(
            &report,
            &[
                "CREATE lsp1: prepare -> interface \"c-lsp1\"",
                "(0 declined)",
            ],
        );
    }
}

#[test]
fn declining_every_create_fails_unless_allowed_and_skipped_steps_say_why() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let config = ["--provider-config", "c-test:needs=iface"];
    let (code, report) = check(&[&so], &config);
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &[
            "FAIL  every CREATE and UPDATE (2) was declined",
            "or pass --allow-decline if declining is right on this machine",
            "note  UPDATE lsp1, CREATE and REMOVE lsp1 (not committed), REMOVE lsp1: not checked, since CREATE lsp1 made no interface to update or remove; describe one with --iface-type and --iface-option",
            "FAIL: 1 file(s), 2 class(es), 1 violation(s), 0 warning(s), 8 answer(s) validated (2 declined)",
        ],
    );

    let (code, report) = check(&[&so], &[&config[..], &["--allow-decline"]].concat());
    assert_eq!(code, Some(0), "{report}");
    has(
        &report,
        &[
            "note  every CREATE and UPDATE (2) was declined: allowed by --allow-decline",
            "PASS: 1 file(s), 2 class(es), 0 violation(s)",
        ],
    );

    // An interface made elsewhere, described on the command line: the
    // update path is checked although CREATE was declined.
    let (code, report) = check(
        &[&so],
        &[
            &config[..],
            &[
                "--iface-type",
                "system",
                "--iface-option",
                "mtu_request=9000",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{report}");
    has(
        &report,
        &[
            "note  CREATE lsp1: declined",
            "ok    UPDATE lsp1: prepare -> interface \"c-lsp1\"",
            "ok    CREATE lsp1 (not committed): prepare, ctx_destroy without finish",
            "ok    REMOVE lsp1: prepare (ctx_out NULL) -> true, finish",
        ],
    );
}

#[test]
fn an_interface_name_with_a_nul_byte_is_a_fail_not_a_decline() {
    let dir = private_dir();
    let so = cargo_cdylib(
        "vif-plug-fixture-panicky",
        "vif_plug_fixture_panicky",
        dir.path(),
    );
    let (code, report) = check(&[&so], &["--lport", "nul1"]);
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &[
            "FAIL  CREATE nul1: provider \"panicky\" gave an answer the SDK could not pass to the host, so it declined instead: port_prepare of nul1: interface name \"nul1\\0x\" contains a NUL byte",
        ],
    );
    lacks(&report, &["note  CREATE nul1: declined"]);
}

#[test]
fn two_files_that_export_one_type_are_reported() {
    let dir = private_dir();
    let first = c_test_provider(dir.path(), &[], "libfirst.so");
    let second = c_test_provider(dir.path(), &[], "libsecond.so");
    let (code, report) = check(&[&first, &second], &[]);
    assert_eq!(code, Some(1), "{report}");
    for t in ["c-test", "c-test-alt"] {
        has(
            &report,
            &[&format!(
                "FAIL  provider type \"{t}\" is also exported by {} (checked above): given both, the agent registers the first file's and refuses this one",
                first.display()
            )],
        );
    }
    // Each file is still checked in full.
    assert_eq!(report.matches("ok    REMOVE lsp1: prepare").count(), 4);
}

#[test]
fn configuration_for_a_refused_class_is_not_called_missing() {
    let dir = private_dir();
    // Its c-test class lacks port_finish: refused, type known.
    let so = c_test_provider(dir.path(), &["BAD_NO_FINISH"], "libno_finish.so");
    let (code, report) = check(
        &[&so],
        &[
            "--provider-config",
            "c-test:prefix=x-",
            "--provider-config",
            "elsewhere:k=v",
        ],
    );
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &[
            "required callback port_finish is NULL",
            "note  --provider-config given for \"elsewhere\", which this file does not provide",
        ],
    );
    lacks(&report, &["given for \"c-test\""]);
}

/// Bytes that are not UTF-8, in a class's type and in a provider's log
/// line, are shown as `\xNN`, neither raw nor as U+FFFD.
#[test]
fn bytes_that_are_not_utf8_are_escaped() {
    let dir = private_dir();
    let bad_type = c_test_provider(dir.path(), &["BAD_TYPE_BYTES"], "libbytes.so");
    let says_bytes = c_test_provider(dir.path(), &[], "libsays.so");
    let out = run(
        &[&bad_type, &says_bytes],
        &["--provider-config", "c-test:say-bytes=true"],
        "error",
    );
    for stream in [&out.stdout, &out.stderr] {
        assert!(std::str::from_utf8(stream).is_ok(), "{stream:?}");
    }
    let report = String::from_utf8_lossy(&out.stdout);
    has(
        &report,
        &[
            "its type \"c-test\\xff\" is not a printable UTF-8 word",
            "FAIL  provider \"c-test\" failed to initialise: init returned 22 (Invalid argument): not UTF-8: \\xff\\xfe end",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not UTF-8: \\xff\\xfe end"),
        "the log line too: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!report.contains('\u{fffd}'), "{report}");
}

/// A bidirectional formatting character from a provider (here in the
/// interface names it answers, which Linux allows) is escaped in the
/// report and in the log, so that it cannot reorder what a terminal shows.
#[test]
fn bidirectional_controls_from_a_provider_are_escaped() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libbidi.so");
    let out = run(
        &[&so],
        &["--provider-config", "c-test:prefix=\u{202e}x-"],
        "info",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{report}\n{log}");
    has(&report, &["\\u{202e}x-lsp1"]);
    assert!(!report.contains('\u{202e}'), "{report}");
    assert!(!log.contains('\u{202e}'), "{log}");

    // In a class's type, where it would also stand in every log line's
    // target, one is refused (as are tabs, shown escaped).
    let so = c_test_provider(dir.path(), &["BAD_TYPE_BIDI"], "libbiditype.so");
    let out = run(&[&so], &[], "info");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    has(
        &report,
        &["its type \"c-test\\u{202e}\\t\" is not a printable UTF-8 word"],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !report.contains('\u{202e}') && !log.contains('\u{202e}'),
        "{report}\n{log}"
    );

    // A usage error repeats the bad value: escaped too.
    let out = run(&[&so], &["--provider-config", "ev\u{202e}il"], "off");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ev\\u{202e}il"), "{err}");
    assert!(!err.contains('\u{202e}'), "{err}");
}

/// One interface name for two logical ports: the agent would plug only
/// one of them. A FAIL says so, and how to check a provider keyed on an
/// option every sample port gets alike. (Also what a provider that only
/// cuts names to 15 bytes gets for two long names.)
#[test]
fn two_sample_ports_answered_with_one_interface_name_are_a_fail() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let (code, report) = check(&[&so], &["--lport-option", "vif-plug:c-test:name=eth7"]);
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &[
            "FAIL  CREATE a-logical-port-name-longer-than-ifnamsiz: interface \"eth7\" is also the answer for lsp1: the agent would plug only one of the two logical ports",
            "check one --lport at a time",
        ],
    );
    let (code, report) = check(
        &[&so],
        &[
            "--provider-config",
            "c-test:prefix=",
            "--lport",
            "vm-0123456789-aa",
            "--lport",
            "vm-0123456789-ab",
        ],
    );
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &["interface \"vm-0123456789-a\" is also the answer for vm-0123456789-aa"],
    );
    let (_, report) = check(
        &[&so],
        &[
            "--lport-option",
            "vif-plug:c-test:name=eth7",
            "--lport",
            "vm1",
        ],
    );
    lacks(&report, &["WARN"]);
}

/// Usage errors: one line naming the value and the rule, exit 2; a whole
/// Port_Binding.mac entry gives its MAC.
#[test]
fn sample_port_values_are_checked_before_anything_loads() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    for (args, said) in [
        (&["--lport-mac", "zz"][..], "expected a MAC address"),
        (
            &["--iface-type", "dp dk"][..],
            "an interface type is made of letters",
        ),
        (&["--lport", ""][..], "a logical port name is non-empty"),
        (
            &["--iface-option", "=v"][..],
            "expected KEY=VALUE with a non-empty KEY",
        ),
    ] {
        let out = run(&[&so], args, "off");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing checked");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, report) = check(
        &[&so],
        &[
            "--provider-config",
            "c-test:needs=mac",
            "--lport-mac",
            "0A:00:00:00:00:01 10.0.0.1",
        ],
    );
    assert_eq!(code, Some(0), "{report}");
}

/// A provider that breaks the contract in ways the host survives gets a
/// FAIL each time, not a verdict that varies from run to run: a thread
/// that logs after destroy (the context is retired, not freed), and
/// maintained option keys the host cannot use.
#[test]
fn breaches_the_host_survives_are_fails_every_time() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &["LOG_AFTER_DESTROY"], "liblate.so");
    for keep in [false, true, false, true, false] {
        let args: &[&str] = if keep { &["--keep-loaded"] } else { &[] };
        let (code, report) = check(&[&so], args);
        assert_eq!(code, Some(1), "{report}");
        // The worker waits up to 200 ms for threads before it unloads the
        // library: this one logs meanwhile, every time.
        has(
            &report,
            &["provider \"c-test\" broke the contract: called log after destroy returned"],
        );
        // Kept loaded, the thread is still there to be counted (unloaded,
        // it may already have crashed the worker: a FAIL too).
        if keep {
            has(
                &report,
                &["WARN  1 thread(s) started by the library still ran 200 ms after every class was destroyed"],
            );
        }
    }
    // A thread told to stop in destroy, not joined, ends before the
    // library is unloaded: no failure, with or without --keep-loaded.
    let so = c_test_provider(dir.path(), &["THREAD_NOT_JOINED"], "libstopped.so");
    for args in [&[][..], &["--keep-loaded"][..]] {
        let (code, report) = check(&[&so], args);
        assert_eq!(code, Some(0), "{args:?}: {report}");
        lacks(&report, &["WARN", "thread"]);
    }
    let so = c_test_provider(dir.path(), &["BAD_MAINTAINED_KEY"], "libbad_key.so");
    let (code, report) = check(&[&so], &[]);
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &[
            "FAIL  get_maintained_iface_options: provider \"c-test\" broke the contract: maintained interface option #2 \"forged\\nPASS\" holds a control character; ignored",
            "maintained interface option #3 \"tab\\there\" holds a control character; ignored",
            "maintained interface option #4 \"\\u{202e}SSAP\" holds a bidirectional formatting character; ignored",
        ],
    );
    assert!(!report.contains("\nPASS"), "{report}");
    assert!(
        !report.contains('\t') && !report.contains('\u{202e}'),
        "{report}"
    );
}

/// A process the provider forked does not outlive its worker.
#[test]
fn what_a_provider_forks_goes_with_its_worker() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libfork.so");
    let pidfile = dir.path().join("sleeper.pid");
    let config = format!("c-test:fork-sleeper={}", pidfile.display());
    let (code, report) = check(&[&so], &["--provider-config", &config]);
    assert_eq!(code, Some(0), "{report}");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    // Gone, or a zombie waiting for a reaper that is not ours.
    if let Ok(stat) = stat {
        let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
        assert_eq!(state, Some('Z'), "the forked child still runs: {stat}");
    }
}

/// A file given twice, or through a symlink, is checked once, as the agent
/// loads it once.
#[test]
fn the_same_file_given_twice_is_checked_once() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let link = dir.path().join("liblink.so");
    std::os::unix::fs::symlink(&so, &link).unwrap();
    let (code, report) = check(&[&so, &so, &link], &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        report
            .matches(&format!(
                "note  the same file as {}, checked above",
                so.display()
            ))
            .count(),
        2,
        "{report}"
    );
    has(&report, &["PASS: 3 file(s), 2 class(es), 0 violation(s)"]);
}

/// An UPDATE answered with a new name is a replacement in the agent (the
/// answer released unfinished); with the name of another sample port's
/// interface, a FAIL.
#[test]
fn an_update_that_renames_is_a_replacement_and_may_not_take_another_ports_name() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let (code, report) = check(
        &[&so],
        &[
            "--lport",
            "vm1",
            "--provider-config",
            "c-test:update-name=c-new",
        ],
    );
    assert_eq!(code, Some(0), "{report}");
    has(
        &report,
        &["note  UPDATE vm1: a new name for interface \"c-vm1\", so the agent would replace it: ctx_destroy without finish, then REMOVE and CREATE"],
    );
    // (The file's other class, c-test-alt, updates in place.)
    let c_test = report.split("class \"c-test-alt\"").next().unwrap();
    lacks(c_test, &["UPDATE vm1: finish"]);
    let (code, report) = check(
        &[&so],
        &[
            "--lport",
            "vm1",
            "--lport",
            "vm2",
            "--provider-config",
            "c-test:update-name=c-vm2",
        ],
    );
    assert_eq!(code, Some(1), "{report}");
    has(
        &report,
        &["FAIL  UPDATE vm1: interface \"c-vm2\" is the answer for vm2: the agent would plug only one of the two logical ports"],
    );
}

/// Each sample port may have keys of its own: a provider keyed on them
/// names one interface per port, and passes.
#[test]
fn each_sample_port_may_have_its_own_options_and_macs() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libc_test.so");
    let (code, report) = check(
        &[&so],
        &[
            "--lport",
            "vm1",
            "--lport",
            "vm2",
            "--lport-option",
            "vif-plug:c-test:name=eth0",
            "--lport-option-of",
            "vm1",
            "vif-plug:c-test:name=eth1",
            "--lport-option-of",
            "vm2",
            "vif-plug:c-test:name=eth2",
        ],
    );
    assert_eq!(code, Some(0), "{report}");
    has(
        &report,
        &[
            "CREATE vm1: prepare -> interface \"eth1\"",
            "CREATE vm2: prepare -> interface \"eth2\"",
        ],
    );
    // Only vm1 has a MAC: vm2 is declined by a provider that needs one.
    let (code, report) = check(
        &[&so],
        &[
            "--lport",
            "vm1",
            "--lport",
            "vm2",
            "--provider-config",
            "c-test:needs=mac",
            "--lport-mac-of",
            "vm1",
            "0a:00:00:00:00:01",
        ],
    );
    assert_eq!(code, Some(0), "{report}");
    has(
        &report,
        &[
            "ok    CREATE vm1: prepare -> interface \"c-vm1\"",
            "note  CREATE vm2: declined",
        ],
    );
    // A port that is not a sample port is a usage error.
    let out = run(&[&so], &["--lport-option-of", "vm9", "k=v"], "off");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "--lport-option-of: \"vm9\" is not a sample port (the sample ports are lsp1, a-logical-port-name-longer-than-ifnamsiz; add it with --lport)"
    ));
}
