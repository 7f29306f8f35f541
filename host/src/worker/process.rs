//! The agent's handle on one worker process: started with a socketpair as
//! its standard input, asked one request at a time with a deadline, and
//! killed when it misses it. A worker that dies or hangs is reported as
//! such, with the signal, never as an answer.

use super::frame::{read_frame, write_frame};
use super::protocol::{FromWorker, ToWorker};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Why a request got no answer.
#[derive(Debug)]
pub enum WorkerFailure {
    /// The worker ended (crashed, exited, or closed its end).
    Died(Option<ExitStatus>),
    /// No answer within the deadline; the worker has been killed.
    TimedOut(Duration),
    /// The worker sent something that is not a message.
    Garbled(io::Error),
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
        }
    }
}

/// The usual name of a signal a crashing provider dies of.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// A running worker.
pub struct WorkerProcess {
    child: Child,
    stream: UnixStream,
}

impl WorkerProcess {
    /// Starts `exe worker --library LIBRARY --type TYPE`, sharing this
    /// process's standard error (for the provider's log lines).
    ///
    /// # Errors
    /// The socketpair or the spawn failed.
    pub fn spawn(exe: &Path, library: &Path, type_name: &str) -> io::Result<WorkerProcess> {
        let (ours, theirs) = UnixStream::pair()?;
        let child = Command::new(exe)
            .arg("worker")
            .arg("--library")
            .arg(library)
            .arg("--type")
            .arg(type_name)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()?;
        Ok(WorkerProcess {
            child,
            stream: ours,
        })
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `msg` and waits up to `deadline` for its reply; log records
    /// are not replies (the worker logs to standard error directly).
    ///
    /// # Errors
    /// See [`WorkerFailure`]; after `TimedOut` or `Died` the worker is gone
    /// and this handle must be dropped.
    pub fn call(
        &mut self,
        msg: &ToWorker,
        deadline: Duration,
    ) -> Result<FromWorker, WorkerFailure> {
        if write_frame(&mut self.stream, msg).is_err() {
            return Err(WorkerFailure::Died(self.reap()));
        }
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                return Err(WorkerFailure::TimedOut(deadline));
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match read_frame::<_, FromWorker>(&mut self.stream) {
                Ok(Some(FromWorker::Log { .. })) => continue,
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => return Err(WorkerFailure::Died(self.reap())),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    // A timeout inside a frame loses the frame: the worker
                    // is killed either way.
                    self.kill();
                    return Err(WorkerFailure::TimedOut(deadline));
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.kill();
                    return Err(WorkerFailure::Garbled(e));
                }
                Err(_) => return Err(WorkerFailure::Died(self.reap())),
            }
        }
    }

    /// The worker's exit status once it is gone.
    fn reap(&mut self) -> Option<ExitStatus> {
        self.child.wait().ok()
    }

    fn kill(&mut self) {
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
