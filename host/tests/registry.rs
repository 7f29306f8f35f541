//! Registry semantics, as the reference defines them, on real libraries.

use std::path::Path;
use testkit::{c_test_provider, cargo_cdylib, private_dir};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{PortRequest, ProviderClass};
use vif_plug_host::registry::{RegisterError, UnregisterError};
use vif_plug_host::{ProviderConfig, Registry};

fn classes(path: &Path) -> Vec<ProviderClass> {
    load_library(path)
        .unwrap()
        .classes
        .into_iter()
        .map(|c| c.unwrap())
        .collect()
}

#[test]
fn register_get_duplicate_unregister() {
    let dir = private_dir();
    let dummy = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let config = ProviderConfig::default();
    let mut registry = Registry::new();
    assert!(!registry.has_providers());

    // Unregistering what is not registered: EINVAL.
    let e = registry.unregister("dummy").unwrap_err();
    assert_eq!(e, UnregisterError::Unknown("dummy".into()));
    assert_eq!(e.errno(), 22);

    for class in classes(&dummy) {
        registry.register(class, &config).unwrap();
    }
    assert!(registry.has_providers());
    assert_eq!(registry.get("dummy").unwrap().type_name(), "dummy");
    assert!(registry.get("nope").is_none());

    // The same type again (the same file loaded twice): EEXIST, first kept.
    let again = classes(&dummy).pop().unwrap();
    let e = registry.register(again, &config).unwrap_err();
    assert!(matches!(e, RegisterError::Duplicate { .. }));
    assert_eq!(e.errno(), 17);
    assert!(e.to_string().contains("already registered"), "{e}");

    assert!(!registry.run_all());
    registry.unregister("dummy").unwrap();
    assert!(!registry.has_providers());
    assert!(registry.get("dummy").is_none());
}

#[test]
fn unregister_waits_for_operations_in_flight() {
    let dir = private_dir();
    let dummy = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let mut registry = Registry::new();
    for class in classes(&dummy) {
        registry
            .register(class, &ProviderConfig::default())
            .unwrap();
    }
    let req = PortRequest::new("lsp1", "br-int");
    let op = registry.get("dummy").unwrap().prepare_create(&req).unwrap();
    let e = registry.unregister("dummy").unwrap_err();
    assert_eq!(e, UnregisterError::Busy("dummy".into(), 1));
    assert_eq!(e.errno(), 16);
    drop(op);
    registry.unregister("dummy").unwrap();
}

#[test]
fn destroy_all_empties_the_registry_and_classes_from_several_files_coexist() {
    let dir = private_dir();
    let dummy = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let c = c_test_provider(dir.path(), &[], "libc_test.so");
    let mut registry = Registry::new();
    for class in classes(&dummy).into_iter().chain(classes(&c)) {
        registry
            .register(class, &ProviderConfig::default())
            .unwrap();
    }
    let types: Vec<_> = registry.iter().map(|p| p.type_name().to_owned()).collect();
    assert_eq!(types, ["c-test", "c-test-alt", "dummy"]);
    registry.destroy_all();
    assert!(!registry.has_providers());
}

#[test]
fn run_all_reports_a_change_if_any_provider_does() {
    let dir = private_dir();
    let dummy = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let c = c_test_provider(dir.path(), &[], "libc_test.so");
    let mut quiet = Registry::new();
    for class in classes(&dummy).into_iter().chain(classes(&c)) {
        quiet.register(class, &ProviderConfig::default()).unwrap();
    }
    assert!(!quiet.run_all(), "no provider reports a change");
    drop(quiet);

    let mut config = ProviderConfig::default();
    config.add("c-test:run-reports-change=true").unwrap();
    let mut changing = Registry::new();
    for class in classes(&dummy).into_iter().chain(classes(&c)) {
        changing.register(class, &config).unwrap();
    }
    assert!(changing.get("c-test").unwrap().run());
    assert!(!changing.get("dummy").unwrap().run());
    assert!(changing.run_all(), "one provider reported a change");
}

#[test]
fn a_failing_destroy_is_called_once_and_the_class_still_unregistered() {
    use std::ffi::CStr;
    use std::os::raw::c_char;
    let dir = private_dir();
    let c = c_test_provider(dir.path(), &["BAD_DESTROY_FAIL"], "libdestroy_fails.so");
    // SAFETY: the test provider has no initialisers; this handle keeps the
    // library mapped so its journal can be read after the host is done.
    let own = unsafe { libloading::Library::new(&c) }.unwrap();
    let mut registry = Registry::new();
    for class in classes(&c) {
        registry
            .register(class, &ProviderConfig::default())
            .unwrap();
    }
    let e = registry.unregister("c-test").unwrap_err();
    assert_eq!(e, UnregisterError::DestroyFailed("c-test".into(), 5));
    assert!(
        e.to_string()
            .contains("destroy returned 5 (Input/output error)"),
        "{e}"
    );
    assert!(registry.get("c-test").is_none(), "unregistered regardless");
    assert_eq!(
        registry.unregister("c-test").unwrap_err(),
        UnregisterError::Unknown("c-test".into())
    );
    drop(registry);
    // SAFETY: the test provider exports `const char *c_test_journal(void)`.
    let journal = unsafe {
        let f = own
            .get::<unsafe extern "C" fn() -> *const c_char>(b"c_test_journal\0")
            .unwrap();
        CStr::from_ptr(f()).to_string_lossy().into_owned()
    };
    assert_eq!(journal.matches("destroy:").count(), 1, "{journal}");
}
