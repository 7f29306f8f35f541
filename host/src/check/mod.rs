//! `vif-plug-host check`: the conformance run a vendor does before shipping a
//! provider. It loads each file in a worker process, as the agent does by
//! default, drives every class through the whole port life cycle on sample
//! ports, and reports each step and each violation of the contract. A
//! provider that crashes or hangs gets a FAIL line naming the callback and
//! the step; `check` itself never dies of it and goes on with the next
//! file.
//!
//! - [`report`]: the report's lines, totals, and the provider errors heard;
//! - [`sample`]: the sample ports, as the agent would describe them;
//! - [`drive`]: the steps of one class's life cycle;
//! - [`ending`]: what a library leaves behind once its classes are gone.

mod drive;
mod ending;
mod report;
mod sample;

pub use report::{RecordingLogger, Summary};
pub use sample::{SamplePorts, DEFAULT_LPORTS, FOREIGN_OPTION};

use crate::config::ProviderConfig;
use crate::provider::InitFailure;
use crate::registry::RegisterError;
use crate::worker::process::{Limits, Reply, WorkerProcess, LOAD_LIMITS};
use crate::worker::protocol::{FromWorker, ToWorker};
use report::{take_provider_errors, Reporter};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Callbacks slower than this get a WARN line.
pub const SLOW: Duration = Duration::from_millis(10);

/// Inputs to a check run.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Configuration given to the providers' `init`.
    pub config: ProviderConfig,
    /// The sample ports.
    pub ports: SamplePorts,
    /// The program started as the worker (`vif-plug-host` itself).
    pub worker_exe: PathBuf,
    /// Each callback's deadline; past it the step FAILs and the worker is
    /// killed.
    pub deadline: Duration,
    /// Declining every CREATE is not a FAIL (`--allow-decline`).
    pub allow_decline: bool,
}

/// Checks each file in turn and writes a readable report to `out`.
pub fn run(
    files: &[impl AsRef<Path>],
    opts: &CheckOptions,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let mut r = Reporter {
        out,
        summary: Summary::default(),
        step_failed: false,
    };
    // Every type seen so far, and the file it came from: the agent
    // registers the first and refuses the others.
    let mut seen: Vec<(String, PathBuf)> = Vec::new();
    // A file named twice (or through a symlink) is loaded once by the
    // agent, and checked once here.
    let mut checked: Vec<(PathBuf, &Path)> = Vec::new();
    for file in files {
        let file = file.as_ref();
        if let Ok(real) = std::fs::canonicalize(file) {
            if let Some((_, first)) = checked.iter().find(|(c, _)| *c == real) {
                r.summary.files += 1;
                writeln!(r.out, "{}", crate::text::path(file))?;
                r.line(
                    1,
                    "note",
                    &format!(
                        "the same file as {}, checked above: the agent loads a file once",
                        crate::text::path(first)
                    ),
                )?;
                continue;
            }
            checked.push((real, file));
        }
        check_file(file, opts, &mut seen, &mut r)?;
    }
    let s = r.summary;
    writeln!(
        r.out,
        "\n{}: {} file(s), {} class(es), {} violation(s), {} warning(s), {} answer(s) validated ({} declined)",
        if s.passed() { "PASS" } else { "FAIL" },
        s.files,
        s.classes,
        s.violations,
        s.warnings,
        s.answers,
        s.declined
    )?;
    Ok(s)
}

/// The limits of each request to the worker.
fn limits(opts: &CheckOptions) -> Limits<'static> {
    Limits {
        per_call: opts.deadline,
        slow: SLOW,
        interrupted: None,
    }
}

