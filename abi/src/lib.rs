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
//! `docs/writing-a-provider.md` in the project's source tree walks through
//! a provider from an empty directory to a passing `vif-plug-host check`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod class;
mod describe;
mod host;
mod map;
mod owned_map;
mod port_ctx;
pub mod sdk;
mod version;

pub use class::vif_plug_class;
pub use describe::vif_plug_describe_out;

/// How a host recognises a panic the Rust SDK caught in a callback: the
/// SDK logs it through `vif_plug_host.log` at `VIF_PLUG_LOG_ERROR` as one
/// line that starts with this tag, e.g. `[caught panic] port_prepare
/// panicked at src/lib.rs:26: boom`. `vif-plug-host check` reports such a
/// line as a failure, whatever the callback returned. A C or C++ provider
/// that catches its own faults at the boundary (a C++ exception) may start
/// its error line with the same tag to be judged the same way.
pub const CAUGHT_PANIC_TAG: &str = "[caught panic] ";

/// How a host recognises an answer the Rust SDK could not hand over: when
/// a [`sdk::PortOut`] cannot be put in C form (its name, type or an option
/// holds a NUL byte), `port_prepare` declines and the SDK logs one error
/// line that starts with this tag, e.g. `[bad answer] port_prepare of vm1:
/// interface name "a\0b" contains a NUL byte`. `vif-plug-host check`
/// reports it as a failure: the provider meant to plug the port.
pub const BAD_ANSWER_TAG: &str = "[bad answer] ";
pub use host::{
    log_level_from_number, log_level_number, vif_plug_host, VIF_PLUG_LOG_DEBUG, VIF_PLUG_LOG_ERROR,
    VIF_PLUG_LOG_INFO, VIF_PLUG_LOG_OFF, VIF_PLUG_LOG_TRACE, VIF_PLUG_LOG_WARN,
};
pub use map::{vif_plug_kv, vif_plug_map};
pub use owned_map::{c_string, OwnedMap};
pub use port_ctx::{
    vif_plug_port_ctx_in, vif_plug_port_ctx_out, VIF_PLUG_OP_CREATE, VIF_PLUG_OP_REMOVE,
};
pub use version::{
    abi_info_for_minor, vif_plug_abi_info, VIF_PLUG_ABI_1_0_INFO, VIF_PLUG_ABI_INFO,
    VIF_PLUG_ABI_MAJOR, VIF_PLUG_ABI_MINOR, VIF_PLUG_ABI_SYMBOL, VIF_PLUG_CLASSES_SYMBOL,
    VIF_PLUG_RUST_LAYOUT_SYMBOL,
};

/// What a Rust-built provider exports under [`VIF_PLUG_RUST_LAYOUT_SYMBOL`]:
/// the `abi_stable` layout of [`vif_plug_class`], which reaches every other
/// shared type through its callback signatures and so covers the whole ABI.
///
/// `TypeLayout` itself differs between abi_stable versions, so it is
/// preceded by abi_stable's own version header, whose layout never changes:
/// the host reads the header first and only follows `class_layout` if the
/// two abi_stable versions are compatible. Not part of the C header.
#[repr(C)]
pub struct vif_plug_rust_layout {
    /// The abi_stable version the provider was built with.
    pub abi_stable: abi_stable::library::AbiHeader,
    /// The provider's layout of `vif_plug_class`.
    pub class_layout: &'static abi_stable::type_layout::TypeLayout,
}

/// This build's [`vif_plug_rust_layout`].
pub const RUST_LAYOUT: vif_plug_rust_layout = vif_plug_rust_layout {
    abi_stable: abi_stable::library::AbiHeader::VALUE,
    class_layout: <vif_plug_class as abi_stable::StableAbi>::LAYOUT,
};

/// The crate's README, whose Rust example compiles as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
