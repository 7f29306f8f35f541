//! The control socket: bound at start-up, served by threads that parse
//! each request, answer `list-commands` and `version` themselves, and hand
//! every other valid command to the agent's loop as a [`Control`], whose
//! answer they write back. The agent therefore answers between two
//! iterations, from a consistent state.

use super::pidfile::{Pidfile, NAME};
use super::protocol::{self, Request};
use serde_json::Value;
use std::cell::Cell;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most connections served at once; more get an error reply and are
/// closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Most bytes of one request.
pub const MAX_REQUEST_BYTES: u64 = 1 << 20;
/// How long a client has to send a whole request, from the connection or
/// the previous reply (`ovs-appctl` sends at once): a client that sends
/// nothing or trickles bytes holds a connection no longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply may take to be written: a client that does not read
/// its replies is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two warnings about refused connections.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// How long one connection is served at most: a client that sends a small
/// request now and then and never reads the replies (they wait in the
/// socket's buffer, so writes do not time out) holds its slot no longer.
/// `ovs-appctl` makes one request per connection.
pub const MAX_CONNECTION_TIME: Duration = Duration::from_secs(30);
/// Connections past the limit being told so at once (each by a short-lived
/// thread that reads the request, to answer with its id, and lets the
/// caller read the answer); more are closed without a word.
const MAX_REFUSING: usize = 8;
/// The id given to an error reply when the request's is not known:
/// `ovs-appctl` makes one request per process, with id 0, and rejects a
/// reply whose id is null.
const UNKNOWN_ID: i64 = 0;
/// How long the agent may take to answer a command.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Mode of the socket: the agent's user and group only.
pub const SOCKET_MODE: u32 = 0o750;

/// Where the pidfile and the socket go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `--rundir`, else `OVS_RUNDIR`, else `/var/run/openvswitch`.
    pub rundir: PathBuf,
    /// `--unixctl`: the socket's path (relative to the rundir if
    /// relative), `none` for no socket; `None` for
    /// `<rundir>/vif-plug-host.<pid>.ctl`.
    pub unixctl: Option<PathBuf>,
}

impl Placement {
    /// From the command line's values and the environment, as OVS daemons
    /// choose theirs (`lib/dirs.c`: `OVS_RUNDIR`).
    pub fn new(rundir: Option<PathBuf>, unixctl: Option<PathBuf>) -> Placement {
        let rundir = rundir
            .or_else(|| std::env::var_os("OVS_RUNDIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/openvswitch"));
        Placement { rundir, unixctl }
    }

    /// The socket's path, or `None` for `--unixctl none`.
    pub fn socket(&self) -> Option<PathBuf> {
        match &self.unixctl {
            Some(p) if p.as_os_str() == "none" => None,
            Some(p) => Some(self.rundir.join(p)),
            None => Some(
                self.rundir
                    .join(format!("{NAME}.{}.ctl", std::process::id())),
            ),
        }
    }
}

/// A command for the agent, with the way back to its caller.
#[derive(Debug)]
pub struct Control {
    /// The command's name.
    pub command: &'static str,
    /// Its arguments (already checked against its table entry).
    pub args: Vec<String>,
    reply: mpsc::Sender<Result<String, String>>,
}

impl Control {
    /// Answers the caller: the text `ovs-appctl` prints, or an error it
    /// prints on standard error (exit status 2).
    pub fn answer(self, outcome: Result<String, String>) {
        let _ = self.reply.send(outcome);
    }

    /// A command and a receiver of its answer (for tests of the agent's
    /// handlers).
    pub fn new(
        command: &'static str,
        args: Vec<String>,
    ) -> (Control, mpsc::Receiver<Result<String, String>>) {
        let (reply, rx) = mpsc::channel();
        (
            Control {
                command,
                args,
                reply,
            },
            rx,
        )
    }
}

/// The running control socket and the pidfile; both removed on drop.
pub struct ControlServer {
    socket: Option<PathBuf>,
    /// The socket's device and inode: at drop, the path is removed only if
    /// it still names our socket, not another agent's put there since.
    socket_id: Option<(u64, u64)>,
    _pidfile: Pidfile,
}

