//! The agent's handle on one worker process: started with a socketpair as
//! its standard input, asked one request at a time, and killed when a
//! callback overruns its deadline. A worker that dies or hangs is reported
//! as such, with the callback it was in and the signal, never as an answer.
//!
//! Deadlines are per callback, not per batch: the worker marks each call
//! it enters ([`FromWorker::Entering`]), and each call has the whole
//! deadline from its mark. The same marks time every call, for the slow
//! call warnings.

pub use super::failure::{signal_name, Failure, Mark, SlowCall, WorkerFailure};
use super::frame::{write_frame, FrameBuffer};
use super::protocol::{Callback, FromWorker, Loaded, ToWorker};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a worker may take to load its library and say so, when the
/// agent starts or `check` runs (a restart gets `--provider-timeout`).
pub const LOAD_DEADLINE: Duration = Duration::from_secs(10);

/// The limits of loading a library at start-up.
pub const LOAD_LIMITS: Limits<'static> = Limits {
    per_call: LOAD_DEADLINE,
    slow: LOAD_DEADLINE,
    interrupted: None,
};

/// How often a wait looks at its interruption flag and at the worker.
const POLL: Duration = Duration::from_millis(50);

/// The log target of what workers say themselves.
pub const WORKER_TARGET: &str = "vif_plug_host::worker";

/// How long a call may still run once the agent is stopping.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// How long a worker that closed its end may take to exit.
const REAP_WAIT: Duration = Duration::from_millis(200);

/// The limits of one request.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    /// Each callback's deadline, from its mark.
    pub per_call: Duration,
    /// Calls slower than this are reported.
    pub slow: Duration,
    /// Raised to stop waiting (the agent is stopping).
    pub interrupted: Option<&'a dyn Fn() -> bool>,
}

/// A reply and the slow calls that made it.
#[derive(Debug)]
pub struct Reply {
    /// The reply.
    pub msg: FromWorker,
    /// Calls slower than [`Limits::slow`].
    pub slow: Vec<SlowCall>,
}

/// A running worker.
pub struct WorkerProcess {
    child: Child,
    /// What it writes to its standard error, relayed to the log.
    stderr: Option<super::stderr::Relay>,
    /// See [`WorkerProcess::stderr_held`].
    stderr_held: bool,
    stream: UnixStream,
    frames: FrameBuffer,
    /// The log targets its library's classes may use (`provider::TYPE`).
    targets: Vec<String>,
    /// The library's file name, for what the worker says itself.
    label: String,
    /// Callbacks the request in flight may mark, and how many it marked.
    expected: usize,
    marks: usize,
    /// The operation ids of the request in flight, in its order; a mark
    /// must name them in that order (for a batch, each once).
    ids: Vec<u64>,
    /// Where in `ids` the last mark was, and whether a mark may name the
    /// same id again (a settlement marks finish, then ctx_destroy).
    at: Option<usize>,
    repeat_ok: bool,
}

