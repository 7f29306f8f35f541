//! The registry of initialised provider classes, by type.
//!
//! Semantics follow the reference: registering calls `init` and only keeps
//! the class if it succeeds; a type registers once (EEXIST otherwise);
//! unregistering an unknown type is EINVAL; unregistering calls `destroy`.

use crate::config::ProviderConfig;
use crate::provider::{InitFailure, Provider, ProviderClass};
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

const EINVAL: i32 = 22;
const EEXIST: i32 = 17;
const EBUSY: i32 = 16;

/// The text of errno `e`, without the "(os error N)" suffix std adds.
fn strerror(e: i32) -> String {
    let text = io::Error::from_raw_os_error(e).to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The symbolic name of errno `e` (`EINVAL`), or the number if unknown.
fn errno_name(e: i32) -> String {
    match nix::errno::Errno::from_raw(e) {
        nix::errno::Errno::UnknownErrno => e.to_string(),
        known => format!("{known:?}"),
    }
}

/// Why a class was not registered.
#[derive(Debug)]
pub enum RegisterError {
    /// A class of this type is registered already (EEXIST).
    Duplicate {
        /// The type.
        type_name: String,
        /// Where the registered one came from.
        registered_from: PathBuf,
        /// Where the refused one came from.
        refused_from: PathBuf,
    },
    /// `init` returned an error.
    InitFailed {
        /// The type.
        type_name: String,
        /// What init returned, or why it could not be called.
        failure: InitFailure,
    },
}

impl RegisterError {
    /// The errno the reference would return.
    pub fn errno(&self) -> i32 {
        match self {
            RegisterError::Duplicate { .. } => EEXIST,
            RegisterError::InitFailed {
                failure: InitFailure::Errno(e),
                ..
            } => *e,
            RegisterError::InitFailed { .. } => EINVAL,
        }
    }
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::Duplicate {
                type_name,
                registered_from,
                refused_from,
            } => write!(
                f,
                "provider type {type_name:?} from {} is already registered from {}; keeping the first",
                refused_from.display(),
                registered_from.display()
            ),
            // A negative errno is the commonest slip of a C provider (the
            // kernel's convention, not the ABI's): say what was meant.
            RegisterError::InitFailed {
                type_name,
                failure: InitFailure::Errno(e),
            } if *e < 0 => write!(
                f,
                "provider {type_name:?} failed to initialise: init returned {e}: errno values are positive, and {e} looks like -{name} ({}): return {name}",
                strerror(-*e),
                name = errno_name(-*e)
            ),
            RegisterError::InitFailed {
                type_name,
                failure: InitFailure::Errno(e),
            } => write!(
                f,
                "provider {type_name:?} failed to initialise: init returned {e} ({})",
                strerror(*e)
            ),
            RegisterError::InitFailed {
                type_name,
                failure: InitFailure::BadConfig(why),
            } => write!(f, "provider {type_name:?}: bad configuration: {why}"),
        }
    }
}

impl std::error::Error for RegisterError {}

/// Why a class was not unregistered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnregisterError {
    /// No class of this type is registered (EINVAL).
    Unknown(String),
    /// Port operations prepared by it are still in flight (EBUSY).
    Busy(String, usize),
    /// `destroy` returned an error; the class is unregistered regardless.
    DestroyFailed(String, i32),
}

impl UnregisterError {
    /// The errno the reference would return.
    pub fn errno(&self) -> i32 {
        match self {
            UnregisterError::Unknown(_) => EINVAL,
            UnregisterError::Busy(..) => EBUSY,
            UnregisterError::DestroyFailed(_, e) => *e,
        }
    }
}

impl std::fmt::Display for UnregisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnregisterError::Unknown(t) => write!(f, "no provider of type {t:?} is registered"),
            UnregisterError::Busy(t, n) => {
                write!(
                    f,
                    "provider {t:?} still has {n} port operation(s) in flight"
                )
            }
            UnregisterError::DestroyFailed(t, e) => write!(
                f,
                "provider {t:?} failed to destroy: destroy returned {e} ({})",
                strerror(*e)
            ),
        }
    }
}

impl std::error::Error for UnregisterError {}

/// The registered providers. Dropping the registry destroys them all.
#[derive(Default)]
pub struct Registry {
    providers: BTreeMap<String, Provider>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Initialises `class` with its configuration from `config` and
    /// registers it.
    pub fn register(
        &mut self,
        class: ProviderClass,
        config: &ProviderConfig,
    ) -> Result<&Provider, RegisterError> {
        let type_name = class.type_name().to_owned();
        if let Some(existing) = self.providers.get(&type_name) {
            return Err(RegisterError::Duplicate {
                type_name,
                registered_from: existing.origin().to_owned(),
                refused_from: class.origin().to_owned(),
            });
        }
        let provider = Provider::init(class, config.for_type(&type_name)).map_err(|failure| {
            RegisterError::InitFailed {
                type_name: type_name.clone(),
                failure,
            }
        })?;
        Ok(self.providers.entry(type_name).or_insert(provider))
    }

    /// Calls `destroy` on the class of `type_name` and forgets it. A class
    /// is destroyed at most once: if `destroy` fails, the class is still
    /// unregistered, but its host context and library are leaked rather than
    /// freed, since the provider may still be holding on to them.
    pub fn unregister(&mut self, type_name: &str) -> Result<(), UnregisterError> {
        let provider = self
            .providers
            .get(type_name)
            .ok_or_else(|| UnregisterError::Unknown(type_name.to_owned()))?;
        let in_flight = provider.operations_in_flight();
        if in_flight > 0 {
            return Err(UnregisterError::Busy(type_name.to_owned(), in_flight));
        }
        let result = provider.destroy();
        let provider = self.providers.remove(type_name).expect("found above");
        result.map_err(|e| {
            std::mem::forget(provider);
            UnregisterError::DestroyFailed(type_name.to_owned(), e)
        })
    }

    /// The class of `type_name`, if registered.
    pub fn get(&self, type_name: &str) -> Option<&Provider> {
        self.providers.get(type_name)
    }

    /// True if any class is registered.
    pub fn has_providers(&self) -> bool {
        !self.providers.is_empty()
    }

    /// Registered classes, by type.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// Calls every class's `run`; true if any reported a change. Every class
    /// runs, even after one reported a change.
    pub fn run_all(&self) -> bool {
        self.providers
            .values()
            .fold(false, |changed, p| p.run() | changed)
    }

    /// Unregisters every class, logging failures. A class with operations
    /// in flight cannot be destroyed; it is leaked, library and all, rather
    /// than freed under the provider's feet. This only happens at shutdown.
    pub fn destroy_all(&mut self) {
        let types: Vec<String> = self.providers.keys().cloned().collect();
        for t in types {
            match self.unregister(&t) {
                Ok(()) => log::debug!("provider {t:?} destroyed"),
                Err(e @ UnregisterError::Busy(..)) => {
                    log::warn!("{e}; leaving it loaded");
                    if let Some(p) = self.providers.remove(&t) {
                        std::mem::forget(p);
                    }
                }
                Err(e) => log::warn!("{e}"),
            }
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.destroy_all();
    }
}
