//! Checks made on a provider file before it is mapped: a provider runs with
//! the agent's privileges, so only files that nobody else could have planted
//! or altered are loaded, and only if they are shared objects at all.

use super::LoadError;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// ELF `e_type` of a shared object.
const ET_DYN: u16 = 3;

/// ELF `e_machine` of this host's architecture, where known.
const EM_HOST: Option<u16> = if cfg!(target_arch = "x86_64") {
    Some(62)
} else if cfg!(target_arch = "aarch64") {
    Some(183)
} else if cfg!(target_arch = "x86") {
    Some(3)
} else if cfg!(target_arch = "arm") {
    Some(40)
} else if cfg!(target_arch = "powerpc64") {
    Some(21)
} else if cfg!(target_arch = "s390x") {
    Some(22)
} else if cfg!(target_arch = "riscv64") {
    Some(243)
} else {
    None
};

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Resolves symlinks and checks the file, its directory and every directory
/// above: owned by root or by the user the agent runs as, and not writable by
/// group or others. Higher directories may be world-writable if they have the
/// sticky bit (like /tmp), where others cannot rename what they do not own.
/// With that, nobody else can swap the file between these checks and the
/// load. Returns the resolved path, which is what gets loaded; or one
/// refusal listing every path at fault, each with what to do about it.
pub(crate) fn check_trusted(path: &Path) -> Result<PathBuf, LoadError> {
    let io = |e| LoadError::Io(path.to_owned(), e);
    let real = fs::canonicalize(path).map_err(io)?;
    let meta = fs::metadata(&real).map_err(io)?;
    if !meta.is_file() {
        return Err(LoadError::NotSharedObject(
            path.to_owned(),
            "not a regular file".into(),
        ));
    }
    let euid = effective_uid();
    let mut problems = problems_of(&real, &meta, Kind::File, euid);
    for (depth, dir) in real.ancestors().skip(1).enumerate() {
        let dir_meta = fs::metadata(dir).map_err(io)?;
        let kind = if depth == 0 {
            Kind::ItsDirectory
        } else {
            Kind::Above
        };
        problems.extend(problems_of(dir, &dir_meta, kind, euid));
    }
    if problems.is_empty() {
        return Ok(real);
    }
    Err(LoadError::Untrusted {
        path: path.to_owned(),
        reason: problems.join("; "),
    })
}

const S_ISVTX: u32 = 0o1000;

/// Which path of a provider's is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The file itself.
    File,
    /// The directory holding it.
    ItsDirectory,
    /// A directory above that one: may be shared if sticky.
    Above,
}

/// What is wrong with `checked` (uid and mode from `meta`), each with what
/// to do. `chmod` is only suggested for the file itself: a directory that
/// others can write is most likely shared on purpose (`/tmp`), and the fix
/// is to move the file, not to take the directory from its users.
fn problems_of(checked: &Path, meta: &fs::Metadata, kind: Kind, euid: u32) -> Vec<String> {
    judge(checked, meta.uid(), meta.mode() & 0o7777, kind, euid)
}

fn judge(checked: &Path, uid: u32, mode: u32, kind: Kind, euid: u32) -> Vec<String> {
    let what = if kind == Kind::File {
        "file"
    } else {
        "directory"
    };
    let move_it = format!(
        "move the file into a directory that only root or uid {euid} can write, such as {}",
        super::DEFAULT_PROVIDER_DIR
    );
    let mut found = Vec::new();
    let owned = uid == 0 || uid == euid;
    if !owned {
        found.push(format!(
            "{what} {} is owned by uid {uid}, not by root or the agent's uid {euid}: {}",
            crate::text::path(checked),
            if kind == Kind::File {
                // mv keeps the owner: only a copy made by root or the
                // agent's user is theirs.
                format!(
                    "install a copy of your own as root or uid {euid} (install -m 0644 {} DEST)",
                    crate::text::path(checked)
                )
            } else {
                move_it.clone()
            }
        ));
    }
    let sticky = mode & S_ISVTX != 0;
    if mode & 0o022 != 0 && !(kind == Kind::Above && sticky) {
        let by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "group",
            _ => "others",
        };
        // Others may write there on purpose (/tmp, a team's directory):
        // the fix is to move the file, not to take the directory from them.
        let shared = sticky || mode & 0o002 != 0;
        let fix = if kind == Kind::File {
            format!("run chmod go-w {}", crate::text::path(checked))
        } else if owned && !shared {
            format!(
                "run chmod go-w {} if nobody else needs to write there, or {move_it}",
                crate::text::path(checked)
            )
        } else {
            move_it
        };
        let shared = if shared && kind != Kind::File {
            ", a shared directory"
        } else {
            ""
        };
        found.push(format!(
            "{what} {} is writable by {by} (mode {mode:04o}{shared}): {fix}",
            crate::text::path(checked)
        ));
    }
    found
}

