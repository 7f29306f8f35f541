//! example-rust: a complete VIF plug provider in Rust, without `unsafe`.
//!
//! It plugs an interface named `<prefix><logical port>`, cut to 15 bytes,
//! where the prefix comes from the host configuration
//! (`--provider-config example-rust:prefix=er-`). The interface type comes
//! from the logical port option `vif-plug:example-rust:type` (default
//! `internal`). It sets and maintains the option `example-rust-lport`, and
//! counts the ports it has plugged.
#![forbid(unsafe_code)]

use vif_plug_abi::sdk::errno::EINVAL;
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

pub struct ExampleRust {
    prefix: String,
    plugged: usize,
}

impl Provider for ExampleRust {
    const TYPE: &'static str = "example-rust";
    const MAINTAINED_IFACE_OPTIONS: &'static [&'static str] = &["example-rust-lport"];

    fn init(host: &Host<'_>) -> Result<Self, InitError> {
        let prefix = host.config().get("prefix").unwrap_or("er-").to_owned();
        if prefix.len() > 8 {
            return Err(InitError::new(EINVAL, "prefix must be at most 8 bytes"));
        }
        log::info!("using interface prefix {prefix:?}");
        Ok(ExampleRust { prefix, plugged: 0 })
    }

    fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
        let iface_type = port
            .lport_option("vif-plug:example-rust:type")
            .unwrap_or("internal");
        if iface_type.is_empty() {
            log::warn!("{}: empty vif-plug:example-rust:type", port.lport_name());
            return None;
        }
        let mut name = format!("{}{}", self.prefix, port.lport_name());
        while name.len() > 15 {
            name.pop();
        }
        Some(
            PortOut::new(name)
                .with_type(iface_type)
                .with_option("example-rust-lport", port.lport_name()),
        )
    }

    fn finish_create(&mut self, port: &PortIn<'_>, out: &PortOut) {
        if port.iface().is_none() {
            self.plugged += 1;
        }
        log::info!(
            "{} plugged as {} ({} port(s) plugged)",
            port.lport_name(),
            out.name,
            self.plugged
        );
    }

    fn finish_remove(&mut self, port: &PortIn<'_>) {
        self.plugged = self.plugged.saturating_sub(1);
        log::info!("{} unplugged", port.lport_name());
    }
}

vif_plug_abi::export_providers!(ExampleRust);
