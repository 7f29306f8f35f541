//! The `vif_plug_host` context the host gives each class at `init`: its
//! configuration, and a log function that feeds the host's own logger.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use vif_plug_abi::{
    c_string, log_level_from_number, log_level_number, vif_plug_host, OwnedMap, VIF_PLUG_ABI_MAJOR,
    VIF_PLUG_ABI_MINOR, VIF_PLUG_LOG_OFF,
};

/// The `log` target provider messages are written under:
/// `provider::TYPE`, so `RUST_LOG=provider::dummy=debug` selects one
/// provider and `RUST_LOG=provider=debug` all of them.
pub fn log_target(provider_type: &str) -> String {
    format!("provider::{provider_type}")
}

/// What a host context points into, and the log target of its provider.
struct HostContextData {
    raw: vif_plug_host,
    target: String,
    _type: CString,
    _config: OwnedMap,
    /// A log level outside 1 to 5 was said already (once per provider).
    bad_level_said: std::sync::atomic::AtomicBool,
    /// `destroy` has returned: the provider may no longer call the host.
    destroyed: std::sync::atomic::AtomicBool,
    /// A call after `destroy` was said already.
    late_said: std::sync::atomic::AtomicBool,
}

/// Contexts whose class was destroyed. They stay allocated (and reachable,
/// so memory checkers do not call them leaks) until the process ends: a
/// provider thread that still calls `log` after `destroy` breaks the
/// contract, but must get a FAIL in `check` and one error line in the
/// agent, not a use after free whose outcome varies from run to run.
/// One small record per class destroyed, which happens at most once per
/// class and process.
struct Retired(Vec<NonNull<HostContextData>>);
// SAFETY: the records are only read through atomics and immutable fields
// after retirement; the Vec itself is behind the Mutex.
unsafe impl Send for Retired {}
static RETIRED: std::sync::Mutex<Retired> = std::sync::Mutex::new(Retired(Vec::new()));

/// A host context. The provider keeps its address from `init` until
/// `destroy`, and `host_log` reads it back from `host_data`, so it lives in
/// one heap allocation that is only ever accessed through the raw pointer
/// (never through a `Box` that could be moved or re-borrowed meanwhile).
pub(crate) struct HostContext {
    ptr: NonNull<HostContextData>,
}

impl HostContext {
    /// Builds the context for class `provider_type` with its configuration.
    /// Fails if a string holds a NUL byte.
    pub(crate) fn new(provider_type: &str, config: &[(String, String)]) -> Result<Self, String> {
        let type_c = c_string("provider type", provider_type)?;
        let config = OwnedMap::new(config.iter().map(|(k, v)| (k, v)))?;
        let target = log_target(provider_type);
        let data = Box::new(HostContextData {
            raw: vif_plug_host {
                abi_major: VIF_PLUG_ABI_MAJOR,
                abi_minor: VIF_PLUG_ABI_MINOR,
                provider_type: type_c.as_ptr(),
                config: config.as_map(),
                log_max_level: max_level_for(&target),
                log: Some(host_log),
                host_data: std::ptr::null_mut(),
            },
            target,
            _type: type_c,
            _config: config,
            bad_level_said: Default::default(),
            destroyed: Default::default(),
            late_said: Default::default(),
        });
        let ptr = NonNull::from(Box::leak(data));
        // SAFETY: freshly leaked, so this is the only pointer to it.
        unsafe { (*ptr.as_ptr()).raw.host_data = ptr.as_ptr().cast::<c_void>() };
        Ok(HostContext { ptr })
    }

    /// The pointer handed to the provider's `init`.
    pub(crate) fn as_raw(&self) -> *const vif_plug_host {
        // SAFETY: the allocation lives until drop; no reference is created.
        unsafe { std::ptr::addr_of!((*self.ptr.as_ptr()).raw) }
    }
}