impl ControlServer {
    /// Makes the rundir if needed and takes the pidfile: the first step of
    /// `run`, before any provider is loaded, so that a second agent on
    /// the same rundir stops before it touches anything.
    ///
    /// Errors: the rundir cannot be made, or another agent runs on it (the
    /// text names the path and what to do).
    pub fn claim(placement: &Placement) -> Result<Pidfile, String> {
        let rundir = &placement.rundir;
        fs::create_dir_all(rundir).map_err(|e| {
            format!(
                "creating the rundir {}: {e} (give --rundir DIR)",
                rundir.display()
            )
        })?;
        Pidfile::create(rundir)
    }

    /// Binds the socket (mode [`SOCKET_MODE`]) and starts serving it,
    /// keeping `pidfile` (from [`ControlServer::claim`]) until drop;
    /// `deliver` hands a command to the agent and returns false once the
    /// agent is gone.
    ///
    /// Errors: the socket cannot be bound (the text names the path and
    /// what to do).
    pub fn start(
        placement: &Placement,
        pidfile: Pidfile,
        deliver: impl Fn(Control) -> bool + Send + Sync + 'static,
    ) -> Result<ControlServer, String> {
        let Some(path) = placement.socket() else {
            log::info!(
                "no control socket (--unixctl none); pidfile {}",
                pidfile.path().display()
            );
            return Ok(ControlServer {
                socket: None,
                socket_id: None,
                _pidfile: pidfile,
            });
        };
        let listener = bind(&path)?;
        let socket_id = file_id(&path);
        let deliver = Arc::new(deliver);
        let active = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("unixctl".into())
            .spawn(move || {
                let refusals = Mutex::new(Refusals::default());
                let refusing = Arc::new(AtomicUsize::new(0));
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        refuse(conn, &refusals, &refusing);
                        continue;
                    }
                    active.fetch_add(1, Ordering::SeqCst);
                    let (deliver, active) = (deliver.clone(), active.clone());
                    let spawned = std::thread::Builder::new()
                        .name("unixctl-conn".into())
                        .spawn(move || {
                            serve(conn, &*deliver);
                            active.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        log::warn!("control socket: cannot start a thread for a connection");
                    }
                }
            })
            .map_err(|e| format!("control socket thread: {e}"))?;
        // Say the shortest ovs-appctl command line that reaches us.
        let reach = match (&placement.unixctl, placement.rundir.to_str()) {
            (None, Some("/var/run/openvswitch" | "/run/openvswitch")) => {
                format!("ovs-appctl -t {NAME}")
            }
            (None, Some(dir)) => format!("OVS_RUNDIR={dir} ovs-appctl -t {NAME}"),
            _ => format!("ovs-appctl -t {}", path.display()),
        };
        log::info!(
            "control socket {} ({reach}), pidfile {}",
            path.display(),
            pidfile.path().display()
        );
        Ok(ControlServer {
            socket: Some(path),
            socket_id,
            _pidfile: pidfile,
        })
    }

    /// The socket's path, if there is one.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if let (Some(p), Some(ours)) = (&self.socket, self.socket_id) {
            if file_id(p) == Some(ours) {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// The device and inode of what `path` names (not following a link).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes,
/// with its terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Binds `path` with mode [`SOCKET_MODE`] from the start: bound in a
/// private directory, given its mode, then renamed into place, so nobody
/// can connect while it is more open. A stale socket (nobody listening) is
/// replaced; a live one, or anything that is not a socket, is an error.
fn bind(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    let len = path.as_os_str().as_bytes().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "the control socket path {shown} is {len} bytes long, and a Unix socket path holds at most {MAX_SOCKET_PATH} (ovs-appctl could not reach it): give a shorter --rundir or --unixctl"
        ));
    }
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{shown} exists and is not a socket: not replaced (give --unixctl PATH)"
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{shown} is in use by another process (give --unixctl PATH)"
            ));
        }
        fs::remove_file(path).map_err(|e| format!("removing the stale socket {shown}: {e}"))?;
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    let private = parent.join(format!(".{NAME}.{}", std::process::id()));
    let tmp = private.join("s");
    if tmp.as_os_str().as_bytes().len() > MAX_SOCKET_PATH {
        // No room for the private directory's name: bound in place, then
        // given its mode (for a moment, the umask decides who may connect).
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("binding the control socket {shown}: {e}"))?;
        fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(|e| format!("binding the control socket {shown}: {e}"))?;
        return Ok(listener);
    }
    let _ = fs::remove_dir_all(&private);
    fs::create_dir(&private).map_err(|e| format!("creating {}: {e}", private.display()))?;
    let result = (|| {
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let listener = UnixListener::bind(&tmp).map_err(|e| e.to_string())?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(|e| e.to_string())?;
        // A link, not a rename: it fails if the path was taken meanwhile
        // (another agent started at the same instant with this --unixctl)
        // instead of silently replacing that agent's socket.
        fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                "another process took the path meanwhile".to_owned()
            }
            _ => e.to_string(),
        })?;
        Ok(listener)
    })();
    let _ = fs::remove_dir_all(&private);
    result.map_err(|e: String| {
        format!("binding the control socket {shown}: {e} (give --rundir DIR or --unixctl PATH)")
    })
}

