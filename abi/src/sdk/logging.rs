//! Forwards the provider's `log` records to the host's log function.
//!
//! A cdylib has its own copy of the `log` crate, whose logger is a no-op until
//! set, so the SDK installs a bridge at the first `init`. Inside a callback,
//! records go to the class whose callback is running (a thread-local set for
//! the duration of the call). Outside callbacks (a provider's own threads)
//! they go to a live class, under a lock that `destroy` also takes, so a
//! record is never sent through a host context that is being torn down.

use crate::host::{log_level_number, vif_plug_host, VIF_PLUG_LOG_OFF};
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, PoisonError, RwLock};

thread_local! {
    static CURRENT: Cell<*const vif_plug_host> = const { Cell::new(ptr::null()) };
    /// Where the last panic inside a callback happened, for the one log line
    /// the boundary writes when it catches it.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Host contexts of initialised classes, in initialisation order.
static LIVE: RwLock<Vec<LiveHost>> = RwLock::new(Vec::new());
static OWN_LOGGER: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
static BRIDGE: Bridge = Bridge;

struct LiveHost(*const vif_plug_host);
// SAFETY: a host context is read-only for providers and stays valid until
// it is removed from LIVE, which `destroy` does under the write lock.
unsafe impl Send for LiveHost {}
// SAFETY: as above.
unsafe impl Sync for LiveHost {}

/// Installs the bridge as this library's logger (once) and lets `host`'s
/// level through. Called by `init` before the provider's own `init` runs.
///
/// If this library is linked into a Rust host directly (not loaded as a
/// cdylib), the host already owns the global logger and records reach it
/// without the bridge; the bridge then stays out of the way, and so does the
/// panic hook.
pub(crate) fn install(host: &vif_plug_host) {
    INSTALL.call_once(|| {
        if log::set_logger(&BRIDGE).is_ok() {
            OWN_LOGGER.store(true, Ordering::Release);
            // Owning the logger means this library has its own std, hence its
            // own panic hook: replace the default one, which writes to
            // stderr, so panics reach the host's log instead.
            std::panic::set_hook(Box::new(panic_hook));
        }
    });
    if OWN_LOGGER.load(Ordering::Acquire) {
        let wanted = match crate::host::log_level_from_number(host.log_max_level) {
            _ if host.log_max_level == VIF_PLUG_LOG_OFF => log::LevelFilter::Off,
            Some(level) => level.to_level_filter(),
            None => log::LevelFilter::Trace,
        };
        if wanted > log::max_level() {
            log::set_max_level(wanted);
        }
    }
}

/// Makes `host` a destination for records logged outside callbacks; called
/// once its class's `init` succeeded.
pub(crate) fn add_live(host: *const vif_plug_host) {
    LIVE.write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(LiveHost(host));
}

/// Stops using `host`; called by `destroy` before it returns.
pub(crate) fn remove_live(host: *const vif_plug_host) {
    let mut live = LIVE.write().unwrap_or_else(PoisonError::into_inner);
    live.retain(|h| !ptr::eq(h.0, host));
    if live.is_empty() {
        // Free the buffer too: once the last class is destroyed the host may
        // unload this library, and a static's heap buffer would then leak.
        *live = Vec::new();
    }
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
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    let at = info
        .location()
        .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
    let in_callback = CURRENT.try_with(|c| !c.get().is_null()).unwrap_or(false);
    if in_callback {
        let _ = PANIC_AT.try_with(|p| *p.borrow_mut() = Some(at));
    } else {
        // Not in a callback (a provider's own thread): nothing will catch it.
        log::error!("panicked{at}: {}", payload_text(info.payload()));
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
    PANIC_AT
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Sends `text` at `level` through `host`.
///
/// # Safety
/// `host` must be a live host context.
unsafe fn send(host: *const vif_plug_host, level: u32, record: &log::Record<'_>) {
    // SAFETY: per the caller's contract.
    let raw = unsafe { &*host };
    let Some(log_fn) = raw.log else { return };
    if level > raw.log_max_level {
        return;
    }
    let mut text = record.args().to_string();
    text.retain(|c| c != '\0');
    let text = CString::new(text).unwrap_or_default();
    // SAFETY: the host's log function takes its own context, a level and a
    // NUL-terminated string that lives for the duration of the call.
    unsafe { log_fn(host, level, text.as_ptr()) };
}

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        // Levels are filtered by log::max_level and per host in `send`.
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = log_level_number(record.level());
        let current = CURRENT.try_with(|c| c.get()).unwrap_or(ptr::null());
        if !current.is_null() {
            // SAFETY: set only for the duration of a callback of a class
            // whose context is alive (destroy runs on this same thread).
            unsafe { send(current, level, record) };
            return;
        }
        let live = LIVE.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = live.first() {
            // SAFETY: in LIVE, hence alive while the read lock is held.
            unsafe { send(host.0, level, record) };
        }
    }

    fn flush(&self) {}
}