impl HostContext {
    /// `destroy` returned: from now on the provider may not call the host.
    pub(crate) fn retire(&self) {
        // SAFETY: allocated in `new` and never freed.
        unsafe { &*self.ptr.as_ptr() }
            .destroyed
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for HostContext {
    fn drop(&mut self) {
        // Dropped once `destroy` returned (or `init` failed): retired, not
        // freed; see RETIRED.
        self.retire();
        RETIRED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push(self.ptr);
    }
}

/// The most verbose level the host's logger keeps for `target`, as a
/// VIF_PLUG_LOG_* value, so providers can skip formatting what would be
/// dropped.
fn max_level_for(target: &str) -> u32 {
    [
        log::Level::Trace,
        log::Level::Debug,
        log::Level::Info,
        log::Level::Warn,
        log::Level::Error,
    ]
    .into_iter()
    .find(|level| {
        *level <= log::max_level()
            && log::logger().enabled(
                &log::Metadata::builder()
                    .level(*level)
                    .target(target)
                    .build(),
            )
    })
    .map_or(VIF_PLUG_LOG_OFF, log_level_number)
}

thread_local! {
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
    /// While [`capture_said`] runs a call on this thread: the most severe
    /// level the provider logged at, and the last line at that level.
    static SAID: RefCell<Option<Option<(log::Level, String)>>> = const { RefCell::new(None) };
}

/// The longest line [`capture_said`] keeps, in bytes.
pub const MAX_SAID: usize = 512;

/// Runs `call` (one provider callback on this thread) and returns its
/// result with what the provider said during it: the last line of the
/// most severe level it logged at, any level (a provider that says a
/// repeated reason at debug level still gives it), whatever the log
/// filter, cut to [`MAX_SAID`] bytes. `vif-plug/show` gives it as the
/// reason of a decline, since `port_prepare` returns only a boolean.
pub fn capture_said<R>(call: impl FnOnce() -> R) -> (R, Option<String>) {
    let outer = SAID.with(|s| s.replace(Some(None)));
    let r = call();
    let said = SAID.with(|s| s.replace(outer)).flatten().map(|(_, l)| l);
    (r, said)
}

/// Keeps `text` as the call's reason if it is at least as severe as what
/// was kept (`log::Level::Error` is the most severe).
fn note_said(level: log::Level, text: &str) {
    SAID.with(|s| {
        if let Some(slot) = s.borrow_mut().as_mut() {
            if slot.as_ref().is_none_or(|(l, _)| level <= *l) {
                *slot = Some((level, one_line_within(text, MAX_SAID).into_owned()));
            }
        }
    });
}

/// The longest provider message logged whole, in bytes; longer ones are
/// cut, saying how much was left out.
pub const MAX_LOG_TEXT: usize = 8 << 10;

/// A provider's message as one log line: line breaks, other control
/// characters and bidirectional formatting characters are escaped (`\n`,
/// `\u{1b}`, `\u{202e}`), so that a provider cannot
/// forge lines that look like the agent's own, and a message longer than
/// [`MAX_LOG_TEXT`] is cut.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    one_line_within(text, MAX_LOG_TEXT)
}

/// As [`one_line`], cutting at `max` bytes.
pub fn one_line_within(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let shown = one_line_within(&text[..cut], max);
        return format!("{shown}... ({} more bytes not logged)", text.len() - cut).into();
    }
    crate::text::escape_chars(text, escaped_in_a_line)
}

/// Whether [`one_line`] escapes `c`: a control character other than a tab,
/// or a bidirectional formatting character.
pub fn escaped_in_a_line(c: char) -> bool {
    (c.is_control() && c != '\t') || crate::text::is_bidi_control(c)
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
        // never freed (see RETIRED); host_data points to it.
        let ctx = unsafe { &*((*host).host_data as *const HostContextData) };
        use std::sync::atomic::Ordering;
        if ctx.destroyed.load(Ordering::Acquire) {
            // Said once; what it says is not logged.
            if !ctx.late_said.swap(true, Ordering::Relaxed) {
                log::error!(
                    target: &ctx.target,
                    "{}called log after destroy returned (a thread of the provider still running?); its lines are dropped from now on",
                    super::CONTRACT_TAG
                );
            }
            return;
        }
        // SAFETY: the ABI requires a NUL-terminated string.
        let text = crate::text::escape_bytes(unsafe { CStr::from_ptr(message) }.to_bytes());
        let level = match log_level_from_number(level) {
            Some(l) => l,
            None => {
                // A breach the host survives: check reports it (the tag).
                if !ctx.bad_level_said.swap(true, Ordering::Relaxed) {
                    log::error!(
                        target: &ctx.target,
                        "{}this provider logs at level {level}, outside 1 (VIF_PLUG_LOG_ERROR) to 5 (VIF_PLUG_LOG_TRACE): such lines are shown as errors (said once)",
                        super::CONTRACT_TAG
                    );
                }
                log::Level::Error
            }
        };
        note_said(level, text.trim_end());
        log::log!(target: &ctx.target, level, "{}", one_line(text.trim_end()));
    }));
    IN_LOG.with(|f| f.set(false));
}

#[cfg(test)]
mod tests {
    use super::{one_line, MAX_LOG_TEXT};

    #[test]
    fn provider_lines_stay_one_line() {
        let table = [
            ("plain text", "plain text"),
            ("tab\tkept", "tab\tkept"),
            (
                "a\n[2099 INFO agent] forged",
                "a\\n[2099 INFO agent] forged",
            ),
            ("cr\rlf", "cr\\rlf"),
            ("esc\u{1b}[31m", "esc\\u{1b}[31m"),
        ];
        for (given, shown) in table {
            assert_eq!(one_line(given), shown, "{given:?}");
        }
        let long = "x".repeat(10 << 20);
        let cut = one_line(&long);
        assert!(cut.len() < MAX_LOG_TEXT + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!(
            "... ({} more bytes not logged)",
            (10 << 20) - MAX_LOG_TEXT
        )));
    }
}
