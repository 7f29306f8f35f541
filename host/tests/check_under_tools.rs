//! The valgrind and AddressSanitizer recipes of docs/writing-a-provider.md,
//! run as written on a clean C provider and on one that leaks in
//! `port_prepare`: clean, both pass; leaky, both fail and their reports
//! name the leaking function, which only `--keep-loaded` makes possible.

use std::path::Path;
use testkit::docs::{blocks, run_sh, section};
use testkit::{private_dir, workspace_root};

const HEADING: &str = "## Testing your provider under valgrind and ASan";

/// Writes `yours.c`: the project's C test provider, leaking or not.
fn provider_source(dir: &Path, leaky: bool) {
    let source =
        std::fs::read_to_string(workspace_root().join("ffi-tests/c/test_provider.c")).unwrap();
    let define = if leaky {
        "#define LEAK_PER_CREATE\n"
    } else {
        ""
    };
    std::fs::write(dir.join("yours.c"), format!("{define}{source}")).unwrap();
}

/// Every file in `dir` whose name starts with `prefix`, read.
fn reports(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn the_guides_valgrind_and_asan_commands_pass_clean_code_and_name_a_leak() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/writing-a-provider.md")).unwrap();
    let recipes = blocks(section(&doc, HEADING), "sh");
    assert_eq!(
        recipes.len(),
        2,
        "a valgrind and an ASan recipe: {recipes:?}"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .parent()
        .unwrap();
    // As in the guide's walkthrough: VIF_PLUG_SRC is a checkout.
    let root = workspace_root();
    let env = [
        ("VIF_PLUG_SRC", root.to_str().unwrap()),
        ("RUST_LOG", "warn"),
    ];
    // (recipe, prefix of its report files, what a report of no error says)
    let tools = [
        (&recipes[0], "valgrind.", "ERROR SUMMARY: 0 errors"),
        (&recipes[1], "asan.", ""),
    ];
    for leaky in [false, true] {
        for (recipe, prefix, clean) in &tools {
            let dir = private_dir();
            provider_source(dir.path(), leaky);
            let out = run_sh(recipe, dir.path(), bin, &env);
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let found = reports(dir.path(), prefix);
            if leaky {
                assert_eq!(out.status.code(), Some(1), "{prefix} leaky: {said}");
                assert!(
                    said.contains("FAIL  the worker (pid ")
                        && said.contains("see their report for pid"),
                    "{prefix} leaky: {said}"
                );
                let leak = found
                    .iter()
                    .find(|r| r.contains("c_test_prepare"))
                    .unwrap_or_else(|| {
                        panic!("{prefix}: no report names c_test_prepare: {found:?}")
                    });
                assert!(
                    leak.contains("definitely lost") || leak.contains("Direct leak"),
                    "{leak}"
                );
            } else {
                assert!(out.status.success(), "{prefix} clean: {said}\n{found:?}");
                assert!(said.contains("PASS: 1 file(s), 2 class(es)"), "{said}");
                for r in &found {
                    assert!(r.contains(clean), "{prefix} clean: {r}");
                }
                if prefix.starts_with("valgrind") {
                    assert_eq!(found.len(), 2, "the check and its worker: {found:?}");
                }
            }
        }
    }
}
