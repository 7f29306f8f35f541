//! A private OVN chassis for integration tests: Northbound and Southbound
//! databases, `ovn-northd`, a local Open vSwitch (database and
//! `ovs-vswitchd`) with an integration bridge, and `ovn-controller`, all
//! started from the distribution's binaries and talking over unix sockets in
//! one temporary directory.
//!
//! ```no_run
//! use testkit::sandbox::{Sandbox, SandboxOptions};
//!
//! let sandbox = Sandbox::start(SandboxOptions::default()).unwrap();
//! sandbox.nbctl(&["ls-add", "sw0"]).unwrap();
//! // Run the component under test against sandbox.ovs_remote() and
//! // sandbox.sb_remote(); dropping the sandbox stops every daemon.
//! ```
//!
//! # Isolation
//!
//! Every command runs with `OVS_RUNDIR`, `OVS_LOGDIR`, `OVS_DBDIR`,
//! `OVS_SYSCONFDIR` and their `OVN_*` counterparts pointing at the sandbox
//! directory, and with the variables that would redirect the CLI tools
//! elsewhere (`OVN_NB_DAEMON`, `OVN_NB_DB`, `OVS_CTL_TIMEOUT`, ...) removed,
//! so nothing reads or writes the system's `/var/run/openvswitch`, its
//! databases or its logs, and several sandboxes can run at once.
//!
//! There is no openvswitch kernel module on the machines this runs on, so the
//! bridge uses the userspace datapath (`datapath_type=netdev`). By default
//! `ovs-vswitchd` also runs with `--enable-dummy=override`, which replaces
//! the kernel-backed port types (`system`, `internal`, `tap`, ...) with
//! in-process dummy devices. Without it the userspace datapath creates
//! persistent tap devices (`ovs-netdev`, `br-int`, one per internal port) in
//! the host's network namespace: that needs `CAP_NET_ADMIN`, leaves devices
//! behind, and makes two sandboxes fight over the name `br-int`. Dummy
//! devices also let a test plug an interface whose name matches no kernel
//! device and still see it get an OpenFlow port, which is what a plugging
//! agent driving a fake provider needs. Set
//! [`SandboxOptions::dummy_netdevs`] to `false` for real tap devices, and
//! [`SandboxOptions::netns`] to keep them in a private network namespace.
//!
//! # Missing binaries
//!
//! [`Sandbox::start`] fails, naming every missing binary and the Debian
//! package that provides it, when Open vSwitch or OVN is not installed. It
//! never skips: a CI run (`CI=true`) without the daemons must fail, not pass
//! vacuously.
//!
//! # Leftovers
//!
//! The daemons detach from the test process, so a test process that is
//! killed (rather than panicking) leaves them running. Set
//! `VIF_PLUG_KEEP_SANDBOX=1` to keep the directory (databases and logs) after
//! the sandbox is dropped; its path is printed to stderr.

mod install;
mod launch;
mod process;
mod setup;

pub use install::{check_prerequisites, Daemon};
pub use process::{process_alive, wait_until};

use install::Installation;
use process::{read_pidfile, run_output, runs_program, tail_lines, terminate, TERM_GRACE};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Lines of a daemon's log quoted in error messages.
const LOG_TAIL_LINES: usize = 25;

/// Environment variable that keeps the sandbox directory after drop.
pub const KEEP_ENV: &str = "VIF_PLUG_KEEP_SANDBOX";

/// Variables pointing the OVS and OVN tools at the system's run, log,
/// database and configuration directories; all are set to the sandbox
/// directory.
const DIR_VARS: &[&str] = &[
    "OVS_RUNDIR",
    "OVS_LOGDIR",
    "OVS_DBDIR",
    "OVS_SYSCONFDIR",
    "OVN_RUNDIR",
    "OVN_LOGDIR",
    "OVN_DBDIR",
    "OVN_SYSCONFDIR",
];

/// Variables that would make a CLI tool talk to another database or daemon,
/// or change how it behaves, if inherited from the developer's shell.
const SCRUBBED_VARS: &[&str] = &[
    "OVN_NB_DAEMON",
    "OVN_SB_DAEMON",
    "OVN_NB_DB",
    "OVN_SB_DB",
    "OVN_IC_NB_DB",
    "OVN_IC_SB_DB",
    "OVN_NBCTL_OPTIONS",
    "OVN_SBCTL_OPTIONS",
    "OVS_CTL_TIMEOUT",
    "OVS_BINDIR",
    "OVN_BINDIR",
    "OVS_PKGDATADIR",
    "OVN_PKGDATADIR",
    "OVS_SYSLOG_METHOD",
];

