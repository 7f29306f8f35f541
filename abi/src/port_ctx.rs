//! What the host tells a provider about a port, and what the provider answers.
#![allow(non_camel_case_types)]

use crate::map::vif_plug_map;
use abi_stable::StableAbi;
use std::os::raw::{c_char, c_void};

/// `vif_plug_port_ctx_in.op_type`: the port is to be created, or an existing
/// port is to be updated to what the provider now says.
pub const VIF_PLUG_OP_CREATE: u32 = 1;
/// `vif_plug_port_ctx_in.op_type`: the port is to be removed from this chassis.
pub const VIF_PLUG_OP_REMOVE: u32 = 2;

/// The host's description of one port operation.
///
/// Filled and owned by the host. The same `ctx_in` is passed to
/// `port_prepare`, `port_finish` and `port_ctx_destroy` of one operation; every
/// pointer in it is valid only for the duration of each call, so a provider
/// that needs a value later copies it.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct vif_plug_port_ctx_in {
    /// `VIF_PLUG_OP_CREATE` (create or update) or `VIF_PLUG_OP_REMOVE`.
    pub op_type: u32,
    /// Name of the logical port (Southbound `Port_Binding.logical_port`).
    /// Never NULL. Useful to track per-port resources.
    pub lport_name: *const c_char,
    /// The logical port's options, verbatim from the Southbound database.
    /// By convention a provider only bases decisions on `vif-plug-*` keys.
    pub lport_options: vif_plug_map,
    /// Name of the existing Interface record for this logical port, or NULL
    /// when there is none yet (a first CREATE).
    pub iface_name: *const c_char,
    /// Type of the existing Interface record: "" for a system interface.
    /// NULL exactly when `iface_name` is NULL.
    pub iface_type: *const c_char,
    /// Options of the existing Interface record (all of them, including those
    /// other programs maintain); empty when there is no interface.
    pub iface_options: vif_plug_map,
    /// Name of the integration bridge the port goes on (e.g. "br-int").
    /// Never NULL.
    pub bridge_name: *const c_char,
    /// `Bridge.datapath_type` of that bridge: "" (the default, "system") or
    /// e.g. "netdev". Never NULL. Providers that need a userspace datapath
    /// (DPDK, vhost-user) decide from this.
    pub bridge_datapath_type: *const c_char,
    /// `Open_vSwitch.dpdk_initialized` of the local database.
    pub dpdk_initialized: bool,
    /// ABI 1.1: the logical port's MAC addresses, from the Southbound
    /// `Port_Binding.mac` column: the MAC that starts each entry, in the
    /// column's order, lowercase `xx:xx:xx:xx:xx:xx`; entries `router`,
    /// `unknown` and `dynamic` are skipped. `n_lport_macs` strings. NULL
    /// with a count of 0 when the port has none, and always for a library
    /// built for ABI 1.0, which does not know these members.
    pub lport_macs: *const *const c_char,
    /// ABI 1.1: how many strings `lport_macs` points at.
    pub n_lport_macs: usize,
}

/// The provider's answer to a CREATE.
///
/// The host hands `port_prepare` a zeroed struct; the provider fills it. All
/// memory it points to is owned by the provider, must stay valid and unchanged
/// until `port_ctx_destroy` for the same operation returns, and is released
/// there. The host only reads it, and copies what it keeps.
/// cbindgen:field-names=[name, type, iface_options, provider_data]
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct vif_plug_port_ctx_out {
    /// Name for the Port and Interface records: a valid Linux interface name
    /// (1 to 15 bytes, no '/', ':' or whitespace). Required.
    pub name: *const c_char,
    /// Interface type, e.g. "internal" or "dpdk"; NULL for a system interface.
    pub type_: *const c_char,
    /// Options to set on the Interface. Only keys the provider declares as
    /// maintained are removed again when they disappear from this map.
    pub iface_options: vif_plug_map,
    /// Free for the provider: e.g. the one allocation that holds everything
    /// above, so `port_ctx_destroy` can release it. The host never reads it.
    pub provider_data: *mut c_void,
}

impl vif_plug_port_ctx_out {
    /// The zeroed value the host passes to `port_prepare`.
    pub const ZEROED: vif_plug_port_ctx_out = vif_plug_port_ctx_out {
        name: std::ptr::null(),
        type_: std::ptr::null(),
        iface_options: vif_plug_map::EMPTY,
        provider_data: std::ptr::null_mut(),
    };
}
