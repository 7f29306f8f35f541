//! Helpers shared by the integration tests: locating the workspace, building
//! provider cdylibs with cargo, compiling C against the committed header, and
//! capturing log records. [`sandbox`] runs a private OVN chassis for tests
//! that need Open vSwitch and OVN.
//!
//! Built libraries are copied into a private temporary directory with mode
//! 0755, because the host refuses providers that are group- or
//! world-writable and the build directory's modes depend on the umask.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub mod contract;
pub mod docs;
pub mod netns;
pub mod openflow_stub;
pub mod pki;
pub mod sandbox;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_owned()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The directory holding `vif-plug-provider.h`.
pub fn include_dir() -> PathBuf {
    workspace_root().join("include")
}

/// A private directory (mode 0700) removed when dropped.
pub fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("vif-plug-test-")
        .tempdir()
        .expect("create temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod temp dir");
    dir
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the cdylib of workspace `package` (debug profile) once per test
/// process, copies `lib<lib_name>.so` into `dir` with mode 0755, and returns
/// the copy's path.
pub fn cargo_cdylib(package: &str, lib_name: &str, dir: &Path) -> PathBuf {
    cargo_cdylib_in(package, lib_name, dir, false)
}

/// As [`cargo_cdylib`], with the release profile if `release`.
pub fn cargo_cdylib_in(package: &str, lib_name: &str, dir: &Path, release: bool) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    {
        let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{package}/{release}");
        if !built.contains(&key) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.current_dir(workspace_root())
                .args(["build", "--quiet", "--lib", "-p", package]);
            if release {
                cmd.arg("--release");
            }
            run(&mut cmd);
            built.insert(key);
        }
    }
    let file = format!("lib{lib_name}.so");
    let profile = if release { "release" } else { "debug" };
    let src = target_dir().join(profile).join(&file);
    let dst = dir.join(&file);
    fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).expect("chmod");
    dst
}

/// The strict flags every C file of the project must compile cleanly with.
pub const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// Compiles C `src` against the header into a shared object at `out`
/// (mode 0755), with `defines` as `-D` flags.
pub fn compile_c_shared(src: &Path, defines: &[&str], out: &Path) {
    compile_c_shared_against(src, defines, out, &include_dir());
}

/// As [`compile_c_shared`], against the header in `include` (the ABI 1.0
/// fixture in `ffi-tests/c/abi-1.0`, for the compatibility tests).
pub fn compile_c_shared_against(src: &Path, defines: &[&str], out: &Path, include: &Path) {
    let mut cmd = Command::new("cc");
    cmd.args(C_FLAGS)
        .arg("-I")
        .arg(include)
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(src)
        .args(defines.iter().map(|d| format!("-D{d}")));
    run(&mut cmd);
    fs::set_permissions(out, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Compiles C program `src` against the header into `out`, linked with -ldl.
pub fn compile_c_program(src: &Path, out: &Path) {
    let mut cmd = Command::new("cc");
    cmd.args(C_FLAGS)
        .arg("-g")
        .arg("-I")
        .arg(include_dir())
        .arg("-o")
        .arg(out)
        .arg(src)
        .arg("-ldl");
    run(&mut cmd);
}

/// One captured log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level.
    pub level: log::Level,
    /// Target (`provider::TYPE` for provider messages).
    pub target: String,
    /// Message text.
    pub message: String,
}

struct Capture(Mutex<Vec<LogRecord>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(LogRecord {
                level: r.level(),
                target: r.target().to_owned(),
                message: r.args().to_string(),
            });
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// Installs a logger that keeps every record (all levels) for
/// [`logs_matching`]. Safe to call from every test.
pub fn capture_logs() {
    if log::set_logger(&CAPTURE).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// Captured records whose message contains `needle`.
pub fn logs_matching(needle: &str) -> Vec<LogRecord> {
    CAPTURE
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| r.message.contains(needle))
        .cloned()
        .collect()
}

/// Builds `ffi-tests/c/faulty_provider.c` (a provider with bugs on demand,
/// chosen by its configuration) into `dir/libfaulty.so`.
pub fn faulty_provider(dir: &Path) -> PathBuf {
    let so = dir.join("libfaulty.so");
    compile_c_shared(
        &workspace_root().join("ffi-tests/c/faulty_provider.c"),
        &[],
        &so,
    );
    so
}

/// Builds `ffi-tests/c/test_provider.c` from the committed ABI 1.0 header
/// (`ffi-tests/c/abi-1.0`), as a vendor built it before 1.1, into
/// `dir/<file_name>`.
pub fn c_test_provider_1_0(dir: &Path, file_name: &str) -> PathBuf {
    let so = dir.join(file_name);
    compile_c_shared_against(
        &workspace_root().join("ffi-tests/c/test_provider.c"),
        &[],
        &so,
        &workspace_root().join("ffi-tests/c/abi-1.0"),
    );
    so
}

/// Builds `ffi-tests/c/test_provider.c` with the given `BAD_*` defines (none
/// for the correct provider) into `dir/<file_name>`.
pub fn c_test_provider(dir: &Path, defines: &[&str], file_name: &str) -> PathBuf {
    let so = dir.join(file_name);
    compile_c_shared(
        &workspace_root().join("ffi-tests/c/test_provider.c"),
        defines,
        &so,
    );
    so
}
