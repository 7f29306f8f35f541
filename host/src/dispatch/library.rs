//! One provider library in its worker process, over the worker's lives:
//! started and initialised, restarted with a growing back-off after it
//! crashes or hangs, and left down, with one clear line, when it cannot be
//! brought back up.

use super::ops::{SettleQueue, Settlements};
use crate::worker::process::{Failure, Limits, Reply, WorkerFailure, WorkerProcess};
use crate::worker::protocol::{FromWorker, ToWorker};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The first wait before a crashed worker is started again.
pub const FIRST_RESTART: Duration = Duration::from_millis(250);
/// The longest wait before a restart.
pub const MAX_RESTART: Duration = Duration::from_secs(30);
/// Consecutive failed restarts (load or `init` failing or crashing) after
/// which a library is left down.
pub const GIVE_UP_AFTER: u32 = 5;
/// A worker up this long without a failure starts the back-off over.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The wait before restart number `n` (1-based) of a run of failures:
/// 250 ms, doubling, at most 30 s.
pub fn restart_backoff(n: u32) -> Duration {
    (FIRST_RESTART * 2u32.saturating_pow(n.saturating_sub(1).min(16))).min(MAX_RESTART)
}

/// What the agent says about its workers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The program to start as a worker (this one).
    pub exe: PathBuf,
    /// Each callback's deadline (`--provider-timeout`).
    pub per_call: Duration,
    /// Calls slower than this are reported.
    pub slow: Duration,
}

/// A class of the library, as registered.
#[derive(Debug, Clone)]
pub struct Class {
    /// Its type.
    pub type_name: String,
    /// Its `--provider-config` pairs.
    pub config: Vec<(String, String)>,
    /// Its maintained interface option keys, read after the first `init`.
    pub maintained: Vec<String>,
}

/// Where the worker stands.
pub enum State {
    /// Running since then.
    Up(WorkerProcess, Instant),
    /// Gone; started again at `until`.
    Down {
        /// When to restart.
        until: Instant,
    },
    /// Left down: it could not be brought back up.
    GivenUp,
}

/// One library and its worker.
pub struct Library {
    /// The file.
    pub path: PathBuf,
    /// The program started as its worker.
    exe: PathBuf,
    /// Its registered classes.
    pub classes: Vec<Class>,
    /// The worker.
    pub state: State,
    /// Settlements owed to the current worker.
    pub(crate) settlements: SettleQueue,
    /// Operations held by the current worker: id → logical port, to name
    /// the port of a `port_finish` or `port_ctx_destroy` that crashes.
    pub held: HashMap<u64, String>,
    /// Times the worker was started again.
    pub restarts: u32,
    /// Consecutive failures, for the restart back-off.
    failures: u32,
    /// Failed restarts since the worker was last up.
    failed_restarts: u32,
    /// Whether the current worker answered a request since its `init`.
    served: bool,
    next_id: u64,
    /// The minor ABI version the library was built for.
    pub abi_minor: u32,
}

/// What a restart attempt came to.
pub enum Restart {
    /// Up again.
    Up,
    /// Failed: tried again after this long.
    Failed(String, Duration),
    /// Failed once too often: left down.
    GaveUp(String),
}

impl Library {
    /// A library whose worker is up and whose `classes` were initialised.
    pub fn new(exe: PathBuf, path: PathBuf, classes: Vec<Class>, worker: WorkerProcess) -> Library {
        Library {
            exe,
            path,
            classes,
            state: State::Up(worker, Instant::now()),
            settlements: SettleQueue::default(),
            held: HashMap::new(),
            restarts: 0,
            failures: 0,
            failed_restarts: 0,
            served: false,
            next_id: 0,
            abi_minor: 0,
        }
    }

