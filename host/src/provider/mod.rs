//! A provider class as the host uses it: a checked copy of the C vtable with
//! safe methods that enforce the call-order contract.
//!
//! The contract lives in the types: [`PreparedCreate`] calls
//! `port_ctx_destroy` when dropped, so it happens exactly once whatever the
//! caller does, and `port_finish` can only be called through
//! [`PreparedCreate::finish`] / [`PreparedRemove::finish`], which consume the
//! operation.

mod ctx_in;
mod ctx_out;
mod host_ctx;

pub use ctx_in::{BridgeInfo, ExistingIface, NulInRequest, PortRequest};
pub use ctx_out::{
    check_iface_type, check_ifname, check_option_sizes, Options, PortOutput, MAX_IFNAME_LEN,
};
pub(crate) use host_ctx::HostContext;
pub use host_ctx::{escaped_in_a_line, log_target, one_line, one_line_within, MAX_LOG_TEXT};

use ctx_in::RawCtxIn;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use vif_plug_abi::{
    vif_plug_class, vif_plug_describe_out, vif_plug_port_ctx_in, vif_plug_port_ctx_out,
    VIF_PLUG_OP_CREATE, VIF_PLUG_OP_REMOVE,
};

type PortFn = unsafe extern "C" fn(*const vif_plug_port_ctx_in, *mut vif_plug_port_ctx_out);
type PrepareFn =
    unsafe extern "C" fn(*const vif_plug_port_ctx_in, *mut vif_plug_port_ctx_out) -> bool;

/// What keeps a class's code mapped: the library it came from, or nothing for
/// a class linked into the program.
pub(crate) type Keepalive = Option<Rc<libloading::os::unix::Library>>;

/// A checked vtable. Shared by the registered provider and each operation in
/// flight, so neither can outlive the library.
pub(crate) struct ClassHandle {
    raw: vif_plug_class,
    type_name: String,
    origin: PathBuf,
    prepare: PrepareFn,
    finish: PortFn,
    ctx_destroy: PortFn,
    /// The ABI minor version the library was built for.
    abi_minor: u32,
    _library: Keepalive,
}

/// Why a class in a library is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassError {
    /// `type` is NULL.
    NullType,
    /// `type` is "".
    EmptyType,
    /// `type` is not UTF-8 or contains whitespace or control characters;
    /// shown with bytes outside UTF-8 as `\xNN` and control characters
    /// escaped.
    BadType(String),
    /// A required callback is NULL.
    MissingCallback {
        /// The class's type.
        type_name: String,
        /// The member that is NULL.
        callback: &'static str,
    },
}

impl std::fmt::Display for ClassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClassError::NullType => f.write_str("its type is NULL"),
            ClassError::EmptyType => f.write_str("its type is an empty string"),
            ClassError::BadType(t) => write!(f, "its type \"{t}\" is not a printable UTF-8 word"),
            ClassError::MissingCallback {
                type_name,
                callback,
            } => write!(
                f,
                "class {type_name:?}: required callback {callback} is NULL"
            ),
        }
    }
}

impl std::error::Error for ClassError {}

impl ClassError {
    /// The refused class's type, when it was readable.
    pub fn type_name(&self) -> Option<&str> {
        match self {
            ClassError::MissingCallback { type_name, .. } => Some(type_name),
            _ => None,
        }
    }
}

impl ClassHandle {
    /// Checks a vtable and copies it.
    ///
    /// # Safety
    /// `raw.type_` must be NULL or a NUL-terminated string, and the callbacks
    /// must be NULL or functions with the ABI's signatures, all valid for as
    /// long as `library` is kept loaded.
    unsafe fn new(
        raw: &vif_plug_class,
        origin: &Path,
        abi_minor: u32,
        library: Keepalive,
    ) -> Result<Self, ClassError> {
        if raw.type_.is_null() {
            return Err(ClassError::NullType);
        }
        // SAFETY: non-NULL and NUL-terminated per the caller's contract.
        let type_c = unsafe { CStr::from_ptr(raw.type_) };
        let type_name = match type_c.to_str() {
            Ok("") => return Err(ClassError::EmptyType),
            Ok(t)
                if t.chars().all(|c| {
                    !c.is_whitespace() && !c.is_control() && !crate::text::is_bidi_control(c)
                }) =>
            {
                t.to_owned()
            }
            _ => {
                let shown = crate::text::escape_bytes(type_c.to_bytes());
                return Err(ClassError::BadType(
                    crate::text::escape_name(&one_line(&shown)).into_owned(),
                ));
            }
        };
        let missing = |callback| ClassError::MissingCallback {
            type_name: type_name.clone(),
            callback,
        };
        Ok(ClassHandle {
            prepare: raw.port_prepare.ok_or_else(|| missing("port_prepare"))?,
            finish: raw.port_finish.ok_or_else(|| missing("port_finish"))?,
            ctx_destroy: raw
                .port_ctx_destroy
                .ok_or_else(|| missing("port_ctx_destroy"))?,
            raw: *raw,
            type_name,
            origin: origin.to_owned(),
            abi_minor,
            _library: library,
        })
    }
}

