//! The providers in worker processes: one [`Library`] per file, batched
//! calls, crash and hang handling, restarts.
//!
//! Batching: [`Workers::prefetch`] sends every `port_prepare` the agent
//! will make in an iteration, one message per worker (all workers at work
//! at once), and keeps the answers; [`Workers::prepare`] then takes the
//! answer to an identical request from there, and only a request nobody
//! foresaw (a replacement decided on an answer) costs a round trip of its
//! own. Settlements are queued by the operations and sent by
//! [`Workers::flush`], one message per worker.

use super::answers::{log_slow, to_call, validate};
use super::library::{describe_failure, Library, Restart, Settings, State};
use super::ops::{CreateOp, RemoveOp};
use crate::provider::{PortRequest, PrepareError};
use crate::worker::process::{Failure, Limits, Reply};
use crate::worker::protocol::{Answer, FromWorker, Op, ToWorker};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Each worker's `destroy` at shutdown has at most this long (or
/// `--provider-timeout` if shorter).
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(1);

/// The most `port_prepare` calls sent to a worker in one message, so that
/// a batch's answers stay far below the frame limit.
pub const MAX_BATCH: usize = 1000;

/// Something the agent must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// A worker died or hung and was killed. The agent logs one line with
    /// this and the quarantine of `lports`.
    Crashed {
        /// The class whose callback was running (or every class of the
        /// library when none was).
        provider: String,
        /// The library.
        library: PathBuf,
        /// "port_prepare crashed (SIGSEGV)", "run did not return within
        /// 1000 ms".
        what: String,
        /// The logical ports of the call in flight.
        lports: Vec<String>,
        /// When the worker is started again.
        restart_in: Duration,
    },
    /// A worker is up again: everything it held is gone, so every port of
    /// its classes is to be decided afresh.
    Restarted {
        /// Its classes.
        types: Vec<String>,
        /// The library.
        library: PathBuf,
        /// Its new process id.
        pid: u32,
        /// Restarts so far.
        restarts: u32,
    },
    /// A library is left down; its ports are kept as they are.
    GaveUp {
        /// Its classes.
        types: Vec<String>,
    },
}

/// A prepared answer, before the agent takes it.
enum Prepared {
    Create(Box<CreateOp>),
    Remove(RemoveOp),
}

type Key = (String, Op, String);

/// The prefetched answers to one key, each with the request it answers.
type Answers = Vec<(PortRequest, Result<Prepared, PrepareError>)>;

struct Inner {
    libs: Vec<Library>,
    /// Prefetched answers by (type, op, logical port), with the request
    /// each answers.
    cache: HashMap<Key, Answers>,
    events: Vec<WorkerEvent>,
}

/// Every library's worker.
pub struct Workers {
    settings: Settings,
    /// Registered types: the library serving each, and its maintained
    /// options.
    types: BTreeMap<String, (usize, Vec<String>)>,
    inner: RefCell<Inner>,
    interrupt: Option<Arc<AtomicI32>>,
}

impl Workers {
    /// The workers of `libs`, serving `types` (type → library index and
    /// maintained options), as `load` started them.
    pub(super) fn new(
        settings: Settings,
        types: BTreeMap<String, (usize, Vec<String>)>,
        libs: Vec<Library>,
    ) -> Workers {
        Workers {
            settings,
            types,
            inner: RefCell::new(Inner {
                libs,
                cache: HashMap::new(),
                events: Vec::new(),
            }),
            interrupt: None,
        }
    }

