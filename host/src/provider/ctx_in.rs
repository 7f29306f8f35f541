//! The host's description of a port operation, and its C form.

use std::ffi::CString;
use std::os::raw::c_char;
use vif_plug_abi::{vif_plug_kv, vif_plug_map, vif_plug_port_ctx_in};

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
}

/// A `vif_plug_port_ctx_in` and the C strings it points into. Boxed by its
/// users so the same address is passed to prepare, finish and ctx_destroy.
pub(crate) struct RawCtxIn {
    pub(crate) raw: vif_plug_port_ctx_in,
    _strings: Vec<CString>,
    _lport_pairs: Vec<vif_plug_kv>,
    _iface_pairs: Vec<vif_plug_kv>,
}

/// Why a request cannot be put in C form: C strings cannot hold NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NulInRequest(pub String);

impl std::fmt::Display for NulInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} contains a NUL byte", self.0)
    }
}

impl std::error::Error for NulInRequest {}

/// Owns the C strings a raw context points into.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn keep(&mut self, what: &str, s: &str) -> Result<*const c_char, NulInRequest> {
        let c = CString::new(s).map_err(|_| NulInRequest(format!("{what} {s:?}")))?;
        // Moving the CString into the Vec moves only its handle; the bytes
        // the pointer refers to stay put.
        let p = c.as_ptr();
        self.0.push(c);
        Ok(p)
    }

    fn pairs(&mut self, opts: &[(String, String)]) -> Result<Vec<vif_plug_kv>, NulInRequest> {
        opts.iter()
            .map(|(k, v)| {
                Ok(vif_plug_kv {
                    key: self.keep("option key", k)?,
                    value: self.keep("option value", v)?,
                })
            })
            .collect()
    }
}

impl RawCtxIn {
    pub(crate) fn new(op_type: u32, req: &PortRequest) -> Result<Box<RawCtxIn>, NulInRequest> {
        let mut s = Strings::default();
        let lport_name = s.keep("logical port name", &req.lport_name)?;
        let lport_pairs = s.pairs(&req.lport_options)?;
        let (iface_name, iface_type, iface_pairs) = match &req.iface {
            Some(i) => (
                s.keep("interface name", &i.name)?,
                s.keep("interface type", &i.iface_type)?,
                s.pairs(&i.options)?,
            ),
            None => (std::ptr::null(), std::ptr::null(), Vec::new()),
        };
        let raw = vif_plug_port_ctx_in {
            op_type,
            lport_name,
            lport_options: map_of(&lport_pairs),
            iface_name,
            iface_type,
            iface_options: map_of(&iface_pairs),
            bridge_name: s.keep("bridge name", &req.bridge.name)?,
            bridge_datapath_type: s.keep("datapath type", &req.bridge.datapath_type)?,
            dpdk_initialized: req.bridge.dpdk_initialized,
        };
        Ok(Box::new(RawCtxIn {
            raw,
            _strings: s.0,
            _lport_pairs: lport_pairs,
            _iface_pairs: iface_pairs,
        }))
    }
}

/// The C view of a list of pairs; the Vec's buffer does not move with it.
pub(crate) fn map_of(pairs: &[vif_plug_kv]) -> vif_plug_map {
    if pairs.is_empty() {
        vif_plug_map::EMPTY
    } else {
        vif_plug_map {
            entries: pairs.as_ptr(),
            n_entries: pairs.len(),
        }
    }
}
