//! Starting one daemon of a sandbox: its command line, detaching, its
//! pidfile, and waiting until it is ready for the next.

use super::process::{describe, process_alive, read_pidfile, wait_until};
use super::{Daemon, Sandbox};
use std::fs::OpenOptions;
use std::os::unix::net::UnixStream;
use std::process::Command;

impl Sandbox {
    /// The daemon's command line, always detaching and writing its pidfile
    /// and log into the sandbox.
    pub(super) fn daemon_command(&self, daemon: Daemon) -> Command {
        let binary = self.install.binary(daemon.program());
        let mut cmd = match (&self.opts.netns, daemon) {
            // `ip netns exec` execs the daemon without forking, so the
            // daemon detaches and writes its pidfile as it does without.
            (Some(ns), Daemon::Vswitchd) => {
                let mut cmd = self.command("ip");
                cmd.args(["netns", "exec", ns.as_str()]).arg(binary);
                cmd
            }
            _ => self.command(binary),
        };
        cmd.arg("--detach")
            .arg("--no-chdir")
            .arg(format!("--pidfile={}", self.pidfile(daemon).display()))
            .arg(format!("--log-file={}", self.log_path(daemon).display()));
        match daemon {
            Daemon::NbDb | Daemon::SbDb | Daemon::SbDb2 | Daemon::SbDb3 | Daemon::OvsDb => {
                let (file, _) = daemon.database().expect("a database server");
                let socket = self.db_socket(daemon).expect("a database server");
                cmd.arg(format!("--remote=punix:{}", socket.display()))
                    .arg(format!(
                        "--unixctl={}",
                        self.ctl_socket(daemon, 0).display()
                    ))
                    .arg(self.file(file));
                if daemon == Daemon::SbDb {
                    cmd.args(&self.opts.sb_db_args);
                }
            }
            Daemon::Northd => {
                cmd.arg(format!("--ovnnb-db={}", self.nb_remote()))
                    .arg(format!("--ovnsb-db={}", self.sb_remote()));
            }
            Daemon::Vswitchd => {
                if self.opts.dummy_netdevs {
                    cmd.arg("--enable-dummy=override");
                }
                cmd.arg(self.ovs_remote());
            }
            Daemon::OvnController => {
                cmd.args(&self.opts.ovn_controller_args)
                    .arg(self.ovs_remote());
            }
        }
        cmd
    }

    /// Runs the daemon's command. With `--detach` the command returns once
    /// the daemon has initialised (or failed to). Its console output goes
    /// to `<stem>.out` rather than a pipe: the detached daemon would hold a
    /// pipe open, and a pipe nobody reads can block it.
    pub(super) fn spawn_detached(&self, daemon: Daemon) -> Result<(), String> {
        let out_path = self.file(&format!("{}.out", daemon.stem()));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(|e| format!("opening {}: {e}", out_path.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("duplicating {}: {e}", out_path.display()))?;
        let mut cmd = self.daemon_command(daemon);
        cmd.stdout(out).stderr(err);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting `{}`: {e}", describe(&cmd)))?;
        let mut status = None;
        let waited = wait_until(
            self.opts.timeout,
            &format!("{} to detach", daemon.program()),
            || {
                status = child.try_wait().ok().flatten();
                status.is_some()
            },
        );
        if let Err(e) = waited {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.daemon_error(daemon, &e));
        }
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => {
                Err(self.daemon_error(daemon, &format!("`{}` failed ({s})", describe(&cmd))))
            }
            None => unreachable!("wait_until succeeded"),
        }
    }

    pub(super) fn wait_for_pidfile(&self, daemon: Daemon) -> Result<u32, String> {
        let pidfile = self.pidfile(daemon);
        let mut pid = None;
        wait_until(
            self.opts.timeout,
            &format!("{} to write {}", daemon.program(), pidfile.display()),
            || {
                pid = read_pidfile(&pidfile).filter(|&p| process_alive(p));
                pid.is_some()
            },
        )
        .map_err(|e| self.daemon_error(daemon, &e))?;
        Ok(pid.expect("wait_until succeeded"))
    }

    pub(super) fn wait_ready(&self, daemon: Daemon, pid: u32) -> Result<(), String> {
        let timeout = self.opts.timeout;
        let ctl = self.ctl_socket(daemon, pid);
        wait_until(
            timeout,
            &format!("{} to listen on {}", daemon.program(), ctl.display()),
            || UnixStream::connect(&ctl).is_ok(),
        )?;
        match daemon {
            Daemon::NbDb | Daemon::SbDb | Daemon::SbDb2 | Daemon::SbDb3 | Daemon::OvsDb => {
                let socket = self.db_socket(daemon).expect("a database server");
                wait_until(
                    timeout,
                    &format!("ovsdb-server to listen on {}", socket.display()),
                    || UnixStream::connect(&socket).is_ok(),
                )
            }
            Daemon::Northd => wait_until(timeout, "ovn-northd to become active", || {
                self.appctl(daemon, &["status"])
                    .is_ok_and(|s| s.contains("active") && !s.contains("standby"))
            }),
            Daemon::Vswitchd => Ok(()),
            Daemon::OvnController => {
                wait_until(
                    timeout,
                    "ovn-controller to connect to the Southbound database",
                    || {
                        self.appctl(daemon, &["connection-status"])
                            .is_ok_and(|s| s == "connected")
                    },
                )?;
                let name = self.chassis_name();
                wait_until(
                    timeout,
                    &format!("chassis {name} in the Southbound database"),
                    || {
                        self.sbctl(&[
                            "--bare",
                            "--columns=name",
                            "find",
                            "Chassis",
                            &format!("name={name}"),
                        ])
                        .is_ok_and(|s| s == name)
                    },
                )
            }
        }
    }
}
