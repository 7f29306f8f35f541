//! The pidfile `<rundir>/vif-plug-host.pid`: the agent's process id and a
//! newline, as OVS daemons write theirs (`lib/daemon-unix.c`), so that
//! `ovs-appctl -t vif-plug-host` finds the control socket. A pidfile of a
//! live `vif-plug-host` means another agent uses this rundir: refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The program name, which is also the `-t` target of `ovs-appctl`.
pub const NAME: &str = "vif-plug-host";

/// A pidfile this process wrote; removed on drop if it still names us.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

/// The process `pid` is alive and is a `vif-plug-host` (its
/// `/proc/PID/comm`).
fn is_agent(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == NAME)
}

impl Pidfile {
    /// Writes `<rundir>/vif-plug-host.pid` with our pid (through a
    /// temporary file and a rename, so a reader never sees half of it).
    ///
    /// Errors: another live agent's pidfile is there, or the file cannot
    /// be written (the text says which and what to do).
    pub fn create(rundir: &Path) -> Result<Pidfile, String> {
        let path = rundir.join(format!("{NAME}.pid"));
        let me = std::process::id();
        if let Some(pid) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            if pid != me && is_agent(pid) {
                return Err(format!(
                    "{} names a running {NAME} (pid {pid}): another agent uses this rundir; stop it or give --rundir",
                    path.display()
                ));
            }
        }
        let tmp = rundir.join(format!(".{NAME}.pid.{me}"));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            writeln!(f, "{me}")?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("writing the pidfile {}: {e}", path.display())
        })?;
        Ok(Pidfile { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let ours = fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_back_and_removed_only_while_ours() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pidfile::create(dir.path()).unwrap();
        let text = fs::read_to_string(p.path()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // Our own pid in it (a restart that reuses it) is no conflict.
        let again = Pidfile::create(dir.path()).unwrap();
        drop(again);
        assert!(!p.path().exists());
        // A stale pidfile of a dead process is replaced.
        fs::write(dir.path().join("vif-plug-host.pid"), "999999999\n").unwrap();
        let p = Pidfile::create(dir.path()).unwrap();
        // Someone else's pidfile now: ours is left alone on drop.
        fs::write(p.path(), "1\n").unwrap();
        drop(p);
        assert!(dir.path().join("vif-plug-host.pid").exists());
    }
}
