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
//! [`SandboxOptions::dummy_netdevs`] to `false` for real tap devices.
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

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// How often [`wait_until`] checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long [`Sandbox::stop`] waits after `SIGTERM` before `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// How long a process may take to disappear after `SIGKILL`.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Lines of a daemon's log quoted in error messages.
const LOG_TAIL_LINES: usize = 25;

/// Environment variable that keeps the sandbox directory after drop.
pub const KEEP_ENV: &str = "VIF_PLUG_KEEP_SANDBOX";

/// The command that installs everything the sandbox needs on Debian.
const APT_HINT: &str = "apt-get install openvswitch-switch ovn-central ovn-host";

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

/// Directories searched for binaries after `PATH`: `ovsdb-server` and
/// `ovs-vswitchd` live in `/usr/sbin`, which is not on an ordinary user's
/// `PATH`.
const EXTRA_BIN_DIRS: &[&str] = &[
    "/usr/sbin",
    "/sbin",
    "/usr/local/sbin",
    "/usr/bin",
    "/usr/local/bin",
];

/// Where the database schemas may be installed.
const SCHEMA_DIRS: &[&str] = &["/usr/share", "/usr/local/share"];

/// One of the daemons a [`Sandbox`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Daemon {
    /// `ovsdb-server` for the OVN Northbound database (`nb.sock`).
    NbDb,
    /// `ovsdb-server` for the OVN Southbound database (`sb.sock`).
    SbDb,
    /// `ovn-northd`, translating Northbound into Southbound.
    Northd,
    /// `ovsdb-server` for the local Open_vSwitch database (`db.sock`).
    OvsDb,
    /// `ovs-vswitchd`, running `br-int` on the userspace datapath.
    Vswitchd,
    /// `ovn-controller`, the chassis.
    OvnController,
}

impl Daemon {
    /// Every daemon, in start order.
    pub const ALL: [Daemon; 6] = [
        Daemon::NbDb,
        Daemon::SbDb,
        Daemon::Northd,
        Daemon::OvsDb,
        Daemon::Vswitchd,
        Daemon::OvnController,
    ];

    /// The program this daemon runs.
    pub fn program(self) -> &'static str {
        match self {
            Daemon::NbDb | Daemon::SbDb | Daemon::OvsDb => "ovsdb-server",
            Daemon::Northd => "ovn-northd",
            Daemon::Vswitchd => "ovs-vswitchd",
            Daemon::OvnController => "ovn-controller",
        }
    }

    /// Base name of the daemon's files in the sandbox directory
    /// (`<stem>.pid`, `<stem>.log`). The three database servers get short
    /// names of their own; the others keep their program names so that
    /// `ovs-appctl -t ovs-vswitchd` and friends find them the usual way when
    /// `OVS_RUNDIR`/`OVN_RUNDIR` point at the sandbox.
    fn stem(self) -> &'static str {
        match self {
            Daemon::NbDb => "nb",
            Daemon::SbDb => "sb",
            Daemon::OvsDb => "db",
            Daemon::Northd => "ovn-northd",
            Daemon::Vswitchd => "ovs-vswitchd",
            Daemon::OvnController => "ovn-controller",
        }
    }

    /// The database file and schema of a database server.
    fn database(self) -> Option<(&'static str, Schema)> {
        match self {
            Daemon::NbDb => Some(("nb.db", Schema::Nb)),
            Daemon::SbDb => Some(("sb.db", Schema::Sb)),
            Daemon::OvsDb => Some(("conf.db", Schema::Vswitch)),
            _ => None,
        }
    }
}

/// The database schemas the sandbox creates databases from.
#[derive(Debug, Clone, Copy)]
enum Schema {
    Nb,
    Sb,
    Vswitch,
}

impl Schema {
    /// Path below a share directory, and the package installing it.
    fn location(self) -> (&'static str, &'static str) {
        match self {
            Schema::Nb => ("ovn/ovn-nb.ovsschema", "ovn-central"),
            Schema::Sb => ("ovn/ovn-sb.ovsschema", "ovn-central"),
            Schema::Vswitch => ("openvswitch/vswitch.ovsschema", "openvswitch-switch"),
        }
    }
}

/// Every binary the sandbox runs, with the Debian package to install for it
/// (`ovsdb-server`, `ovsdb-tool` and `ovs-appctl` come from
/// openvswitch-common and the ctl tools from ovn-common, which those
/// packages pull in).
const BINARIES: &[(&str, &str)] = &[
    ("ovsdb-tool", "openvswitch-switch"),
    ("ovsdb-server", "openvswitch-switch"),
    ("ovs-vswitchd", "openvswitch-switch"),
    ("ovs-vsctl", "openvswitch-switch"),
    ("ovs-appctl", "openvswitch-switch"),
    ("ovn-northd", "ovn-central"),
    ("ovn-nbctl", "ovn-central"),
    ("ovn-sbctl", "ovn-central"),
    ("ovn-controller", "ovn-host"),
];

