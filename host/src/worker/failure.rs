//! How a request to a worker can fail, and which call it was in: what the
//! agent logs and `check` reports of a worker that crashed, hung or lied.

use super::protocol::Callback;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

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
    /// The worker did not read its request within the deadline (stopped,
    /// or hung with a full socket buffer); it has been killed.
    Stuck(Duration),
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
            WorkerFailure::Died(None) => "closed its connection (killed)".into(),
            WorkerFailure::TimedOut(d) => format!("did not return within {} ms", d.as_millis()),
            WorkerFailure::Garbled(e) => format!("sent garbage ({e})"),
            WorkerFailure::Interrupted => "was interrupted (the agent is stopping)".into(),
            WorkerFailure::Stuck(d) => {
                format!("did not read its request within {} ms", d.as_millis())
            }
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
            WorkerFailure::Stuck(d) => {
                write!(
                    f,
                    "the worker did not read its request within {} ms",
                    d.as_millis()
                )
            }
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
