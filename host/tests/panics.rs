//! A Rust provider that panics is contained at the boundary: the panic is
//! logged through the host and becomes a failure, and the host carries on.

use testkit::{capture_logs, cargo_cdylib, logs_matching, private_dir};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{PortRequest, PrepareError};
use vif_plug_host::{ProviderConfig, Registry};

fn request(lport: &str) -> PortRequest {
    PortRequest::new(lport, "br-int")
}

#[test]
fn panics_become_failures_and_are_logged() {
    capture_logs();
    let dir = private_dir();
    let so = cargo_cdylib(
        "vif-plug-fixture-panicky",
        "vif_plug_fixture_panicky",
        dir.path(),
    );
    let mut registry = Registry::new();
    let mut init_errors = Vec::new();
    for class in load_library(&so).unwrap().classes {
        if let Err(e) = registry.register(class.unwrap(), &ProviderConfig::default()) {
            init_errors.push((e.errno(), e.to_string()));
        }
    }
    // init panicked: an error code, not a crash, and no registration.
    assert_eq!(init_errors.len(), 1);
    assert_eq!(init_errors[0].0, 131, "ENOTRECOVERABLE");
    assert!(registry.get("panicky-init").is_none());
    let logged = logs_matching("init panicked at");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].target, "provider::panicky-init");
    assert!(logged[0].message.contains("init panics"));

    let p = registry.get("panicky").expect("registered");
    // run panics: reported as "no change".
    assert!(!p.run());
    assert!(!logs_matching("run panicked at").is_empty());

    // prepare panics: declined, and nothing to destroy.
    // The SDK's panic line is what the provider said during the call.
    let e = p.prepare_create(&request("panic-port")).err();
    assert!(
        matches!(&e, Some(PrepareError::Declined(Some(said))) if said.contains("panicked")),
        "{e:?}"
    );
    assert_eq!(p.operations_in_flight(), 0);
    assert!(logs_matching("prepare_create panics for panic-port").len() == 1);

    // The provider keeps working after panics.
    let op = p.prepare_create(&request("lsp1")).expect("works again");
    assert_eq!(op.output().name, "lsp1");
    op.finish();

    // A panic in finish is contained too.
    p.prepare_remove(&request("lsp1")).unwrap().finish();
    assert!(!logs_matching("port_finish panicked at").is_empty());

    registry.destroy_all();
}
