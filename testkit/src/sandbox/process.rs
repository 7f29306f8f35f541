//! Processes: running commands, waiting for conditions, and signalling
//! daemons by PID (never by name).

use super::install::Daemon;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often [`wait_until`] checks its condition.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long [`Sandbox::stop`] waits after `SIGTERM` before `SIGKILL`.
pub(super) const TERM_GRACE: Duration = Duration::from_secs(5);

/// How long a process may take to disappear after `SIGKILL`.
pub(super) const KILL_GRACE: Duration = Duration::from_secs(2);

/// The command line of `cmd`, without the environment that `Debug` would
/// also show (the same sandbox variables every time).
pub(super) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion; its stdout without the trailing newline, or an
/// error with the command, status and stderr.
pub(super) fn run_output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running `{}`: {e}", describe(cmd)))?;
    if out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        Ok(stdout.trim_end_matches('\n').to_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// Polls `cond` every 50 ms until it returns true, or fails with a message
/// naming `what` after `timeout`. The condition is checked once more at the
/// deadline, so a slow last check does not turn success into a timeout.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// Whether process `pid` exists and has not exited.
///
/// The daemons detach, so they are not this process's children and, once
/// they exit, stay zombies until whoever adopted them reaps them (which
/// some container inits never do). A zombie counts as gone, which
/// `kill(pid, 0)` alone would not tell.
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces or parentheses.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X") | Some("x"))
}

/// Whether process `pid` runs `program`: a check against signalling an
/// unrelated process that reused a dead daemon's PID.
pub(super) fn runs_program(pid: u32, program: &str) -> bool {
    // The kernel truncates the command name to 15 bytes.
    let expected = &program[..program.len().min(15)];
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == expected)
}

pub(super) fn read_pidfile(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Sends signal `sig` (a name such as `TERM`) to process `pid`, ignoring
/// failure: the process may have exited meanwhile. The shell's built-in
/// `kill` is used because a separate `kill` binary is not in minimal images,
/// and it spares this crate `unsafe` calls into libc.
pub(super) fn signal(pid: u32, sig: &str) {
    // Never 0 or negative, which would signal a process group.
    if pid == 0 || i32::try_from(pid).is_err() {
        return;
    }
    let _ = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\" 2>/dev/null", "sh", sig])
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .status();
}

/// Sends `SIGTERM` to every process, waits up to 5 s for all of them to
/// exit, then `SIGKILL`s the rest. Errors if any survives that.
pub(super) fn terminate(daemons: &[(Daemon, u32)]) -> Result<(), String> {
    let alive = |ds: &[(Daemon, u32)]| -> Vec<(Daemon, u32)> {
        ds.iter()
            .copied()
            .filter(|&(_, pid)| process_alive(pid))
            .collect()
    };
    for &(_, pid) in daemons {
        signal(pid, "TERM");
    }
    if wait_until(TERM_GRACE, "daemons to exit", || alive(daemons).is_empty()).is_ok() {
        return Ok(());
    }
    let stubborn = alive(daemons);
    for &(_, pid) in &stubborn {
        signal(pid, "KILL");
    }
    wait_until(KILL_GRACE, "daemons to die", || alive(&stubborn).is_empty())
        .map_err(|_| format!("still running after SIGKILL: {:?}", alive(&stubborn)))
}

/// The last `n` lines of a text file, or "" if it cannot be read.
pub(super) fn tail_lines(path: &Path, n: usize) -> String {
    let Ok(text) = fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_reports_what_timed_out() {
        let err = wait_until(Duration::from_millis(120), "the impossible", || false).unwrap_err();
        assert!(err.contains("the impossible"), "{err}");
        let mut calls = 0;
        wait_until(Duration::from_secs(5), "third call", || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[test]
    fn process_alive_sees_self_and_not_reaped_children() {
        assert!(process_alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
    }

    #[test]
    fn process_alive_treats_zombies_as_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet, so a zombie once it has exited.
        wait_until(Duration::from_secs(5), "child to exit", || {
            !process_alive(pid)
        })
        .unwrap();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        child.wait().unwrap();
    }

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "1\n2\n3\n").unwrap();
        assert_eq!(tail_lines(&path, 2), "2\n3");
        assert_eq!(tail_lines(&path, 10), "1\n2\n3");
        assert_eq!(tail_lines(&dir.path().join("none"), 2), "");
    }
}