/// Connections refused because [`MAX_CONNECTIONS`] were open, for one
/// warning per [`WARN_EVERY`] rather than one per connection.
#[derive(Default)]
struct Refusals {
    last_warned: Option<Instant>,
    unsaid: u64,
}

/// Tells a connection over the limit why it is closed, in a short-lived
/// thread (at most [`MAX_REFUSING`] at once; past that the connection is
/// just closed), and warns now and then. The thread reads the request
/// first, for its id (`ovs-appctl` refuses an answer without one) and so
/// that closing does not cut the caller off before it has read the answer.
fn refuse(conn: UnixStream, refusals: &Mutex<Refusals>, refusing: &Arc<AtomicUsize>) {
    {
        let mut r = refusals.lock().unwrap_or_else(|e| e.into_inner());
        r.unsaid += 1;
        let now = Instant::now();
        if r.last_warned.is_none_or(|t| now >= t + WARN_EVERY) {
            log::warn!(
                "control socket: {MAX_CONNECTIONS} connections already open; {} refused since the last warning",
                r.unsaid
            );
            r.last_warned = Some(now);
            r.unsaid = 0;
        }
    }
    if refusing.fetch_add(1, Ordering::SeqCst) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let count = refusing.clone();
    let spawned = std::thread::Builder::new()
        .name("unixctl-refuse".into())
        .spawn(move || {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = conn.set_write_timeout(Some(Duration::from_millis(500)));
            let id = serde_json::Deserializer::from_reader((&conn).take(64 << 10))
                .into_iter::<Value>()
                .next()
                .and_then(Result::ok)
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(Value::from(UNKNOWN_ID));
            write(
                &mut conn,
                &protocol::error(
                    &id,
                    &format!("{MAX_CONNECTIONS} control connections are open already; try again"),
                ),
            );
            let _ = conn.shutdown(std::net::Shutdown::Write);
            let _ = std::io::copy(&mut (&conn).take(64 << 10), &mut std::io::sink());
            count.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        refusing.fetch_sub(1, Ordering::SeqCst);
    }
}

fn write(conn: &mut UnixStream, reply: &Value) -> bool {
    serde_json::to_writer(&mut *conn, reply).is_ok() && conn.flush().is_ok()
}

/// The reading side of a connection, with each request's budget: at most
/// [`MAX_REQUEST_BYTES`], and complete by a deadline ([`REQUEST_TIMEOUT`]
/// after the connection or the previous reply). [`serve`] renews both
/// after each reply.
struct Budgeted {
    conn: UnixStream,
    left: Rc<Cell<u64>>,
    deadline: Rc<Cell<Instant>>,
    /// When the connection is closed, whatever it does.
    end: Instant,
}

/// Why [`Budgeted`] stopped reading, for the error reply.
const TOO_LONG: &str = "request longer than 1 MiB";
const TOO_SLOW: &str = "request not complete within 10 s";
const TOO_OLD: &str =
    "connection open for 30 s: closed (make one request per connection, as ovs-appctl does)";

impl Read for Budgeted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left.get() == 0 {
            return Err(std::io::Error::other(TOO_LONG));
        }
        let now = Instant::now();
        if now >= self.end {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, TOO_OLD));
        }
        let wait = self
            .deadline
            .get()
            .min(self.end)
            .saturating_duration_since(now);
        if wait.is_zero() {
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, TOO_SLOW));
        }
        self.conn.set_read_timeout(Some(wait))?;
        let most = buf
            .len()
            .min(self.left.get().try_into().unwrap_or(usize::MAX));
        let n = match self.conn.read(&mut buf[..most]) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, TOO_SLOW))
            }
            r => r?,
        };
        self.left.set(self.left.get() - n as u64);
        Ok(n)
    }
}