/// Resolved paths of the binaries and schemas.
#[derive(Debug)]
struct Installation {
    binaries: HashMap<&'static str, PathBuf>,
    schemas: [PathBuf; 3],
}

impl Installation {
    /// Finds everything on `PATH` and in the usual system directories, or
    /// names everything missing.
    fn locate() -> Result<Installation, String> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin_dirs: Vec<PathBuf> = std::env::split_paths(&path)
            .chain(EXTRA_BIN_DIRS.iter().map(PathBuf::from))
            .collect();
        let share_dirs: Vec<PathBuf> = SCHEMA_DIRS.iter().map(PathBuf::from).collect();
        Self::locate_in(&bin_dirs, &share_dirs)
    }

    /// Finds the binaries in `bin_dirs` and the schemas in `share_dirs`.
    fn locate_in(bin_dirs: &[PathBuf], share_dirs: &[PathBuf]) -> Result<Installation, String> {
        let mut missing = Vec::new();
        let mut binaries = HashMap::new();
        for &(name, package) in BINARIES {
            match bin_dirs
                .iter()
                .map(|dir| dir.join(name))
                .find(|p| is_executable(p))
            {
                Some(path) => {
                    binaries.insert(name, path);
                }
                None => missing.push(format!("{name} (Debian package {package})")),
            }
        }
        let mut schemas = Vec::new();
        for schema in [Schema::Nb, Schema::Sb, Schema::Vswitch] {
            let (rel, package) = schema.location();
            match share_dirs
                .iter()
                .map(|dir| dir.join(rel))
                .find(|p| p.is_file())
            {
                Some(path) => schemas.push(path),
                None => missing.push(format!("{rel} (Debian package {package})")),
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "Open vSwitch/OVN sandbox: missing {}; install with `{APT_HINT}` \
                 (tests that need OVS and OVN fail rather than skip without them)",
                missing.join(", ")
            ));
        }
        let schemas = schemas.try_into().expect("three schemas");
        Ok(Installation { binaries, schemas })
    }

    fn binary(&self, name: &str) -> &Path {
        &self.binaries[name]
    }

    fn schema(&self, schema: Schema) -> &Path {
        // `locate` fills `schemas` in declaration order.
        &self.schemas[schema as usize]
    }
}

