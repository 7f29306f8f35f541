//! A provider written in C (ffi-tests/c/test_provider.c), compiled to a
//! shared object here, loaded by our host and driven through its whole life
//! cycle.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use testkit::{capture_logs, compile_c_shared, logs_matching, private_dir, workspace_root};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{ExistingIface, PortRequest, PrepareError};
use vif_plug_host::{ProviderConfig, Registry};

fn build(dir: &Path) -> PathBuf {
    let so = dir.join("libc_test_provider.so");
    compile_c_shared(
        &workspace_root().join("ffi-tests/c/test_provider.c"),
        &[],
        &so,
    );
    so
}

/// The same provider built from the committed ABI 1.0 header
/// (`ffi-tests/c/abi-1.0`): what a vendor shipped before 1.1.
fn build_1_0(dir: &Path) -> PathBuf {
    testkit::c_test_provider_1_0(dir, "libc_test_provider_1_0.so")
}

/// The provider's own record of the calls it received. `lib` is the test's
/// own handle on the library, opened before the host's so it stays mapped.
fn journal(lib: &libloading::Library) -> String {
    // SAFETY: the test provider exports `const char *c_test_journal(void)`.
    unsafe {
        let f = lib
            .get::<unsafe extern "C" fn() -> *const c_char>(b"c_test_journal\0")
            .unwrap();
        CStr::from_ptr(f()).to_string_lossy().into_owned()
    }
}

fn request(lport: &str, extra: &[(&str, &str)]) -> PortRequest {
    extra.iter().fold(
        PortRequest::new(lport, "br-int")
            .with_option("vif-plug-type", "c-test")
            .with_datapath_type("netdev"),
        |req, (k, v)| req.with_option(*k, *v),
    )
}

#[test]
fn c_provider_goes_through_the_whole_life_cycle() {
    life_cycle(build, 1, "mac:0a:00:00:00:00:01 ", "p-");
}

/// A library built for ABI 1.0, in this 1.1 host: its shorter vtable is
/// read up to its own size, it is given no 1.1 member (no MACs reach it),
/// and the life cycle is the same.
#[test]
fn a_provider_built_from_the_1_0_header_goes_through_the_same_life_cycle() {
    life_cycle(build_1_0, 0, "", "q-");
}

/// `prefix` differs per test: the captured logs are shared by the tests
/// running at once.
fn life_cycle(build: fn(&Path) -> PathBuf, minor: u32, mac_note: &str, prefix: &str) {
    capture_logs();
    let dir = private_dir();
    let so = build(dir.path());
    // SAFETY: the test provider has no initialisers.
    let own_handle = unsafe { libloading::Library::new(&so) }.unwrap();

    let lib = load_library(&so).expect("the C provider loads");
    assert!(
        !lib.rust_layout_checked,
        "a C provider exports no Rust layout"
    );
    assert_eq!((lib.abi.major, lib.abi.minor), (1, minor));
    let mut config = ProviderConfig::default();
    config.add(&format!("c-test:prefix={prefix}")).unwrap();
    let mut registry = Registry::new();
    let mut types = Vec::new();
    for class in lib.classes {
        let class = class.expect("both classes are valid");
        types.push(
            registry
                .register(class, &config)
                .unwrap()
                .type_name()
                .to_owned(),
        );
    }
    assert_eq!(types, ["c-test", "c-test-alt"]);
    assert!(registry.has_providers());
    assert!(!registry.run_all(), "neither class reports changes");

    // init got its configuration and logged through the host's logger.
    let init_logs = logs_matching(&format!("c-test initialised with prefix \"{prefix}\""));
    assert_eq!(init_logs.len(), 1, "{init_logs:?}");
    assert_eq!(init_logs[0].target, "provider::c-test");
    assert_eq!(init_logs[0].level, log::Level::Info);

    let p = registry.get("c-test").unwrap();
    assert_eq!(p.maintained_options(), ["c-test-lport", "c-test-datapath"]);

    // CREATE: prepare, then finish (committed), then ctx_destroy; the
    // port's MACs go to a 1.1 library only.
    let mut first = request("lsp1", &[]);
    first.lport_macs = vec!["0a:00:00:00:00:01".into(), "0a:00:00:00:00:02".into()];
    let op = p.prepare_create(&first).expect("prepared");
    let out = op.output().clone();
    assert_eq!(out.name, format!("{prefix}lsp1"));
    assert_eq!(out.iface_type, None, "a system interface");
    assert_eq!(
        out.options.to_vec(),
        [
            ("c-test-lport".to_owned(), "lsp1".to_owned()),
            ("c-test-datapath".to_owned(), "netdev".to_owned())
        ]
    );
    assert_eq!(p.operations_in_flight(), 1);
    op.finish();
    assert_eq!(p.operations_in_flight(), 0);

    // CREATE whose transaction did not commit: no finish, still ctx_destroy.
    let mut update = request("lsp1", &[]);
    update.iface = Some(ExistingIface {
        name: format!("{prefix}lsp1"),
        iface_type: String::new(),
        options: vec![("foreign".into(), "x".into())],
    });
    drop(p.prepare_create(&update).expect("prepared"));

    // Declined: nothing else is called.
    assert!(matches!(
        p.prepare_create(&request("lsp2", &[("vif-plug:c-test:ready", "false")]))
            .err(),
        Some(PrepareError::Declined(_))
    ));

    // REMOVE: prepare with NULL ctx_out, then finish; never ctx_destroy.
    p.prepare_remove(&update).expect("remove accepted").finish();

    registry.destroy_all();
    assert!(!registry.has_providers());
    assert_eq!(
        journal(&own_handle),
        format!(
            "init:c-test \
             prepare:lsp1 {mac_note}finish:lsp1 ctx-destroy:lsp1 \
             prepare:lsp1 ctx-destroy:lsp1 \
             prepare:lsp2 \
             prepare-remove:lsp1 finish-remove:lsp1 \
             destroy:c-test "
        )
    );
}

#[test]
fn init_failure_is_reported_and_the_class_not_registered() {
    let dir = private_dir();
    let so = dir.path().join("libc_init_fails.so");
    compile_c_shared(
        &workspace_root().join("ffi-tests/c/test_provider.c"),
        &["BAD_INIT_FAIL"],
        &so,
    );
    let mut registry = Registry::new();
    let mut errors = Vec::new();
    for class in load_library(&so).unwrap().classes {
        if let Err(e) = registry.register(class.unwrap(), &ProviderConfig::default()) {
            errors.push((e.errno(), e.to_string()));
        }
    }
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, 19, "ENODEV from init");
    assert!(
        errors[0]
            .1
            .contains("\"c-test\" failed to initialise: init returned 19 (No such device)"),
        "{}",
        errors[0].1
    );
    assert!(registry.get("c-test").is_none());
    assert!(
        registry.get("c-test-alt").is_some(),
        "the other class still loads"
    );
}
