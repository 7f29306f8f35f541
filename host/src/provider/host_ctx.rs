//! The `vif_plug_host` context the host gives each class at `init`: its
//! configuration, and a log function that feeds the host's own logger.

use super::ctx_in::map_of;
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use vif_plug_abi::{
    vif_plug_host, vif_plug_kv, VIF_PLUG_ABI_MAJOR, VIF_PLUG_ABI_MINOR, VIF_PLUG_LOG_DEBUG,
    VIF_PLUG_LOG_ERROR, VIF_PLUG_LOG_INFO, VIF_PLUG_LOG_OFF, VIF_PLUG_LOG_TRACE, VIF_PLUG_LOG_WARN,
};

/// The `log` target provider messages are written under:
/// `provider::TYPE`, so `RUST_LOG=provider::dummy=debug` selects one
/// provider and `RUST_LOG=provider=debug` all of them.
pub fn log_target(provider_type: &str) -> String {
    format!("provider::{provider_type}")
}

/// A host context and everything it points into. Boxed, so the address a
/// provider keeps from `init` to `destroy` never changes.
pub(crate) struct HostContext {
    raw: vif_plug_host,
    target: String,
    _type: CString,
    _strings: Vec<CString>,
    _pairs: Vec<vif_plug_kv>,
}

impl HostContext {
    /// Builds the context for class `provider_type` with its configuration.
    /// Fails if a string holds a NUL byte.
    pub(crate) fn new(
        provider_type: &str,
        config: &[(String, String)],
    ) -> Result<Box<HostContext>, String> {
        let c = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
        let type_c = c(provider_type)?;
        let strings = config
            .iter()
            .flat_map(|(k, v)| [c(k), c(v)])
            .collect::<Result<Vec<_>, _>>()?;
        let pairs: Vec<vif_plug_kv> = strings
            .chunks_exact(2)
            .map(|kv| vif_plug_kv {
                key: kv[0].as_ptr(),
                value: kv[1].as_ptr(),
            })
            .collect();
        let target = log_target(provider_type);
        let mut ctx = Box::new(HostContext {
            raw: vif_plug_host {
                abi_major: VIF_PLUG_ABI_MAJOR,
                abi_minor: VIF_PLUG_ABI_MINOR,
                provider_type: type_c.as_ptr(),
                config: map_of(&pairs),
                log_max_level: max_level_for(&target),
                log: Some(host_log),
                host_data: std::ptr::null_mut(),
            },
            target,
            _type: type_c,
            _strings: strings,
            _pairs: pairs,
        });
        let self_ptr: *mut HostContext = &mut *ctx;
        ctx.raw.host_data = self_ptr.cast::<c_void>();
        Ok(ctx)
    }

    /// The pointer handed to the provider's `init`.
    pub(crate) fn as_raw(&self) -> *const vif_plug_host {
        &self.raw
    }
}

/// The most verbose level the host's logger keeps for `target`, as a
/// VIF_PLUG_LOG_* value, so providers can skip formatting what would be
/// dropped.
fn max_level_for(target: &str) -> u32 {
    [
        (log::Level::Trace, VIF_PLUG_LOG_TRACE),
        (log::Level::Debug, VIF_PLUG_LOG_DEBUG),
        (log::Level::Info, VIF_PLUG_LOG_INFO),
        (log::Level::Warn, VIF_PLUG_LOG_WARN),
        (log::Level::Error, VIF_PLUG_LOG_ERROR),
    ]
    .into_iter()
    .find(|(level, _)| {
        *level <= log::max_level()
            && log::logger().enabled(
                &log::Metadata::builder()
                    .level(*level)
                    .target(target)
                    .build(),
            )
    })
    .map_or(VIF_PLUG_LOG_OFF, |(_, n)| n)
}

fn level_of(n: u32) -> Option<log::Level> {
    Some(match n {
        VIF_PLUG_LOG_ERROR => log::Level::Error,
        VIF_PLUG_LOG_WARN => log::Level::Warn,
        VIF_PLUG_LOG_INFO => log::Level::Info,
        VIF_PLUG_LOG_DEBUG => log::Level::Debug,
        VIF_PLUG_LOG_TRACE => log::Level::Trace,
        _ => return None,
    })
}

thread_local! {
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
}

/// `vif_plug_host.log`: called by providers, from C.
unsafe extern "C" fn host_log(host: *const vif_plug_host, level: u32, message: *const c_char) {
    // A provider linked into a Rust program (rather than loaded) shares its
    // `log` crate; if its SDK bridge became the global logger, logging here
    // would call back into it. Drop such re-entrant messages.
    if host.is_null() || message.is_null() || IN_LOG.with(|f| f.replace(true)) {
        return;
    }
    // Logging must never unwind into the provider.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: providers pass back the context they were given, which is
        // alive until their `destroy` returns; host_data points to its box.
        let ctx = unsafe { &*((*host).host_data as *const HostContext) };
        // SAFETY: the ABI requires a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        let level = level_of(level).unwrap_or(log::Level::Error);
        log::log!(target: &ctx.target, level, "{}", text.trim_end());
    }));
    IN_LOG.with(|f| f.set(false));
}
