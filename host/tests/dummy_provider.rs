//! The dummy provider, loaded from its cdylib, behaves exactly like the
//! reference dummy.

use testkit::{cargo_cdylib, private_dir};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{ExistingIface, PortRequest};
use vif_plug_host::{ProviderConfig, Registry};

fn request(lport: &str) -> PortRequest {
    PortRequest::new(lport, "br-int")
        .with_option("vif-plug-type", "dummy")
        .with_datapath_type("netdev")
}

#[test]
fn dummy_matches_the_reference() {
    let dir = private_dir();
    let so = cargo_cdylib("vif-plug-dummy", "vif_plug_dummy", dir.path());
    let lib = load_library(&so).unwrap();
    assert!(lib.rust_layout_checked);
    let mut registry = Registry::new();
    for class in lib.classes {
        registry
            .register(class.unwrap(), &ProviderConfig::default())
            .unwrap();
    }
    let dummy = registry.get("dummy").expect("type dummy");
    assert_eq!(dummy.maintained_options(), ["vif-plug-dummy-option"]);
    assert!(!dummy.run());

    for (lport, ifname) in [
        ("lsp1", "lsp1"),
        ("exactly15bytes!", "exactly15bytes!"),
        ("a-logical-port-name-too-long", "a-logical-port-"),
    ] {
        let op = dummy.prepare_create(&request(lport)).unwrap();
        let out = op.output();
        assert_eq!(out.name, ifname);
        assert_eq!(out.iface_type.as_deref(), Some("internal"));
        assert_eq!(
            out.options.to_vec(),
            [("vif-plug-dummy-option".to_owned(), "value".to_owned())]
        );
        op.finish();
    }

    let mut remove = request("lsp1");
    remove.iface = Some(ExistingIface {
        name: "lsp1".into(),
        iface_type: "internal".into(),
        options: vec![],
    });
    dummy
        .prepare_remove(&remove)
        .expect("REMOVE accepted")
        .finish();
}
