//! The dummy VIF plug provider, type `dummy`: the reference test provider.
//!
//! It needs no hardware. On CREATE it names the interface after the logical
//! port (cut to 15 bytes, the longest Linux interface name), makes it an
//! `internal` interface, and sets the option `vif-plug-dummy-option=value`,
//! which it declares as maintained. It agrees to every REMOVE. Its
//! inventory (`describe`, ABI 1.1) is the interfaces it has plugged, as
//! far as this instance has been told (`finish_create`/`finish_remove`).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

/// Longest Linux interface name, in bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;
/// The option this provider sets and maintains.
pub const DUMMY_OPTION: &str = "vif-plug-dummy-option";

/// The provider's state: the interface it plugged for each logical port,
/// as committed since this instance started.
#[derive(Default)]
pub struct Dummy {
    plugged: BTreeMap<String, String>,
}

impl Provider for Dummy {
    const TYPE: &'static str = "dummy";
    const MAINTAINED_IFACE_OPTIONS: &'static [&'static str] = &["vif-plug-dummy-option"];

    fn init(_host: &Host<'_>) -> Result<Self, InitError> {
        Ok(Dummy::default())
    }

    fn run(&mut self) -> bool {
        log::trace!("run");
        false
    }

    fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
        log::debug!("prepare: {}", port.lport_name());
        Some(
            PortOut::new(ifname_from(port.lport_name()))
                .with_type("internal")
                .with_option(DUMMY_OPTION, "value"),
        )
    }

    fn prepare_remove(&mut self, port: &PortIn<'_>) -> bool {
        log::debug!("prepare remove: {}", port.lport_name());
        true
    }

    fn finish_create(&mut self, port: &PortIn<'_>, out: &PortOut) {
        log::debug!("finish: {}", port.lport_name());
        self.plugged
            .insert(port.lport_name().to_owned(), out.name.clone());
    }

    fn finish_remove(&mut self, port: &PortIn<'_>) {
        log::debug!("finish remove: {}", port.lport_name());
        self.plugged.remove(port.lport_name());
    }

    fn describe(&mut self) -> Vec<String> {
        let mut lines = vec![format!(
            "{} interface(s) plugged since this provider started",
            self.plugged.len()
        )];
        lines.extend(
            self.plugged
                .iter()
                .map(|(lport, iface)| format!("{iface}: logical port {lport}")),
        );
        lines
    }
}

/// The first 15 bytes of `lport`, shortened further if byte 15 would split a
/// UTF-8 character (the reference cuts bytes; a name must stay valid UTF-8).
pub fn ifname_from(lport: &str) -> &str {
    let mut end = lport.len().min(MAX_IFNAME_LEN);
    while !lport.is_char_boundary(end) {
        end -= 1;
    }
    &lport[..end]
}

vif_plug_abi::export_providers!(Dummy);

#[cfg(test)]
mod tests {
    use super::ifname_from;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(ifname_from("lsp1"), "lsp1");
        assert_eq!(ifname_from("exactly15bytes!"), "exactly15bytes!");
    }

    #[test]
    fn long_names_are_cut_to_15_bytes() {
        assert_eq!(
            ifname_from("a-logical-port-name-too-long"),
            "a-logical-port-"
        );
    }

    #[test]
    fn cut_never_splits_a_character() {
        // 14 ASCII bytes then a 2-byte character straddling byte 15.
        assert_eq!(ifname_from("abcdefghijklmnéz"), "abcdefghijklmn");
    }
}
