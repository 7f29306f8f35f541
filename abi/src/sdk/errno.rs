//! The errno values a provider hands the host, for
//! [`InitError::new`](super::InitError::new), without a `libc` dependency.
//!
//! The values are Linux's generic ones (`asm-generic/errno.h`), which
//! x86, ARM, AArch64, RISC-V, PowerPC and s390x use; MIPS, SPARC, Alpha
//! and PA-RISC number some of them differently. The host runs on Linux
//! only, and prints the value with its text
//! (`init returned 19 (No such device)`).
//!
//! ```
//! use vif_plug_abi::sdk::errno::ENODEV;
//! use vif_plug_abi::sdk::InitError;
//!
//! let e = InitError::new(ENODEV, "no devlink device: load the NIC driver first");
//! assert_eq!(e.errno(), 19);
//! ```

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// No such file or directory.
pub const ENOENT: i32 = 2;
/// Input/output error: what [`InitError`](super::InitError) falls back to.
pub const EIO: i32 = 5;
/// No such device or address.
pub const ENXIO: i32 = 6;
/// Resource temporarily unavailable (the same value as `EWOULDBLOCK`).
pub const EAGAIN: i32 = 11;
/// Cannot allocate memory.
pub const ENOMEM: i32 = 12;
/// Permission denied.
pub const EACCES: i32 = 13;
/// Device or resource busy.
pub const EBUSY: i32 = 16;
/// File exists.
pub const EEXIST: i32 = 17;
/// No such device: the hardware or kernel facility the provider needs is
/// not there.
pub const ENODEV: i32 = 19;
/// Invalid argument: for a provider, usually bad `--provider-config`.
pub const EINVAL: i32 = 22;
/// No space left on device.
pub const ENOSPC: i32 = 28;
/// Numerical result out of range.
pub const ERANGE: i32 = 34;
/// Function not implemented.
pub const ENOSYS: i32 = 38;
/// Protocol not supported: e.g. a kernel without the netlink family the
/// provider speaks.
pub const EPROTONOSUPPORT: i32 = 93;
/// Operation not supported (the same value as [`ENOTSUP`] on Linux).
pub const EOPNOTSUPP: i32 = 95;
/// Operation not supported (the same value as [`EOPNOTSUPP`] on Linux).
pub const ENOTSUP: i32 = EOPNOTSUPP;
/// No buffer space available.
pub const ENOBUFS: i32 = 105;
/// Connection timed out.
pub const ETIMEDOUT: i32 = 110;
/// State not recoverable: what the SDK returns from `init` when
/// [`Provider::init`](super::Provider::init) panicked.
pub const ENOTRECOVERABLE: i32 = 131;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value against Linux's own headers, which a machine that
    /// builds C providers has (linux-libc-dev).
    #[test]
    fn values_match_the_linux_headers() {
        let mut headers = String::new();
        for f in [
            "/usr/include/asm-generic/errno-base.h",
            "/usr/include/asm-generic/errno.h",
        ] {
            headers += &std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        let defined = |name: &str| -> i32 {
            headers
                .lines()
                .filter_map(|l| l.strip_prefix("#define"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|w| w.first() == Some(&name))
                .and_then(|w| w.get(1).and_then(|v| v.parse().ok()))
                .unwrap_or_else(|| panic!("{name} is not a number in the headers"))
        };
        for (name, value) in [
            ("EPERM", EPERM),
            ("ENOENT", ENOENT),
            ("EIO", EIO),
            ("ENXIO", ENXIO),
            ("EAGAIN", EAGAIN),
            ("ENOMEM", ENOMEM),
            ("EACCES", EACCES),
            ("EBUSY", EBUSY),
            ("EEXIST", EEXIST),
            ("ENODEV", ENODEV),
            ("EINVAL", EINVAL),
            ("ENOSPC", ENOSPC),
            ("ERANGE", ERANGE),
            ("ENOSYS", ENOSYS),
            ("EPROTONOSUPPORT", EPROTONOSUPPORT),
            ("EOPNOTSUPP", EOPNOTSUPP),
            ("ENOBUFS", ENOBUFS),
            ("ETIMEDOUT", ETIMEDOUT),
            ("ENOTRECOVERABLE", ENOTRECOVERABLE),
        ] {
            assert_eq!(value, defined(name), "{name}");
        }
        assert_eq!(ENOTSUP, EOPNOTSUPP);
    }
}
