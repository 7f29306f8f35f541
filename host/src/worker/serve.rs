//! The worker's side of the socketpair: the classes of one library, whose
//! callbacks run on the calling thread, one at a time, in the order the
//! agent's messages ask for them (the ABI's threading promise holds inside
//! the worker exactly as it does in process).
//!
//! The call-order contract is kept by the same types as in process: a
//! prepared CREATE is held as a [`PreparedCreate`] under the agent's id
//! until a [`ToWorker::Settle`] finishes or drops it, so `port_ctx_destroy`
//! happens exactly once; when the agent goes away, what is still held is
//! destroyed and every initialised class's `destroy` is called before the
//! worker returns.
//!
//! Before each callback the worker sends a [`FromWorker::Entering`] mark,
//! so that if the callback never returns the agent knows which one it was.

use super::frame::{read_frame, write_frame};
use super::protocol::{Answer, Call, Callback, FromWorker, InitError, Loaded, Op, ToWorker};
use crate::loader::LoadedLibrary;
use crate::provider::{
    BridgeInfo, ExistingIface, InitFailure, PortRequest, PrepareError, PreparedCreate,
    PreparedRemove, Provider, ProviderClass,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::sync::Mutex;

const EINVAL: i32 = 22;

/// Where the worker's messages go: one writer, shared by the replies and
/// by the log records a provider may emit from any of its threads, so that
/// frames never interleave.
pub struct Outbox(Mutex<Box<dyn Write + Send>>);

impl Outbox {
    /// An outbox writing to `w`.
    pub fn new(w: impl Write + Send + 'static) -> Outbox {
        Outbox(Mutex::new(Box::new(w)))
    }

    /// Sends one message, whole.
    ///
    /// # Errors
    /// The writer's error (the agent is gone).
    pub fn send(&self, msg: &FromWorker) -> io::Result<()> {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        write_frame(&mut *w, msg)
    }
}

/// What the worker says of its library first: its versions and classes
/// (an unusable class as the loader's refusal of it, naming `path`).
pub fn loaded(lib: &LoadedLibrary, path: &std::path::Path) -> Loaded {
    Loaded {
        abi_major: lib.abi.major,
        abi_minor: lib.abi.minor,
        rust_layout_checked: lib.rust_layout_checked,
        classes: lib
            .classes
            .iter()
            .map(|c| match c {
                Ok(c) => Ok(c.type_name().to_owned()),
                Err((i, e)) => Err(format!(
                    "refusing class #{i} of provider {}: {e}",
                    path.display()
                )),
            })
            .collect(),
        refused_types: lib
            .classes
            .iter()
            .filter_map(|c| c.as_ref().err())
            .filter_map(|(_, e)| e.type_name())
            .map(str::to_owned)
            .collect(),
    }
}

/// Serves the agent: sends [`FromWorker::Loaded`], then answers requests
/// read from `input` until [`ToWorker::Destroy`] or the end of `input`;
/// then releases every operation still held and calls `destroy` on every
/// class whose `init` succeeded.
///
/// # Errors
/// A broken or garbled stream (see [`read_frame`]); the providers are
/// destroyed first all the same.
pub fn serve<R: Read>(
    lib: LoadedLibrary,
    path: &std::path::Path,
    input: &mut R,
    out: &Outbox,
) -> io::Result<()> {
    out.send(&FromWorker::Loaded(loaded(&lib, path)))?;
    let types: Vec<String> = lib
        .classes
        .iter()
        .flatten()
        .map(|c| c.type_name().to_owned())
        .collect();
    let mut state = Worker {
        threads_at_start: threads_of(std::process::id()),
        types,
        classes: lib
            .classes
            .into_iter()
            .flatten()
            .map(|c| (c.type_name().to_owned(), c))
            .collect(),
        providers: BTreeMap::new(),
        retired: Vec::new(),
        creates: HashMap::new(),
        removes: HashMap::new(),
        out,
    };
    let result = state.serve(input);
    state.shut_down();
    result
}

struct Worker<'o> {
    /// Threads of this process once the library was loaded.
    threads_at_start: Option<usize>,
    /// Every usable class's type, for what is said of the whole library.
    types: Vec<String>,
    /// Classes not (yet) initialised.
    classes: BTreeMap<String, ProviderClass>,
    /// Classes destroyed: kept until the worker ends, so the library stays
    /// mapped until [`Worker::before_unload`] has given its threads their
    /// time.
    retired: Vec<Provider>,
    /// Initialised classes, by type.
    providers: BTreeMap<String, Provider>,
    creates: HashMap<u64, PreparedCreate>,
    removes: HashMap<u64, PreparedRemove>,
    out: &'o Outbox,
}