/// A provider class that passed the loader's checks and is ready to register.
pub struct ProviderClass {
    handle: Rc<ClassHandle>,
}

impl ProviderClass {
    /// Checks a vtable found in a loaded library, `size` bytes long (the
    /// size of the library's ABI minor version).
    ///
    /// # Safety
    /// As for the library's symbols: `raw` must point to `size` readable
    /// bytes, and the vtable and what it points to must follow the ABI and
    /// stay valid while `library` is loaded.
    pub(crate) unsafe fn from_library(
        raw: *const vif_plug_class,
        size: usize,
        abi_minor: u32,
        origin: &Path,
        library: Rc<libloading::os::unix::Library>,
    ) -> Result<Self, ClassError> {
        // A library built for an older minor version has a shorter vtable:
        // only its own bytes are read, the members it lacks stay NULL.
        let mut copy = vif_plug_class::EMPTY;
        let n = size.min(std::mem::size_of::<vif_plug_class>());
        // SAFETY: `raw` points to at least `size` readable bytes of the
        // library's class (the caller's contract), `copy` is a distinct
        // local of at least `n` bytes, and every bit pattern the library
        // wrote is a valid nullable pointer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                raw.cast::<u8>(),
                std::ptr::addr_of_mut!(copy).cast::<u8>(),
                n,
            );
        }
        // SAFETY: forwarded from the caller.
        let handle = unsafe { ClassHandle::new(&copy, origin, abi_minor, Some(library)) }?;
        Ok(ProviderClass {
            handle: Rc::new(handle),
        })
    }

    /// Uses a class linked into this program rather than loaded from a file
    /// (benchmarks, and embedding a provider in a custom host).
    ///
    /// # Safety
    /// `raw` must follow the ABI: a valid type string and callbacks with the
    /// documented signatures and behaviour.
    pub unsafe fn from_static(
        raw: &'static vif_plug_class,
        origin: &str,
    ) -> Result<Self, ClassError> {
        // SAFETY: forwarded from the caller; 'static needs no keepalive.
        let handle = unsafe {
            ClassHandle::new(
                raw,
                Path::new(origin),
                vif_plug_abi::VIF_PLUG_ABI_MINOR,
                None,
            )
        }?;
        Ok(ProviderClass {
            handle: Rc::new(handle),
        })
    }

    /// The class's type.
    pub fn type_name(&self) -> &str {
        &self.handle.type_name
    }

    /// The file the class was loaded from.
    pub fn origin(&self) -> &Path {
        &self.handle.origin
    }
}

/// How a decline reads when the provider logged nothing during the call.
pub const DECLINED_SILENTLY: &str = "the provider declined (prepare returned false)";

/// Why a prepare produced nothing to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// The provider returned false: not now. Retry when inputs change or
    /// `run` reports a change. With what the provider logged during the
    /// call, if anything (see [`host_ctx::capture_said`]).
    Declined(Option<String>),
    /// The request cannot be expressed in C (a NUL byte in a string).
    BadRequest(NulInRequest),
    /// The provider returned true but its answer is unusable; every problem
    /// is listed. `port_ctx_destroy` has been called (or, through a
    /// worker, will be at the next settlement).
    BadOutput(Vec<String>),
    /// The call could not be made or its answer was lost: the provider's
    /// worker is down, or died or hung during the batch (the reason). Not
    /// the provider's answer: the port is decided again once the worker is
    /// back. Never returned in process.
    Unavailable(String),
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::Declined(None) => f.write_str(DECLINED_SILENTLY),
            PrepareError::Declined(Some(said)) => {
                write!(f, "the provider declined, saying: {said}")
            }
            PrepareError::BadRequest(e) => write!(f, "cannot pass the port to the provider: {e}"),
            PrepareError::BadOutput(problems) => {
                write!(
                    f,
                    "the provider returned an unusable answer: {}",
                    problems.join("; ")
                )
            }
            PrepareError::Unavailable(why) => write!(f, "the provider is unavailable: {why}"),
        }
    }
}

