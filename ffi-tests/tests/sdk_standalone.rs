//! The Rust SDK (`abi/`, crate `vif-plug-abi`) builds outside this
//! repository: `cargo package` packages and verifies it, the documented
//! example builds against the packaged copy in a directory outside the
//! workspace, and its API documentation builds without a warning.
//!
//! The builds share one target directory, `<target>/sdk-standalone`, so
//! the SDK's dependencies are compiled once for all of them, and work
//! offline, from the crates the workspace's own build downloaded.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use testkit::{private_dir, target_dir, workspace_root};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::PortRequest;
use vif_plug_host::{ProviderConfig, Registry};

fn standalone_target() -> PathBuf {
    target_dir().join("sdk-standalone")
}

fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir)
        .args(args)
        .arg("--offline")
        .arg("--target-dir")
        .arg(standalone_target())
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

fn run(what: &str, cmd: &mut Command) {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: running {cmd:?}: {e}"));
    eprintln!("{what} took {:.1?}", started.elapsed());
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

#[test]
fn the_sdk_packages_and_the_example_builds_against_it_outside_the_workspace() {
    let root = workspace_root();
    // What would be published: cargo builds the packaged copy, alone, to
    // verify it.
    run(
        "cargo package -p vif-plug-abi",
        &mut cargo(&root, &["package", "-p", "vif-plug-abi", "--allow-dirty"]),
    );
    let krate = standalone_target().join("package/vif-plug-abi-0.1.0.crate");

    let dir = private_dir();
    assert!(
        !dir.path().starts_with(&root),
        "the temporary directory must be outside the workspace"
    );
    // The packaged SDK at <dir>/abi, the example at the path it has in the
    // repository, so that its `path = "../../../abi"` finds the SDK.
    run(
        "unpack the .crate",
        Command::new("tar")
            .arg("-xzf")
            .arg(&krate)
            .arg("-C")
            .arg(dir.path()),
    );
    fs::rename(
        dir.path().join("vif-plug-abi-0.1.0"),
        dir.path().join("abi"),
    )
    .expect("rename the unpacked crate");
    let example = dir.path().join("docs/examples/rust-provider");
    for file in ["Cargo.toml", "src/lib.rs"] {
        copy(
            &root.join("docs/examples/rust-provider").join(file),
            &example.join(file),
        );
    }
    // The workspace's lock file, so the versions are those already
    // downloaded; cargo drops what the example does not use.
    copy(&root.join("Cargo.lock"), &example.join("Cargo.lock"));
    run(
        "cargo build of the example outside the workspace",
        &mut cargo(&example, &["build", "--lib"]),
    );

    // The library it built is a provider the host loads.
    let so = dir.path().join("libvif_plug_example_rust.so");
    copy(
        &standalone_target().join("debug/libvif_plug_example_rust.so"),
        &so,
    );
    let mut registry = Registry::new();
    for class in load_library(&so).expect("load the example").classes {
        registry
            .register(class.expect("a usable class"), &ProviderConfig::default())
            .expect("register");
    }
    assert!(registry.get("example-rust").is_some());

    // The SDK's first example, in abi/README.md (also the `sdk` module's
    // doc), as a vendor copies it: its answers for the sample ports of
    // `vif-plug-host check` are valid.
    let readme = fs::read_to_string(root.join("abi/README.md")).unwrap();
    let code = testkit::docs::blocks(&readme, "rust").remove(0);
    let mine = dir.path().join("mine");
    fs::create_dir_all(mine.join("src")).unwrap();
    fs::write(mine.join("src/lib.rs"), code).unwrap();
    fs::write(
        mine.join("Cargo.toml"),
        "[package]\nname = \"mine\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nvif-plug-abi = { path = \"../abi\" }\n",
    )
    .unwrap();
    copy(&root.join("Cargo.lock"), &mine.join("Cargo.lock"));
    run(
        "cargo build of the README example",
        &mut cargo(&mine, &["build", "--lib"]),
    );
    let so = dir.path().join("libmine.so");
    copy(&standalone_target().join("debug/libmine.so"), &so);
    let mut registry = Registry::new();
    for class in load_library(&so).expect("load the README example").classes {
        registry
            .register(class.expect("a usable class"), &ProviderConfig::default())
            .expect("register");
    }
    let mine = registry.get("mine").expect("type mine");
    for lport in vif_plug_host::check::DEFAULT_LPORTS {
        let req = PortRequest::new(lport, "br-int").with_option("vif-plug-type", "mine");
        match mine.prepare_create(&req) {
            Ok(op) => op.finish(),
            Err(e) => panic!("the README example's answer for {lport}: {e}"),
        }
    }
}

#[test]
fn the_sdk_documentation_builds_without_warnings() {
    run(
        "cargo doc -p vif-plug-abi",
        cargo(
            &workspace_root(),
            &["doc", "-p", "vif-plug-abi", "--no-deps"],
        )
        .env("RUSTDOCFLAGS", "-D warnings -D missing_docs"),
    );
}

/// The `key = value` lines of the TOML `table` in `manifest`.
fn table_lines(manifest: &str, table: &str) -> Vec<(String, String)> {
    let header = format!("[{table}]");
    manifest
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key = value");
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_sdk_manifest_stands_alone_and_agrees_with_the_workspace() {
    let root = workspace_root();
    let abi = fs::read_to_string(root.join("abi/Cargo.toml")).unwrap();
    let workspace = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        !abi.contains(".workspace") && !abi.contains("workspace = true"),
        "abi/Cargo.toml inherits from the workspace:\n{abi}"
    );
    let shared = table_lines(&workspace, "workspace.dependencies");
    for table in ["dependencies", "dev-dependencies"] {
        let deps = table_lines(&abi, table);
        assert!(!deps.is_empty(), "no [{table}] in abi/Cargo.toml");
        for (name, spec) in deps {
            let theirs = shared
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{name} is not in [workspace.dependencies]"));
            assert_eq!(
                spec, theirs.1,
                "abi/Cargo.toml's {name} differs from [workspace.dependencies]"
            );
        }
    }

    // The MSRV the guide and the crate's README state is the manifest's.
    let package = table_lines(&abi, "package");
    let msrv = package
        .iter()
        .find(|(k, _)| k == "rust-version")
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .expect("a rust-version");
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let guide = squash(&fs::read_to_string(root.join("docs/writing-a-provider.md")).unwrap());
    let readme = squash(&fs::read_to_string(root.join("abi/README.md")).unwrap());
    assert!(
        guide.contains(&format!("minimum supported Rust version is **{msrv}**"))
            && guide.contains(&format!("Rust {msrv} or newer")),
        "docs/writing-a-provider.md does not give the MSRV {msrv}"
    );
    assert!(
        readme.contains(&format!("minimum supported Rust version is {msrv}")),
        "abi/README.md does not give the MSRV {msrv}"
    );
    let example = fs::read_to_string(root.join("docs/examples/rust-provider/Cargo.toml")).unwrap();
    assert!(
        example.contains(&format!("rust-version = \"{msrv}\"")),
        "the example's rust-version is not {msrv}"
    );
    for field in [
        "version",
        "edition",
        "license",
        "description",
        "readme",
        "documentation",
    ] {
        assert!(
            package.iter().any(|(k, _)| k == field),
            "abi/Cargo.toml has no {field}"
        );
    }
}
