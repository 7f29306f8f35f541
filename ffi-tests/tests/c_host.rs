//! A C host (ffi-tests/c/c_host.c) compiled against the header dlopens our
//! Rust dummy provider and drives it as an OVN-style host would; once plainly
//! and once under valgrind memcheck for 1,000 life cycles.

use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::{cargo_cdylib, compile_c_program, private_dir, workspace_root};

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let host = dir.join("c_host");
    compile_c_program(&workspace_root().join("ffi-tests/c/c_host.c"), &host);
    let dummy = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir);
    (host, dummy)
}

#[test]
fn c_host_drives_the_rust_dummy_provider() {
    let dir = private_dir();
    let (host, dummy) = build(dir.path());
    let out = Command::new(&host).arg(&dummy).arg("10").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The dummy logs at debug and trace through the C host's log function:
    // 4 debug lines per life cycle and a trace line per run.
    assert!(
        stdout.contains("1 class(es), 10 life cycle(s) each, 50 log message(s), 0 failure(s)"),
        "{stdout}"
    );
}

#[test]
fn c_host_under_valgrind_has_no_leak_or_invalid_access() {
    let dir = private_dir();
    let (host, dummy) = build(dir.path());
    let valgrind = Command::new("valgrind")
        .args([
            "--tool=memcheck",
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99",
        ])
        .arg(&host)
        .arg(&dummy)
        .arg("1000")
        .output()
        .expect("valgrind is installed (apt-get install valgrind; .ci/run does it)");
    let stderr = String::from_utf8_lossy(&valgrind.stderr);
    assert!(
        valgrind.status.success(),
        "valgrind reported errors:\n{stderr}"
    );
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
    assert!(stderr.contains("definitely lost: 0 bytes"), "{stderr}");
    assert!(stderr.contains("indirectly lost: 0 bytes"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&valgrind.stdout).contains("1000 life cycle(s) each"),
        "the run completed"
    );
}