impl std::error::Error for PrepareError {}

/// A registered provider: an initialised class and its host context.
pub struct Provider {
    handle: Rc<ClassHandle>,
    maintained: Vec<String>,
    // Dropped after `handle`'s destroy ran (see the registry), never before.
    _host: HostContext,
}

/// A class whose `init` succeeded, before its maintained options are read.
/// Two steps, so that a worker can say which of the two callbacks a crash
/// happened in; [`Initialised::read_maintained_options`] makes the
/// [`Provider`].
pub struct Initialised {
    handle: Rc<ClassHandle>,
    host: HostContext,
}

impl Initialised {
    /// Calls `get_maintained_iface_options` (as the ABI allows only after a
    /// successful `init`), keeping the keys an answer could set and logging
    /// each other entry as a contract breach.
    pub fn read_maintained_options(self) -> Provider {
        let maintained = read_maintained(&self.handle);
        Provider {
            handle: self.handle,
            maintained,
            _host: self.host,
        }
    }
}

impl Provider {
    /// Calls `init` and then `get_maintained_iface_options`, as
    /// [`Provider::init_only`] then [`Initialised::read_maintained_options`].
    pub(crate) fn init(
        class: ProviderClass,
        config: &[(String, String)],
    ) -> Result<Self, InitFailure> {
        Ok(Self::init_only(class, config)?.read_maintained_options())
    }

    /// Calls `init` with a fresh host context. `Err` carries init's errno.
    pub(crate) fn init_only(
        class: ProviderClass,
        config: &[(String, String)],
    ) -> Result<Initialised, InitFailure> {
        let handle = class.handle;
        let host = HostContext::new(&handle.type_name, config).map_err(InitFailure::BadConfig)?;
        if let Some(init) = handle.raw.init {
            // SAFETY: the context lives in `host`, which the Provider keeps
            // until after `destroy`; on failure the provider promised not to
            // keep it.
            let rc: c_int = unsafe { init(host.as_raw()) };
            if rc != 0 {
                return Err(InitFailure::Errno(rc));
            }
        }
        Ok(Initialised { handle, host })
    }

    /// The class's type.
    pub fn type_name(&self) -> &str {
        &self.handle.type_name
    }

    /// The file the class was loaded from.
    pub fn origin(&self) -> &Path {
        &self.handle.origin
    }

    /// The minor ABI version the library was built for (its major is the
    /// host's: any other is refused).
    pub fn abi_minor(&self) -> u32 {
        self.handle.abi_minor
    }

    /// Interface option keys this provider maintains.
    pub fn maintained_options(&self) -> &[String] {
        &self.maintained
    }

    /// Operations prepared and not yet dropped.
    pub fn operations_in_flight(&self) -> usize {
        Rc::strong_count(&self.handle) - 1
    }

    /// Calls `run`: true if the provider reports a change.
    pub fn run(&self) -> bool {
        match self.handle.raw.run {
            // SAFETY: the class pointer is our registered copy, as the
            // reference passes; the function follows the ABI.
            Some(run) => unsafe { run(&self.handle.raw) },
            None => false,
        }
    }

    /// Prepares a CREATE (create or update). On `Ok`, the caller applies
    /// [`PreparedCreate::output`] and calls [`PreparedCreate::finish`] once
    /// it is committed, or drops the operation if it is not.
    pub fn prepare_create(&self, req: &PortRequest) -> Result<PreparedCreate, PrepareError> {
        let ctx_in = RawCtxIn::new(VIF_PLUG_OP_CREATE, req, self.handle.abi_minor)
            .map_err(PrepareError::BadRequest)?;
        let mut ctx_out = Box::new(vif_plug_port_ctx_out::ZEROED);
        // SAFETY: both contexts are valid and stay at these addresses until
        // the PreparedCreate built below is dropped.
        let (ok, said) =
            host_ctx::capture_said(|| unsafe { (self.handle.prepare)(&ctx_in.raw, &mut *ctx_out) });
        if !ok {
            return Err(PrepareError::Declined(said));
        }
        let mut op = PreparedCreate {
            handle: Rc::clone(&self.handle),
            ctx_in,
            ctx_out,
            output: PortOutput {
                name: String::new(),
                iface_type: None,
                options: Options::new(),
            },
        };
        // SAFETY: prepare returned true, so ctx_out is filled and valid until
        // ctx_destroy, which only dropping `op` calls.
        match unsafe { ctx_out::read_output(&op.ctx_out) } {
            Ok(output) => {
                op.output = output;
                Ok(op)
            }
            // Dropping `op` calls ctx_destroy: the provider still owns ctx_out.
            Err(problems) => Err(PrepareError::BadOutput(problems)),
        }
    }

