//! The end of a file's check, once every class is destroyed: threads the
//! library left running, calls it made after `destroy`, processes that left
//! the worker's group, and how the worker itself exited (a crash in the
//! library's destructors, or a memory tool's verdict).

use super::report::{take_provider_errors, violation, Reporter};
use super::{limits, CheckOptions};
use crate::worker::process::WorkerProcess;
use crate::worker::protocol::ToWorker;
use crate::worker::serve::threads_after_grace;
pub(super) use crate::worker::serve::threads_of;
use std::io;
use std::time::Duration;

/// Ends `worker`, whose classes were all destroyed, reporting what the
/// library left behind. `threads_at_start`: the worker's threads once the
/// library was loaded.
pub(super) fn end_worker(
    worker: &mut WorkerProcess,
    threads_at_start: Option<usize>,
    opts: &CheckOptions,
    r: &mut Reporter<'_>,
) -> io::Result<()> {
    // Every class is destroyed; the library stays mapped until the worker
    // is told to end. Threads it started get 200 ms to end, as the
    // worker gives them before it unloads the library.
    let pid = worker.pid();
    if let Some((before, now)) =
        threads_at_start.and_then(|b| Some((b, threads_after_grace(pid, b)?)))
    {
        if now > before {
            r.warn(&format!(
                "{} thread(s) started by the library still ran 200 ms after every class was destroyed, and the library is unloaded next: stop and join them in destroy (one still in the library's code crashes the worker; helper threads of the C library, such as timer_create's, are harmless)",
                now - before
            ))?;
        }
    }
    let _ = worker.call(&ToWorker::Destroy, &limits(opts));
    // Heard since the last class was destroyed: calls after destroy.
    for (provider, line) in take_provider_errors() {
        if let Some(v) = violation(&line) {
            r.fail(1, &format!("after destroy: provider {provider:?} {v}"))?;
        }
    }
    // What the process did after its classes were destroyed: the C
    // library's and the provider's destructors, and the leak reports of
    // valgrind and AddressSanitizer, which exit non-zero when they found
    // errors (see "Testing your provider under valgrind and ASan").
    let ended = worker.finish(opts.deadline.max(Duration::from_secs(1)));
    if worker.stderr_held() {
        r.warn("a process the library started still runs after the worker exited: it left the worker's process group (setsid?), so it was not stopped with it")?;
    }
    match ended {
        Some(status) if status.success() => Ok(()),
        Some(status) => r.fail(
            1,
            &format!(
                "the worker (pid {pid}) exited with {} after every class was destroyed: a thread the library left running, or its destructors, crashed, or a memory tool found errors{}",
                exit_text(status),
                if status.code().is_some() { tool_hint(pid) } else { String::new() }
            ),
        ),
        None => r.fail(
            1,
            &format!(
                "the worker did not exit within {} ms after every class was destroyed (a thread the provider left running?); it was killed",
                opts.deadline.max(Duration::from_secs(1)).as_millis()
            ),
        ),
    }
}

/// Where to look when a worker exited with a status of its own: a memory
/// tool running it may have made it exit so.
pub(super) fn tool_hint(pid: u32) -> String {
    format!(
        " (under valgrind --error-exitcode or AddressSanitizer, which exits 1 on an error, see their report for pid {pid}: valgrind.{pid}.log, asan.{pid} with the recipes of docs/writing-a-provider.md)"
    )
}

/// "status 23" or "signal 11 (SIGSEGV)".
fn exit_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => format!(
            "signal {sig} ({})",
            crate::worker::process::signal_name(sig)
        ),
        _ => status.to_string(),
    }
}
