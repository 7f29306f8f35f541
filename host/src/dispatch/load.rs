//! Starting the workers: one per library file, each class registered if
//! its `init` succeeded, a type registered once (the first file keeps it),
//! one log line per refusal.

use super::answers::log_slow;
use super::library::{describe_failure, Class, Library, Settings};
use super::workers::Workers;
use crate::config::ProviderConfig;
use crate::worker::process::{Limits, Reply, WorkerProcess, LOAD_LIMITS};
use crate::worker::protocol::{FromWorker, ToWorker};
use std::collections::BTreeMap;
use std::path::PathBuf;

impl Workers {
    /// Starts one worker per library file, registers the classes whose
    /// `init` succeeded (a type already registered from an earlier file is
    /// refused, as in process), and logs one line per refusal.
    pub fn load(files: &[PathBuf], config: &ProviderConfig, settings: Settings) -> Workers {
        let mut libs: Vec<Library> = Vec::new();
        let mut types: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
        for file in files {
            let (mut worker, loaded) = match WorkerProcess::spawn(&settings.exe, file, &LOAD_LIMITS)
            {
                Ok(w) => w,
                Err(Ok(why)) => {
                    log::error!("{why}");
                    continue;
                }
                Err(Err(f)) => {
                    log::error!(
                        "refusing provider {}: {}",
                        file.display(),
                        describe_failure(&f)
                    );
                    continue;
                }
            };
            if loaded.classes.is_empty() {
                log::warn!("provider {} exports no classes", file.display());
            }
            let mut wanted = Vec::new();
            for class in &loaded.classes {
                match class {
                    Err(e) => log::error!("{e}"),
                    Ok(t) => match types.get(t) {
                        Some((i, _)) => log::error!(
                            "provider type {t:?} from {} is already registered from {}; keeping the first",
                            file.display(),
                            libs[*i].path.display()
                        ),
                        None if wanted.contains(t) => log::error!(
                            "provider type {t:?} appears twice in {}; keeping the first",
                            file.display()
                        ),
                        None => wanted.push(t.clone()),
                    },
                }
            }
            if wanted.is_empty() {
                continue;
            }
            let init = ToWorker::Init {
                classes: wanted
                    .iter()
                    .map(|t| (t.clone(), config.for_type(t).to_vec()))
                    .collect(),
            };
            let limits = Limits {
                per_call: settings.per_call,
                slow: settings.slow,
                interrupted: None,
            };
            let results = match worker.call(&init, &limits) {
                Ok(Reply {
                    msg: FromWorker::Started(r),
                    slow,
                }) => {
                    log_slow(&slow, &|_| None, settings.slow);
                    r
                }
                Ok(other) => {
                    log::error!(
                        "refusing provider {}: its worker answered init with {:?}",
                        file.display(),
                        other.msg
                    );
                    continue;
                }
                Err(f) => {
                    log::error!(
                        "provider {} from {} not registered: {}{}",
                        f.during
                            .as_ref()
                            .map_or("(unknown)".to_owned(), |m| format!("{:?}", m.provider)),
                        file.display(),
                        describe_failure(&f),
                        if wanted.len() > 1 {
                            format!(
                                "; the library's other classes ({}) go with it",
                                wanted.join(", ")
                            )
                        } else {
                            String::new()
                        }
                    );
                    continue;
                }
            };
            let mut classes = Vec::new();
            for (t, r) in results {
                match r {
                    Ok(maintained) => {
                        log::info!(
                            "registered provider {t:?} from {} (maintains {} interface option(s), worker pid {})",
                            file.display(),
                            maintained.len(),
                            worker.pid()
                        );
                        classes.push(Class {
                            config: config.for_type(&t).to_vec(),
                            type_name: t,
                            maintained,
                        });
                    }
                    Err(e) => {
                        let err = crate::registry::RegisterError::InitFailed {
                            type_name: t,
                            failure: match e.why {
                                Some(why) => crate::provider::InitFailure::BadConfig(why),
                                None => crate::provider::InitFailure::Errno(e.errno),
                            },
                        };
                        log::error!("{err}");
                    }
                }
            }
            if classes.is_empty() {
                continue;
            }
            for c in &classes {
                types.insert(c.type_name.clone(), (libs.len(), c.maintained.clone()));
            }
            let mut lib = Library::new(settings.exe.clone(), file.clone(), classes, worker);
            lib.abi_minor = loaded.abi_minor;
            libs.push(lib);
        }
        Workers::new(settings, types, libs)
    }
}