/// How to build a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The chassis name (`external_ids:system-id`). Default `chassis-1`.
    pub chassis_name: String,
    /// Whether [`Sandbox::start`] starts `ovn-controller`. Default `true`;
    /// with `false` a test can start it later with
    /// [`Sandbox::start_daemon`]`(Daemon::OvnController)`.
    pub start_ovn_controller: bool,
    /// Extra arguments for `ovn-controller`, such as
    /// `--enable-dummy-vif-plug`. Also used when it is restarted.
    pub ovn_controller_args: Vec<String>,
    /// Run the Southbound as a three-member Raft cluster
    /// ([`Daemon::SbDb`], [`Daemon::SbDb2`], [`Daemon::SbDb3`], created with
    /// `ovsdb-tool create-cluster` and `join-cluster`, talking Raft over
    /// TCP on 127.0.0.1). Every client is given all three members.
    /// Default `false`: one standalone server.
    pub sb_cluster: bool,
    /// Extra arguments for the Southbound `ovsdb-server`, such as
    /// `--remote=pssl:PORT:127.0.0.1` and its TLS files. Its Unix socket,
    /// which the other daemons use, is always there.
    pub sb_db_args: Vec<String>,
    /// Run `ovs-vswitchd` with `--enable-dummy=override` so that ports are
    /// in-process dummy devices rather than kernel tap devices. Default
    /// `true`; see the [module documentation](self) for why. With `false`,
    /// dropping the sandbox asks `ovs-vswitchd` to `exit --cleanup`, which
    /// removes its tap devices; [`Sandbox::stop`] does not, so that a
    /// restarted `ovs-vswitchd` finds them again.
    pub dummy_netdevs: bool,
    /// Run `ovs-vswitchd` in this existing network namespace (`ip netns
    /// exec NAME ovs-vswitchd ...`; see [`crate::netns::NetNs`]), so that
    /// with real devices its tap devices (`ovs-netdev`, `br-int`) do not
    /// clash with those of another Open vSwitch on the machine, and the
    /// devices a test hands it are the namespace's. Only `ovs-vswitchd`
    /// moves: every daemon and tool reaches it and the databases through
    /// Unix sockets in the sandbox directory, which no network namespace
    /// hides. `ip` executes the daemon in its own process, so its pidfile
    /// and [`Sandbox::pid`] still name `ovs-vswitchd`. Default `None`: the
    /// test process's namespace. The sandbox neither creates nor deletes
    /// the namespace; delete it after dropping the sandbox.
    pub netns: Option<String>,
    /// How long to wait for each daemon to become ready, and the timeout
    /// given to the CLI tools. Default 30 s.
    pub timeout: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            chassis_name: "chassis-1".to_owned(),
            start_ovn_controller: true,
            ovn_controller_args: Vec::new(),
            sb_cluster: false,
            sb_db_args: Vec::new(),
            dummy_netdevs: true,
            netns: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A running private OVN chassis. Dropping it stops every daemon and
/// removes its directory.
#[derive(Debug)]
pub struct Sandbox {
    /// `None` only while being dropped.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    opts: SandboxOptions,
    install: Installation,
    /// PIDs of the daemons this sandbox started, read from their pidfiles.
    /// Kept because a daemon that dies uncleanly may leave no pidfile, and
    /// a `Mutex` so that a shared sandbox can restart daemons.
    pids: Mutex<HashMap<Daemon, u32>>,
    /// Raft ports of the Southbound members, when clustered.
    raft_ports: Vec<u16>,
}

impl Sandbox {
    /// Creates the directory and databases and starts every daemon (but
    /// `ovn-controller` if [`SandboxOptions::start_ovn_controller`] is
    /// false), returning once the chassis is registered in the Southbound
    /// database.
    ///
    /// On failure the daemons started so far are stopped, and the error
    /// quotes the log of the daemon that failed.
    pub fn start(opts: SandboxOptions) -> Result<Sandbox, String> {
        let install = Installation::locate()?;
        let opts_cluster = opts.sb_cluster;
        let dir = sandbox_dir()?;
        let path = dir.path().to_owned();
        let sandbox = Sandbox {
            dir: Some(dir),
            path,
            opts,
            raft_ports: if opts_cluster {
                vec![crate::free_port(), crate::free_port(), crate::free_port()]
            } else {
                Vec::new()
            },
            install,
            pids: Mutex::new(HashMap::new()),
        };
        // On error, dropping `sandbox` stops whatever has been started.
        match sandbox.bring_up() {
            Ok(()) => Ok(sandbox),
            Err(e) => Err(format!("OVN sandbox in {}: {e}", sandbox.path.display())),
        }
    }