/// Checks that every binary and schema the sandbox needs is installed.
///
/// The error names each missing file and the Debian package providing it.
pub fn check_prerequisites() -> Result<(), String> {
    Installation::locate().map(drop)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

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
            sb_db_args: Vec::new(),
            dummy_netdevs: true,
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
        let dir = sandbox_dir()?;
        let path = dir.path().to_owned();
        let sandbox = Sandbox {
            dir: Some(dir),
            path,
            opts,
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

    /// The Southbound database remote, `unix:<dir>/sb.sock`.
    pub fn sb_remote(&self) -> String {
        self.remote("sb.sock")
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
        self.stop(daemon)?;
        let path = self.file(file);
        fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        self.create_database(daemon)?;
        self.start_daemon(daemon)
    }

    fn bring_up(&self) -> Result<(), String> {
        for daemon in [Daemon::NbDb, Daemon::SbDb, Daemon::OvsDb] {
            self.create_database(daemon)?;
        }
        self.start_daemon(Daemon::NbDb)?;
        self.start_daemon(Daemon::SbDb)?;
        self.start_daemon(Daemon::Northd)?;
        self.start_daemon(Daemon::OvsDb)?;
        self.vsctl(&["--no-wait", "init"])
            .map_err(|e| format!("initialising the Open_vSwitch database: {e}"))?;
        self.start_daemon(Daemon::Vswitchd)?;
        self.create_integration_bridge()?;
        self.configure_chassis()?;
        if self.opts.start_ovn_controller {
            self.start_daemon(Daemon::OvnController)?;
        }
        Ok(())
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

    fn create_database(&self, daemon: Daemon) -> Result<(), String> {
        let (file, schema) = daemon.database().expect("a database server");
        let mut cmd = self.command(self.install.binary("ovsdb-tool"));
        cmd.arg("create")
            .arg(self.file(file))
            .arg(self.install.schema(schema));
        run_output(&mut cmd).map(drop)
    }

    /// The daemon's command line, always detaching and writing its pidfile
    /// and log into the sandbox.
    fn daemon_command(&self, daemon: Daemon) -> Command {
        let mut cmd = self.command(self.install.binary(daemon.program()));
        cmd.arg("--detach")
            .arg("--no-chdir")
            .arg(format!("--pidfile={}", self.pidfile(daemon).display()))
            .arg(format!("--log-file={}", self.log_path(daemon).display()));
        match daemon {
            Daemon::NbDb | Daemon::SbDb | Daemon::OvsDb => {
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
    fn spawn_detached(&self, daemon: Daemon) -> Result<(), String> {
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

    fn wait_for_pidfile(&self, daemon: Daemon) -> Result<u32, String> {
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

    fn wait_ready(&self, daemon: Daemon, pid: u32) -> Result<(), String> {
        let timeout = self.opts.timeout;
        let ctl = self.ctl_socket(daemon, pid);
        wait_until(
            timeout,
            &format!("{} to listen on {}", daemon.program(), ctl.display()),
            || UnixStream::connect(&ctl).is_ok(),
        )?;
        match daemon {
            Daemon::NbDb | Daemon::SbDb | Daemon::OvsDb => {
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

    /// Creates `br-int` as `ovn-controller` expects it, and checks that
    /// `ovs-vswitchd` really runs it on the userspace datapath: the bridge's
    /// own interface must get the local OpenFlow port and no error.
    fn create_integration_bridge(&self) -> Result<(), String> {
        self.vsctl(&[
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
            "fail_mode=secure",
            "other_config:disable-in-band=true",
        ])
        .map_err(|e| self.daemon_error(Daemon::Vswitchd, &format!("creating br-int: {e}")))?;
        let ofport = self.vsctl(&["get", "Interface", "br-int", "ofport"]);
        let error = self.vsctl(&["get", "Interface", "br-int", "error"]);
        match (&ofport, &error) {
            (Ok(ofport), Ok(error)) if ofport == "65534" && error == "[]" => Ok(()),
            _ => Err(self.daemon_error(
                Daemon::Vswitchd,
                &format!(
                    "br-int does not work on the netdev datapath \
                     (ofport {ofport:?}, error {error:?})"
                ),
            )),
        }
    }

    /// Sets the Open_vSwitch external IDs `ovn-controller` reads its
    /// configuration from.
    fn configure_chassis(&self) -> Result<(), String> {
        let ids = [
            ("system-id", self.opts.chassis_name.clone()),
            ("ovn-remote", self.sb_remote()),
            ("ovn-encap-type", "geneve".to_owned()),
            ("ovn-encap-ip", "127.0.0.1".to_owned()),
            ("ovn-bridge", "br-int".to_owned()),
            ("ovn-bridge-datapath-type", "netdev".to_owned()),
        ];
        // Values are quoted because OVSDB syntax would otherwise read a
        // remote's `:` specially.
        let settings: Vec<String> = ids
            .iter()
            .map(|(key, value)| format!("external_ids:{key}={}", ovsdb_string(value)))
            .collect();
        let mut args = vec!["set", "Open_vSwitch", "."];
        args.extend(settings.iter().map(String::as_str));
        self.vsctl(&args)
            .map(drop)
            .map_err(|e| format!("configuring the chassis: {e}"))
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

/// Quotes `s` as an OVSDB string.
fn ovsdb_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The command line of `cmd`, without the environment that `Debug` would
/// also show (the same sandbox variables every time).
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion; its stdout without the trailing newline, or an
/// error with the command, status and stderr.
fn run_output(cmd: &mut Command) -> Result<String, String> {
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
fn runs_program(pid: u32, program: &str) -> bool {
    // The kernel truncates the command name to 15 bytes.
    let expected = &program[..program.len().min(15)];
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == expected)
}

fn read_pidfile(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Sends signal `sig` (a name such as `TERM`) to process `pid`, ignoring
/// failure: the process may have exited meanwhile. The shell's built-in
/// `kill` is used because a separate `kill` binary is not in minimal images,
/// and it spares this crate `unsafe` calls into libc.
fn signal(pid: u32, sig: &str) {
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
fn terminate(daemons: &[(Daemon, u32)]) -> Result<(), String> {
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
fn tail_lines(path: &Path, n: usize) -> String {
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
    fn missing_prerequisites_are_named_with_their_packages() {
        let empty = tempfile::tempdir().unwrap();
        let err = Installation::locate_in(&[empty.path().to_owned()], &[empty.path().to_owned()])
            .unwrap_err();
        for (name, package) in BINARIES {
            assert!(
                err.contains(&format!("{name} (Debian package {package})")),
                "{err}"
            );
        }
        assert!(
            err.contains("ovn/ovn-sb.ovsschema (Debian package ovn-central)"),
            "{err}"
        );
        assert!(err.contains(APT_HINT), "{err}");
    }

    #[test]
    fn sandbox_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sandbox>();
    }

    #[test]
    fn ovsdb_strings_are_quoted() {
        assert_eq!(ovsdb_string("unix:/a b"), "\"unix:/a b\"");
        assert_eq!(ovsdb_string("a\"b\\"), "\"a\\\"b\\\\\"");
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
