//! The host's description of a port operation, and its C form.

use std::ffi::CString;
use std::os::raw::c_char;
use vif_plug_abi::{c_string, vif_plug_port_ctx_in, OwnedMap};

/// The integration bridge facts a provider may base decisions on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeInfo {
    /// Bridge name, e.g. "br-int".
    pub name: String,
    /// `Bridge.datapath_type`: "" (system) or e.g. "netdev".
    pub datapath_type: String,
    /// `Open_vSwitch.dpdk_initialized`.
    pub dpdk_initialized: bool,
}

/// The Interface record that exists for a logical port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingIface {
    /// Interface name.
    pub name: String,
    /// Interface type, "" for system.
    pub iface_type: String,
    /// All its options.
    pub options: Vec<(String, String)>,
}

/// Everything the host tells a provider about one port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRequest {
    /// Logical port name.
    pub lport_name: String,
    /// Logical port options from the Southbound database.
    pub lport_options: Vec<(String, String)>,
    /// The existing Interface, if any.
    pub iface: Option<ExistingIface>,
    /// The integration bridge.
    pub bridge: BridgeInfo,
    /// The logical port's MAC addresses (ABI 1.1; `Port_Binding.mac`, the
    /// MAC of each entry, in order). Not passed to a library built for
    /// ABI 1.0.
    pub lport_macs: Vec<String>,
}

impl PortRequest {
    /// A request for logical port `lport_name` on bridge `bridge` (system
    /// datapath, no DPDK), without options or an existing interface.
    pub fn new(lport_name: impl Into<String>, bridge: impl Into<String>) -> Self {
        PortRequest {
            lport_name: lport_name.into(),
            bridge: BridgeInfo {
                name: bridge.into(),
                ..BridgeInfo::default()
            },
            ..PortRequest::default()
        }
    }

    /// Adds a logical port option.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.lport_options.push((key.into(), value.into()));
        self
    }

    /// Sets the bridge's datapath type.
    pub fn with_datapath_type(mut self, datapath_type: impl Into<String>) -> Self {
        self.bridge.datapath_type = datapath_type.into();
        self
    }

    /// Sets the existing interface.
    pub fn with_iface(mut self, iface: ExistingIface) -> Self {
        self.iface = Some(iface);
        self
    }
}

/// A `vif_plug_port_ctx_in` and the C strings and maps it points into.
/// Boxed by its users so the same address is passed to prepare, finish and
/// ctx_destroy.
pub(crate) struct RawCtxIn {
    pub(crate) raw: vif_plug_port_ctx_in,
    _strings: Vec<CString>,
    _macs: Vec<*const c_char>,
    _lport_options: OwnedMap,
    _iface_options: OwnedMap,
}

/// Why a request cannot be put in C form: C strings cannot hold NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NulInRequest(pub String);

impl std::fmt::Display for NulInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NulInRequest {}

impl RawCtxIn {
    /// The C form of `req` for a library built for ABI `1.abi_minor`: the
    /// members a library's minor version lacks are left NULL.
    pub(crate) fn new(
        op_type: u32,
        req: &PortRequest,
        abi_minor: u32,
    ) -> Result<Box<RawCtxIn>, NulInRequest> {
        let mut strings = Vec::new();
        // Moving a CString into the Vec moves only its handle; the bytes the
        // returned pointer refers to stay put.
        let mut keep = |what: &str, s: &str| -> Result<*const c_char, NulInRequest> {
            let c = c_string(what, s).map_err(NulInRequest)?;
            let p = c.as_ptr();
            strings.push(c);
            Ok(p)
        };
        let options = |what: &str, pairs: &[(String, String)]| {
            OwnedMap::new(pairs.iter().map(|(k, v)| (k, v)))
                .map_err(|e| NulInRequest(format!("{what} {e}")))
        };
        let lport_options = options("logical port option", &req.lport_options)?;
        let iface_options = match &req.iface {
            Some(i) => options("interface option", &i.options)?,
            None => OwnedMap::default(),
        };
        let (iface_name, iface_type) = match &req.iface {
            Some(i) => (
                keep("interface name", &i.name)?,
                keep("interface type", &i.iface_type)?,
            ),
            None => (std::ptr::null(), std::ptr::null()),
        };
        let macs: Vec<*const c_char> = if abi_minor >= 1 {
            req.lport_macs
                .iter()
                .map(|m| keep("logical port MAC", m))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let raw = vif_plug_port_ctx_in {
            op_type,
            lport_name: keep("logical port name", &req.lport_name)?,
            lport_options: lport_options.as_map(),
            iface_name,
            iface_type,
            iface_options: iface_options.as_map(),
            bridge_name: keep("bridge name", &req.bridge.name)?,
            bridge_datapath_type: keep("datapath type", &req.bridge.datapath_type)?,
            dpdk_initialized: req.bridge.dpdk_initialized,
            // The Vec's buffer does not move when the Vec is moved below.
            lport_macs: if macs.is_empty() {
                std::ptr::null()
            } else {
                macs.as_ptr()
            },
            n_lport_macs: macs.len(),
        };
        Ok(Box::new(RawCtxIn {
            raw,
            _strings: strings,
            _macs: macs,
            _lport_options: lport_options,
            _iface_options: iface_options,
        }))
    }
}