    /// The sandbox directory: databases, sockets, pidfiles and logs
    /// (`<daemon>.log`, with early console output in `<daemon>.out`).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// The Northbound database remote, `unix:<dir>/nb.sock`.
    pub fn nb_remote(&self) -> String {
        self.remote("nb.sock")
    }

    /// The Southbound database remote, `unix:<dir>/sb.sock`; for a
    /// clustered Southbound, its three members, comma-separated.
    pub fn sb_remote(&self) -> String {
        self.sb_members()
            .iter()
            .map(|d| self.remote(&format!("{}.sock", d.stem())))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The Southbound servers: one, or the three members of its cluster.
    pub fn sb_members(&self) -> Vec<Daemon> {
        if self.opts.sb_cluster {
            vec![Daemon::SbDb, Daemon::SbDb2, Daemon::SbDb3]
        } else {
            vec![Daemon::SbDb]
        }
    }

    /// The remote of one Southbound server, `unix:<dir>/<stem>.sock`.
    pub fn member_remote(&self, member: Daemon) -> String {
        self.remote(&format!("{}.sock", member.stem()))
    }

    /// The Southbound member that is the Raft leader now, if one is
    /// (`cluster/status`); the standalone server otherwise.
    pub fn sb_leader(&self) -> Option<Daemon> {
        if !self.opts.sb_cluster {
            return Some(Daemon::SbDb);
        }
        self.sb_members().into_iter().find(|&m| {
            self.appctl(m, &["cluster/status", "OVN_Southbound"])
                .is_ok_and(|s| s.lines().any(|l| l.trim() == "Role: leader"))
        })
    }

    /// Waits until every running Southbound member is a cluster member
    /// that knows a leader.
    pub fn wait_sb_cluster(&self) -> Result<(), String> {
        for m in self.sb_members() {
            if !self.opts.sb_cluster || self.running_pid(m).is_none() {
                continue;
            }
            wait_until(self.opts.timeout, &format!("{m:?} in its cluster"), || {
                self.appctl(m, &["cluster/status", "OVN_Southbound"])
                    .is_ok_and(|s| {
                        s.contains("Status: cluster member")
                            && s.lines()
                                .any(|l| l.starts_with("Leader: ") && !l.contains("unknown"))
                    })
            })
            .map_err(|e| self.daemon_error(m, &e))?;
        }
        Ok(())
    }

    /// The local Open_vSwitch database remote, `unix:<dir>/db.sock`.
    pub fn ovs_remote(&self) -> String {
        self.remote("db.sock")
    }

    /// The chassis name (`external_ids:system-id`).
    pub fn chassis_name(&self) -> &str {
        &self.opts.chassis_name
    }

    /// Runs `ovn-nbctl` on the Northbound database; returns its standard
    /// output without the trailing newline, or an error quoting stderr.
    pub fn nbctl(&self, args: &[&str]) -> Result<String, String> {
        self.ctl("ovn-nbctl", &self.nb_remote(), args)
    }

    /// Runs `ovn-sbctl` on the Southbound database, as [`Sandbox::nbctl`].
    pub fn sbctl(&self, args: &[&str]) -> Result<String, String> {
        self.ctl("ovn-sbctl", &self.sb_remote(), args)
    }

    /// Runs `ovs-vsctl` on the local database, as [`Sandbox::nbctl`].
    ///
    /// Like plain `ovs-vsctl`, a command that changes the database waits
    /// for `ovs-vswitchd` to apply it unless `--no-wait` is given.
    pub fn vsctl(&self, args: &[&str]) -> Result<String, String> {
        self.ctl("ovs-vsctl", &self.ovs_remote(), args)
    }

    /// Runs an `ovs-appctl` command on a running daemon (for example
    /// `appctl(Daemon::OvnController, &["connection-status"])`).
    pub fn appctl(&self, daemon: Daemon, args: &[&str]) -> Result<String, String> {
        let pid = self
            .pid(daemon)
            .ok_or_else(|| format!("{daemon:?} is not running"))?;
        let target = self.ctl_socket(daemon, pid);
        let mut cmd = self.command(self.install.binary("ovs-appctl"));
        cmd.arg(format!("--timeout={}", self.timeout_secs()))
            .arg("-t")
            .arg(&target)
            .args(args);
        run_output(&mut cmd)
    }

    /// A [`Command`] for `program` with the sandbox's environment (the
    /// OVS/OVN directory variables) and working directory, for running the
    /// component under test or another tool beside the daemons.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.path).stdin(Stdio::null());
        for var in SCRUBBED_VARS {
            cmd.env_remove(var);
        }
        for var in DIR_VARS {
            cmd.env(var, &self.path);
        }
        cmd
    }

