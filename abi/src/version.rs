//! ABI versioning: what a library exports so the host can tell whether it can
//! load it, and the names of the symbols it looks for.
#![allow(non_camel_case_types)]

use crate::class::vif_plug_class;
use crate::host::vif_plug_host;
use crate::map::vif_plug_kv;
use crate::port_ctx::{vif_plug_port_ctx_in, vif_plug_port_ctx_out};
use abi_stable::StableAbi;

/// Major version of this ABI. Changes only with incompatible changes; the host
/// refuses a library built for another major version.
pub const VIF_PLUG_ABI_MAJOR: u32 = 1;
/// Minor version of this ABI. Grows when members are appended to the end of a
/// struct or constants are added; existing members never move or change.
pub const VIF_PLUG_ABI_MINOR: u32 = 1;

/// What a provider library exports as `vif_plug_provider_abi`: the version it
/// was built for and the sizes its compiler gave the shared structs, which the
/// host compares with its own to catch a mismatched header or compiler
/// settings. C code fills it with `VIF_PLUG_ABI_INFO_INIT`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct vif_plug_abi_info {
    /// `VIF_PLUG_ABI_MAJOR` of the header the library was built with.
    pub major: u32,
    /// `VIF_PLUG_ABI_MINOR` of the header the library was built with.
    pub minor: u32,
    /// `sizeof(struct vif_plug_class)`.
    pub class_size: u32,
    /// `sizeof(struct vif_plug_port_ctx_in)`.
    pub port_ctx_in_size: u32,
    /// `sizeof(struct vif_plug_port_ctx_out)`.
    pub port_ctx_out_size: u32,
    /// `sizeof(struct vif_plug_host)`.
    pub host_size: u32,
    /// `sizeof(struct vif_plug_kv)`.
    pub kv_size: u32,
}

/// The version and sizes of this build of the ABI.
pub const VIF_PLUG_ABI_INFO: vif_plug_abi_info = vif_plug_abi_info {
    major: VIF_PLUG_ABI_MAJOR,
    minor: VIF_PLUG_ABI_MINOR,
    class_size: std::mem::size_of::<vif_plug_class>() as u32,
    port_ctx_in_size: std::mem::size_of::<vif_plug_port_ctx_in>() as u32,
    port_ctx_out_size: std::mem::size_of::<vif_plug_port_ctx_out>() as u32,
    host_size: std::mem::size_of::<vif_plug_host>() as u32,
    kv_size: std::mem::size_of::<vif_plug_kv>() as u32,
};

/// The struct sizes of ABI 1.0 on this target: a 1.0 library's structs
/// end where 1.1 appended members (`vif_plug_class.describe`,
/// `vif_plug_port_ctx_in.lport_macs`), and the host reads or passes no more
/// of them than that.
pub const VIF_PLUG_ABI_1_0_INFO: vif_plug_abi_info = vif_plug_abi_info {
    major: 1,
    minor: 0,
    class_size: std::mem::offset_of!(vif_plug_class, describe) as u32,
    port_ctx_in_size: std::mem::offset_of!(vif_plug_port_ctx_in, lport_macs) as u32,
    port_ctx_out_size: std::mem::size_of::<vif_plug_port_ctx_out>() as u32,
    host_size: std::mem::size_of::<vif_plug_host>() as u32,
    kv_size: std::mem::size_of::<vif_plug_kv>() as u32,
};

/// The struct sizes a library built for ABI `1.minor` has (`None` for a
/// minor this host does not know).
pub const fn abi_info_for_minor(minor: u32) -> Option<vif_plug_abi_info> {
    match minor {
        0 => Some(VIF_PLUG_ABI_1_0_INFO),
        1 => Some(VIF_PLUG_ABI_INFO),
        _ => None,
    }
}

/// Symbol of the NULL-terminated `const struct vif_plug_class *[]`.
pub const VIF_PLUG_CLASSES_SYMBOL: &str = "vif_plug_provider_classes";
/// Symbol of the `const struct vif_plug_abi_info`.
pub const VIF_PLUG_ABI_SYMBOL: &str = "vif_plug_provider_abi";
/// Symbol of the `abi_stable` layout a Rust-built provider also exports
/// (`&'static TypeLayout`); absent in C providers.
pub const VIF_PLUG_RUST_LAYOUT_SYMBOL: &str = "vif_plug_provider_rust_layout";
