//! A safe view of the host context given to `init`.

use super::port::{required_str, MapView};
use crate::host::vif_plug_host;

/// What the host offers a provider at [`Provider::init`](super::Provider::init).
/// Logging goes through the `log` crate; the SDK forwards it to the host.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    abi_version: (u32, u32),
    provider_type: &'a str,
    config: MapView<'a>,
}

impl<'a> Host<'a> {
    /// # Safety
    /// `raw` must be a host context as the ABI describes it, valid for `'a`.
    pub(crate) unsafe fn new(raw: &'a vif_plug_host) -> Result<Self, String> {
        Ok(Host {
            abi_version: (raw.abi_major, raw.abi_minor),
            // SAFETY: the host context's strings and maps are valid for 'a.
            provider_type: unsafe { required_str("host provider_type", raw.provider_type) }?,
            config: unsafe { MapView::new("host config", &raw.config) }?,
        })
    }

    /// The (major, minor) ABI version the host implements.
    pub fn abi_version(&self) -> (u32, u32) {
        self.abi_version
    }

    /// The provider type this context belongs to.
    pub fn provider_type(&self) -> &'a str {
        self.provider_type
    }

    /// The configuration given for this provider
    /// (`--provider-config TYPE:KEY=VALUE`).
    pub fn config(&self) -> MapView<'a> {
        self.config
    }
}
