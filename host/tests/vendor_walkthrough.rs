//! docs/writing-a-provider.md, "From an empty directory to a passing
//! check": each `sh` block of it runs as written, with `sh -eu`, in an
//! empty directory, and its last command, `vif-plug-host check`, passes.
//!
//! The environment is what the section asks of a vendor: `VIF_PLUG_SRC`
//! is this checkout, `PATH` starts with the directory of the
//! `vif-plug-host` under test (and that of the cargo running the tests),
//! and the umask is 022. cargo is told to work offline
//! (`CARGO_NET_OFFLINE`), from the crates the workspace's own build
//! downloaded, and builds in the block's own `target/`, as a vendor's does.
//! A missing `cc` or `cargo` fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;
use testkit::docs::{blocks, section};
use testkit::{private_dir, workspace_root};

const SECTION: &str = "## From an empty directory to a passing check";

/// The body of the first `sh` block under `heading`, which must be a
/// heading of the walkthrough section, before the next heading.
fn walkthrough_block(heading: &str) -> String {
    let doc = std::fs::read_to_string(workspace_root().join("docs/writing-a-provider.md"))
        .expect("read docs/writing-a-provider.md");
    let steps = section(section(&doc, SECTION), heading);
    blocks(steps, "sh")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("an sh block under {heading:?}"))
}

fn dir_of(exe: &str) -> PathBuf {
    Path::new(exe).parent().expect("a directory").to_owned()
}

/// The `PATH` the blocks run with: the `vif-plug-host` under test, the
/// cargo running the tests, then the test's own `PATH`.
fn walkthrough_path() -> std::ffi::OsString {
    let mut path = vec![dir_of(env!("CARGO_BIN_EXE_vif-plug-host"))];
    if let Some(cargo) = std::env::var_os("CARGO") {
        path.push(dir_of(cargo.to_str().expect("UTF-8 $CARGO")));
    }
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(path).expect("PATH")
}

/// Runs `script` with `sh -eu` in `dir`, in the environment the section
/// describes.
fn run_walkthrough(script: &str, dir: &Path) -> Output {
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-euc")
        // The umask is the environment's, not a step of the guide.
        .arg(format!("umask 022\n{script}"))
        .current_dir(dir)
        .env("PATH", walkthrough_path())
        .env("VIF_PLUG_SRC", workspace_root())
        .env("CARGO_NET_OFFLINE", "true")
        .env("RUST_LOG", "warn")
        // A vendor's cargo builds into its own target/, which the guide's
        // check command names.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .expect("run sh");
    eprintln!("walkthrough took {:.1?}", started.elapsed());
    out
}

/// Fails, naming it, if `tool` is not on the PATH the block gets.
fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .env("PATH", walkthrough_path())
        .output()
        .expect("run sh");
    assert!(
        found.status.success(),
        "{tool} is not on PATH: the walkthrough needs it"
    );
}

fn assert_passes(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the {what} walkthrough failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("PASS: 1 file(s), 1 class(es), 0 violation(s)"),
        "the {what} walkthrough's check did not pass:\n{stdout}\n{stderr}"
    );
}

#[test]
fn the_c_walkthrough_ends_in_a_passing_check() {
    require("cc");
    let script = walkthrough_block("### In C");
    assert!(script.contains("vif-plug-host check"), "{script}");
    let dir = private_dir();
    let out = run_walkthrough(&script, dir.path());
    assert_passes("C", &out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("class \"example-c\""));
}

#[test]
fn the_rust_walkthrough_ends_in_a_passing_check() {
    require("cargo");
    let script = walkthrough_block("### In Rust");
    assert!(script.contains("vif-plug-host check"), "{script}");
    let dir = private_dir();
    let out = run_walkthrough(&script, dir.path());
    assert_passes("Rust", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("class \"example-rust\""), "{stdout}");
    assert!(
        stdout.contains("ok    loaded: ABI 1.1, struct sizes match, Rust type layout matches"),
        "{stdout}"
    );

    // What "What the SDK gives you" says an InitError looks like in a
    // check, with the library the walkthrough built.
    let so = dir
        .path()
        .join("example-rust/target/release/libexample_rust.so");
    let out = Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .arg("check")
        .arg(&so)
        .args(["--provider-config", "example-rust:prefix=much-too-long-"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the check");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let line = "FAIL  provider \"example-rust\" failed to initialise: init returned 22 (Invalid argument): prefix must be at most 8 bytes";
    assert!(report.contains(line), "missing {line:?} in:\n{report}");
    let guide = std::fs::read_to_string(workspace_root().join("docs/writing-a-provider.md"))
        .expect("read the guide");
    assert!(
        squash(&guide).contains(&squash(line)),
        "the guide quotes the FAIL line as the check prints it"
    );
}

/// `text` with every run of whitespace made one space, as Markdown reads it.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
