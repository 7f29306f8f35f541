//! The providers as the agent calls them, in either isolation mode
//! (`--provider-isolation`):
//!
//! - `process` (the default): each library in a worker process of its own
//!   ([`workers`]: batches, crashes, restarts; `load`: starting them;
//!   [`library`]: one library over its worker's lives; [`answers`]: a
//!   call's request and its answer checked again); a crash or a hang
//!   costs that library's calls in flight, never the agent;
//! - `none`: in the agent's own process, through the [`Registry`], as
//!   ovn-controller loads its providers.
//!
//! The same `.so` works in both; the agent sees one interface, and
//! operations ([`ops`]) keep the call-order contract in both.

pub mod answers;
pub mod library;
mod load;
pub mod ops;
pub mod workers;

pub use library::Settings;
pub use ops::{CreateOp, RemoveOp};
pub use workers::{WorkerEvent, Workers};

use crate::config::ProviderConfig;
use crate::provider::{PortRequest, PrepareError};
use crate::registry::Registry;
use crate::worker::protocol::Op;
use std::path::PathBuf;
use std::sync::atomic::AtomicI32;
use std::sync::Arc;
use std::time::Instant;

/// Where provider code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// One worker process per library (the default).
    #[default]
    Process,
    /// In the agent's process.
    None,
}

impl std::str::FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process" => Ok(Isolation::Process),
            "none" => Ok(Isolation::None),
            _ => Err(format!("{s:?}: expected process or none")),
        }
    }
}

/// In process, as through workers: a call slower than this is logged.
pub const SLOW_CALL: std::time::Duration = std::time::Duration::from_millis(50);

/// Logs an in-process call that took longer than [`SLOW_CALL`] (a worker's
/// calls are timed from its marks instead).
fn slow_in_process(provider: &str, callback: &str, lport: Option<&str>, start: Instant) {
    let took = start.elapsed();
    if took > SLOW_CALL {
        log::warn!(
            "provider {provider}: {callback}{} took {} ms (more than {} ms; the agent waits for every call)",
            lport.map(|l| format!(" for logical port {l}")).unwrap_or_default(),
            took.as_millis(),
            SLOW_CALL.as_millis()
        );
    }
}

/// A `port_prepare` through in-process provider `t` of `r`, timed.
fn in_process<T>(
    r: &Registry,
    t: &str,
    req: &PortRequest,
    call: impl FnOnce(&crate::provider::Provider) -> Result<T, PrepareError>,
) -> Result<T, PrepareError> {
    let Some(p) = r.get(t) else {
        return Err(PrepareError::Unavailable(format!(
            "provider {t:?} is not loaded"
        )));
    };
    let start = Instant::now();
    let op = call(p);
    slow_in_process(t, "port_prepare", Some(&req.lport_name), start);
    op
}

enum Mode {
    InProcess(Registry),
    Workers(Workers),
}

/// The registered providers, and the library files given that registered
/// none (refused, or every `init` failed), for `vif-plug/list-providers`.
pub struct Providers(Mode, Vec<PathBuf>);

impl From<Registry> for Providers {
    fn from(r: Registry) -> Self {
        Providers(Mode::InProcess(r), Vec::new())
    }
}

impl From<Workers> for Providers {
    fn from(w: Workers) -> Self {
        Providers(Mode::Workers(w), Vec::new())
    }
}

/// One registered provider type, as `vif-plug/list-providers` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Its type.
    pub type_name: String,
    /// The library it came from.
    pub file: PathBuf,
    /// The minor ABI version the library was built for (major 1).
    pub abi_minor: u32,
    /// The interface option keys it maintains.
    pub maintained: Vec<String>,
    /// Whether it is usable (a worker left down is not).
    pub loaded: bool,
    /// Its worker's pid (0 while down) and restarts, in worker mode.
    pub worker: Option<(u32, u32)>,
}

impl Providers {
    /// Loads and registers the providers of `files` in `isolation` mode,
    /// logging one line per refusal.
    pub fn load(
        files: &[PathBuf],
        config: &ProviderConfig,
        isolation: Isolation,
        settings: Settings,
    ) -> Providers {
        let mut providers: Providers = match isolation {
            Isolation::None => {
                let mut registry = Registry::new();
                crate::loader::load_files_into(&mut registry, files, config);
                registry.into()
            }
            Isolation::Process => Workers::load(files, config, settings).into(),
        };
        // Compared as canonical paths: a file may be given through a link.
        let canonical =
            |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
        let registered: std::collections::HashSet<PathBuf> = providers
            .types()
            .iter()
            .filter_map(|t| providers.origin(t))
            .map(|p| canonical(&p))
            .collect();
        providers.1 = files
            .iter()
            .filter(|f| !registered.contains(&canonical(f)))
            .cloned()
            .collect();
        for t in config.types() {
            if !providers.is_loaded(t) {
                log::warn!(
                    "--provider-config given for {t:?}, but no provider of that type is registered (none of the files has it, or it was refused: see above)"
                );
            }
        }
        providers
    }

    /// Registered types, in order.
    pub fn types(&self) -> Vec<String> {
        match &self.0 {
            Mode::InProcess(r) => r.iter().map(|p| p.type_name().to_owned()).collect(),
            Mode::Workers(w) => w.types().map(str::to_owned).collect(),
        }
    }

    /// The isolation mode.
    pub fn isolation(&self) -> Isolation {
        match &self.0 {
            Mode::InProcess(_) => Isolation::None,
            Mode::Workers(_) => Isolation::Process,
        }
    }

    /// True if any provider is registered.
    pub fn has_providers(&self) -> bool {
        !self.types().is_empty()
    }

