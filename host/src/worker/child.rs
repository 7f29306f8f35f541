//! The worker process's entry point (`vif-plug-host worker`, hidden): load
//! one library and serve the agent on the socketpair end it was given as
//! standard input.
//!
//! Logging: the worker's logger is [`WorkerLogger`]. A provider's records
//! (target `provider::…`) travel to the agent as
//! [`FromWorker::Log`](super::protocol::FromWorker::Log) frames and are
//! logged there under the same target, so they keep their provider name,
//! pass the agent's `RUST_LOG` filter (the worker inherits the same
//! environment, so a provider is told the same maximum level) and are seen
//! by `check`, which quotes a provider's errors and recognises the SDK's
//! panic reports. The worker's own records travel the same way; only what
//! is written to standard error directly (the C library's or the Rust
//! runtime's last words) reaches the agent through a pipe.

use super::protocol::FromWorker;
use super::serve::{serve, Outbox};
use crate::loader::load_library;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Where provider log records go once the worker is connected.
static OUTBOX: OnceLock<Arc<Outbox>> = OnceLock::new();

/// The worker's logger: provider records to the agent, the rest to `inner`.
pub struct WorkerLogger<L>(pub L);

/// A provider's error lines always reach the agent, whatever the filter:
/// `check` reads them (a provider's reasons, the SDK's caught panics); the
/// agent's own logger still decides whether they are printed.
fn always(m: &log::Metadata<'_>) -> bool {
    m.level() == log::Level::Error && m.target().starts_with("provider::")
}

impl<L: log::Log> log::Log for WorkerLogger<L> {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        self.0.enabled(m) || always(m)
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.0.enabled(r.metadata()) && !always(r.metadata()) {
            return;
        }
        // Once connected, every record goes to the agent: a provider's
        // under its name, the worker's own under the worker's.
        match OUTBOX.get() {
            Some(out) => {
                let _ = out.send(&FromWorker::Log {
                    level: vif_plug_abi::log_level_number(r.level()) as u8,
                    target: r.target().to_owned(),
                    text: r.args().to_string(),
                });
            }
            _ => self.0.log(r),
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// Runs the worker; returns the process exit code: 0 when the agent
/// ended the session (Destroy or closing the socket), 1 when the library
/// cannot be loaded (after saying why to the agent), 2 when the stream
/// broke.
pub fn main(library: &Path) -> u8 {
    // Started through /proc/self/exe (see `process::spawn`), the kernel
    // names the process "exe"; `ps` and `pgrep` should see the program.
    let _ = nix::sys::prctl::set_name(c"vif-plug-host");
    // The worker has a process group of its own (a terminal's Ctrl-C is not
    // for it) and ends when the agent closes the socketpair, or with the
    // agent (PR_SET_PDEATHSIG).
    let stream = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from);
    let (mut input, out) = match stream.and_then(|s| Ok((s.try_clone()?, s))) {
        Ok(pair) => pair,
        Err(e) => {
            log::error!(
                "worker for {}: standard input is not usable: {e}",
                library.display()
            );
            return 2;
        }
    };
    // The socketpair now lives on close-on-exec descriptors; standard input
    // becomes /dev/null, so that a helper a provider runs (system(3)) does
    // not inherit the agent's channel.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: dup2 onto fd 0, which this process owns; `null` stays
        // valid for the call.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
    let out = OUTBOX.get_or_init(|| Arc::new(Outbox::new(out)));
    let lib = match load_library(library) {
        Ok(lib) => lib,
        Err(e) => {
            let _ = out.send(&FromWorker::LoadFailed(e.to_string()));
            return 1;
        }
    };
    match serve(lib, library, &mut input, out) {
        Ok(()) => 0,
        Err(e) => {
            log::error!(
                "worker for {}: the connection to the agent broke: {e}",
                library.display()
            );
            2
        }
    }
}
