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
use std::io::{Seek, SeekFrom, Write};
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

/// The pid of another process that holds `file` write-locked, if any.
/// (A lock of this very process is not seen: POSIX locks of one process
/// never conflict with each other.)
fn lock_holder(file: &File) -> Option<libc::pid_t> {
    let mut probe = whole_file_write_lock();
    fcntl(file, FcntlArg::F_GETLK(&mut probe)).ok()?;
    (probe.l_type != libc::F_UNLCK as libc::c_short).then_some(probe.l_pid)
}

impl Pidfile {
    /// Takes `<rundir>/vif-plug-host.pid`: opens it (created if absent,
    /// never through a symbolic link), write-locks it without waiting, and
    /// only then writes our pid into it. The lock is taken on the file
    /// itself, not on a temporary one renamed over it, so two agents
    /// started at the same instant cannot both win: the second finds the
    /// first's lock. (For an instant a reader may find the file empty;
    /// `ovs-appctl` then says it cannot read the pid, and a retry works.)
    ///
    /// Errors: another live process holds the pidfile locked (another
    /// agent uses this rundir), the path is a symbolic link or not a
    /// regular file, or it cannot be written or locked (the text says
    /// which and what to do). A pidfile nobody holds is a leftover of an
    /// agent that died, and is taken over.
    pub fn create(rundir: &Path) -> Result<Pidfile, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = rundir.join(format!("{NAME}.pid"));
        let shown = path.display();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => format!(
                    "the pidfile {shown} is a symbolic link: not followed; remove it or give --rundir"
                ),
                Some(libc::EACCES | libc::EROFS) => format!(
                    "writing the pidfile {shown}: {e} (run as a user who may write in {}, or give --rundir)",
                    rundir.display()
                ),
                _ => format!("opening the pidfile {shown}: {e}"),
            })?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(format!(
                "the pidfile {shown} is not a regular file; remove it or give --rundir"
            ));
        }
        if let Err(e) = fcntl(&file, FcntlArg::F_SETLK(&whole_file_write_lock())) {
            return Err(match lock_holder(&file) {
                Some(pid) => format!(
                    "{shown} is held by a running process (pid {pid}): another agent uses this rundir; stop it or give --rundir"
                ),
                None => format!("locking the pidfile {shown}: {e}"),
            });
        }
        let me = std::process::id();
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            writeln!(f, "{me}")?;
            f.sync_all()
        };
        write(&mut file).map_err(|e| format!("writing the pidfile {shown}: {e}"))?;
        Ok(Pidfile {
            path,
            _locked: file,
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // Removed only if the path still names the file we hold (by
        // device and inode: reading it would open a second descriptor).
        use std::os::unix::fs::MetadataExt;
        let (Ok(held), Ok(now)) = (self._locked.metadata(), fs::symlink_metadata(&self.path))
        else {
            return;
        };
        if held.dev() == now.dev() && held.ino() == now.ino() {
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
        let path = dir.path().join("vif-plug-host.pid");
        let p = Pidfile::create(dir.path()).unwrap();
        assert!(
            locked_by_us(&path),
            "the pidfile is write-locked while held"
        );
        // (Reading it releases the lock: see the module's note.)
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        drop(p);
        assert!(!path.exists());
        // A leftover nobody holds (an agent that died), longer than our
        // pid: taken over, and nothing of it is left.
        fs::write(&path, "999999999999\n").unwrap();
        let p = Pidfile::create(dir.path()).unwrap();
        assert!(locked_by_us(&path));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        // Another file put in its place: left alone on drop.
        let other = dir.path().join("other");
        fs::write(&other, "1\n").unwrap();
        fs::rename(&other, &path).unwrap();
        drop(p);
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");
    }

    #[test]
    fn a_symbolic_link_or_a_directory_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vif-plug-host.pid");
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = Pidfile::create(dir.path()).unwrap_err();
        assert!(e.contains("is a symbolic link: not followed"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let e = Pidfile::create(dir.path()).unwrap_err();
        assert!(e.contains("vif-plug-host.pid"), "{e}");
    }
}