/// Reads the ELF header: a 64-bit (on 64-bit hosts) shared object for this
/// machine's byte order, or a clear reason why not.
pub(crate) fn check_elf(path: &Path, real: &Path) -> Result<(), LoadError> {
    let not_so = |why: String| LoadError::NotSharedObject(path.to_owned(), why);
    let mut header = [0u8; 20];
    let mut f = fs::File::open(real).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    let n = read_up_to(&mut f, &mut header).map_err(|e| LoadError::Io(path.to_owned(), e))?;
    if n < header.len() || header[..4] != *b"\x7fELF" {
        return Err(not_so("no ELF header".into()));
    }
    let wanted_class = if cfg!(target_pointer_width = "64") {
        2
    } else {
        1
    };
    if header[4] != wanted_class {
        return Err(not_so(format!(
            "ELF class {} does not match this {}-bit host",
            if header[4] == 1 { "32-bit" } else { "64-bit" },
            usize::BITS
        )));
    }
    let little = header[5] == 1;
    if little != cfg!(target_endian = "little") {
        return Err(not_so("ELF byte order does not match this host".into()));
    }
    let half = |at: usize| {
        let b = [header[at], header[at + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let e_type = half(16);
    if e_type != ET_DYN {
        return Err(not_so(format!(
            "ELF type {e_type} is not a shared object (expected {ET_DYN}, ET_DYN)"
        )));
    }
    let e_machine = half(18);
    if EM_HOST.is_some_and(|m| m != e_machine) {
        return Err(not_so(format!(
            "built for ELF machine {e_machine}, not this host's {} ({})",
            EM_HOST.unwrap_or_default(),
            std::env::consts::ARCH
        )));
    }
    Ok(())
}

fn read_up_to(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (kind, uid, mode) -> what the refusal says, or nothing; the agent
    /// runs as uid 1000 here.
    #[test]
    fn each_fault_is_named_with_a_fix_and_no_shared_directory_is_chmodded() {
        let cases: [(Kind, u32, u32, &[&str]); 10] = [
            (Kind::File, 1000, 0o644, &[]),
            (Kind::File, 0, 0o755, &[]),
            (Kind::File, 1000, 0o664, &["file /p is writable by group (mode 0664): run chmod go-w /p"]),
            (Kind::File, 2000, 0o644, &["file /p is owned by uid 2000, not by root or the agent's uid 1000: install a copy of your own as root or uid 1000 (install -m 0644 /p DEST)"]),
            (Kind::ItsDirectory, 0, 0o1777, &["directory /p is writable by group and others (mode 1777, a shared directory): move the file into a directory that only root or uid 1000 can write, such as /usr/lib/vif-plug-host/providers"]),
            (Kind::ItsDirectory, 1000, 0o775, &["directory /p is writable by group (mode 0775): run chmod go-w /p if nobody else needs to write there, or move the file into a directory that only root or uid 1000 can write"]),
            (Kind::ItsDirectory, 2000, 0o775, &["directory /p is owned by uid 2000", "directory /p is writable by group (mode 0775): move the file"]),
            (Kind::Above, 0, 0o1777, &[]),
            (Kind::Above, 0, 0o777, &["directory /p is writable by group and others (mode 0777, a shared directory): move the file"]),
            (Kind::Above, 2000, 0o1777, &["directory /p is owned by uid 2000, not by root or the agent's uid 1000: move the file"]),
        ];
        for (kind, uid, mode, want) in cases {
            let got = judge(Path::new("/p"), uid, mode, kind, 1000);
            assert_eq!(got.len(), want.len(), "{kind:?} {uid} {mode:o}: {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!(
                    g.starts_with(w),
                    "{kind:?} {uid} {mode:o}: {g:?} should start {w:?}"
                );
            }
            // Never chmod a directory others may write on purpose, nor
            // one that is not ours.
            if kind != Kind::File && (mode & 0o1002 != 0 || uid == 2000) {
                assert!(got.iter().all(|g| !g.contains("chmod")), "{got:?}");
            }
        }
    }
}