impl WorkerProcess {
    /// Starts `exe worker --library LIBRARY`, sharing this process's
    /// standard error (for the worker's own log lines), and waits up to
    /// `limits.per_call` for it to say what the library holds.
    ///
    /// # Errors
    /// `Err(Ok(why))` when the library could not be loaded (the loader's
    /// message); `Err(Err(failure))` when the worker could not be started
    /// or died or hung while loading (a constructor that crashes).
    pub fn spawn(
        exe: &Path,
        library: &Path,
        limits: &Limits<'_>,
    ) -> Result<(WorkerProcess, Loaded), Result<String, Failure>> {
        let fail = |e: io::Error| {
            Err(Err(Failure {
                what: WorkerFailure::Garbled(format!("starting {}: {e}", exe.display())),
                during: None,
                slow: Vec::new(),
            }))
        };
        let (ours, theirs) = match UnixStream::pair() {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        let mut cmd = Command::new(super::program::worker_program(exe));
        cmd.arg0(exe)
            .arg("worker")
            .arg("--library")
            .arg(library)
            .args(crate::loader::keeps_loaded().then_some("--keep-loaded"))
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Only the agent speaks to systemd (NotifyAccess=main): vendor
            // code in a worker is not handed the socket.
            .env_remove("NOTIFY_SOCKET");
        let agent = std::process::id();
        // SAFETY: prctl, getppid and _exit are async-signal-safe; the
        // closure allocates nothing. A worker must not outlive an agent
        // killed with SIGKILL while a provider call hangs; one whose agent
        // died before the prctl took effect exits at once. (The signal
        // follows the spawning thread: the agent and `check` spawn from
        // their main thread.)
        unsafe {
            cmd.pre_exec(move || {
                // A process group of its own: a kill reaches whatever the
                // provider forked too, and a terminal's Ctrl-C does not.
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() as u32 != agent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let label = library.file_name().map_or_else(
            || library.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let stderr = child.stderr.take().map(|stderr| {
            super::stderr::Relay::start(stderr, format!("worker for {label} (pid {})", child.id()))
        });
        let mut w = WorkerProcess {
            child,
            stderr,
            stderr_held: false,
            stream: ours,
            frames: FrameBuffer::default(),
            targets: Vec::new(),
            label: label.clone(),
            expected: 1,
            marks: 0,
            ids: Vec::new(),
            at: None,
            repeat_ok: false,
        };
        match w.wait_reply(Instant::now(), limits, Some(Callback::Load)) {
            Ok(Reply {
                msg: FromWorker::Loaded(l),
                ..
            }) => {
                w.targets = l
                    .classes
                    .iter()
                    .flatten()
                    .map(|t| crate::provider::log_target(t))
                    .collect();
                Ok((w, l))
            }
            Ok(Reply {
                msg: FromWorker::LoadFailed(why),
                ..
            }) => Err(Ok(why)),
            Ok(other) => {
                w.kill();
                Err(Err(Failure {
                    what: WorkerFailure::Garbled(format!("{:?} before Loaded", other.msg)),
                    during: None,
                    slow: Vec::new(),
                }))
            }
            Err(f) => Err(Err(f)),
        }
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `msg` and waits for its reply: each callback the worker enters
    /// has `limits.per_call` from its mark; log records are re-logged here.
    ///
    /// # Errors
    /// See [`Failure`]; the worker is gone after any of them and this
    /// handle must be dropped.
    pub fn call(&mut self, msg: &ToWorker, limits: &Limits<'_>) -> Result<Reply, Failure> {
        self.send(msg, limits)?;
        self.receive(limits)
    }

    /// The first half of [`WorkerProcess::call`], so that several workers
    /// can work on their batches at once: sends `msg` (a worker that does
    /// not read it within `limits.per_call` is killed) and starts its clock.
    ///
    /// # Errors
    /// The worker is gone, or stuck (see [`Failure`]).
    pub fn send(&mut self, msg: &ToWorker, limits: &Limits<'_>) -> Result<(), Failure> {
        self.expected = self.expected_marks(msg);
        self.marks = 0;
        self.at = None;
        (self.ids, self.repeat_ok) = match msg {
            ToWorker::Prepare(calls) => (calls.iter().map(|c| c.id).collect(), false),
            ToWorker::Settle { committed, dropped } => {
                (committed.iter().chain(dropped).copied().collect(), true)
            }
            _ => (Vec::new(), false),
        };
        let _ = self.stream.set_write_timeout(Some(limits.per_call));
        match write_frame(&mut self.stream, msg) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.kill();
                Err(Failure {
                    what: WorkerFailure::Stuck(limits.per_call),
                    during: None,
                    slow: Vec::new(),
                })
            }
            Err(_) => Err(Failure {
                what: WorkerFailure::Died(self.reap()),
                during: None,
                slow: Vec::new(),
            }),
        }
    }

    /// The second half of [`WorkerProcess::call`]: the reply to what
    /// [`WorkerProcess::send`] sent.
    ///
    /// # Errors
    /// See [`Failure`].
    pub fn receive(&mut self, limits: &Limits<'_>) -> Result<Reply, Failure> {
        // The clock runs from now, not from the send: while the agent read
        // another worker's reply, this one may have been blocked writing
        // to a full socket, through no fault of its own.
        self.wait_reply(Instant::now(), limits, None)
    }

    /// Whether a mark for operation `id` follows the request's order; if so
    /// it is recorded.
    fn mark_in_order(&mut self, id: Option<u64>) -> bool {
        match id {
            None => self.ids.is_empty(),
            Some(id) => {
                let from = match self.at {
                    None => 0,
                    Some(at) if self.repeat_ok => at,
                    Some(at) => at + 1,
                };
                match self
                    .ids
                    .get(from..)
                    .and_then(|r| r.iter().position(|x| *x == id))
                {
                    Some(p) => {
                        self.at = Some(from + p);
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// How many callbacks `msg` makes the worker enter, at most: each must
    /// be marked once, so a worker cannot buy time by marking more.
    fn expected_marks(&self, msg: &ToWorker) -> usize {
        match msg {
            // init, then get_maintained_iface_options if it succeeded.
            ToWorker::Init { classes } => 2 * classes.len(),
            ToWorker::Run | ToWorker::Destroy => self.targets.len().max(1),
            ToWorker::Prepare(calls) => calls.len(),
            ToWorker::Settle { committed, dropped } => 2 * committed.len() + dropped.len(),
            ToWorker::DestroyClass(_) | ToWorker::Describe(_) => 1,
        }
    }

    fn wait_reply(
        &mut self,
        sent: Instant,
        limits: &Limits<'_>,
        first: Option<Callback>,
    ) -> Result<Reply, Failure> {
        let mut during: Option<(Mark, Instant)> = first.map(|callback| {
            (
                Mark {
                    provider: String::new(),
                    callback,
                    id: None,
                },
                sent,
            )
        });
        let mut slow = Vec::new();
        let mut since = sent;
        let mut stop_seen: Option<Instant> = None;
        // However the worker marks its calls, the request as a whole ends
        // within one deadline per call it makes (and one more).
        let overall = sent + limits.per_call.saturating_mul(self.expected as u32 + 1);
        let mut chunk = vec![0u8; 64 << 10];
        let fail = |w: &mut Self, what, during: Option<(Mark, Instant)>, slow| {
            w.kill();
            Err(Failure {
                what,
                during: during.map(|d| d.0),
                slow,
            })
        };
        loop {
            let next = match self.frames.take::<FromWorker>() {
                Ok(n) => n,
                Err(e) => return fail(self, WorkerFailure::Garbled(e.to_string()), during, slow),
            };
            match next {
                Some(FromWorker::Log {
                    level,
                    target,
                    text,
                }) => {
                    self.relog(level, &target, &text);
                    continue;
                }
                Some(msg) => {
                    if let FromWorker::Entering { id, .. } = &msg {
                        self.marks += 1;
                        // A worker cannot buy time or shift the blame with
                        // marks: one per call, in the request's order. The
                        // blame stays with the last genuine mark.
                        let why = if self.marks > self.expected {
                            Some(format!(
                                "{} call marks for a request of {} call(s)",
                                self.marks, self.expected
                            ))
                        } else if !self.mark_in_order(*id) {
                            Some(format!("a call mark out of order (operation {id:?})"))
                        } else {
                            None
                        };
                        if let Some(why) = why {
                            return fail(self, WorkerFailure::Garbled(why), during, slow);
                        }
                    }
                    let now = Instant::now();
                    if let Some((mark, at)) = during.take() {
                        if now - at > limits.slow && mark.callback != Callback::Load {
                            slow.push(SlowCall {
                                mark,
                                took: now - at,
                            });
                        }
                    }
                    if let FromWorker::Entering {
                        provider,
                        callback,
                        id,
                    } = msg
                    {
                        during = Some((
                            Mark {
                                provider,
                                callback,
                                id,
                            },
                            now,
                        ));
                        since = now;
                        continue;
                    }
                    return Ok(Reply { msg, slow });
                }
                None => {}
            }
            let now = Instant::now();
            let due = (since + limits.per_call).min(overall);
            // A stop leaves the request a short grace, once, from when it
            // is seen: a call about to return completes, so the worker can
            // still be told to destroy and exit, and a long batch does not
            // hold the stop up.
            if stop_seen.is_none() && limits.interrupted.is_some_and(|f| f()) {
                stop_seen = Some(now);
            }
            let stop = stop_seen.is_some_and(|t| now.duration_since(t) >= STOP_GRACE);
            if now >= due || stop {
                // What already arrived counts: this worker may have answered
                // while the agent was reading another's reply.
                if !stop && self.read_ready(&mut chunk) {
                    continue;
                }
                let what = if stop {
                    WorkerFailure::Interrupted
                } else {
                    WorkerFailure::TimedOut(limits.per_call)
                };
                return fail(self, what, during, slow);
            }
            let _ = self.stream.set_read_timeout(Some((due - now).min(POLL)));
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(Failure {
                        what: WorkerFailure::Died(self.reap()),
                        during: during.map(|d| d.0),
                        slow,
                    })
                }
                Ok(n) => self.frames.push(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    // Dead, though a process it forked still holds the
                    // socket open: what it sent before dying is read first.
                    if self.exited() {
                        if self.read_ready(&mut chunk) {
                            continue;
                        }
                        return Err(Failure {
                            what: WorkerFailure::Died(self.reap_exited()),
                            during: during.map(|d| d.0),
                            slow,
                        });
                    }
                }
                Err(_) => {
                    return Err(Failure {
                        what: WorkerFailure::Died(self.reap()),
                        during: during.map(|d| d.0),
                        slow,
                    })
                }
            }
        }
    }

    /// Reads what is already waiting on the socket, without waiting; true
    /// if anything was.
    fn read_ready(&mut self, chunk: &mut [u8]) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut got = false;
        while let Ok(n @ 1..) = self.stream.read(chunk) {
            self.frames.push(&chunk[..n]);
            got = true;
        }
        let _ = self.stream.set_nonblocking(false);
        got
    }

    /// Logs a provider's record here. The worker is not trusted with the
    /// target: a record claiming another (the agent's own, or a class the
    /// library does not have) is logged under the library's first class,
    /// saying what it claimed; and the text is kept to one line.
    fn relog(&self, level: u8, target: &str, text: &str) {
        let level = vif_plug_abi::log_level_from_number(level.into()).unwrap_or(log::Level::Error);
        // The worker cut it to MAX_LOG_TEXT already, saying how much it
        // left out; a little room keeps that note whole.
        let text = crate::provider::one_line_within(text, crate::provider::MAX_LOG_TEXT + 256);
        if self.targets.iter().any(|t| t == target) {
            log::log!(target: target, level, "{text}");
        } else if target.starts_with("vif_plug_host") {
            // The worker's own record (or one claiming to be): said as the
            // worker's, never as the agent's.
            log::log!(target: WORKER_TARGET, level, "worker for {}: {text}", self.label);
        } else {
            let own = self.targets.first().map_or("provider::?", String::as_str);
            log::log!(target: own, level, "[claimed target {target:?}] {text}");
        }
    }

    /// The worker's exit status once it is gone.
    /// The status of a worker that closed its end: it is normally dying;
    /// one still alive shortly after (it closed the socket and lives on) is
    /// killed, and reported as having closed its connection.
    fn reap(&mut self) -> Option<ExitStatus> {
        let until = Instant::now() + REAP_WAIT;
        loop {
            if self.exited() {
                return self.reap_exited();
            }
            if Instant::now() >= until {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the worker has exited (or was reaped already), without
    /// reaping it: until it is reaped, its pid keeps its process group id
    /// from being reused, so the group can still be killed safely.
    fn exited(&self) -> bool {
        !matches!(
            self.exit_state(),
            Ok(nix::sys::wait::WaitStatus::StillAlive)
        )
    }

    /// waitid(WNOWAIT): `StillAlive`, another state once it exited and is
    /// not reaped, an error (ECHILD) once it was reaped.
    fn exit_state(&self) -> nix::Result<nix::sys::wait::WaitStatus> {
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        waitid(Id::Pid(pid), flags)
    }

    /// For a worker that [`exited`](Self::exited): kills what is left of
    /// its process group (what the provider forked goes with it, as
    /// docs/abi.md promises), then reaps it. A worker reaped earlier is
    /// not signalled again: its group id may belong to a stranger by now.
    fn reap_exited(&mut self) -> Option<ExitStatus> {
        if self.exit_state().is_ok() {
            self.kill_group();
        }
        self.child.wait().ok()
    }

    /// Kills what is left of the worker's process group (what a provider
    /// forked), before the worker is reaped.
    fn kill_group(&self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling the worker's own process group (its pid,
            // set in `spawn`); the worker is not reaped yet, so the group
            // id cannot have been reused.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }

    /// Kills the worker now (a hang, garbage, or a stop).
    pub fn kill(&mut self) {
        self.kill_group();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WorkerProcess {
    /// Ends the session: closing our end tells a healthy worker to release
    /// what it holds and destroy; one that has not exited `within` is
    /// killed (`None`). Its exit status otherwise, which `check` reports:
    /// under valgrind or ASan, a non-zero one means they found errors.
    pub fn finish(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.exited() {
                let status = self.reap_exited();
                self.stderr_held = !self.wait_stderr(Duration::from_millis(200));
                return status;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
        None
    }

    /// Waits up to `within` for the end of the worker's standard error,
    /// so that its last words are logged before its fate is reported;
    /// false if something still holds it open.
    pub fn wait_stderr(&self, within: Duration) -> bool {
        self.stderr.as_ref().is_none_or(|r| r.wait(within))
    }

    /// After [`finish`](Self::finish): a process still held the worker's
    /// standard error once it had exited and its group was killed, so the
    /// provider started one that left the group (setsid).
    pub fn stderr_held(&self) -> bool {
        self.stderr_held
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.finish(Duration::from_secs(1));
    }
}