/// Serves one connection: requests one after another until it closes,
/// misses a request's deadline, exceeds its size, or sends something that
/// is not JSON (the last three get an error reply first).
fn serve(conn: UnixStream, deliver: &dyn Fn(Control) -> bool) {
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let left = Rc::new(Cell::new(MAX_REQUEST_BYTES));
    let deadline = Rc::new(Cell::new(Instant::now() + REQUEST_TIMEOUT));
    let reader = Budgeted {
        conn,
        left: left.clone(),
        deadline: deadline.clone(),
        end: Instant::now() + MAX_CONNECTION_TIME,
    };
    // Buffered: serde_json reads a byte at a time.
    let reader = std::io::BufReader::new(reader);
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let value = match value {
            Ok(v) => v,
            Err(e) if e.is_eof() => return,
            Err(e) if e.is_io() => {
                // Over budget: say so, if the caller still listens. A
                // connection closed or reset by the caller says nothing.
                let text = e.to_string();
                if let Some(why) = [TOO_LONG, TOO_SLOW, TOO_OLD]
                    .into_iter()
                    .find(|w| text.contains(w))
                {
                    log::debug!("control socket: {why}; connection closed");
                    write(&mut out, &protocol::error(&Value::from(UNKNOWN_ID), why));
                }
                return;
            }
            Err(e) => {
                log::debug!("control socket: a request that is not JSON ({e}); connection closed");
                write(
                    &mut out,
                    &protocol::error(&Value::from(UNKNOWN_ID), &format!("invalid JSON: {e}")),
                );
                // Read what is left before closing: closing on unread
                // bytes resets the connection, and the caller would lose
                // the error.
                let _ = out.shutdown(std::net::Shutdown::Write);
                let _ = out.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = std::io::copy(&mut (&out).take(MAX_REQUEST_BYTES), &mut std::io::sink());
                return;
            }
        };
        let reply = match protocol::parse(&value) {
            Err(r) => {
                log::debug!("control socket: refused a request: {}", r.error);
                protocol::error(&r.id, &r.error)
            }
            Ok(req) => answer(req, deliver),
        };
        if !write(&mut out, &reply) {
            return;
        }
        left.set(MAX_REQUEST_BYTES);
        deadline.set(Instant::now() + REQUEST_TIMEOUT);
    }
}

fn answer(req: Request, deliver: &dyn Fn(Control) -> bool) -> Value {
    let id = req.id;
    match req.command.name {
        "list-commands" => return protocol::result(&id, &protocol::list_commands()),
        "version" => {
            let text = format!(
                "{NAME} {} (provider ABI {}.{})\n",
                env!("CARGO_PKG_VERSION"),
                vif_plug_abi::VIF_PLUG_ABI_MAJOR,
                vif_plug_abi::VIF_PLUG_ABI_MINOR
            );
            return protocol::result(&id, &text);
        }
        _ => {}
    }
    let (control, rx) = Control::new(req.command.name, req.args);
    if !deliver(control) {
        return protocol::error(&id, "the agent is stopping");
    }
    match rx.recv_timeout(ANSWER_TIMEOUT) {
        Ok(Ok(text)) => protocol::result(&id, &text),
        Ok(Err(e)) => protocol::error(&id, &e),
        // The agent dropped the command unanswered: it is going.
        Err(mpsc::RecvTimeoutError::Disconnected) => protocol::error(&id, "the agent is stopping"),
        Err(mpsc::RecvTimeoutError::Timeout) => protocol::error(
            &id,
            &format!(
                "the agent did not answer within {} s (busy in a provider call or a restart?)",
                ANSWER_TIMEOUT.as_secs()
            ),
        ),
    }
}
