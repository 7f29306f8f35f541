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
/// load. Returns the resolved path, which is what gets loaded.
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
    check_owner_and_mode(path, &real, &meta, "file", false)?;
    for (depth, dir) in real.ancestors().skip(1).enumerate() {
        let dir_meta = fs::metadata(dir).map_err(io)?;
        check_owner_and_mode(path, dir, &dir_meta, "directory", depth > 0)?;
    }
    Ok(real)
}

const S_ISVTX: u32 = 0o1000;

fn check_owner_and_mode(
    path: &Path,
    checked: &Path,
    meta: &fs::Metadata,
    what: &'static str,
    sticky_ok: bool,
) -> Result<(), LoadError> {
    let euid = effective_uid();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(LoadError::Untrusted {
            path: path.to_owned(),
            reason: format!(
                "{what} {} is owned by uid {}, not by root or the agent's uid {euid}",
                checked.display(),
                meta.uid()
            ),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 && !(sticky_ok && mode & S_ISVTX != 0) {
        let by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "group",
            _ => "others",
        };
        return Err(LoadError::Untrusted {
            path: path.to_owned(),
            reason: format!(
                "{what} {} is writable by {by} (mode {mode:04o}); run chmod go-w on it",
                checked.display()
            ),
        });
    }
    Ok(())
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
