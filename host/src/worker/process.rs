//! The agent's handle on one worker process: started with a socketpair as
//! its standard input, asked one request at a time, and killed when a
//! callback overruns its deadline. A worker that dies or hangs is reported
//! as such, with the callback it was in and the signal, never as an answer.
//!
//! Deadlines are per callback, not per batch: the worker marks each call
//! it enters ([`FromWorker::Entering`]), and each call has the whole
//! deadline from its mark. The same marks time every call, for the slow
//! call warnings.

use super::frame::{write_frame, FrameBuffer};
use super::protocol::{Callback, FromWorker, Loaded, ToWorker};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a worker may take to load its library and say so.
pub const LOAD_DEADLINE: Duration = Duration::from_secs(10);

/// How often a wait looks at its interruption flag.
const POLL: Duration = Duration::from_millis(50);

/// Why a request got no answer.
#[derive(Debug)]
pub enum WorkerFailure {
    /// The worker ended (crashed, exited, or closed its end).
    Died(Option<ExitStatus>),
    /// A callback did not return within the deadline; the worker has been
    /// killed.
    TimedOut(Duration),
    /// The worker sent something that is not a message, or not the reply
    /// the request calls for; it has been killed.
    Garbled(String),
    /// The caller's interruption flag was raised while waiting (the agent
    /// is stopping); the worker has been killed.
    Interrupted,
}

impl WorkerFailure {
    /// The short form `check` and the agent use after the callback's name:
    /// "crashed (SIGSEGV)", "did not return within 1000 ms".
    pub fn short(&self) -> String {
        match self {
            WorkerFailure::Died(Some(status)) => match status.signal() {
                Some(sig) => format!("crashed ({})", signal_name(sig)),
                None => format!("exited with status {}", status.code().unwrap_or(-1)),
            },
            WorkerFailure::Died(None) => "closed its connection".into(),
            WorkerFailure::TimedOut(d) => format!("did not return within {} ms", d.as_millis()),
            WorkerFailure::Garbled(e) => format!("sent garbage ({e})"),
            WorkerFailure::Interrupted => "was interrupted (the agent is stopping)".into(),
        }
    }
}

impl std::fmt::Display for WorkerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerFailure::Died(Some(status)) => match status.signal() {
                Some(sig) => write!(f, "the worker died of signal {sig} ({})", signal_name(sig)),
                None => write!(
                    f,
                    "the worker exited with status {}",
                    status.code().unwrap_or(-1)
                ),
            },
            WorkerFailure::Died(None) => f.write_str("the worker closed its connection"),
            WorkerFailure::TimedOut(d) => {
                write!(f, "did not return within {} ms", d.as_millis())
            }
            WorkerFailure::Garbled(e) => write!(f, "the worker sent garbage: {e}"),
            WorkerFailure::Interrupted => f.write_str("the wait was interrupted"),
        }
    }
}

/// The usual name of a signal a crashing provider dies of.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        31 => "SIGSYS",
        _ => "signal",
    }
}

/// A callback the worker entered, as marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The class.
    pub provider: String,
    /// The member.
    pub callback: Callback,
    /// The operation, for port callbacks.
    pub id: Option<u64>,
}

/// A call that returned, slower than the warning threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowCall {
    /// Which call.
    pub mark: Mark,
    /// How long it took (from its mark to the next message).
    pub took: Duration,
}

/// A request that got no answer, and the call the worker was in.
#[derive(Debug)]
pub struct Failure {
    /// What happened.
    pub what: WorkerFailure,
    /// The last call the worker marked, if it had entered one for this
    /// request.
    pub during: Option<Mark>,
    /// Slow calls that returned before the failure.
    pub slow: Vec<SlowCall>,
}

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
    stream: UnixStream,
    frames: FrameBuffer,
    /// When the request awaiting its reply was sent.
    sent: Instant,
}

impl WorkerProcess {
    /// Starts `exe worker --library LIBRARY`, sharing this process's
    /// standard error (for the worker's own log lines), and waits up to
    /// `load_deadline` for it to say what the library holds.
    ///
    /// # Errors
    /// `Err(Ok(why))` when the library could not be loaded (the loader's
    /// message); `Err(Err(failure))` when the worker could not be started
    /// or died or hung while loading (a constructor that crashes).
    pub fn spawn(
        exe: &Path,
        library: &Path,
        load_deadline: Duration,
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
        let mut cmd = Command::new(exe);
        cmd.arg("worker")
            .arg("--library")
            .arg(library)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null());
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
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let mut w = WorkerProcess {
            child,
            stream: ours,
            frames: FrameBuffer::default(),
            sent: Instant::now(),
        };
        let limits = Limits {
            per_call: load_deadline,
            slow: load_deadline,
            interrupted: None,
        };
        match w.wait_reply(Instant::now(), &limits, Some(Callback::Load)) {
            Ok(Reply {
                msg: FromWorker::Loaded(l),
                ..
            }) => Ok((w, l)),
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
        self.send(msg)?;
        self.receive(limits)
    }

    /// The first half of [`WorkerProcess::call`], so that several workers
    /// can work on their batches at once: sends `msg` and starts its clock.
    ///
    /// # Errors
    /// The worker is gone (see [`Failure`]).
    pub fn send(&mut self, msg: &ToWorker) -> Result<(), Failure> {
        self.sent = Instant::now();
        if write_frame(&mut self.stream, msg).is_err() {
            return Err(Failure {
                what: WorkerFailure::Died(self.reap()),
                during: None,
                slow: Vec::new(),
            });
        }
        Ok(())
    }

    /// The second half of [`WorkerProcess::call`]: the reply to what
    /// [`WorkerProcess::send`] sent.
    ///
    /// # Errors
    /// See [`Failure`].
    pub fn receive(&mut self, limits: &Limits<'_>) -> Result<Reply, Failure> {
        let sent = self.sent;
        self.wait_reply(sent, limits, None)
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
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let next = match self.frames.take::<FromWorker>() {
                Ok(n) => n,
                Err(e) => {
                    self.kill();
                    return Err(Failure {
                        what: WorkerFailure::Garbled(e.to_string()),
                        during: during.map(|d| d.0),
                        slow,
                    });
                }
            };
            match next {
                Some(FromWorker::Log {
                    level,
                    target,
                    text,
                }) => {
                    let level = vif_plug_abi::log_level_from_number(level.into())
                        .unwrap_or(log::Level::Error);
                    log::log!(target: &target, level, "{text}");
                    continue;
                }
                Some(msg) => {
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
            let left = (since + limits.per_call).saturating_duration_since(now);
            let stop = limits.interrupted.is_some_and(|f| f());
            if left.is_zero() || stop {
                self.kill();
                return Err(Failure {
                    what: if stop {
                        WorkerFailure::Interrupted
                    } else {
                        WorkerFailure::TimedOut(limits.per_call)
                    },
                    during: during.map(|d| d.0),
                    slow,
                });
            }
            let wait = if limits.interrupted.is_some() {
                left.min(POLL)
            } else {
                left
            };
            let _ = self.stream.set_read_timeout(Some(wait));
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
                    ) => {}
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

    /// The worker's exit status once it is gone.
    fn reap(&mut self) -> Option<ExitStatus> {
        self.kill_group();
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

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Closing our end tells a healthy worker to release what it holds
        // and destroy; one that does not go within a second is killed.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
    }
}