    /// Prepares a REMOVE. On `Ok`, the caller deletes the port and calls
    /// [`PreparedRemove::finish`] once that is committed.
    pub fn prepare_remove(&self, req: &PortRequest) -> Result<PreparedRemove, PrepareError> {
        let ctx_in = RawCtxIn::new(VIF_PLUG_OP_REMOVE, req, self.handle.abi_minor)
            .map_err(PrepareError::BadRequest)?;
        // SAFETY: a valid ctx_in and NULL ctx_out, as the ABI specifies for REMOVE.
        let (ok, said) = host_ctx::capture_said(|| unsafe {
            (self.handle.prepare)(&ctx_in.raw, std::ptr::null_mut())
        });
        if ok {
            Ok(PreparedRemove {
                handle: Rc::clone(&self.handle),
                ctx_in,
            })
        } else {
            Err(PrepareError::Declined(said))
        }
    }

    /// Calls `describe` (ABI 1.1): the provider's inventory, one string per
    /// line, at most [`MAX_DESCRIBE_LINES`] (each kept to one line of at most
    /// 8 KiB); `None` when the class has no `describe` (NULL, or a library
    /// built for ABI 1.0).
    pub fn describe(&self) -> Option<Vec<String>> {
        let describe = self.handle.raw.describe?;
        let mut lines: Vec<String> = Vec::new();
        let out = vif_plug_describe_out {
            line: Some(describe_line),
            host_data: std::ptr::addr_of_mut!(lines).cast(),
        };
        // SAFETY: our registered copy of the class and a writer valid for
        // the call; `lines` outlives it and is touched only through it.
        unsafe { describe(&self.handle.raw, &out) };
        Some(lines)
    }

    /// Calls `destroy`; `Err` carries its errno. Once it returned 0, the
    /// provider may no longer call the host: a late `log` call is said as
    /// a contract breach (see [`HostContext`]).
    pub(crate) fn destroy(&self) -> Result<(), c_int> {
        let r = match self.handle.raw.destroy {
            // SAFETY: called once, after init succeeded, as the ABI requires.
            Some(destroy) => match unsafe { destroy() } {
                0 => Ok(()),
                rc => Err(rc),
            },
            None => Ok(()),
        };
        if r.is_ok() {
            self._host.retire();
        }
        r
    }
}

/// The most lines kept from one `describe`.
pub const MAX_DESCRIBE_LINES: usize = 100_000;

/// `vif_plug_describe_out.line`: called by providers, from C.
unsafe extern "C" fn describe_line(out: *const vif_plug_describe_out, text: *const c_char) {
    if out.is_null() || text.is_null() {
        return;
    }
    // Nothing may unwind into the provider.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `out` is the writer `Provider::describe` built, whose
        // host_data is its `Vec<String>`, alive during the call.
        let lines = unsafe { &mut *((*out).host_data as *mut Vec<String>) };
        if lines.len() < MAX_DESCRIBE_LINES {
            // SAFETY: the ABI requires a NUL-terminated string.
            let text = crate::text::escape_bytes(unsafe { CStr::from_ptr(text) }.to_bytes());
            lines.push(one_line(&text).into_owned());
        }
    }));
}

/// Why `init` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitFailure {
    /// `init` returned this errno.
    Errno(c_int),
    /// The configuration could not be passed (a NUL byte).
    BadConfig(String),
}

/// Reads the NULL-terminated maintained-options list, skipping (and
/// reporting) garbage rather than trusting it.
fn read_maintained(handle: &ClassHandle) -> Vec<String> {
    const MAX: usize = 1024;
    let Some(get) = handle.raw.get_maintained_iface_options else {
        return Vec::new();
    };
    // SAFETY: called after a successful init, as the ABI requires.
    let list: *const *const c_char = unsafe { get() };
    let mut out = Vec::new();
    if list.is_null() {
        return out;
    }
    for i in 0..MAX {
        // SAFETY: the ABI promises a NULL-terminated array; we stop at NULL
        // and cap the walk so a missing terminator cannot run away forever.
        let p = unsafe { *list.add(i) };
        if p.is_null() {
            return out;
        }
        // SAFETY: entries are NUL-terminated strings.
        let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
        match maintained_key(bytes) {
            Ok(k) => out.push(k.to_owned()),
            Err(why) => log::error!(
                target: &log_target(&handle.type_name),
                "{CONTRACT_TAG}{MAINTAINED_OPTION} #{i} \"{}\" {why}; ignored",
                crate::text::escape_name(&one_line(&crate::text::escape_bytes(bytes)))
            ),
        }
    }
    log::error!(
        target: &log_target(&handle.type_name),
        "{CONTRACT_TAG}the {MAINTAINED_OPTION}s list has no NULL terminator within {MAX} entries"
    );
    out
}

