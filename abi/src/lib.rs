//! The contract between the VIF plug host and the provider libraries it loads.
//!
//! Everything in the top level of this crate is `#[repr(C)]` and only uses C
//! types, so a provider may be written in any language that can produce a
//! shared object. `include/vif-plug-provider.h` is generated from these
//! definitions by cbindgen and committed; `docs/abi.md` explains the contract
//! in prose.
//!
//! The [`sdk`] module is the Rust-only convenience layer: implement
//! [`sdk::Provider`] and call [`export_providers!`] to get the C vtable, the
//! NULL-terminated class array and the version symbols, without `unsafe`.
#![deny(unsafe_op_in_unsafe_fn)]

mod class;
mod host;
mod map;
mod port_ctx;
pub mod sdk;
mod version;

pub use class::vif_plug_class;
pub use host::{
    vif_plug_host, VIF_PLUG_LOG_DEBUG, VIF_PLUG_LOG_ERROR, VIF_PLUG_LOG_INFO, VIF_PLUG_LOG_OFF,
    VIF_PLUG_LOG_TRACE, VIF_PLUG_LOG_WARN,
};
pub use map::{vif_plug_kv, vif_plug_map};
pub use port_ctx::{
    vif_plug_port_ctx_in, vif_plug_port_ctx_out, VIF_PLUG_OP_CREATE, VIF_PLUG_OP_REMOVE,
};
pub use version::{
    vif_plug_abi_info, VIF_PLUG_ABI_INFO, VIF_PLUG_ABI_MAJOR, VIF_PLUG_ABI_MINOR,
    VIF_PLUG_ABI_SYMBOL, VIF_PLUG_CLASSES_SYMBOL, VIF_PLUG_RUST_LAYOUT_SYMBOL,
};

/// The layout a Rust-built provider exports under
/// [`VIF_PLUG_RUST_LAYOUT_SYMBOL`], and which the host compares with its own
/// using `abi_stable`. The class reaches every other shared type through its
/// callback signatures, so its layout covers the whole ABI.
pub const RUST_LAYOUT: &abi_stable::type_layout::TypeLayout =
    <vif_plug_class as abi_stable::StableAbi>::LAYOUT;

#[doc(hidden)]
pub use abi_stable::type_layout::TypeLayout as __TypeLayout;