    /// The PID of `daemon` if it is running.
    pub fn pid(&self, daemon: Daemon) -> Option<u32> {
        self.running_pid(daemon)
    }

    /// The log file of `daemon`.
    pub fn log_path(&self, daemon: Daemon) -> PathBuf {
        self.file(&format!("{}.log", daemon.stem()))
    }

    /// Stops `daemon`: `SIGTERM`, then `SIGKILL` if it is still there after
    /// 5 s. Database files are kept, so [`Sandbox::start_daemon`] brings it
    /// back with its data. Stopping a daemon that is not running succeeds.
    pub fn stop(&self, daemon: Daemon) -> Result<(), String> {
        if let Some(pid) = self.running_pid(daemon) {
            terminate(&[(daemon, pid)])?;
        }
        self.forget(daemon);
        Ok(())
    }

    /// Kills `daemon` with `SIGKILL`, as a crash or the OOM killer would,
    /// and waits until it is gone. Its files stay as the crash left them
    /// (pidfile, socket, database), so [`Sandbox::start_daemon`] brings it
    /// back the way a supervisor would. Killing a daemon that is not
    /// running succeeds.
    pub fn kill(&self, daemon: Daemon) -> Result<(), String> {
        if let Some(pid) = self.running_pid(daemon) {
            process::signal(pid, "KILL");
            wait_until(
                process::KILL_GRACE,
                &format!("{daemon:?} (pid {pid}) to die"),
                || !process_alive(pid),
            )?;
        }
        self.forget(daemon);
        Ok(())
    }

    /// Sends `sig` (`STOP`, `CONT`, ...) to `daemon`, by PID.
    pub fn signal(&self, daemon: Daemon, sig: &str) -> Result<(), String> {
        let pid = self
            .running_pid(daemon)
            .ok_or_else(|| format!("{daemon:?} is not running"))?;
        process::signal(pid, sig);
        Ok(())
    }

    /// Starts a stopped `daemon` and waits until it is ready: a database
    /// server accepts connections, `ovn-northd` is active,
    /// `ovs-vswitchd` answers on its control socket, `ovn-controller` is
    /// connected to the Southbound database and its chassis is registered
    /// (so the Southbound server must be running).
    ///
    /// Fails if the daemon is already running.
    pub fn start_daemon(&self, daemon: Daemon) -> Result<(), String> {
        if let Some(pid) = self.running_pid(daemon) {
            return Err(format!("{daemon:?} is already running (pid {pid})"));
        }
        self.forget(daemon);
        self.spawn_detached(daemon)?;
        let pid = self.wait_for_pidfile(daemon)?;
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(daemon, pid);
        self.wait_ready(daemon, pid)
            .map_err(|e| self.daemon_error(daemon, &e))
    }

    /// [`Sandbox::stop`] then [`Sandbox::start_daemon`].
    ///
    /// This returns when the restarted daemon is ready, not when its
    /// clients have reconnected: after restarting a database server,
    /// `ovn-controller` and `ovs-vswitchd` come back after their reconnect
    /// back-off (about a second), so wait for the state a test needs.
    pub fn restart(&self, daemon: Daemon) -> Result<(), String> {
        self.stop(daemon)?;
        self.start_daemon(daemon)
    }

    /// Stops a database server, replaces its database with a new, empty
    /// one created from the schema, and starts it again: what an operator
    /// does to rebuild the Southbound from scratch (ovn-northd repopulates
    /// it, ovn-controller registers its chassis again).
    ///
    /// Fails for a daemon that is not a database server.
    pub fn recreate_database(&self, daemon: Daemon) -> Result<(), String> {
        let (file, _) = daemon
            .database()
            .ok_or_else(|| format!("{daemon:?} is not a database server"))?;
        if self.opts.sb_cluster && self.sb_members().contains(&daemon) {
            return Err("recreating a clustered Southbound is not supported".into());
        }
        self.stop(daemon)?;
        let path = self.file(file);
        fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        self.create_database(daemon)?;
        self.start_daemon(daemon)
    }

