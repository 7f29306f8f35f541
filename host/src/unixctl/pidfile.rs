//! The pidfile `<rundir>/vif-plug-host.pid`: the agent's process id and a
//! newline, write-locked with `fcntl(F_SETLK)` for as long as the agent
//! runs, as OVS daemons keep theirs (`lib/daemon-unix.c`). `ovs-appctl -t
//! vif-plug-host` reads the pid only from a pidfile that a live process
//! holds locked, and only if the lock's owner is the pid written in it
//! (`read_pidfile__`): an unlocked file is "stale" to it (ESRCH). The lock
//! also tells a second agent on the same rundir that the first still runs.
//!
//! POSIX record locks belong to the process and end when it closes *any*
//! descriptor of the file, so nothing else in the agent may open the
//! pidfile while it runs.

use nix::fcntl::{fcntl, FcntlArg};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The program name, which is also the `-t` target of `ovs-appctl`.
pub const NAME: &str = "vif-plug-host";

/// A pidfile this process wrote and holds locked; removed on drop if it
/// still names us.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    /// The locked descriptor: closing it releases the lock.
    _locked: File,
}

/// A write lock over the whole file, as `lib/daemon-unix.c` takes and tests it.
fn whole_file_write_lock() -> libc::flock {
    libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// The pid of another process that holds `path` write-locked, if any.
/// (A lock of this very process is not seen: POSIX locks of one process
/// never conflict with each other.)
fn lock_holder(path: &Path) -> Option<libc::pid_t> {
    let file = File::open(path).ok()?;
    let mut probe = whole_file_write_lock();
    fcntl(&file, FcntlArg::F_GETLK(&mut probe)).ok()?;
    (probe.l_type != libc::F_UNLCK as libc::c_short).then_some(probe.l_pid)
}

impl Pidfile {
    /// Writes `<rundir>/vif-plug-host.pid` with our pid and keeps it
    /// write-locked until drop. The file is written and locked under a
    /// temporary name, then renamed, so a reader never sees half of it
    /// nor an unlocked one.
    ///
    /// Errors: another live process holds the pidfile locked (another
    /// agent uses this rundir), or the file cannot be written or locked
    /// (the text says which and what to do). A pidfile nobody holds is a
    /// leftover of an agent that died, and is replaced.
    pub fn create(rundir: &Path) -> Result<Pidfile, String> {
        let path = rundir.join(format!("{NAME}.pid"));
        if let Some(pid) = lock_holder(&path) {
            return Err(format!(
                "{} is held by a running process (pid {pid}): another agent uses this rundir; stop it or give --rundir",
                path.display()
            ));
        }
        let me = std::process::id();
        let tmp = rundir.join(format!(".{NAME}.pid.{me}"));
        let write = || -> Result<File, String> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| e.to_string())?;
            fcntl(&f, FcntlArg::F_SETLK(&whole_file_write_lock()))
                .map_err(|e| format!("locking it: {e}"))?;
            writeln!(f, "{me}").map_err(|e| e.to_string())?;
            f.sync_all().map_err(|e| e.to_string())?;
            fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
            Ok(f)
        };
        let locked = write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("writing the pidfile {}: {e}", path.display())
        })?;
        Ok(Pidfile {
            path,
            _locked: locked,
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // Reading it opens a second descriptor, which releases the lock
        // when closed: harmless now, we are going.
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
    use std::os::unix::fs::MetadataExt;

    /// Whether `/proc/locks` lists a POSIX write lock of this process on
    /// the file at `path` (by device and inode, as the kernel prints them).
    fn locked_by_us(path: &Path) -> bool {
        let meta = fs::metadata(path).unwrap();
        let (dev, ino) = (meta.dev(), meta.ino());
        let id = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
        let me = std::process::id().to_string();
        fs::read_to_string("/proc/locks").unwrap().lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 5 && f[1] == "POSIX" && f[3] == "WRITE" && f[4] == me && f[5] == id
        })
    }

    #[test]
    fn written_locked_and_removed_only_while_ours() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pidfile::create(dir.path()).unwrap();
        assert!(
            locked_by_us(p.path()),
            "the pidfile is write-locked while held"
        );
        // (Reading it releases the lock: see the module's note.)
        let text = fs::read_to_string(p.path()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        assert!(!dir
            .path()
            .join(format!(".{NAME}.pid.{}", std::process::id()))
            .exists());
        drop(p);
        assert!(!dir.path().join("vif-plug-host.pid").exists());
        // A leftover nobody holds (an agent that died) is replaced.
        fs::write(dir.path().join("vif-plug-host.pid"), "999999999\n").unwrap();
        let p = Pidfile::create(dir.path()).unwrap();
        assert!(locked_by_us(p.path()));
        // Someone else's pidfile now: ours is left alone on drop.
        fs::write(p.path(), "1\n").unwrap();
        drop(p);
        assert!(dir.path().join("vif-plug-host.pid").exists());
    }
}
