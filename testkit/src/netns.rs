//! Private network namespaces for tests (`ip netns`), and running code
//! inside one.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A named network namespace, deleted on drop.
pub struct NetNs {
    name: String,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e} (install iproute2)", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates namespace `name` (needs root).
    pub fn create(name: &str) -> Result<NetNs, String> {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        Ok(NetNs {
            name: name.to_owned(),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The ifindex of `dev` in the namespace.
    pub fn ifindex(&self, dev: &str) -> Result<u32, String> {
        let out = self.ip(&["-o", "link", "show", "dev", dev])?;
        out.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no ifindex in {out:?}"))
    }

    /// Runs `f` on a thread that has entered the namespace, so sockets it
    /// opens belong to the namespace.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, String> {
        let path = format!("/var/run/netns/{}", self.name);
        let ns = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        std::thread::spawn(move || {
            // SAFETY: setns on a valid namespace fd only changes this
            // thread's network namespace, which ends with the thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(format!("setns: {}", std::io::Error::last_os_error()));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_owned())?
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}
