//! Forwards the provider's `log` records to the host's log function.
//!
//! A cdylib has its own copy of the `log` crate, whose logger is a no-op until
//! set, so the SDK installs a bridge at the first `init`. Records are
//! attributed to the class whose callback is running (a thread-local set for
//! the duration of each callback); outside callbacks they go to the first
//! class that was initialised.

use crate::host::{
    vif_plug_host, VIF_PLUG_LOG_DEBUG, VIF_PLUG_LOG_ERROR, VIF_PLUG_LOG_INFO, VIF_PLUG_LOG_OFF,
    VIF_PLUG_LOG_TRACE, VIF_PLUG_LOG_WARN,
};
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Once;

thread_local! {
    static CURRENT: Cell<*const vif_plug_host> = const { Cell::new(ptr::null()) };
}
static FALLBACK: AtomicPtr<vif_plug_host> = AtomicPtr::new(ptr::null_mut());
static OWN_LOGGER: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
static BRIDGE: Bridge = Bridge;

thread_local! {
    /// Where the last panic inside a callback happened, for the one log line
    /// the boundary writes when it catches it.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Makes `host` a destination for log records; called by `init`.
///
/// If this library is linked into a Rust host directly (not loaded as a
/// cdylib), the host already owns the global logger and records reach it
/// without the bridge; the bridge then stays out of the way.
pub(crate) fn install(host: *const vif_plug_host) {
    let _ = FALLBACK.compare_exchange(
        ptr::null_mut(),
        host.cast_mut(),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    INSTALL.call_once(|| {
        if log::set_logger(&BRIDGE).is_ok() {
            OWN_LOGGER.store(true, Ordering::Release);
            // Owning the logger means this library has its own std, hence its
            // own panic hook: replace the default one, which writes to
            // stderr, so panics reach the host's log instead. (Linked into a
            // Rust host, the host's hook is left alone.)
            std::panic::set_hook(Box::new(panic_hook));
        }
    });
    if OWN_LOGGER.load(Ordering::Acquire) {
        // SAFETY: `init` passes a non-NULL host context valid until `destroy`.
        let wanted = level_filter(unsafe { (*host).log_max_level });
        if wanted > log::max_level() {
            log::set_max_level(wanted);
        }
    }
}

/// Stops using `host`; called when its class is destroyed or failed `init`.
pub(crate) fn forget(host: *const vif_plug_host) {
    let _ = FALLBACK.compare_exchange(
        host.cast_mut(),
        ptr::null_mut(),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
}

/// Attributes log records to `host` until dropped.
pub(crate) struct Scope {
    previous: *const vif_plug_host,
}

impl Scope {
    pub(crate) fn enter(host: *const vif_plug_host) -> Scope {
        Scope {
            previous: CURRENT.with(|c| c.replace(host)),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    let at = info
        .location()
        .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
    if CURRENT.with(|c| c.get()).is_null() {
        // Not in a callback (a provider's own thread): nothing will catch it.
        log::error!("panicked{at}: {}", payload_text(info.payload()));
    } else {
        PANIC_AT.with(|p| *p.borrow_mut() = Some(at));
    }
}

/// The message of a panic payload.
pub(crate) fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Where the panic being caught happened, if the hook saw it.
pub(crate) fn take_panic_location() -> String {
    PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default()
}

fn current() -> *const vif_plug_host {
    let host = CURRENT.with(|c| c.get());
    if host.is_null() {
        FALLBACK.load(Ordering::Acquire)
    } else {
        host
    }
}

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let host = current();
        // SAFETY: a host context in CURRENT or FALLBACK is valid until its
        // class's `destroy`, which removes it first.
        !host.is_null() && level_number(metadata.level()) <= unsafe { (*host).log_max_level }
    }

    fn log(&self, record: &log::Record<'_>) {
        let host = current();
        if host.is_null() {
            return;
        }
        // SAFETY: as in `enabled`.
        let raw = unsafe { &*host };
        let level = level_number(record.level());
        let Some(log_fn) = raw.log else { return };
        if level > raw.log_max_level {
            return;
        }
        let mut text = record.args().to_string();
        text.retain(|c| c != '\0');
        let text = CString::new(text).unwrap_or_default();
        // SAFETY: the host's log function takes its own context, a level and
        // a NUL-terminated string that lives for the duration of the call.
        unsafe { log_fn(host, level, text.as_ptr()) };
    }

    fn flush(&self) {}
}

fn level_number(level: log::Level) -> u32 {
    match level {
        log::Level::Error => VIF_PLUG_LOG_ERROR,
        log::Level::Warn => VIF_PLUG_LOG_WARN,
        log::Level::Info => VIF_PLUG_LOG_INFO,
        log::Level::Debug => VIF_PLUG_LOG_DEBUG,
        log::Level::Trace => VIF_PLUG_LOG_TRACE,
    }
}

fn level_filter(level: u32) -> log::LevelFilter {
    match level {
        VIF_PLUG_LOG_OFF => log::LevelFilter::Off,
        VIF_PLUG_LOG_ERROR => log::LevelFilter::Error,
        VIF_PLUG_LOG_WARN => log::LevelFilter::Warn,
        VIF_PLUG_LOG_INFO => log::LevelFilter::Info,
        VIF_PLUG_LOG_DEBUG => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}