    fn remote(&self, socket: &str) -> String {
        format!("unix:{}", self.file(socket).display())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn pidfile(&self, daemon: Daemon) -> PathBuf {
        self.file(&format!("{}.pid", daemon.stem()))
    }

    /// The daemon's unixctl socket. The database servers are told where to
    /// put theirs, because three `ovsdb-server`s would otherwise share one
    /// name; the others use the default `<program>.<pid>.ctl`.
    fn ctl_socket(&self, daemon: Daemon, pid: u32) -> PathBuf {
        match daemon.database() {
            Some(_) => self.file(&format!("{}.ctl", daemon.stem())),
            None => self.file(&format!("{}.{pid}.ctl", daemon.stem())),
        }
    }

    /// The socket clients connect to, for a database server.
    fn db_socket(&self, daemon: Daemon) -> Option<PathBuf> {
        daemon
            .database()
            .map(|_| self.file(&format!("{}.sock", daemon.stem())))
    }

    fn timeout_secs(&self) -> u64 {
        self.opts.timeout.as_secs().max(1)
    }

    /// The PID of `daemon` if it is alive: from its pidfile, or the one
    /// recorded at start if the pidfile is gone. A PID whose process runs
    /// another program (reused after the daemon died) does not count.
    fn running_pid(&self, daemon: Daemon) -> Option<u32> {
        let recorded = self
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&daemon)
            .copied();
        read_pidfile(&self.pidfile(daemon))
            .into_iter()
            .chain(recorded)
            .find(|&pid| process_alive(pid) && runs_program(pid, daemon.program()))
    }

    /// Forgets a stopped daemon and removes the files it leaves behind when
    /// killed, so that readiness checks of the next start cannot be fooled
    /// by a stale pidfile or socket.
    fn forget(&self, daemon: Daemon) {
        let recorded = self
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&daemon);
        if let Some(pid) = recorded.or_else(|| read_pidfile(&self.pidfile(daemon))) {
            let _ = fs::remove_file(self.ctl_socket(daemon, pid));
        }
        let _ = fs::remove_file(self.pidfile(daemon));
        if let Some(socket) = self.db_socket(daemon) {
            let _ = fs::remove_file(socket);
        }
    }

    fn ctl(&self, tool: &str, remote: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = self.command(self.install.binary(tool));
        cmd.arg(format!("--db={remote}"))
            .arg(format!("--timeout={}", self.timeout_secs()))
            .args(args);
        run_output(&mut cmd)
    }

    /// `what`, followed by the end of the daemon's log and console output.
    fn daemon_error(&self, daemon: Daemon, what: &str) -> String {
        let mut msg = format!("{daemon:?} ({}): {what}", daemon.program());
        for path in [
            self.log_path(daemon),
            self.file(&format!("{}.out", daemon.stem())),
        ] {
            let tail = tail_lines(&path, LOG_TAIL_LINES);
            if !tail.is_empty() {
                msg.push_str(&format!("\n--- end of {} ---\n{tail}", path.display()));
            }
        }
        msg
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !self.opts.dummy_netdevs {
            // Real tap devices outlive ovs-vswitchd unless it removes its
            // datapath on the way out.
            if let Some(pid) = self.running_pid(Daemon::Vswitchd) {
                if self
                    .appctl(Daemon::Vswitchd, &["exit", "--cleanup"])
                    .is_ok()
                {
                    let _ = wait_until(TERM_GRACE, "ovs-vswitchd to clean up", || {
                        !process_alive(pid)
                    });
                }
            }
        }
        // Signal everything first and wait once, rather than waiting for
        // each daemon in turn.
        let running: Vec<(Daemon, u32)> = Daemon::ALL
            .iter()
            .rev()
            .filter_map(|&d| self.running_pid(d).map(|pid| (d, pid)))
            .collect();
        let _ = terminate(&running);
        let Some(dir) = self.dir.take() else { return };
        if std::env::var_os(KEEP_ENV).is_some() {
            let path = dir.keep();
            eprintln!("{KEEP_ENV} is set: keeping OVN sandbox {}", path.display());
        }
    }
}

/// Creates the sandbox directory, private to the user. Unix socket paths
/// are limited to 107 bytes, so a long `TMPDIR` is passed over for `/tmp`.
fn sandbox_dir() -> Result<tempfile::TempDir, String> {
    let mut base = std::env::temp_dir();
    if base.as_os_str().len() > 60 {
        base = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix("ovn-sandbox-")
        .tempdir_in(&base)
        .map_err(|e| format!("creating a directory in {}: {e}", base.display()))?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sandbox>();
    }
}
