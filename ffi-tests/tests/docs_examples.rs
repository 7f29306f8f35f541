//! The C and Rust providers in docs/writing-a-provider.md are the files in
//! docs/examples, verbatim; both compile, load and work as the guide says.

use std::path::Path;
use testkit::{cargo_cdylib, compile_c_shared, private_dir, workspace_root};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{PortRequest, PrepareError};
use vif_plug_host::{ProviderConfig, Registry};

/// The body of the first fenced block of `lang` that follows `after`.
fn block(doc: &str, after: &str, lang: &str) -> String {
    let start = doc
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} in the guide"));
    let fence = format!("```{lang}\n");
    let body_start = start + doc[start..].find(&fence).expect("a code block") + fence.len();
    let body_len = doc[body_start..].find("```\n").expect("closing fence");
    doc[body_start..body_start + body_len].to_owned()
}

fn guide() -> String {
    std::fs::read_to_string(workspace_root().join("docs/writing-a-provider.md")).unwrap()
}

fn file(rel: &str) -> String {
    std::fs::read_to_string(workspace_root().join(rel)).unwrap()
}

#[test]
fn the_guide_shows_the_example_files_verbatim() {
    let doc = guide();
    assert!(
        block(&doc, "## A provider in C", "c") == file("docs/examples/provider.c"),
        "docs/writing-a-provider.md's C block differs from docs/examples/provider.c"
    );
    assert!(
        block(&doc, "## A provider in Rust", "rust")
            == file("docs/examples/rust-provider/src/lib.rs"),
        "docs/writing-a-provider.md's Rust block differs from docs/examples/rust-provider/src/lib.rs"
    );
    assert!(
        block(&doc, "## A provider in Rust", "toml")
            == file("docs/examples/rust-provider/Cargo.toml"),
        "docs/writing-a-provider.md's manifest differs from docs/examples/rust-provider/Cargo.toml"
    );
}

fn request(lport: &str, options: &[(&str, &str)]) -> PortRequest {
    options
        .iter()
        .fold(PortRequest::new(lport, "br-int"), |req, (k, v)| {
            req.with_option(*k, *v)
        })
}

fn registry_with(so: &Path, config: &ProviderConfig) -> Registry {
    let mut registry = Registry::new();
    for class in load_library(so).unwrap().classes {
        registry.register(class.unwrap(), config).unwrap();
    }
    registry
}

#[test]
fn the_c_example_builds_loads_and_plugs() {
    let dir = private_dir();
    let so = dir.path().join("libexample_c.so");
    compile_c_shared(&workspace_root().join("docs/examples/provider.c"), &[], &so);
    let registry = registry_with(&so, &ProviderConfig::default());
    let p = registry.get("example-c").expect("type example-c");
    assert_eq!(p.maintained_options(), ["example-c-managed"]);

    let op = p
        .prepare_create(&request("lsp1", &[("vif-plug:example-c:ifname", "eth7")]))
        .unwrap();
    assert_eq!(op.output().name, "eth7");
    assert_eq!(op.output().iface_type, None);
    assert_eq!(
        op.output().options.to_vec(),
        [("example-c-managed".to_owned(), "true".to_owned())]
    );
    op.finish();

    assert!(
        matches!(
            p.prepare_create(&request("lsp2", &[])).err(),
            Some(PrepareError::Declined(_))
        ),
        "no ifname option: declined"
    );
    p.prepare_remove(&request("lsp1", &[])).unwrap().finish();
}

#[test]
fn the_rust_example_builds_loads_and_plugs() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-example-rust", "vif_plug_example_rust", dir.path());
    let mut config = ProviderConfig::default();
    config.add("example-rust:prefix=x-").unwrap();
    let registry = registry_with(&so, &config);
    let p = registry.get("example-rust").expect("type example-rust");
    assert_eq!(p.maintained_options(), ["example-rust-lport"]);

    let op = p
        .prepare_create(&request(
            "a-long-logical-port",
            &[("vif-plug:example-rust:type", "dpdk")],
        ))
        .unwrap();
    assert_eq!(op.output().name, "x-a-long-logica");
    assert_eq!(op.output().iface_type.as_deref(), Some("dpdk"));
    assert_eq!(
        op.output().options.to_vec(),
        [(
            "example-rust-lport".to_owned(),
            "a-long-logical-port".to_owned()
        )]
    );
    op.finish();
    // One instance per class and process: release it before initialising
    // the class again (a second init while registered is refused, EBUSY).
    drop(registry);

    let mut bad = ProviderConfig::default();
    bad.add("example-rust:prefix=much-too-long-").unwrap();
    let mut r = Registry::new();
    let class = load_library(&so).unwrap().classes.pop().unwrap().unwrap();
    testkit::capture_logs();
    let e = r.register(class, &bad).unwrap_err();
    assert_eq!(e.errno(), 22, "{e}");
    // The SDK logs the InitError's message once, at error level, under the
    // provider's target; the host's own error names only the errno.
    let logged = testkit::logs_matching("prefix must be at most 8 bytes");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].level, log::Level::Error);
    assert_eq!(logged[0].target, "provider::example-rust");
    assert!(!e.to_string().contains("prefix must be"), "{e}");
}