    /// The classes' types.
    pub fn types(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.type_name.clone()).collect()
    }

    /// The worker answered a request (`run`, a batch, a settlement).
    pub fn answered(&mut self) {
        self.served = true;
    }

    /// A fresh operation id.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The current worker's life (settlements of older lives are void).
    pub fn generation(&self) -> u64 {
        self.settlements.borrow().generation
    }

    /// The running worker, if any.
    pub fn worker(&mut self) -> Option<&mut WorkerProcess> {
        match &mut self.state {
            State::Up(w, _) => Some(w),
            _ => None,
        }
    }

    /// Whether the worker is left down for good.
    pub fn given_up(&self) -> bool {
        matches!(self.state, State::GivenUp)
    }

    /// The worker failed at `now` (it is already dead or killed): what it
    /// held is forgotten, and it is started again after the returned wait.
    /// `port_fault`: the failure was in a call for a logical port, which is
    /// quarantined.
    pub fn went_down(&mut self, now: Instant, port_fault: bool) -> Duration {
        if let State::Up(_, since) = self.state {
            // A worker that answered since it started, and failed in one
            // port's call (that port is held back), is sound: it comes back
            // at once. A failure no port explains (in run, or with no call
            // running) backs off, whatever was answered before.
            if now.duration_since(since) > HEALTHY_AFTER || (self.served && port_fault) {
                self.failures = 0;
            }
        }
        self.served = false;
        self.failures += 1;
        let wait = restart_backoff(self.failures);
        // Dropping the handle reaps the dead worker.
        self.state = State::Down { until: now + wait };
        self.forget_life();
        wait
    }

    fn forget_life(&mut self) {
        let mut s = self.settlements.borrow_mut();
        *s = Settlements {
            generation: s.generation + 1,
            ..Settlements::default()
        };
        self.held.clear();
    }

    /// When a restart is due, if the worker is down.
    pub fn restart_due(&self) -> Option<Instant> {
        match self.state {
            State::Down { until } => Some(until),
            _ => None,
        }
    }

    /// Starts the worker again and initialises every class as at start-up,
    /// loading and each `init` within `limits` (the agent's loop waits).
    pub fn restart(&mut self, limits: &Limits<'_>) -> Restart {
        self.restarts += 1;
        crate::coverage::inc(crate::coverage::Counter::WorkerRestart);
        match self.start_and_init(limits) {
            Ok(worker) => {
                self.failed_restarts = 0;
                self.state = State::Up(worker, Instant::now());
                Restart::Up
            }
            Err(why) => {
                self.failed_restarts += 1;
                if self.failed_restarts >= GIVE_UP_AFTER {
                    self.state = State::GivenUp;
                    return Restart::GaveUp(why);
                }
                // The wait counts from the failure, not from before the
                // attempt (which may have taken its whole deadline).
                let wait = self.went_down(Instant::now(), false);
                Restart::Failed(why, wait)
            }
        }
    }

    fn start_and_init(&self, limits: &Limits<'_>) -> Result<WorkerProcess, String> {
        let (mut worker, loaded) = match WorkerProcess::spawn(&self.exe, &self.path, limits) {
            Ok(w) => w,
            Err(Ok(why)) => return Err(why),
            Err(Err(f)) => return Err(format!("loading it: the worker {}", f.what.short())),
        };
        for c in &self.classes {
            if !loaded
                .classes
                .iter()
                .any(|l| l.as_deref() == Ok(c.type_name.as_str()))
            {
                return Err(format!("the library no longer has class {:?}", c.type_name));
            }
        }
        let init = ToWorker::Init {
            classes: self
                .classes
                .iter()
                .map(|c| (c.type_name.clone(), c.config.clone()))
                .collect(),
        };
        match worker.call(&init, limits) {
            Ok(Reply {
                msg: FromWorker::Started(results),
                ..
            }) => {
                for (t, r) in results {
                    match r {
                        Err(e) => {
                            return Err(format!(
                                "init of {t:?} returned {}{}",
                                e.errno,
                                e.why.map(|w| format!(" ({w})")).unwrap_or_default()
                            ))
                        }
                        Ok(m) => {
                            let before = self.classes.iter().find(|c| c.type_name == t);
                            if before.is_some_and(|c| c.maintained != m) {
                                log::warn!(
                                    "provider {t:?} maintains other interface options after its restart ({}); the agent keeps the first list ({})",
                                    m.join(","),
                                    before.map(|c| c.maintained.join(",")).unwrap_or_default()
                                );
                            }
                        }
                    }
                }
                Ok(worker)
            }
            Ok(other) => Err(format!("the worker answered init with {:?}", other.msg)),
            Err(f) => Err(describe_failure(&f)),
        }
    }

    /// The library's file, for messages.
    pub fn file(&self) -> &Path {
        &self.path
    }
}

/// "init crashed (SIGABRT)", "run did not return within 1000 ms".
pub fn describe_failure(f: &Failure) -> String {
    match (&f.during, &f.what) {
        (Some(m), w) => format!("{} {}", m.callback, w.short()),
        (None, w @ WorkerFailure::Died(_)) => {
            format!("the worker {} while no callback was running", w.short())
        }
        (None, w) => format!("the worker {}", w.short()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_doubling_up_to_a_cap() {
        let table = [
            (1, 250),
            (2, 500),
            (3, 1000),
            (4, 2000),
            (8, 30_000),
            (40, 30_000),
        ];
        for (n, ms) in table {
            assert_eq!(restart_backoff(n), Duration::from_millis(ms), "restart {n}");
        }
    }
}
