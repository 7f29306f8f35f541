//! Every way the loader refuses a provider file or class, each with the
//! broken provider built here and the exact complaint checked; and, through
//! the binary, that refusals are one line each and the other files still load.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::{c_test_provider, cargo_cdylib, private_dir};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::ClassError;

fn refusal(path: &Path) -> String {
    match load_library(path) {
        Ok(_) => panic!("{} was loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

fn class_refusals(path: &Path) -> Vec<String> {
    load_library(path)
        .expect("the file itself loads")
        .classes
        .into_iter()
        .filter_map(|c| c.err().map(|(i, e)| format!("#{i}: {e}")))
        .collect()
}

fn bad(dir: &Path, define: &str) -> PathBuf {
    c_test_provider(dir, &[define], &format!("lib{}.so", define.to_lowercase()))
}

#[test]
fn missing_classes_symbol() {
    let dir = private_dir();
    let so = bad(dir.path(), "BAD_NO_CLASSES");
    let e = refusal(&so);
    assert!(
        e.starts_with(&format!("refusing provider {}:", so.display())),
        "{e}"
    );
    assert!(
        e.contains("does not export vif_plug_provider_classes"),
        "{e}"
    );
}

#[test]
fn missing_version_symbol() {
    let dir = private_dir();
    let e = refusal(&bad(dir.path(), "BAD_NO_ABI"));
    assert!(e.contains("does not export vif_plug_provider_abi"), "{e}");
    assert!(
        e.contains("VIF_PLUG_DEFINE_ABI_INFO"),
        "says how to fix it: {e}"
    );
}

#[test]
fn other_major_version_names_file_and_both_versions() {
    let dir = private_dir();
    let so = bad(dir.path(), "BAD_MAJOR");
    let e = refusal(&so);
    assert!(e.contains(&so.display().to_string()), "{e}");
    assert!(
        e.contains("built for ABI version 2.0, but this host implements 1.1"),
        "{e}"
    );
}

/// A library of a newer minor version is refused, as a 1.1 library is by a
/// 1.0 host: it could read members this host does not fill.
#[test]
fn a_newer_minor_version_is_refused_with_upgrade_advice() {
    let dir = private_dir();
    let so = bad(dir.path(), "BAD_NEWER_MINOR");
    let e = refusal(&so);
    assert!(e.contains(&so.display().to_string()), "{e}");
    assert!(
        e.contains("built for ABI version 1.2, newer than this host's 1.1; upgrade the host"),
        "{e}"
    );
}

#[test]
fn struct_size_mismatch() {
    let dir = private_dir();
    let e = refusal(&bad(dir.path(), "BAD_SIZE"));
    assert!(
        e.contains("sizeof(struct vif_plug_class) is 80 in the library and 72 in this host"),
        "{e}"
    );
}

#[test]
fn rust_layout_mismatch_with_matching_version() {
    let dir = private_dir();
    let so = cargo_cdylib(
        "vif-plug-fixture-layout-mismatch",
        "vif_plug_fixture_layout_mismatch",
        dir.path(),
    );
    let e = refusal(&so);
    assert!(
        e.contains("its vif-plug-abi type layout differs from this host's"),
        "{e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn null_type() {
    let dir = private_dir();
    assert_eq!(
        class_refusals(&bad(dir.path(), "BAD_NULL_TYPE")),
        ["#0: its type is NULL"]
    );
}

#[test]
fn empty_type() {
    let dir = private_dir();
    assert_eq!(
        class_refusals(&bad(dir.path(), "BAD_EMPTY_TYPE")),
        ["#0: its type is an empty string"]
    );
}

#[test]
fn null_required_callback() {
    let dir = private_dir();
    let so = bad(dir.path(), "BAD_NO_FINISH");
    let lib = load_library(&so).unwrap();
    let errors: Vec<_> = lib
        .classes
        .iter()
        .filter_map(|c| c.as_ref().err())
        .collect();
    assert_eq!(
        errors,
        [&(
            0,
            ClassError::MissingCallback {
                type_name: "c-test".into(),
                callback: "port_finish"
            }
        )]
    );
    assert_eq!(
        errors[0].1.to_string(),
        "class \"c-test\": required callback port_finish is NULL"
    );
}

#[test]
fn file_writable_by_others() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libgood.so");
    fs::set_permissions(&so, fs::Permissions::from_mode(0o757)).unwrap();
    let e = refusal(&so);
    assert!(e.contains("is writable by others (mode 0757)"), "{e}");
    assert!(e.contains("chmod go-w"), "says how to fix it: {e}");
}

#[test]
fn file_writable_by_group() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libgood.so");
    fs::set_permissions(&so, fs::Permissions::from_mode(0o775)).unwrap();
    assert!(refusal(&so).contains("file"));
    assert!(refusal(&so).contains("is writable by group (mode 0775)"));
}

#[test]
fn directory_writable_by_others() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libgood.so");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let e = refusal(&so);
    assert!(
        e.contains(&format!(
            "directory {} is writable by group and others (mode 0777, a shared directory)",
            dir.path().display()
        )),
        "{e}"
    );
}

#[test]
fn an_ancestor_directory_writable_by_others_unless_sticky() {
    let dir = private_dir();
    let sub = dir.path().join("providers");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
    let so = c_test_provider(&sub, &[], "libgood.so");

    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let e = refusal(&so);
    assert!(
        e.contains(&format!(
            "directory {} is writable by group and others",
            dir.path().display()
        )),
        "{e}"
    );

    // With the sticky bit (like /tmp), others cannot replace what is ours.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(load_library(&so).is_ok());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
}

/// A file dropped in a sticky, world-writable directory (as /tmp is), and
/// writable by others itself: one refusal names both paths, says to chmod
/// the file and to move it out of the directory, never to chmod the
/// directory.
#[test]
fn a_file_in_a_shared_directory_gets_every_fault_and_no_chmod_for_the_directory() {
    let dir = private_dir();
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    let so = c_test_provider(&shared, &[], "libgood.so");
    fs::set_permissions(&so, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let e = refusal(&so);
    assert!(
        e.contains(&format!(
            "file {} is writable by group and others (mode 0666): run chmod go-w {}",
            so.display(),
            so.display()
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "directory {} is writable by group and others (mode 1777, a shared directory): move the file into a directory that only root or uid {} can write, such as /usr/lib/vif-plug-host/providers",
            shared.display(),
            // Our uid: what we create is ours.
            std::os::unix::fs::MetadataExt::uid(&fs::metadata(&so).unwrap())
        )),
        "{e}"
    );
    assert_eq!(e.matches("chmod").count(), 1, "{e}");
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn file_owned_by_another_user() {
    let dir = private_dir();
    let so = c_test_provider(dir.path(), &[], "libgood.so");
    // Changing a file's owner needs root, which CI and this project's
    // machines have; an unprivileged run cannot set the case up at all.
    chown(&so, Some(65534), None).expect("chown needs root");
    let e = refusal(&so);
    assert!(
        e.contains("is owned by uid 65534, not by root or the agent's uid"),
        "{e}"
    );
}

#[test]
fn not_a_shared_object() {
    let dir = private_dir();
    let text = dir.path().join("libtext.so");
    fs::write(&text, "this is not an ELF file\n").unwrap();
    fs::set_permissions(&text, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(refusal(&text).contains("not a shared object: no ELF header"));

    // A real ELF file that is an executable, not a shared object.
    let exe = dir.path().join("libexe.so");
    let src = dir.path().join("main.c");
    fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let ok = Command::new("cc")
        .args(["-no-pie", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let e = refusal(&exe);
    assert!(e.contains("not a shared object: ELF type 2"), "{e}");

    let sub = dir.path().join("sub.so");
    fs::create_dir(&sub).unwrap();
    assert!(refusal(&sub).contains("not a regular file"));

    // A shared object for another architecture (e_machine patched to 183,
    // aarch64, or 62, x86_64, whichever this is not).
    let good = c_test_provider(dir.path(), &[], "libgood.so");
    let mut bytes = fs::read(&good).unwrap();
    let foreign: u16 = if cfg!(target_arch = "x86_64") {
        183
    } else {
        62
    };
    bytes[18..20].copy_from_slice(&foreign.to_le_bytes());
    let other = dir.path().join("libother_arch.so");
    fs::write(&other, bytes).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o755)).unwrap();
    let e = refusal(&other);
    assert!(
        e.contains(&format!("built for ELF machine {foreign}")),
        "{e}"
    );
}

#[test]
fn missing_file() {
    let dir = private_dir();
    let e = refusal(&dir.path().join("libnothere.so"));
    assert!(
        e.contains("libnothere.so") && e.contains("No such file"),
        "{e}"
    );
}

/// The binary logs one line per refused file or class and registers the rest.
#[test]
fn refusals_are_one_line_each_and_the_others_still_load() {
    let dir = private_dir();
    let d = dir.path();
    for define in [
        "BAD_NO_CLASSES",
        "BAD_NO_ABI",
        "BAD_MAJOR",
        "BAD_SIZE",
        "BAD_NULL_TYPE",
    ] {
        bad(d, define);
    }
    fs::write(d.join("libtext.so"), "not ELF").unwrap();
    fs::set_permissions(d.join("libtext.so"), fs::Permissions::from_mode(0o644)).unwrap();
    cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", d);

    let out = Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .args(["list-providers", "--provider-dir"])
        .arg(d)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    // Registered: the dummy, and the valid second class of the NULL-type file.
    let types: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(types, ["c-test-alt", "dummy"], "{stdout}");

    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 6, "one line per refusal:\n{stderr}");
    for (needle, file) in [
        (
            "does not export vif_plug_provider_classes",
            "libbad_no_classes.so",
        ),
        ("does not export vif_plug_provider_abi", "libbad_no_abi.so"),
        ("built for ABI version 2.0", "libbad_major.so"),
        ("sizeof(struct vif_plug_class)", "libbad_size.so"),
        ("its type is NULL", "libbad_null_type.so"),
        ("no ELF header", "libtext.so"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle) && l.contains(file)),
            "no line with {needle:?} naming {file}:\n{stderr}"
        );
    }
}

#[test]
fn an_unlistable_directory_is_reported_as_such_and_a_file_named_twice_loads_once() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .arg("list-providers")
        .arg("--provider")
        .arg(&so)
        .arg("--provider-dir")
        .arg(dir.path())
        .arg("--provider-dir")
        .arg(dir.path().join("missing"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(!stderr.contains("already registered"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot list provider directory {}: No such file or directory",
            dir.path().join("missing").display()
        )),
        "{stderr}"
    );
}
