//! Finding, checking and mapping provider libraries.
//!
//! Every refusal is one line naming the file and the reason, and never stops
//! the other files from loading.

mod abi_check;
mod file_checks;
mod library;
mod symbols;

pub use library::LoadedLibrary;

use crate::config::ProviderConfig;
use crate::registry::Registry;
use std::io;
use std::path::{Path, PathBuf};

/// Whether libraries stay mapped after they are released: set by `check
/// --keep-loaded` (and passed on to its workers), so that valgrind and
/// AddressSanitizer, which report leaks at exit, can still name the
/// provider's functions.
static KEEP_LOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, libraries are opened with `RTLD_NODELETE` (dlopen(3)):
/// their `dlclose` leaves them mapped until the process exits.
pub fn keep_loaded() {
    KEEP_LOADED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`keep_loaded`] was called in this process.
pub fn keeps_loaded() -> bool {
    KEEP_LOADED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Where providers are loaded from when neither `--provider` nor
/// `--provider-dir` is given.
pub const DEFAULT_PROVIDER_DIR: &str = "/usr/lib/vif-plug-host/providers";

/// Why a library was not loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(PathBuf, io::Error),
    /// A provider directory could not be listed.
    ListDir(PathBuf, io::Error),
    /// It could have been planted or altered by someone else.
    Untrusted {
        /// The file given.
        path: PathBuf,
        /// What is wrong, naming the file or directory and its owner/mode.
        reason: String,
    },
    /// It is not a loadable shared object.
    NotSharedObject(PathBuf, String),
    /// The dynamic loader refused it.
    Dlopen(PathBuf, String),
    /// A required symbol is not exported.
    MissingSymbol(PathBuf, &'static str),
    /// It defines the symbol but does not export it (hidden or local).
    NotExported(PathBuf, &'static str),
    /// Its ABI version, struct sizes or layout do not match this host.
    Incompatible(PathBuf, String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "refusing provider {}: {e}", crate::text::path(p)),
            LoadError::ListDir(p, e) => {
                write!(f, "cannot list provider directory {}: {e}", crate::text::path(p))
            }
            LoadError::Untrusted { path, reason } => {
                write!(f, "refusing provider {}: {reason}", crate::text::path(path))
            }
            LoadError::NotSharedObject(p, why) => {
                write!(
                    f,
                    "refusing provider {}: not a shared object: {why}",
                    crate::text::path(p)
                )
            }
            LoadError::Dlopen(p, why) => write!(f, "refusing provider {}: {why}", crate::text::path(p)),
            LoadError::MissingSymbol(p, sym) => write!(
                f,
                "refusing provider {}: it does not export {sym}{}",
                crate::text::path(p),
                if *sym == "vif_plug_provider_abi" {
                    " (define it with VIF_PLUG_DEFINE_ABI_INFO, or export_providers! in Rust)"
                } else {
                    ""
                }
            ),
            LoadError::NotExported(p, sym) => write!(
                f,
                "refusing provider {}: {sym} is defined but not exported (built with -fvisibility=hidden? the header's declarations give it default visibility from ABI 1.1 on: include vif-plug-provider.h where it is defined, and do not make it static)",
                crate::text::path(p)
            ),
            LoadError::Incompatible(p, why) => {
                write!(f, "refusing provider {}: {why}", crate::text::path(p))
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Checks `path` and maps it. The library stays mapped while any class from
/// it is alive.
pub fn load_library(path: &Path) -> Result<LoadedLibrary, LoadError> {
    let real = file_checks::check_trusted(path)?;
    file_checks::check_elf(path, &real)?;
    library::open(path, &real)
}

/// Where to look for providers.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Individual files (`--provider`).
    pub files: Vec<PathBuf>,
    /// Directories whose `*.so` files are loaded (`--provider-dir`).
    pub dirs: Vec<PathBuf>,
}

impl Sources {
    /// The given sources, or [`DEFAULT_PROVIDER_DIR`] if none were given.
    pub fn or_default(mut self) -> Self {
        if self.files.is_empty() && self.dirs.is_empty() {
            self.dirs.push(PathBuf::from(DEFAULT_PROVIDER_DIR));
        }
        self
    }

    /// The files to load, in order: the `--provider` files, then each
    /// directory's `*.so` files sorted by name; and the directories that
    /// could not be listed.
    pub fn files(&self) -> (Vec<PathBuf>, Vec<LoadError>) {
        let mut files = self.files.clone();
        let mut errors = Vec::new();
        for dir in &self.dirs {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    let mut found = Vec::new();
                    for entry in entries {
                        match entry {
                            Ok(e) => found.push(e.path()),
                            Err(e) => errors.push(LoadError::ListDir(dir.clone(), e)),
                        }
                    }
                    found.retain(|p| p.extension().is_some_and(|x| x == "so"));
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(LoadError::ListDir(dir.clone(), e)),
            }
        }
        (files, errors)
    }
}

/// The provider files of `sources`, in load order, each once (the same
/// file named twice, by `--provider` and `--provider-dir` or through a
/// symlink, is loaded once); directories that cannot be listed are logged.
pub fn provider_files(sources: &Sources) -> Vec<PathBuf> {
    let (files, errors) = sources.files();
    for e in errors {
        log::error!("{e}");
    }
    let mut seen = std::collections::HashSet::new();
    files
        .into_iter()
        .filter(|file| match std::fs::canonicalize(file) {
            Ok(real) => {
                let first = seen.insert(real);
                if !first {
                    log::debug!("provider {} already loaded; skipped", file.display());
                }
                first
            }
            Err(_) => true,
        })
        .collect()
}

/// Loads every provider file and registers its classes, logging one line per
/// refusal. Returns how many classes were registered.
pub fn load_into(registry: &mut Registry, sources: &Sources, config: &ProviderConfig) -> usize {
    let registered = load_files_into(registry, &provider_files(sources), config);
    for t in config.types() {
        if registry.get(t).is_none() {
            log::warn!(
                    "--provider-config given for {t:?}, but no provider of that type is registered (none of the files has it, or it was refused: see above)"
                );
        }
    }
    registered
}

/// Loads `files` (as [`provider_files`] gives them) in process and
/// registers their classes, logging one line per refusal. Returns how many
/// classes were registered.
pub fn load_files_into(
    registry: &mut Registry,
    files: &[PathBuf],
    config: &ProviderConfig,
) -> usize {
    let mut registered = 0;
    for file in files {
        let lib = match load_library(file) {
            Ok(lib) => lib,
            Err(e) => {
                log::error!("{e}");
                continue;
            }
        };
        if lib.classes.is_empty() {
            log::warn!("provider {} exports no classes", file.display());
        }
        for class in lib.classes {
            let class = match class {
                Ok(c) => c,
                Err((i, e)) => {
                    log::error!("refusing class #{i} of provider {}: {e}", file.display());
                    continue;
                }
            };
            match registry.register(class, config) {
                Ok(p) => {
                    registered += 1;
                    log::info!(
                        "registered provider {:?} from {} (maintains {} interface option(s))",
                        p.type_name(),
                        file.display(),
                        p.maintained_options().len()
                    );
                }
                Err(e) => log::error!("{e}"),
            }
        }
    }
    registered
}
