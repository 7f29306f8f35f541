//! The committed header is what cbindgen generates from abi/, and compiles
//! cleanly as strict C99, C11 and C++ with the flags vendor builds use
//! (`-fvisibility=hidden -Wredundant-decls -Werror`); the library built so
//! still exports what the host looks up, and the host loads it.

use std::path::Path;
use std::process::Command;
use testkit::{include_dir, private_dir, workspace_root, C_FLAGS};

#[test]
fn committed_header_is_fresh() {
    let root = workspace_root();
    let config = cbindgen::Config::from_file(root.join("abi/cbindgen.toml")).expect("read config");
    let dir = private_dir();
    let generated = dir.path().join("vif-plug-provider.h");
    cbindgen::Builder::new()
        .with_crate(root.join("abi"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(&generated);
    let committed = std::fs::read_to_string(include_dir().join("vif-plug-provider.h")).unwrap();
    let fresh = std::fs::read_to_string(&generated).unwrap();
    assert!(
        committed == fresh,
        "include/vif-plug-provider.h is stale; regenerate it with\n  \
         cbindgen --config abi/cbindgen.toml --output include/vif-plug-provider.h abi"
    );
}

/// A translation unit that uses every part of the header a provider uses.
const USES_HEADER: &str = r#"
#include "vif-plug-provider.h"
#include <string.h>

static bool prepare(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    if (in->op_type == VIF_PLUG_OP_REMOVE) {
        return true;
    }
    out->name = in->lport_name;
    out->type = NULL;
    return strlen(in->lport_name) <= 15;
}

static void finish(const struct vif_plug_port_ctx_in *in, struct vif_plug_port_ctx_out *out)
{
    (void) in;
    (void) out;
}

static const struct vif_plug_class cls = {
    "header-test", NULL, NULL, NULL, NULL, prepare, finish, finish, NULL,
};

VIF_PLUG_DEFINE_ABI_INFO;
const struct vif_plug_class *vif_plug_provider_classes[] = { &cls, NULL };
"#;

/// Builds `src` into a shared object beside it with a vendor's strict
/// flags, every symbol hidden unless marked otherwise, then loads it with
/// the host's loader: the header's two exports must be visible.
fn compile(compiler: &str, std_flags: &[&str], src: &Path) {
    compile_to(compiler, std_flags, src, &src.with_extension("so"));
}

/// As [`compile`], into `so`.
fn compile_to(compiler: &str, std_flags: &[&str], src: &Path, so: &Path) {
    let out = Command::new(compiler)
        .args(std_flags)
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-Wredundant-decls",
            "-fvisibility=hidden",
            "-fPIC",
            "-shared",
            "-I",
        ])
        .arg(include_dir())
        .arg("-o")
        .arg(so)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("running {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {std_flags:?} rejects the header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(so, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let loaded = vif_plug_host::loader::load_library(so);
    assert!(
        loaded.is_ok(),
        "{compiler} {std_flags:?} -fvisibility=hidden: {}",
        loaded.err().map(|e| e.to_string()).unwrap_or_default()
    );
}

#[test]
fn header_compiles_as_strict_c99() {
    let dir = private_dir();
    let src = dir.path().join("uses_header.c");
    std::fs::write(&src, USES_HEADER).unwrap();
    compile("cc", &C_FLAGS[..1], &src);
}

#[test]
fn header_compiles_as_c11() {
    let dir = private_dir();
    let src = dir.path().join("uses_header.c");
    std::fs::write(&src, USES_HEADER).unwrap();
    compile("cc", &["-std=c11"], &src);
}

#[test]
fn header_compiles_as_cpp() {
    let dir = private_dir();
    for std in ["-std=c++11", "-std=c++17"] {
        let src = dir.path().join("uses_header.cpp");
        std::fs::write(&src, USES_HEADER).unwrap();
        compile("c++", &[std], &src);
    }
}

/// The C test provider, a whole provider rather than a sample of the
/// header, builds with the same flags as C99, C11 and C++17 and loads.
#[test]
fn the_c_test_provider_builds_with_vendor_flags() {
    let dir = private_dir();
    let src = workspace_root().join("ffi-tests/c/test_provider.c");
    for (i, (compiler, flags)) in [
        ("cc", &["-std=c99"][..]),
        ("cc", &["-std=c11"]),
        ("c++", &["-x", "c++", "-std=c++17"]),
    ]
    .into_iter()
    .enumerate()
    {
        compile_to(
            compiler,
            flags,
            &src,
            &dir.path().join(format!("libc_test_{i}.so")),
        );
    }
}

/// A library built with `-fvisibility=hidden` against a header whose
/// declarations carry no visibility (the ABI 1.0 header) defines the
/// symbols but does not export them: the loader says so, and why, instead
/// of telling the vendor to define what is defined.
#[test]
fn a_symbol_defined_but_hidden_is_named_as_such() {
    let dir = private_dir();
    let src = dir.path().join("hidden.c");
    std::fs::write(
        &src,
        "#include \"vif-plug-provider.h\"\n\
         VIF_PLUG_DEFINE_ABI_INFO;\n\
         const struct vif_plug_class *vif_plug_provider_classes[] = { NULL };\n",
    )
    .unwrap();
    let so = dir.path().join("libhidden.so");
    let out = Command::new("cc")
        .args(["-std=c99", "-fvisibility=hidden", "-fPIC", "-shared", "-I"])
        .arg(workspace_root().join("ffi-tests/c/abi-1.0"))
        .arg("-o")
        .arg(&so)
        .arg(&src)
        .output()
        .unwrap();
    succeeded(&out);
    let e = refusal(&so);
    assert!(
        e.contains(
            "vif_plug_provider_abi is defined but not exported (built with -fvisibility=hidden?"
        ),
        "{e}"
    );
    // Stripped of its full symbol table, nothing more can be said.
    let stripped = dir.path().join("libstripped.so");
    let out = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&so)
        .output()
        .unwrap();
    succeeded(&out);
    let e = refusal(&stripped);
    assert!(
        e.contains("it does not export vif_plug_provider_abi"),
        "{e}"
    );
}

fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why the host's loader refuses the library `so` (made 0644 first, as the
/// loader's ownership checks want).
fn refusal(so: &Path) -> String {
    std::fs::set_permissions(so, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    vif_plug_host::loader::load_library(so)
        .err()
        .expect("refused")
        .to_string()
}