    /// Whether `t` is registered and usable (a worker that is restarting
    /// counts; one left down does not).
    pub fn is_loaded(&self, t: &str) -> bool {
        match &self.0 {
            Mode::InProcess(r) => r.get(t).is_some(),
            Mode::Workers(w) => w.is_loaded(t),
        }
    }

    /// The interface option keys `t` maintains.
    pub fn maintained(&self, t: &str) -> &[String] {
        match &self.0 {
            Mode::InProcess(r) => r.get(t).map_or(&[], |p| p.maintained_options()),
            Mode::Workers(w) => w.maintained(t).unwrap_or(&[]),
        }
    }

    /// The file `t` was loaded from.
    pub fn origin(&self, t: &str) -> Option<PathBuf> {
        match &self.0 {
            Mode::InProcess(r) => r.get(t).map(|p| p.origin().to_owned()),
            Mode::Workers(w) => w.origin(t),
        }
    }

    /// What `vif-plug/list-providers` shows of each registered type, in
    /// order.
    pub fn info(&self) -> Vec<ProviderInfo> {
        self.types()
            .into_iter()
            .map(|t| {
                let (abi_minor, worker) = match &self.0 {
                    Mode::InProcess(r) => (r.get(&t).map_or(0, |p| p.abi_minor()), None),
                    Mode::Workers(w) => (w.abi_minor(&t).unwrap_or(0), w.worker_info(&t)),
                };
                ProviderInfo {
                    file: self.origin(&t).unwrap_or_default(),
                    maintained: self.maintained(&t).to_vec(),
                    loaded: self.is_loaded(&t),
                    abi_minor,
                    worker,
                    type_name: t,
                }
            })
            .collect()
    }

    /// The library files given at start that registered no provider
    /// (refused by the loader, or every class's `init` failed): the log at
    /// start says why.
    pub fn unregistered(&self) -> &[PathBuf] {
        &self.1
    }

    /// The inventory of `t` through its ABI 1.1 `describe`: `None` if it
    /// has none (NULL, or built for ABI 1.0).
    ///
    /// Errors: no such type, or its worker is down or failed meanwhile.
    pub fn describe(&self, t: &str) -> Result<Option<Vec<String>>, String> {
        match &self.0 {
            Mode::InProcess(r) => r
                .get(t)
                .map(|p| p.describe())
                .ok_or_else(|| format!("no provider of type {t:?} is registered")),
            Mode::Workers(w) => w.describe(t),
        }
    }

    /// Stops waits on workers when `flag` is raised (the agent stopping).
    pub fn set_interrupt(&mut self, flag: Arc<AtomicI32>) {
        if let Mode::Workers(w) = &mut self.0 {
            w.set_interrupt(flag);
        }
    }

    /// Calls every provider's `run`; true if any reported a change.
    pub fn run_all(&self) -> bool {
        crate::coverage::add(
            crate::coverage::Counter::ProviderCall,
            self.types().len() as u64,
        );
        match &self.0 {
            Mode::InProcess(r) => r.iter().fold(false, |changed, p| {
                let t = Instant::now();
                let c = p.run();
                slow_in_process(p.type_name(), "run", None, t);
                c | changed
            }),
            Mode::Workers(w) => w.run_all(),
        }
    }

    /// The `port_prepare` calls an iteration will make, asked in one batch
    /// per worker (nothing in process, where calls cost no round trip).
    pub fn prefetch(&self, requests: &[(String, Op, PortRequest)]) {
        if let Mode::Workers(w) = &self.0 {
            w.prefetch(requests);
        }
    }

    /// Prepares a CREATE through provider `t`.
    ///
    /// # Errors
    /// See [`PrepareError`]; [`PrepareError::Unavailable`] when `t`'s worker
    /// is down or died during the call.
    pub fn prepare_create(&self, t: &str, req: &PortRequest) -> Result<CreateOp, PrepareError> {
        crate::coverage::inc(crate::coverage::Counter::ProviderCall);
        match &self.0 {
            Mode::InProcess(r) => {
                in_process(r, t, req, |p| p.prepare_create(req).map(CreateOp::local))
            }
            Mode::Workers(w) => w.prepare_create(t, req),
        }
    }

    /// Prepares a REMOVE through provider `t`.
    ///
    /// # Errors
    /// As [`Providers::prepare_create`].
    pub fn prepare_remove(&self, t: &str, req: &PortRequest) -> Result<RemoveOp, PrepareError> {
        crate::coverage::inc(crate::coverage::Counter::ProviderCall);
        match &self.0 {
            Mode::InProcess(r) => {
                in_process(r, t, req, |p| p.prepare_remove(req).map(RemoveOp::local))
            }
            Mode::Workers(w) => w.prepare_remove(t, req),
        }
    }

    /// Ends an iteration: unclaimed answers are released and what is owed
    /// to workers is sent.
    pub fn end_iteration(&self) {
        if let Mode::Workers(w) = &self.0 {
            w.end_iteration();
        }
    }

    /// Restarts workers whose time has come; returns when the next is due.
    pub fn tick(&self, now: Instant) -> Option<Instant> {
        match &self.0 {
            Mode::InProcess(_) => None,
            Mode::Workers(w) => w.tick(now),
        }
    }

    /// Crashes, restarts and give-ups since the last call.
    pub fn take_events(&self) -> Vec<WorkerEvent> {
        match &self.0 {
            Mode::InProcess(_) => Vec::new(),
            Mode::Workers(w) => w.take_events(),
        }
    }

    /// Destroys every provider (in process: `destroy`; workers: told to
    /// destroy and exit).
    pub fn destroy_all(&mut self) {
        match &mut self.0 {
            Mode::InProcess(r) => r.destroy_all(),
            Mode::Workers(w) => w.destroy_all(),
        }
    }
}
