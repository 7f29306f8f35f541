//! Key/value maps as they cross the boundary: a plain array of string pairs.
//!
//! OVS code passes `struct smap`; we cannot, because its layout belongs to
//! OVS's build. An array of pairs is trivially produced and consumed from any
//! language, and small enough that copying it is never the bottleneck.
#![allow(non_camel_case_types)]

use abi_stable::StableAbi;
use std::os::raw::c_char;

/// One `key=value` pair. Both strings are NUL-terminated UTF-8 and never NULL
/// in a map the host hands out; a provider must not give NULL either.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct vif_plug_kv {
    /// The key; never empty in a valid map.
    pub key: *const c_char,
    /// The value; may be the empty string.
    pub value: *const c_char,
}

/// A read-only map: `n_entries` pairs starting at `entries`.
///
/// Keys are unique. `entries` may be NULL only when `n_entries` is 0. Whoever
/// fills the map owns the memory; the other side only reads it, and only for
/// as long as the member that holds the map documents.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct vif_plug_map {
    /// The first pair, or NULL for an empty map.
    pub entries: *const vif_plug_kv,
    /// How many pairs `entries` points at.
    pub n_entries: usize,
}

impl vif_plug_map {
    /// The empty map.
    pub const EMPTY: vif_plug_map = vif_plug_map {
        entries: std::ptr::null(),
        n_entries: 0,
    };
}
