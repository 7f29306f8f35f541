//! ABI 1.1: where a provider writes its inventory (`vif_plug_class.describe`).
#![allow(non_camel_case_types)]

use abi_stable::StableAbi;
use std::os::raw::{c_char, c_void};

/// Where `describe` writes: the host's line writer and its data.
///
/// Filled and owned by the host, valid only during the `describe` call.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct vif_plug_describe_out {
    /// Writes one line of the inventory: `text` is NUL-terminated UTF-8
    /// without a newline, read during the call only. Pass this struct as
    /// `out`. Never NULL.
    pub line: Option<unsafe extern "C" fn(out: *const vif_plug_describe_out, text: *const c_char)>,
    /// The host's private data. Providers must not touch it.
    pub host_data: *mut c_void,
}