impl Worker<'_> {
    fn serve<R: Read>(&mut self, input: &mut R) -> io::Result<()> {
        while let Some(msg) = read_frame::<_, ToWorker>(input)? {
            let last = msg == ToWorker::Destroy;
            let reply = self.handle(msg)?;
            self.out.send(&reply)?;
            if last {
                break;
            }
        }
        Ok(())
    }

    /// Marks the call about to be made.
    fn entering(&self, provider: &str, callback: Callback, id: Option<u64>) -> io::Result<()> {
        self.out.send(&FromWorker::Entering {
            provider: provider.to_owned(),
            callback,
            id,
        })
    }

    fn handle(&mut self, msg: ToWorker) -> io::Result<FromWorker> {
        Ok(match msg {
            ToWorker::Init { classes } => {
                let mut started = Vec::new();
                for (type_name, config) in classes {
                    let result = self.init(&type_name, &config)?;
                    started.push((type_name, result));
                }
                FromWorker::Started(started)
            }
            ToWorker::Run => {
                let mut changed = Vec::new();
                for (t, p) in &self.providers {
                    self.entering(t, Callback::Run, None)?;
                    if p.run() {
                        changed.push(t.clone());
                    }
                }
                FromWorker::Ran(changed)
            }
            ToWorker::Prepare(calls) => {
                let mut answers = Vec::with_capacity(calls.len());
                for c in calls {
                    answers.push(self.prepare(c)?);
                }
                FromWorker::Prepared(answers)
            }
            ToWorker::Settle { committed, dropped } => {
                for id in committed {
                    if let Some(op) = self.creates.remove(&id) {
                        self.entering(op.type_name(), Callback::PortFinish, Some(id))?;
                        let out = self.out;
                        let t = op.type_name().to_owned();
                        op.finish_then(|| {
                            let _ = out.send(&FromWorker::Entering {
                                provider: t,
                                callback: Callback::PortCtxDestroy,
                                id: Some(id),
                            });
                        });
                    } else if let Some(op) = self.removes.remove(&id) {
                        self.entering(op.type_name(), Callback::PortFinish, Some(id))?;
                        op.finish();
                    }
                }
                for id in dropped {
                    // Dropping a CREATE calls ctx_destroy; a REMOVE that did
                    // not commit is told nothing, as the ABI says.
                    if let Some(op) = self.creates.remove(&id) {
                        self.entering(op.type_name(), Callback::PortCtxDestroy, Some(id))?;
                        drop(op);
                    }
                    self.removes.remove(&id);
                }
                FromWorker::Done
            }
            ToWorker::DestroyClass(t) => FromWorker::Destroyed(match self.providers.remove(&t) {
                None => Err(InitError {
                    errno: EINVAL,
                    why: Some(format!("no initialised class of type {t:?}")),
                }),
                Some(p) => {
                    // Its operations still held go first, as in shut_down.
                    self.creates.retain(|_, op| op.type_name() != t);
                    self.removes.retain(|_, op| op.type_name() != t);
                    self.entering(&t, Callback::Destroy, None)?;
                    let r = p.destroy();
                    if r.is_err() {
                        // It may still use its context: leak rather than free.
                        std::mem::forget(p);
                    } else {
                        // Kept, and the library with it, until shut_down.
                        self.retired.push(p);
                    }
                    r.map_err(|errno| InitError { errno, why: None })
                }
            }),
            ToWorker::Describe(t) => match self.providers.get(&t) {
                None => FromWorker::Described(None),
                Some(p) => {
                    self.entering(&t, Callback::Describe, None)?;
                    FromWorker::Described(p.describe())
                }
            },
            ToWorker::Destroy => {
                self.shut_down();
                FromWorker::Done
            }
        })
    }

    fn init(
        &mut self,
        type_name: &str,
        config: &[(String, String)],
    ) -> io::Result<Result<Vec<String>, InitError>> {
        let Some(class) = self.classes.remove(type_name) else {
            return Ok(Err(InitError {
                errno: EINVAL,
                why: Some(if self.providers.contains_key(type_name) {
                    "init was asked for twice".into()
                } else {
                    format!("the library has no usable class of type {type_name:?}")
                }),
            }));
        };
        self.entering(type_name, Callback::Init, None)?;
        Ok(match Provider::init_only(class, config) {
            Ok(initialised) => {
                // Its own step: a crash here is not init's.
                self.entering(type_name, Callback::MaintainedOptions, None)?;
                let p = initialised.read_maintained_options();
                let maintained = p.maintained_options().to_vec();
                self.providers.insert(type_name.to_owned(), p);
                Ok(maintained)
            }
            Err(InitFailure::Errno(errno)) => Err(InitError { errno, why: None }),
            Err(InitFailure::BadConfig(why)) => Err(InitError {
                errno: EINVAL,
                why: Some(why),
            }),
        })
    }

    fn prepare(&mut self, call: Call) -> io::Result<Answer> {
        let Some(provider) = self.providers.get(&call.provider) else {
            return Ok(Answer::BadRequest(format!(
                "this worker serves no initialised class of type {:?}",
                call.provider
            )));
        };
        let req = PortRequest {
            lport_name: call.lport_name,
            lport_options: call.lport_options,
            iface: call.iface.map(|i| ExistingIface {
                name: i.name,
                iface_type: i.iface_type,
                options: i.options,
            }),
            bridge: BridgeInfo {
                name: call.bridge,
                datapath_type: call.datapath_type,
                dpdk_initialized: call.dpdk_initialized,
            },
            lport_macs: call.lport_macs,
        };
        let failed = |e: PrepareError| match e {
            PrepareError::Declined(said) => Answer::Declined(said),
            PrepareError::BadRequest(e) => Answer::BadRequest(e.to_string()),
            PrepareError::BadOutput(problems) => Answer::BadOutput(problems),
            PrepareError::Unavailable(why) => Answer::BadRequest(why),
        };
        self.entering(&call.provider, Callback::PortPrepare, Some(call.id))?;
        Ok(match call.op {
            Op::Create => match provider.prepare_create(&req) {
                Ok(op) => {
                    let out = op.output();
                    let answer = Answer::Create {
                        name: out.name.clone(),
                        iface_type: out.iface_type.clone(),
                        options: out.options.to_vec(),
                    };
                    // An id used twice: the older operation is released,
                    // so nothing is held without a way to settle it.
                    self.creates.insert(call.id, op);
                    answer
                }
                Err(e) => failed(e),
            },
            Op::Remove => match provider.prepare_remove(&req) {
                Ok(op) => {
                    self.removes.insert(call.id, op);
                    Answer::Remove
                }
                Err(e) => failed(e),
            },
        })
    }

    /// Every class was destroyed and the library is about to be
    /// unloaded: a thread it started that still runs its code would crash
    /// the worker then. One told to stop in `destroy` but not joined gets
    /// up to 200 ms to end; one still there is said (at warn level: it
    /// may be a helper thread of the C library, which is harmless).
    fn before_unload(&self) {
        let (Some(before), Some(first)) = (self.threads_at_start, self.types.first()) else {
            return;
        };
        let now = threads_after_grace(std::process::id(), before).unwrap_or(before);
        if now > before {
            log::warn!(
                target: &crate::provider::log_target(first),
                "{} thread(s) started since the library was loaded still run after its last class was destroyed; it is unloaded now (a thread still in its code crashes the worker: stop and join them in destroy)",
                now - before
            );
        }
    }

    /// Releases what is held, then `destroy` (once per class).
    fn shut_down(&mut self) {
        self.creates.clear();
        self.removes.clear();
        for (t, p) in std::mem::take(&mut self.providers) {
            let _ = self.entering(&t, Callback::Destroy, None);
            if let Err(rc) = p.destroy() {
                log::warn!("provider {t}: destroy returned {rc}");
                std::mem::forget(p);
            } else {
                self.retired.push(p);
            }
        }
        if !self.retired.is_empty() {
            self.before_unload();
            // The library is unmapped with its last class.
            self.retired.clear();
        }
    }
}

/// How long threads a library started get to end once its classes are
/// destroyed, before it is unloaded.
pub(crate) const THREAD_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// The threads of `pid` once they are back to `before`, or after
/// [`THREAD_GRACE`]; `None` if they cannot be counted.
pub(crate) fn threads_after_grace(pid: u32, before: usize) -> Option<usize> {
    let until = std::time::Instant::now() + THREAD_GRACE;
    let mut now = threads_of(pid)?;
    while now > before && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(5));
        now = threads_of(pid)?;
    }
    Some(now)
}

/// The number of threads of process `pid` (Linux: /proc/PID/task); the
/// worker counts its own, `check` its worker's.
pub(crate) fn threads_of(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()
        .map(Iterator::count)
}
