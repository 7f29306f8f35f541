//! `vif-plug-demo --help` prints its usage and starts nothing; an unknown
//! argument is a usage error.

use std::process::Command;

#[test]
fn help_prints_usage_and_a_wrong_argument_is_refused() {
    let demo = env!("CARGO_BIN_EXE_vif-plug-demo");
    for flag in ["--help", "-h"] {
        let out = Command::new(demo).arg(flag).output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {said}");
        assert!(said.starts_with("Usage: vif-plug-demo"), "{flag}: {said}");
        // Nothing was started: the demo's first words are not there.
        assert!(out.stderr.is_empty(), "{flag}: {:?}", out.stderr);
    }
    let out = Command::new(demo).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument \"--bogus\""));
}
