//! What the host gives a provider at `init`: logging and configuration.
#![allow(non_camel_case_types)]

use crate::map::vif_plug_map;
use abi_stable::StableAbi;
use std::os::raw::{c_char, c_void};

/// Log level: logging disabled (only as `log_max_level`).
pub const VIF_PLUG_LOG_OFF: u32 = 0;
/// Log level: something failed.
pub const VIF_PLUG_LOG_ERROR: u32 = 1;
/// Log level: something is wrong but work goes on.
pub const VIF_PLUG_LOG_WARN: u32 = 2;
/// Log level: what happened, for operators.
pub const VIF_PLUG_LOG_INFO: u32 = 3;
/// Log level: why it happened, for debugging.
pub const VIF_PLUG_LOG_DEBUG: u32 = 4;
/// Log level: everything.
pub const VIF_PLUG_LOG_TRACE: u32 = 5;

/// The host context handed to a class's `init`.
///
/// Owned by the host; valid from `init` until `destroy` returns. Read-only
/// for the provider. One context per class, so a library exporting several
/// classes gets one per class, each with that class's configuration.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct vif_plug_host {
    /// The ABI version the host implements. A provider built for a newer
    /// minor version must not read members that version added.
    pub abi_major: u32,
    /// See `abi_major`.
    pub abi_minor: u32,
    /// The `type` of the class this context belongs to.
    pub provider_type: *const c_char,
    /// Configuration given to the host for this provider type
    /// (`--provider-config TYPE:KEY=VALUE`).
    pub config: vif_plug_map,
    /// The most verbose level `log` keeps for this provider (a
    /// VIF_PLUG_LOG_* value; VIF_PLUG_LOG_OFF if none), as configured when
    /// the host started.
    pub log_max_level: u32,
    /// The host's logging function: writes `message` (NUL-terminated UTF-8,
    /// no trailing newline needed) at `level` (a VIF_PLUG_LOG_* value) to the
    /// host's log, attributed to this provider. Messages above
    /// `log_max_level` are dropped, so check that before formatting one.
    /// Pass this context as `host`. Never NULL.
    pub log: Option<
        unsafe extern "C" fn(host: *const vif_plug_host, level: u32, message: *const c_char),
    >,
    /// The host's private data. Providers must not touch it.
    pub host_data: *mut c_void,
}

/// The VIF_PLUG_LOG_* number of a `log` level.
pub fn log_level_number(level: log::Level) -> u32 {
    match level {
        log::Level::Error => VIF_PLUG_LOG_ERROR,
        log::Level::Warn => VIF_PLUG_LOG_WARN,
        log::Level::Info => VIF_PLUG_LOG_INFO,
        log::Level::Debug => VIF_PLUG_LOG_DEBUG,
        log::Level::Trace => VIF_PLUG_LOG_TRACE,
    }
}

/// The `log` level of a VIF_PLUG_LOG_* number; `None` for OFF or unknown.
pub fn log_level_from_number(n: u32) -> Option<log::Level> {
    Some(match n {
        VIF_PLUG_LOG_ERROR => log::Level::Error,
        VIF_PLUG_LOG_WARN => log::Level::Warn,
        VIF_PLUG_LOG_INFO => log::Level::Info,
        VIF_PLUG_LOG_DEBUG => log::Level::Debug,
        VIF_PLUG_LOG_TRACE => log::Level::Trace,
        _ => return None,
    })
}
