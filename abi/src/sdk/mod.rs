//! A safe way to write a provider in Rust.
//!
//! Implement [`Provider`] for a type holding the provider's state, then export
//! it (and any other providers of the same library) with
//! [`export_providers!`](crate::export_providers):
//!
//! ```
//! use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};
//!
//! struct Mine;
//! impl Provider for Mine {
//!     const TYPE: &'static std::ffi::CStr = c"mine";
//!     fn init(_host: &Host<'_>) -> Result<Self, InitError> { Ok(Mine) }
//!     fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
//!         Some(PortOut::new(port.lport_name()))
//!     }
//! }
//! vif_plug_abi::export_providers!(Mine);
//! ```
//!
//! The SDK owns everything the C contract asks for: it keeps one instance per
//! class between `init` and `destroy`, allocates and frees `ctx_out`, forwards
//! the `log` crate to the host's log, and catches panics at the boundary so
//! that they turn into failures instead of unwinding into the host.

mod export;
mod host;
mod logging;
mod out;
mod port;
mod vtable;

pub use host::Host;
pub use port::{Iface, MapView, Op, PortIn, PortOut};

#[doc(hidden)]
pub mod __private {
    pub use super::export::{ClassList, Exported, Slot};
}

use std::ffi::CStr;

/// A VIF plug provider implemented in Rust.
///
/// One value of the implementing type exists per loaded class: it is built by
/// [`Provider::init`] when the host registers the class and dropped when the
/// host unregisters it. All methods are called on the host's main thread and
/// must not block. A panic in any of them is caught, logged, and reported to
/// the host as a failure.
pub trait Provider: Send + Sized + 'static {
    /// The provider type: the value of the logical port option
    /// `vif-plug-type` that selects this provider.
    const TYPE: &'static CStr;

    /// Interface option keys this provider maintains: the host removes any of
    /// them that [`PortOut::options`] no longer lists, and never touches other
    /// keys.
    const MAINTAINED_IFACE_OPTIONS: &'static [&'static CStr] = &[];

    /// Sets the provider up. Log the reason before returning an error: the
    /// class is then not registered.
    fn init(host: &Host<'_>) -> Result<Self, InitError>;

    /// Periodic non-blocking work. Return true if something changed that may
    /// let a declined [`Provider::prepare_create`] succeed now.
    fn run(&mut self) -> bool {
        false
    }

    /// Decides the interface for a port to create or update. `None` declines
    /// for now; the host retries later.
    fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut>;

    /// Agrees to remove a port (true) or asks to keep it for now (false).
    fn prepare_remove(&mut self, port: &PortIn<'_>) -> bool {
        let _ = port;
        true
    }

    /// The creation or update prepared for `port` was committed.
    fn finish_create(&mut self, port: &PortIn<'_>, out: &PortOut) {
        let _ = (port, out);
    }

    /// ABI 1.1: the provider's inventory for operators (for a representor
    /// provider, its lookup table), one line per item, each without a
    /// newline. The default lists nothing.
    fn describe(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// The removal prepared for `port` was committed.
    fn finish_remove(&mut self, port: &PortIn<'_>) {
        let _ = port;
    }
}

/// Why [`Provider::init`] failed: an errno value for the host, and a message
/// that the SDK logs at error level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    errno: i32,
    message: String,
}

impl InitError {
    /// An error with a positive errno value (`ENODEV`, `EPROTONOSUPPORT`, ...)
    /// and a message naming what is missing and what to do about it.
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        InitError {
            errno: if errno > 0 { errno } else { EIO },
            message: message.into(),
        }
    }

    /// The errno value reported to the host.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<std::io::Error> for InitError {
    fn from(e: std::io::Error) -> Self {
        InitError::new(e.raw_os_error().unwrap_or(EIO), e.to_string())
    }
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InitError {}

const EIO: i32 = 5;
/// Returned by `init` when the provider panicked: "State not recoverable".
const ENOTRECOVERABLE: i32 = 131;