fn check_file(
    path: &Path,
    opts: &CheckOptions,
    seen: &mut Vec<(String, PathBuf)>,
    r: &mut Reporter<'_>,
) -> io::Result<()> {
    r.summary.files += 1;
    writeln!(r.out, "{}", crate::text::path(path))?;
    take_provider_errors();
    let (mut worker, loaded) = match WorkerProcess::spawn(&opts.worker_exe, path, &LOAD_LIMITS) {
        Ok(w) => w,
        Err(Ok(why)) => return r.fail(1, &why),
        Err(Err(f)) => {
            return r.fail(
                1,
                &format!("loading the library: the worker {}", f.what.short()),
            )
        }
    };
    let threads_at_start = ending::threads_of(worker.pid());
    r.line(
        1,
        "ok",
        &format!(
            "loaded: ABI {}.{}, struct sizes match{}",
            loaded.abi_major,
            loaded.abi_minor,
            if loaded.rust_layout_checked {
                ", Rust type layout matches"
            } else {
                " (no Rust layout exported: a C provider)"
            }
        ),
    )?;
    if loaded.classes.is_empty() {
        return r.fail(1, "vif_plug_provider_classes is empty: nothing to load");
    }
    // Register every class first, as the agent does, so that two classes
    // with the same type are caught; then drive each; then destroy each.
    let mut types: Vec<String> = Vec::new();
    for class in &loaded.classes {
        r.summary.classes += 1;
        match class {
            Err(e) => r.fail(1, e)?,
            Ok(t) if types.contains(t) => r.fail(
                1,
                &format!(
                    "provider type {t:?} is exported twice by this file: the agent registers the first class and refuses the second"
                ),
            )?,
            Ok(t) => {
                if let Some((_, other)) = seen.iter().find(|(s, _)| s == t) {
                    // Checked all the same: it is a separate process.
                    let other = crate::text::path(other);
                    r.fail(
                        1,
                        &format!(
                            "provider type {t:?} is also exported by {other} (checked above): given both, the agent registers the first file's and refuses this one"
                        ),
                    )?;
                } else {
                    seen.push((t.clone(), path.to_owned()));
                }
                types.push(t.clone());
            }
        }
    }
    let init = ToWorker::Init {
        classes: types
            .iter()
            .map(|t| (t.clone(), opts.config.for_type(t).to_vec()))
            .collect(),
    };
    let started = match worker.call(&init, &limits(opts)) {
        Ok(Reply {
            msg: FromWorker::Started(s),
            slow,
        }) => {
            for s in slow {
                r.warn(&format!(
                    "{} of {:?} took {} ms (more than {} ms)",
                    s.mark.callback,
                    s.mark.provider,
                    s.took.as_millis(),
                    SLOW.as_millis()
                ))?;
            }
            s
        }
        Ok(other) => return r.fail(1, &format!("the worker answered init with {:?}", other.msg)),
        Err(f) => {
            let who = f
                .during
                .as_ref()
                .map_or_else(String::new, |m| format!("class {:?}: ", m.provider));
            r.fail(
                1,
                &format!("{who}{}", crate::dispatch::library::describe_failure(&f)),
            )?;
            // The worker answers for all classes at once: what the others
            // said is all there is of them.
            for (t, line) in take_provider_errors() {
                match report::violation(&line) {
                    Some(v) => r.fail(1, &format!("init: provider {t:?} {v}"))?,
                    None => r.note(&format!("provider {t:?} said: {line}"))?,
                }
            }
            return r.note(if types.len() > 1 {
                "the worker is gone before it answered for this file's classes: what init returned for the others is unknown, and the rest of this file is not checked"
            } else {
                "the worker is gone: the rest of this file is not checked"
            });
        }
    };
    // What each class said while it initialised: a panic the SDK caught
    // is named in the class's own FAIL line, once.
    let heard = take_provider_errors();
    let mut ready = Vec::new();
    for (t, result) in started {
        let mine = || heard.iter().filter(|(p, _)| *p == t).map(|(_, l)| l);
        match result {
            Ok(maintained) => {
                // A class that initialised may still have broken the
                // contract: bad maintained options, a panic the SDK caught
                // in a thread of its own. Reported in the class's block.
                let breaches = mine()
                    .filter_map(|l| report::violation(l))
                    .map(|v| {
                        let step = if v.contains(crate::provider::MAINTAINED_OPTION) {
                            drive::InitStep::MaintainedOptions
                        } else {
                            drive::InitStep::Init
                        };
                        (step, v)
                    })
                    .collect::<Vec<_>>();
                ready.push((t, maintained, breaches))
            }
            Err(e) => {
                let said: Vec<String> = mine()
                    .map(|l| match report::violation(l) {
                        Some(v) => format!("it {v}"),
                        None => l.clone(),
                    })
                    .collect();
                let failure = match e.why {
                    Some(why) => InitFailure::BadConfig(why),
                    None => InitFailure::Errno(e.errno),
                };
                let e = RegisterError::InitFailed {
                    type_name: t,
                    failure,
                };
                if said.is_empty() {
                    r.fail(1, &e.to_string())?
                } else {
                    r.fail(1, &format!("{e}: {}", said.join("; ")))?
                }
            }
        }
    }
    for t in opts.config.types() {
        // A refused class whose type could be read provides it too.
        if !types.iter().any(|x| x == t) && !loaded.refused_types.iter().any(|x| x == t) {
            r.line(
                1,
                "note",
                &format!("--provider-config given for {t:?}, which this file does not provide"),
            )?;
        }
    }
    let mut driver = drive::Driver {
        worker: &mut worker,
        opts,
        next_id: 0,
    };
    for (type_name, maintained, breaches) in ready {
        writeln!(r.out, "  class {type_name:?}")?;
        if driver
            .drive(&type_name, &maintained, &breaches, r)?
            .is_err()
        {
            return r.note("the worker is gone: the rest of this file is not checked");
        }
        match driver.destroy(&type_name, r)? {
            Ok(()) => {}
            Err(()) => return r.note("the worker is gone: the rest of this file is not checked"),
        }
    }
    ending::end_worker(&mut worker, threads_at_start, opts, r)
}
