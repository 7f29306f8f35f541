//! A safe way to write a provider in Rust.
//!
//! Implement [`Provider`] for a type holding the provider's state, then export
//! it (and any other providers of the same library) with
//! [`export_providers!`](crate::export_providers) in a `cdylib` crate:
//!
//! ```
//! use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};
//!
//! struct Mine;
//! impl Provider for Mine {
//!     const TYPE: &'static str = "mine";
//!     fn init(_host: &Host<'_>) -> Result<Self, InitError> { Ok(Mine) }
//!     fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
//!         Some(PortOut::new(PortOut::ifname(port.lport_name())))
//!     }
//! }
//! vif_plug_abi::export_providers!(Mine);
//! ```
//!
//! The SDK owns everything the C contract asks for: it keeps one instance per
//! class between `init` and `destroy`, allocates and frees `ctx_out`, forwards
//! the `log` crate to the host's log, and catches panics at the boundary so
//! that they turn into failures instead of unwinding into the host. The
//! names a provider declares are checked while it compiles: a
//! [`Provider::TYPE`] the host would refuse does not build.
//!
//! ```compile_fail,E0080
//! # use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};
//! struct Spaced;
//! impl Provider for Spaced {
//!     const TYPE: &'static str = "two words"; // error: contains whitespace
//!     fn init(_host: &Host<'_>) -> Result<Self, InitError> { Ok(Spaced) }
//!     fn prepare_create(&mut self, _: &PortIn<'_>) -> Option<PortOut> { None }
//! }
//! vif_plug_abi::export_providers!(Spaced);
//! ```

pub mod errno;
mod export;
mod host;
mod logging;
mod names;
mod out;
mod port;
mod vtable;

pub use host::Host;
pub use port::{Iface, MapView, Op, PortIn, PortOut};

#[doc(hidden)]
pub mod __private {
    pub use super::export::{ClassList, Exported, Slot};
    pub use super::names::{c_str, check_option_keys, type_with_nul};
}

use errno::EIO;

/// A VIF plug provider implemented in Rust.
///
/// One value of the implementing type exists per loaded class: it is built by
/// [`Provider::init`] when the host registers the class and dropped when the
/// host unregisters it (that drop is the C ABI's `destroy`). Methods must
/// not block: they run in the host's loop. A panic in any of them is caught,
/// logged, and reported to the host as a failure.
///
/// # Why `Send`
///
/// The SDK keeps the value in a `static` slot (a `Mutex<Option<Self>>` per
/// class, which [`export_providers!`](crate::export_providers) defines),
/// and Rust lets a `static` hold only what may move between threads. Calls
/// never overlap: the host calls every callback of a library from one
/// thread, one at a time (see "Threading" in `docs/abi.md`), and the SDK
/// also holds the slot's lock for the length of each call, so the type
/// need not be `Sync`. A provider whose state holds an `Rc`, a raw pointer
/// or another type that is not `Send` keeps an `Arc` or an owned value
/// instead, or wraps the handle in a type of its own that it may declare
/// `Send` when the handle really is usable from another thread.
pub trait Provider: Send + Sized + 'static {
    /// The provider type: the value of the logical port option
    /// `vif-plug-type` that selects this provider, and the target of its
    /// log lines in the agent's log (`provider::TYPE`).
    ///
    /// It must be non-empty and hold no whitespace or control character,
    /// as the host requires; [`export_providers!`](crate::export_providers)
    /// checks that while the provider compiles, and makes the
    /// NUL-terminated copy the C ABI needs.
    const TYPE: &'static str;

    /// Interface option keys this provider maintains: the host removes any of
    /// them that [`PortOut::options`] no longer lists, and never touches other
    /// keys. Each must be non-empty and hold no control character (checked
    /// while the provider compiles).
    const MAINTAINED_IFACE_OPTIONS: &'static [&'static str] = &[];

    /// Sets the provider up. On an error the class is not registered and
    /// nothing else is called; the SDK logs the error's message (see
    /// [`InitError`]), so do not log it again.
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
/// for the operator.
///
/// The SDK logs the message once, at error level, through the host's log
/// (under the target `provider::TYPE`, like the provider's own lines), then
/// returns the errno from the C `init`. The host adds a line of its own
/// with the number and its text, so the agent's log shows the message under the provider's target, then the host's
/// `provider "example-rust" failed to initialise: init returned 22
/// (Invalid argument)`. `vif-plug-host check` puts both on one FAIL line:
/// `FAIL  provider "example-rust" failed to initialise: init returned 22
/// (Invalid argument): prefix must be at most 8 bytes`.
///
/// The values in [`errno`] spare a dependency on `libc`. A
/// [`std::io::Error`] converts with `?` (see the [`From`] impl), keeping
/// its OS error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    errno: i32,
    message: String,
}

impl InitError {
    /// An error with a positive errno value ([`errno::ENODEV`],
    /// [`errno::EPROTONOSUPPORT`], ...) and a message naming what is missing
    /// and what to do about it. A value that is not positive becomes
    /// [`errno::EIO`].
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

/// An I/O error's OS error code (`raw_os_error`) and its text, so `?` works
/// on `std::io` calls in [`Provider::init`]; an error without a code (one
/// made by `io::Error::new`) becomes [`errno::EIO`].
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

#[cfg(test)]
mod tests {
    use super::errno::{EINVAL, EIO, ENOENT};
    use super::InitError;

    #[test]
    fn an_io_error_keeps_its_os_code_or_becomes_eio() {
        let e = InitError::from(std::io::Error::from_raw_os_error(ENOENT));
        assert_eq!(e.errno(), ENOENT);
        assert_eq!(
            e.message(),
            std::io::Error::from_raw_os_error(ENOENT).to_string()
        );
        let e = InitError::from(std::io::Error::other("no code"));
        assert_eq!((e.errno(), e.message()), (EIO, "no code"));
    }

    #[test]
    fn an_errno_that_is_not_positive_becomes_eio() {
        assert_eq!(InitError::new(-EINVAL, "negative").errno(), EIO);
        assert_eq!(InitError::new(0, "zero").errno(), EIO);
        assert_eq!(InitError::new(EINVAL, "fine").errno(), EINVAL);
    }
}