    /// Raised by a stop: waits on workers end, and the worker is killed.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicI32>) {
        self.interrupt = Some(flag);
    }

    /// Registered types.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    /// Whether `t` is registered and its library not given up.
    pub fn is_loaded(&self, t: &str) -> bool {
        self.types
            .get(t)
            .is_some_and(|(i, _)| !self.inner.borrow().libs[*i].given_up())
    }

    /// The maintained options of `t`.
    pub fn maintained(&self, t: &str) -> Option<&[String]> {
        self.types.get(t).map(|(_, m)| m.as_slice())
    }

    /// The file `t` came from.
    pub fn origin(&self, t: &str) -> Option<PathBuf> {
        self.types
            .get(t)
            .map(|(i, _)| self.inner.borrow().libs[*i].path.clone())
    }

    /// The worker pid and restarts of `t`'s library (pid 0 while down).
    pub fn worker_info(&self, t: &str) -> Option<(u32, u32)> {
        let (i, _) = self.types.get(t)?;
        let mut inner = self.inner.borrow_mut();
        let lib = &mut inner.libs[*i];
        let restarts = lib.restarts;
        Some((lib.worker().map_or(0, |w| w.pid()), restarts))
    }

    /// The inventory of `t` (ABI 1.1 `describe`), asked of its worker:
    /// `None` if the class has none. A worker that fails meanwhile is
    /// handled as in any call (restarted), and the error says what
    /// happened.
    pub fn describe(&self, t: &str) -> Result<Option<Vec<String>>, String> {
        let Some((i, _)) = self.types.get(t) else {
            return Err(format!("no provider of type {t:?} is registered"));
        };
        let i = *i;
        let stop = || self.stopping();
        let limits = self.limits_until(&stop);
        let mut inner = self.inner.borrow_mut();
        let Some(w) = inner.libs[i].worker() else {
            return Err(format!(
                "the worker of provider {t:?} is down (see the log)"
            ));
        };
        match w.call(&ToWorker::Describe(t.to_owned()), &limits) {
            Ok(Reply {
                msg: FromWorker::Described(lines),
                slow,
            }) => {
                inner.libs[i].answered();
                log_slow(&slow, &|_| None, limits.slow);
                Ok(lines)
            }
            Ok(other) => {
                self.garbled(&mut inner, i, other.msg);
                Err(format!(
                    "the worker of provider {t:?} answered out of turn; restarting it"
                ))
            }
            Err(f) => {
                let what = describe_failure(&f);
                self.failed(&mut inner, i, f, &HashMap::new());
                Err(format!("provider {t:?}: {what}"))
            }
        }
    }

    /// The ABI minor version of `t`'s library.
    pub fn abi_minor(&self, t: &str) -> Option<u32> {
        let (i, _) = self.types.get(t)?;
        Some(self.inner.borrow().libs[*i].abi_minor)
    }

    fn limits(&self) -> (Duration, Duration) {
        (self.settings.per_call, self.settings.slow)
    }

    /// The limits of a request: the configured deadline and slow-call
    /// threshold, cut short by `stop`.
    fn limits_until<'a>(&self, stop: &'a dyn Fn() -> bool) -> Limits<'a> {
        Limits {
            per_call: self.settings.per_call,
            slow: self.settings.slow,
            interrupted: Some(stop),
        }
    }

    /// Whether the agent is stopping (every wait on a worker ends then).
    fn stopping(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst) != 0)
    }

    /// Handles a failed request to library `i`: the worker is down, the
    /// event recorded.
    fn failed(&self, inner: &mut Inner, i: usize, f: Failure, lport_of: &HashMap<u64, String>) {
        let lib = &mut inner.libs[i];
        if matches!(f.what, crate::worker::process::WorkerFailure::Interrupted) {
            lib.went_down(Instant::now(), false);
            return;
        }
        log_slow(
            &f.slow,
            &|id| lport_of.get(&id).cloned(),
            self.settings.slow,
        );
        let lports: Vec<String> = f
            .during
            .as_ref()
            .and_then(|m| m.id)
            .and_then(|id| lport_of.get(&id).or_else(|| lib.held.get(&id)).cloned())
            .into_iter()
            .collect();
        let provider = f
            .during
            .as_ref()
            .map(|m| m.provider.clone())
            // The worker's word on which class it was in is only taken for
            // a class it has.
            .filter(|p| lib.types().contains(p))
            .unwrap_or_else(|| lib.types().join(","));
        let what = describe_failure(&f);
        let restart_in = lib.went_down(Instant::now(), !lports.is_empty());
        inner.events.push(WorkerEvent::Crashed {
            provider,
            library: lib.path.clone(),
            what,
            lports,
            restart_in,
        });
    }

    /// Calls `run` on every class; true if any reported a change.
    pub fn run_all(&self) -> bool {
        if self.stopping() {
            return false;
        }
        let stop = || self.stopping();
        let limits = self.limits_until(&stop);
        let mut inner = self.inner.borrow_mut();
        let mut sent = Vec::new();
        for i in 0..inner.libs.len() {
            if let Some(w) = inner.libs[i].worker() {
                match w.send(&ToWorker::Run, &limits) {
                    Ok(()) => sent.push(i),
                    Err(f) => self.failed(&mut inner, i, f, &HashMap::new()),
                }
            }
        }
        let mut changed = false;
        for i in sent {
            let Some(w) = inner.libs[i].worker() else {
                continue;
            };
            match w.receive(&limits) {
                Ok(Reply {
                    msg: FromWorker::Ran(c),
                    slow: s,
                }) => {
                    inner.libs[i].answered();
                    log_slow(&s, &|_| None, limits.slow);
                    changed |= !c.is_empty();
                }
                Ok(other) => self.garbled(&mut inner, i, other.msg),
                Err(f) => self.failed(&mut inner, i, f, &HashMap::new()),
            }
        }
        changed
    }

    fn garbled(&self, inner: &mut Inner, i: usize, msg: FromWorker) {
        if let Some(w) = inner.libs[i].worker() {
            w.kill();
        }
        let f = Failure {
            what: crate::worker::process::WorkerFailure::Garbled(format!("unexpected {msg:?}")),
            during: None,
            slow: Vec::new(),
        };
        self.failed(inner, i, f, &HashMap::new());
    }

    /// Asks every `port_prepare` of `requests` ahead, one batch per worker;
    /// the answers wait for [`Workers::prepare`]. Unclaimed ones are
    /// released by [`Workers::end_iteration`].
    pub fn prefetch(&self, requests: &[(String, Op, PortRequest)]) {
        let mut inner = self.inner.borrow_mut();
        let mut batches: BTreeMap<usize, Vec<(u64, &String, Op, &PortRequest)>> = BTreeMap::new();
        for (t, op, req) in requests {
            let Some((i, _)) = self.types.get(t) else {
                continue;
            };
            let id = inner.libs[*i].next_id();
            batches.entry(*i).or_default().push((id, t, *op, req));
        }
        drop(inner);
        self.flush();
        // Rounds of at most MAX_BATCH calls per worker, every worker at
        // work in each round.
        while !batches.is_empty() {
            let mut round = BTreeMap::new();
            for (i, calls) in batches.iter_mut() {
                let rest = calls.split_off(calls.len().min(MAX_BATCH));
                round.insert(*i, std::mem::replace(calls, rest));
            }
            batches.retain(|_, c| !c.is_empty());
            let results = self.ask(round);
            let mut inner = self.inner.borrow_mut();
            for (key, req, r) in results {
                inner.cache.entry(key).or_default().push((req, r));
            }
        }
    }

    /// Sends each batch to its worker (all first, then collects), and
    /// returns each call's outcome.
    fn ask(
        &self,
        batches: BTreeMap<usize, Vec<(u64, &String, Op, &PortRequest)>>,
    ) -> Vec<(Key, PortRequest, Result<Prepared, PrepareError>)> {
        let stop = || self.stopping();
        let limits = self.limits_until(&stop);
        let mut inner = self.inner.borrow_mut();
        let mut out = Vec::new();
        let unavailable = |why: &str| PrepareError::Unavailable(why.to_owned());
        let mut sent = Vec::new();
        for (i, calls) in batches {
            let msg = ToWorker::Prepare(
                calls
                    .iter()
                    .map(|(id, t, op, req)| to_call(*id, t, *op, req))
                    .collect(),
            );
            let lport_of: HashMap<u64, String> = calls
                .iter()
                .map(|(id, _, _, r)| (*id, r.lport_name.clone()))
                .collect();
            let ok = match inner.libs[i].worker() {
                None => Err("its worker is down".to_owned()),
                Some(w) => w.send(&msg, &limits).map_err(|f| {
                    let why = describe_failure(&f);
                    self.failed(&mut inner, i, f, &lport_of);
                    why
                }),
            };
            match ok {
                Ok(()) => sent.push((i, calls, lport_of)),
                Err(why) => {
                    for (_, t, op, req) in calls {
                        out.push((
                            (t.clone(), op, req.lport_name.clone()),
                            req.clone(),
                            Err(unavailable(&why)),
                        ));
                    }
                }
            }
        }
        for (i, calls, lport_of) in sent {
            let reply = match inner.libs[i].worker() {
                Some(w) => w.receive(&limits),
                None => continue,
            };
            let answers = match reply {
                Ok(Reply {
                    msg: FromWorker::Prepared(a),
                    slow: s,
                }) if a.len() == calls.len() => {
                    log_slow(&s, &|id| lport_of.get(&id).cloned(), limits.slow);
                    a
                }
                Ok(other) => {
                    self.garbled(&mut inner, i, other.msg);
                    for (_, t, op, req) in calls {
                        out.push((
                            (t.clone(), op, req.lport_name.clone()),
                            req.clone(),
                            Err(unavailable("its worker answered out of turn")),
                        ));
                    }
                    continue;
                }
                Err(f) => {
                    let why = format!("its worker failed: {}", describe_failure(&f));
                    self.failed(&mut inner, i, f, &lport_of);
                    for (_, t, op, req) in calls {
                        out.push((
                            (t.clone(), op, req.lport_name.clone()),
                            req.clone(),
                            Err(unavailable(&why)),
                        ));
                    }
                    continue;
                }
            };
            let lib = &mut inner.libs[i];
            lib.answered();
            let generation = lib.generation();
            for ((id, t, op, req), answer) in calls.into_iter().zip(answers) {
                let r = match (op, answer) {
                    (_, Answer::Declined(said)) => Err(PrepareError::Declined(said)),
                    (_, Answer::BadOutput(p)) => Err(PrepareError::BadOutput(p)),
                    (_, Answer::BadRequest(why)) => Err(PrepareError::Unavailable(why)),
                    (
                        Op::Create,
                        Answer::Create {
                            name,
                            iface_type,
                            options,
                        },
                    ) => {
                        lib.held.insert(id, req.lport_name.clone());
                        match validate(name, iface_type, options) {
                            Ok(output) => Ok(Prepared::Create(Box::new(CreateOp::remote(
                                lib.settlements.clone(),
                                generation,
                                id,
                                t,
                                output,
                            )))),
                            Err(p) => {
                                // Refused: the worker releases it
                                // (port_ctx_destroy) at the next settlement.
                                lib.settlements.borrow_mut().push(generation, id, false);
                                Err(PrepareError::BadOutput(p))
                            }
                        }
                    }
                    (Op::Remove, Answer::Remove) => {
                        lib.held.insert(id, req.lport_name.clone());
                        Ok(Prepared::Remove(RemoveOp::remote(
                            lib.settlements.clone(),
                            generation,
                            id,
                            t,
                        )))
                    }
                    (_, a) => Err(PrepareError::BadOutput(vec![format!(
                        "the worker answered {a:?} to a {op:?}"
                    )])),
                };
                out.push(((t.clone(), op, req.lport_name.clone()), req.clone(), r));
            }
        }
        out
    }

    fn take(&self, t: &str, op: Op, req: &PortRequest) -> Result<Prepared, PrepareError> {
        let key = (t.to_owned(), op, req.lport_name.clone());
        {
            let mut inner = self.inner.borrow_mut();
            if let Some(v) = inner.cache.get_mut(&key) {
                if let Some(pos) = v.iter().position(|(r, _)| r == req) {
                    return v.swap_remove(pos).1;
                }
            }
        }
        let mut batches = BTreeMap::new();
        let Some((i, _)) = self.types.get(t) else {
            return Err(PrepareError::Unavailable(format!(
                "no provider of type {t:?}"
            )));
        };
        let id = self.inner.borrow_mut().libs[*i].next_id();
        let owned = t.to_owned();
        batches.insert(*i, vec![(id, &owned, op, req)]);
        self.flush();
        self.ask(batches).pop().map_or_else(
            || Err(PrepareError::Unavailable("no answer".into())),
            |(_, _, r)| r,
        )
    }

    /// A CREATE for `req` through `t`: the prefetched answer, or a call.
    pub fn prepare_create(&self, t: &str, req: &PortRequest) -> Result<CreateOp, PrepareError> {
        match self.take(t, Op::Create, req)? {
            Prepared::Create(op) => Ok(*op),
            Prepared::Remove(_) => Err(PrepareError::Unavailable("mismatched answer".into())),
        }
    }

    /// A REMOVE for `req` through `t`.
    pub fn prepare_remove(&self, t: &str, req: &PortRequest) -> Result<RemoveOp, PrepareError> {
        match self.take(t, Op::Remove, req)? {
            Prepared::Remove(op) => Ok(op),
            Prepared::Create(_) => Err(PrepareError::Unavailable("mismatched answer".into())),
        }
    }

    /// Releases prefetched answers nobody took, then sends what is owed.
    pub fn end_iteration(&self) {
        let cache = std::mem::take(&mut self.inner.borrow_mut().cache);
        drop(cache);
        self.flush();
    }

    /// Sends every worker the settlements it is owed, one message each.
    pub fn flush(&self) {
        let stop = || self.stopping();
        let limits = self.limits_until(&stop);
        let mut inner = self.inner.borrow_mut();
        for i in 0..inner.libs.len() {
            let lib = &mut inner.libs[i];
            if lib.settlements.borrow().is_empty() || lib.worker().is_none() {
                continue;
            }
            let (committed, dropped) = {
                let mut s = lib.settlements.borrow_mut();
                (
                    std::mem::take(&mut s.committed),
                    std::mem::take(&mut s.dropped),
                )
            };
            let ids: Vec<u64> = committed.iter().chain(&dropped).copied().collect();
            let Some(w) = lib.worker() else { continue };
            match w.call(&ToWorker::Settle { committed, dropped }, &limits) {
                Ok(Reply {
                    msg: FromWorker::Done,
                    slow: s,
                }) => {
                    let lib = &mut inner.libs[i];
                    lib.answered();
                    log_slow(&s, &|id| lib.held.get(&id).cloned(), limits.slow);
                    for id in ids {
                        lib.held.remove(&id);
                    }
                }
                Ok(other) => self.garbled(&mut inner, i, other.msg),
                Err(f) => self.failed(&mut inner, i, f, &HashMap::new()),
            }
        }
    }

    /// Restarts the workers whose time has come; returns when the next is
    /// due.
    pub fn tick(&self, now: Instant) -> Option<Instant> {
        let mut inner = self.inner.borrow_mut();
        let mut next: Option<Instant> = None;
        for i in 0..inner.libs.len() {
            let Some(due) = inner.libs[i].restart_due() else {
                continue;
            };
            if due > now {
                next = Some(next.map_or(due, |n| n.min(due)));
                continue;
            }
            if self.stopping() {
                break;
            }
            let stop = || self.stopping();
            let limits = self.limits_until(&stop);
            let lib = &mut inner.libs[i];
            let event = match lib.restart(&limits) {
                Restart::Up => {
                    let pid = lib.worker().map_or(0, |w| w.pid());
                    log::info!(
                        "provider {} ({}): worker restarted (pid {pid}, restart #{}); its ports are decided afresh",
                        lib.types().join(", "),
                        lib.path.display(),
                        lib.restarts
                    );
                    Some(WorkerEvent::Restarted {
                        types: lib.types(),
                        library: lib.path.clone(),
                        pid,
                        restarts: lib.restarts,
                    })
                }
                Restart::Failed(why, wait) => {
                    log::warn!(
                        "provider {} ({}): restarting its worker failed: {why}; trying again in {} ms",
                        lib.types().join(", "),
                        lib.path.display(),
                        wait.as_millis()
                    );
                    if let Some(d) = lib.restart_due() {
                        next = Some(next.map_or(d, |n| n.min(d)));
                    }
                    None
                }
                Restart::GaveUp(why) => {
                    log::error!(
                        "provider {} ({}) stays down: its worker failed to start {} times in a row (last: {why}); its ports are kept as they are and nothing more is plugged through it; restart the agent once the library is fixed",
                        lib.types().join(", "),
                        lib.path.display(),
                        super::library::GIVE_UP_AFTER
                    );
                    Some(WorkerEvent::GaveUp { types: lib.types() })
                }
            };
            inner.events.extend(event);
        }
        next
    }

    /// What happened to the workers since the last call.
    pub fn take_events(&self) -> Vec<WorkerEvent> {
        std::mem::take(&mut self.inner.borrow_mut().events)
    }

    /// Tells every worker to destroy its classes and exit, each within the
    /// call deadline.
    pub fn destroy_all(&mut self) {
        let (per_call, slow) = self.limits();
        // Stopping is not held up by a provider: at most a second each.
        let limits = Limits {
            per_call: per_call.min(SHUTDOWN_DEADLINE),
            slow,
            interrupted: None,
        };
        // Owed settlements first, unless a stop cut the last wait short.
        if !self.stopping() {
            self.end_iteration();
        }
        drop(std::mem::take(&mut self.inner.get_mut().cache));
        let inner = self.inner.get_mut();
        for lib in &mut inner.libs {
            if let Some(w) = lib.worker() {
                if let Err(f) = w.call(&ToWorker::Destroy, &limits) {
                    // Under a unit that signals the whole group, a worker
                    // may be gone already: said, not warned about; a
                    // destroy that hangs is warned about.
                    let level = match f.what {
                        crate::worker::process::WorkerFailure::Died(_) => log::Level::Info,
                        _ => log::Level::Warn,
                    };
                    log::log!(
                        level,
                        "provider {} ({}): at shutdown: {}",
                        lib.types().join(", "),
                        lib.path.display(),
                        describe_failure(&f)
                    );
                }
            }
            lib.state = State::GivenUp;
        }
    }
}