/// A maintained option key as an answer could set it: UTF-8, 1 to
/// [`MAX_OPTION_KEY`] bytes, no control characters; else why not.
fn maintained_key(bytes: &[u8]) -> Result<&str, String> {
    let k = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8".to_owned())?;
    if k.is_empty() {
        Err("is empty".into())
    } else if k.len() > ctx_out::MAX_OPTION_KEY {
        Err(format!(
            "is {} bytes, longer than an option key may be ({})",
            k.len(),
            ctx_out::MAX_OPTION_KEY
        ))
    } else if k.chars().any(char::is_control) {
        Err("holds a control character".into())
    } else if k.chars().any(crate::text::is_bidi_control) {
        Err("holds a bidirectional formatting character".into())
    } else {
        Ok(k)
    }
}

/// The words every contract breach the host finds in the maintained options
/// list carries, so that `check` can name `get_maintained_iface_options`
/// rather than `init` for it.
pub const MAINTAINED_OPTION: &str = "maintained interface option";

/// How the host marks, in a provider's log, a breach of the contract that
/// it survived by ignoring what the provider gave (a bad maintained option
/// key, a list without its terminator, a call after `destroy`):
/// `vif-plug-host check` reports each such line as a failure, as it does
/// the SDK's [`vif_plug_abi::CAUGHT_PANIC_TAG`].
pub const CONTRACT_TAG: &str = "[contract] ";

/// A prepared CREATE: the provider's answer, valid until dropped.
pub struct PreparedCreate {
    handle: Rc<ClassHandle>,
    ctx_in: Box<RawCtxIn>,
    ctx_out: Box<vif_plug_port_ctx_out>,
    output: PortOutput,
}

impl PreparedCreate {
    /// The validated answer.
    pub fn output(&self) -> &PortOutput {
        &self.output
    }

    /// The provider type.
    pub fn type_name(&self) -> &str {
        &self.handle.type_name
    }

    /// Reports the commit to the provider (`port_finish`), then releases the
    /// answer (`port_ctx_destroy`).
    pub fn finish(self) {
        self.finish_then(|| {});
    }

    /// As [`PreparedCreate::finish`], calling `between` after `port_finish`
    /// returned and before `port_ctx_destroy` (a worker marks the second
    /// call there, so a crash in either is named).
    pub fn finish_then(mut self, between: impl FnOnce()) {
        // SAFETY: the contexts prepare saw, still valid.
        unsafe { (self.handle.finish)(&self.ctx_in.raw, &mut *self.ctx_out) };
        between();
    }
}

impl Drop for PreparedCreate {
    fn drop(&mut self) {
        // SAFETY: prepare returned true for these contexts and this is the
        // only place ctx_destroy is called, once.
        unsafe { (self.handle.ctx_destroy)(&self.ctx_in.raw, &mut *self.ctx_out) };
    }
}

/// A prepared REMOVE. Dropping it without [`PreparedRemove::finish`] means
/// the removal did not commit; the provider is told nothing, as the ABI says.
pub struct PreparedRemove {
    handle: Rc<ClassHandle>,
    ctx_in: Box<RawCtxIn>,
}

impl PreparedRemove {
    /// The provider type.
    pub fn type_name(&self) -> &str {
        &self.handle.type_name
    }

    /// Reports the committed removal to the provider (`port_finish` with a
    /// NULL `ctx_out`).
    pub fn finish(self) {
        // SAFETY: the ctx_in prepare saw; NULL ctx_out as for REMOVE.
        unsafe { (self.handle.finish)(&self.ctx_in.raw, std::ptr::null_mut()) };
    }
}

impl std::fmt::Debug for ProviderClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClass")
            .field("type", &self.handle.type_name)
            .field("origin", &self.handle.origin)
            .finish()
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("type", &self.handle.type_name)
            .field("origin", &self.handle.origin)
            .field("maintained", &self.maintained)
            .finish()
    }
}
