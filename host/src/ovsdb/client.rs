//! A reconnecting client session to one database (possibly a cluster).
//!
//! The session is driven by its owner's event loop: connection threads post
//! [`ConnEvent`]s, the owner feeds them to [`Client::handle`], calls
//! [`Client::tick`] when the deadline it returned passes, and gets back
//! [`ClientEvent`]s. Nothing here blocks.
//!
//! After connecting, the session checks `_Server` (a cluster member that is
//! not connected to its cluster, or holds an older copy than one already
//! seen, is skipped for the next remote; see [`super::member`]), reads the
//! schema, and reports [`ClientEvent::Ready`]; the owner then sets up its
//! monitors. Lost connections are retried with exponential back-off, and
//! echo requests serve as the inactivity probe in both directions.

use super::backoff::{Backoff, Jitter, MAX_BACKOFF};
use super::connection::{self, ConnEvent, Outbox, Post};
use super::json::Json;
use super::jsonrpc::Message;
use super::member::{self, Newest, ServerRow, Verdict};
use super::remote::Remote;
use super::schema::{Required, Schema};
use super::stream::Closer;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to reach one database.
#[derive(Clone)]
pub struct ClientConfig {
    /// A label for logs ("local", "southbound").
    pub label: String,
    /// The database name, e.g. "Open_vSwitch".
    pub database: String,
    /// Remotes; more than one for a cluster, tried in turn.
    pub remotes: Vec<Remote>,
    /// TLS settings, needed for `ssl:` remotes.
    pub tls: Option<Arc<super::stream::TlsSource>>,
    /// Send an echo after this long without traffic, and drop the
    /// connection after as long again without an answer. `None` disables
    /// the probe (the default for Unix sockets).
    pub probe_interval: Option<Duration>,
    /// Limit for one connection attempt: the TCP connect, the TLS
    /// handshake, and the server's answers to the `_Server` check and
    /// `get_schema`, each.
    pub connect_timeout: Duration,
    /// Start at a random one of several remotes, as the OVS IDL shuffles
    /// them (`lib/ovsdb-cs.c`), so that the agents of many chassis given
    /// the same list spread over a cluster's members instead of all
    /// loading the first.
    pub shuffle_remotes: bool,
    /// Columns the owner cannot work without. A server whose schema lacks
    /// one (a release older than the owner supports) is refused with one
    /// error line naming the column and the release that has it, and tried
    /// again after the longest back-off.
    pub required: &'static [Required],
}

/// What the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Connected and the schema is known: set up monitors now. Monitors from
    /// an earlier connection are gone.
    Ready,
    /// The reply to request `id`.
    Reply {
        /// Request id.
        id: u64,
        /// Result, as received.
        result: Json,
    },
    /// An error reply to request `id`.
    Error {
        /// Request id.
        id: u64,
        /// Error, as received.
        error: Json,
    },
    /// A notification (`update2`, `update3`, ...).
    Notify {
        /// Method.
        method: String,
        /// Parameters, as received.
        params: Json,
    },
    /// The connection was lost. Requests in flight (listed) got no reply and
    /// never will; monitors are gone until the next `Ready`.
    Disconnected {
        /// Why.
        reason: String,
        /// Ids of requests that were in flight.
        in_flight: Vec<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Internal {
    /// `set_db_change_aware`: so that the server tells us when it drops
    /// our monitors (a database converted or replaced) instead of
    /// dropping them silently.
    ChangeAware,
    ServerCheck,
    ServerMonitor,
    GetSchema,
    Probe,
}

enum State {
    Waiting {
        until: Instant,
    },
    Connecting,
    /// Connected; checking `_Server` and reading the schema, until a
    /// deadline after which the remote counts as failed.
    Negotiating {
        writer: Outbox,
        closer: Closer,
        until: Instant,
    },
    Ready {
        writer: Outbox,
        closer: Closer,
    },
}

/// Whether `params` of an "update" are for the client's own `_Server`
/// monitor (its first parameter is [`member::MONITOR_ID`]); only that
/// parameter is read.
fn is_server_monitor(params: &Json) -> bool {
    params
        .parse::<(Value, serde::de::IgnoredAny)>()
        .is_ok_and(|(id, _)| id == member::MONITOR_ID)
}

/// One database session.
pub struct Client {
    cfg: ClientConfig,
    post: Post,
    state: State,
    generation: u64,
    next_remote: usize,
    backoff: Backoff,
    jitter: Jitter,
    schema: Option<Schema>,
    next_id: u64,
    user_requests: HashSet<u64>,
    internal: HashMap<u64, Internal>,
    last_rx: Instant,
    probe_sent: bool,
    rx_bytes: Arc<AtomicU64>,
    rx_seen: u64,
    /// The newest copy of a clustered database seen, across members.
    newest: Newest,
    /// Schema complaints already logged, per remote.
    complained: HashSet<String>,
}

impl Client {
    /// A session that starts connecting at the first [`Client::tick`].
    /// `post` delivers connection events to the owner's queue.
    pub fn new(cfg: ClientConfig, post: Post) -> Client {
        let mut client = Client {
            cfg,
            post,
            state: State::Waiting {
                until: Instant::now(),
            },
            generation: 0,
            next_remote: 0,
            backoff: Backoff::default(),
            jitter: Jitter::default(),
            schema: None,
            next_id: 1,
            user_requests: HashSet::new(),
            internal: HashMap::new(),
            last_rx: Instant::now(),
            probe_sent: false,
            rx_bytes: Arc::new(AtomicU64::new(0)),
            rx_seen: 0,
            newest: Newest::default(),
            complained: HashSet::new(),
        };
        client.next_remote = client.first_remote();
        client
    }

    /// Where a round of the remotes starts: see
    /// [`ClientConfig::shuffle_remotes`].
    fn first_remote(&mut self) -> usize {
        let n = self.cfg.remotes.len();
        if self.cfg.shuffle_remotes && n > 1 {
            self.jitter.draw() as usize % n
        } else {
            0
        }
    }

    /// Bytes received from the server(s) since the session was created.
    pub fn rx_bytes(&self) -> u64 {
        self.rx_bytes.load(Ordering::Relaxed)
    }

    /// The label given in the configuration.
    pub fn label(&self) -> &str {
        &self.cfg.label
    }

    /// The remote in use or about to be.
    pub fn remote(&self) -> &Remote {
        &self.cfg.remotes[self.next_remote % self.cfg.remotes.len()]
    }

    /// The remotes.
    pub fn remotes(&self) -> &[Remote] {
        &self.cfg.remotes
    }

    /// True once connected and the schema is known.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    /// The schema of the current connection.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// Switches to other remotes (e.g. `ovn-remote` changed): drops the
    /// current connection and reconnects. Returns the events of the drop.
    pub fn set_remotes(&mut self, remotes: Vec<Remote>) -> Vec<ClientEvent> {
        if remotes == self.cfg.remotes || remotes.is_empty() {
            return Vec::new();
        }
        log::info!(
            "{}: remote changed to {}",
            self.cfg.label,
            remotes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        self.cfg.remotes = remotes;
        self.next_remote = self.first_remote();
        self.backoff.reset();
        self.drop_connection("remote changed", Duration::ZERO)
    }

    /// Changes the inactivity probe (`None`: off) from now on, e.g. when
    /// `external_ids:ovn-remote-probe-interval` changes. A connection up
    /// counts its silence from this call.
    pub fn set_probe_interval(&mut self, interval: Option<Duration>) {
        if self.cfg.probe_interval != interval {
            self.cfg.probe_interval = interval;
            self.last_rx = Instant::now();
            self.probe_sent = false;
        }
    }

    /// Sends a request; `None` if not ready (the caller retries after the
    /// next `Ready`).
    pub fn request(&mut self, method: &str, params: Value) -> Option<u64> {
        if !self.is_ready() {
            return None;
        }
        let id = self.send_request(method, params)?;
        self.user_requests.insert(id);
        Some(id)
    }

    /// Like [`Client::request`], with `params` already serialised as a JSON
    /// array (as [`super::txn::Txn::params_json`] gives them), so a large
    /// transaction is not parsed back into a `Value` only to be written.
    pub fn request_json(&mut self, method: &str, params: &[u8]) -> Option<u64> {
        if !self.is_ready() {
            return None;
        }
        let mut bytes = Vec::with_capacity(params.len() + method.len() + 40);
        bytes.extend_from_slice(b"{\"method\":");
        serde_json::to_writer(&mut bytes, method).ok()?;
        bytes.extend_from_slice(b",\"params\":");
        bytes.extend_from_slice(params);
        bytes.extend_from_slice(format!(",\"id\":{}}}\n", self.next_id).as_bytes());
        let id = self.send_numbered(method, bytes)?;
        self.user_requests.insert(id);
        Some(id)
    }

    fn writer(&self) -> Option<&Outbox> {
        match &self.state {
            State::Ready { writer, .. } | State::Negotiating { writer, .. } => Some(writer),
            _ => None,
        }
    }

    fn send_request(&mut self, method: &str, params: Value) -> Option<u64> {
        let message = Message::Request {
            method: method.to_owned(),
            params: Json::from_value(&params),
            id: json!(self.next_id),
        };
        let mut bytes = serde_json::to_vec(&message).ok()?;
        bytes.push(b'\n');
        self.send_numbered(method, bytes)
    }

    /// Writes a request that carries the next id, and returns that id.
    fn send_numbered(&mut self, method: &str, bytes: Vec<u8>) -> Option<u64> {
        match self.writer()?.send_bytes(bytes) {
            Ok(()) => {
                self.next_id += 1;
                Some(self.next_id - 1)
            }
            Err(e) => {
                // The reader thread will report the broken connection.
                log::debug!("{}: sending {method}: {e}", self.cfg.label);
                None
            }
        }
    }

    fn send_internal(&mut self, what: Internal, method: &str, params: Value) {
        if let Some(id) = self.send_request(method, params) {
            self.internal.insert(id, what);
        }
    }

    /// Starts due connection attempts and runs the inactivity probe.
    /// Returns what happened and when to call again.
    pub fn tick(&mut self, now: Instant) -> (Vec<ClientEvent>, Option<Instant>) {
        let mut events = Vec::new();
        match self.state {
            State::Waiting { until } if now >= until => {
                self.generation += 1;
                self.state = State::Connecting;
                let remote = self.remote().clone();
                log::debug!("{}: connecting to {remote}", self.cfg.label);
                connection::spawn(
                    remote,
                    self.cfg.tls.clone(),
                    self.cfg.connect_timeout,
                    self.generation,
                    self.post.clone(),
                    self.rx_bytes.clone(),
                );
            }
            State::Negotiating { until, .. } if now >= until => {
                let reason = format!(
                    "{} accepted the connection but did not answer within {} ms",
                    self.remote(),
                    self.cfg.connect_timeout.as_millis()
                );
                log::warn!("{}: {reason}", self.cfg.label);
                self.next_remote += 1;
                let wait = self.failure_wait();
                events.extend(self.drop_connection(&reason, wait));
            }
            State::Ready { .. } => {
                // Bytes still arriving (a large message) count as activity.
                let rx = self.rx_bytes.load(Ordering::Relaxed);
                if rx != self.rx_seen {
                    self.rx_seen = rx;
                    self.last_rx = now;
                    self.probe_sent = false;
                }
                if let Some(interval) = self.cfg.probe_interval {
                    if now.duration_since(self.last_rx) >= interval {
                        if self.probe_sent {
                            let reason = format!(
                                "no answer from {} for {} ms (inactivity probe)",
                                self.remote(),
                                2 * interval.as_millis()
                            );
                            // A failure like any other: the next remote, after
                            // the usual back-off (`lib/reconnect.c`).
                            log::warn!("{}: {reason}", self.cfg.label);
                            self.next_remote += 1;
                            let wait = self.failure_wait();
                            events.extend(self.drop_connection(&reason, wait));
                        } else {
                            self.send_internal(Internal::Probe, "echo", json!([]));
                            self.probe_sent = true;
                            self.last_rx = now;
                        }
                    }
                }
            }
            _ => {}
        }
        let deadline = match self.state {
            State::Waiting { until } | State::Negotiating { until, .. } => Some(until),
            State::Ready { .. } => self.cfg.probe_interval.map(|i| self.last_rx + i),
            State::Connecting => None,
        };
        (events, deadline)
    }

    /// Feeds one event from a connection thread.
    pub fn handle(&mut self, event: ConnEvent) -> Vec<ClientEvent> {
        match event {
            ConnEvent::Connected {
                generation,
                writer,
                closer,
            } if generation == self.generation => {
                log::debug!("{}: connected to {}", self.cfg.label, self.remote());
                self.state = State::Negotiating {
                    writer,
                    closer,
                    until: Instant::now() + self.cfg.connect_timeout,
                };
                self.last_rx = Instant::now();
                self.probe_sent = false;
                // As the OVS IDL does (`lib/ovsdb-cs.c`): without it,
                // ovsdb-server cancels the monitors of a converted
                // clustered database without a word, and the view stops
                // advancing while the connection stays healthy.
                self.send_internal(Internal::ChangeAware, "set_db_change_aware", json!([true]));
                let check = json!([
                    "_Server",
                    {"op": "select", "table": "Database",
                     "where": [["name", "==", self.cfg.database]],
                     "columns": member::COLUMNS}
                ]);
                self.send_internal(Internal::ServerCheck, "transact", check);
                Vec::new()
            }
            ConnEvent::Connected { closer, .. } => {
                closer.close();
                Vec::new()
            }
            ConnEvent::Message {
                generation,
                message,
            } if generation == self.generation => {
                self.last_rx = Instant::now();
                self.probe_sent = false;
                self.on_message(message)
            }
            ConnEvent::Closed { generation, reason } if generation == self.generation => {
                // A connection that broke soon after it became ready is a
                // failure like any other (see `backoff`).
                let wait = self.failure_wait();
                log::warn!("{}: {reason}", self.cfg.label);
                self.next_remote += 1;
                self.drop_connection(&reason, wait)
            }
            _ => Vec::new(),
        }
    }

    /// How long to wait after a failed attempt or a lost connection
    /// (see [`Backoff::failed`]).
    fn failure_wait(&mut self) -> Duration {
        let jitter = self.jitter.draw();
        self.backoff
            .failed(Instant::now(), self.cfg.remotes.len(), jitter)
    }

    fn drop_connection(&mut self, reason: &str, wait: Duration) -> Vec<ClientEvent> {
        let was_ready = self.is_ready();
        let old = std::mem::replace(
            &mut self.state,
            State::Waiting {
                until: Instant::now() + wait,
            },
        );
        if let State::Ready { closer, .. } | State::Negotiating { closer, .. } = &old {
            closer.close();
        }
        if wait < MAX_BACKOFF * 2 {
            log::info!(
                "{}: next attempt: {} {}",
                self.cfg.label,
                self.remote(),
                if wait.is_zero() {
                    "now".to_owned()
                } else {
                    format!("in {} ms", wait.as_millis())
                }
            );
        }
        // Reports from the abandoned attempt are ignored from now on.
        self.generation += 1;
        self.internal.clear();
        self.schema = None;
        let in_flight: Vec<u64> = self.user_requests.drain().collect();
        if was_ready || !in_flight.is_empty() {
            vec![ClientEvent::Disconnected {
                reason: reason.to_owned(),
                in_flight,
            }]
        } else {
            Vec::new()
        }
    }

    fn on_message(&mut self, message: Message) -> Vec<ClientEvent> {
        match message {
            Message::Reply { result, id } => {
                let Some(id) = id.as_u64() else {
                    return Vec::new();
                };
                if let Some(what) = self.internal.remove(&id) {
                    return self.on_internal_reply(what, Ok(result));
                }
                if self.user_requests.remove(&id) {
                    vec![ClientEvent::Reply { id, result }]
                } else {
                    Vec::new()
                }
            }
            Message::Error { error, id } => {
                let Some(id) = id.as_u64() else {
                    return Vec::new();
                };
                if let Some(what) = self.internal.remove(&id) {
                    return self.on_internal_reply(what, Err(error));
                }
                if self.user_requests.remove(&id) {
                    vec![ClientEvent::Error { id, error }]
                } else {
                    Vec::new()
                }
            }
            Message::Notify { method, .. } if method == "echo" => Vec::new(),
            Message::Notify { method, .. } if method == "monitor_canceled" => {
                // The database was converted or replaced under us: read it
                // afresh from the same server, as for any lost connection
                // (the view is not current again until it is repopulated).
                let reason = format!(
                    "{} canceled our monitor of {} (the database was converted or replaced): reading it afresh",
                    self.remote(),
                    self.cfg.database
                );
                log::warn!("{}: {reason}", self.cfg.label);
                let wait = self.failure_wait();
                self.drop_connection(&reason, wait)
            }
            Message::Notify { method, params }
                if method == "update" && is_server_monitor(&params) =>
            {
                let params = params.value();
                self.on_server_update(params.get(1).unwrap_or(&Value::Null))
            }
            Message::Notify { method, params } => vec![ClientEvent::Notify { method, params }],
            Message::Request { method, id, .. } => {
                // The server asks nothing of clients but echo (answered by
                // the connection thread); refuse anything else politely.
                if let Some(w) = self.writer() {
                    let _ = w.send(&Message::Error {
                        error: json!(format!("unknown method {method}")).into(),
                        id,
                    });
                }
                Vec::new()
            }
        }
    }

    fn on_internal_reply(
        &mut self,
        what: Internal,
        result: Result<Json, Json>,
    ) -> Vec<ClientEvent> {
        // Small answers all: read as values.
        let result = result.map(|r| r.value()).map_err(|e| e.value());
        match what {
            Internal::Probe => Vec::new(),
            Internal::ChangeAware => {
                if let Err(e) = result {
                    // An ovsdb-server older than 2.9: it closes the
                    // connection on a conversion instead.
                    log::debug!("{}: set_db_change_aware refused: {e}", self.cfg.label);
                }
                Vec::new()
            }
            Internal::ServerMonitor => match result {
                Ok(initial) => self.on_server_update(&initial),
                Err(e) => {
                    // Not fatal: the member was judged when connecting.
                    log::debug!("{}: cannot follow _Server: {e}", self.cfg.label);
                    Vec::new()
                }
            },
            Internal::ServerCheck => {
                // A server without _Server (or an error) is not clustered.
                let row = result.ok().as_ref().and_then(ServerRow::from_select);
                let verdict = row.as_ref().map_or(Verdict::Use, |r| self.newest.judge(r));
                let skip = match verdict {
                    Verdict::Use => None,
                    Verdict::NewDatabase => {
                        log::warn!(
                            "{}: {} serves a new copy of {} (its cluster id changed): reading it afresh",
                            self.cfg.label,
                            self.remote(),
                            self.cfg.database
                        );
                        None
                    }
                    Verdict::NotConnected => Some(format!(
                        "{} is not connected to its cluster; trying the next remote",
                        self.remote()
                    )),
                    Verdict::Behind { index, seen } => Some(format!(
                        "{} holds an older copy of {} than one already seen (log index {index} < {seen}): it is still catching up; trying the next remote",
                        self.remote(),
                        self.cfg.database
                    )),
                };
                if let Some(reason) = skip {
                    log::warn!("{}: {reason}", self.cfg.label);
                    self.next_remote += 1;
                    let wait = self.failure_wait();
                    return self.drop_connection(&reason, wait);
                }
                if row.is_some() {
                    // Follow the row for as long as the connection lasts.
                    self.send_internal(
                        Internal::ServerMonitor,
                        "monitor",
                        member::monitor_params(),
                    );
                }
                self.send_internal(
                    Internal::GetSchema,
                    "get_schema",
                    json!([self.cfg.database]),
                );
                Vec::new()
            }
            Internal::GetSchema => match result
                .map_err(|e| e.to_string())
                .and_then(|r| Schema::from_json(&r))
            {
                Ok(schema) if !schema.missing(self.cfg.required).is_empty() => {
                    let missing: Vec<String> = schema
                        .missing(self.cfg.required)
                        .iter()
                        .map(|r| format!("{}.{} ({} or later)", r.table, r.column, r.since))
                        .collect();
                    let reason = format!(
                        "{} serves {} schema {} without {}: this release is too old; trying again in about {} s",
                        self.remote(),
                        self.cfg.database,
                        schema.version.as_deref().unwrap_or("(no version)"),
                        missing.join(", "),
                        MAX_BACKOFF.as_secs()
                    );
                    // Said once per server: it will not change by itself.
                    if self.complained.insert(self.remote().to_string()) {
                        log::error!("{}: {reason}", self.cfg.label);
                    } else {
                        log::debug!("{}: {reason}", self.cfg.label);
                    }
                    self.next_remote += 1;
                    let jitter = self.jitter.draw();
                    let wait = self.backoff.failed_for_long(self.cfg.remotes.len(), jitter);
                    self.drop_connection(&reason, wait)
                }
                Ok(schema) => {
                    self.schema = Some(schema);
                    let State::Negotiating { writer, closer, .. } = std::mem::replace(
                        &mut self.state,
                        State::Waiting {
                            until: Instant::now(),
                        },
                    ) else {
                        return Vec::new();
                    };
                    self.state = State::Ready { writer, closer };
                    self.backoff.ready(Instant::now());
                    log::info!(
                        "{}: connected to {} ({})",
                        self.cfg.label,
                        self.remote(),
                        self.cfg.database
                    );
                    vec![ClientEvent::Ready]
                }
                Err(e) => {
                    let reason = format!(
                        "{}: cannot get the schema of {}: {e}",
                        self.remote(),
                        self.cfg.database
                    );
                    log::warn!("{}: {reason}", self.cfg.label);
                    let wait = self.failure_wait();
                    self.drop_connection(&reason, wait)
                }
            },
        }
    }

    /// A change to this member's `_Server.Database` row, while connected:
    /// the member is left, as the OVS IDL leaves it, when it loses its
    /// cluster, falls behind a copy seen elsewhere, or stops serving the
    /// database; a database re-created under a new cluster id is read
    /// afresh from the same member.
    fn on_server_update(&mut self, updates: &Value) -> Vec<ClientEvent> {
        let row = match member::watched_change(updates, &self.cfg.database) {
            member::Watched::Nothing => return Vec::new(),
            member::Watched::Removed => None,
            member::Watched::Row(row) => Some(row),
        };
        let (reason, next) = match row.map(|r| self.newest.judge(&r)) {
            Some(Verdict::Use) => return Vec::new(),
            None => (
                format!(
                    "{} no longer serves {} (it left its cluster, or the database was removed); moving to the next remote",
                    self.remote(),
                    self.cfg.database
                ),
                true,
            ),
            Some(Verdict::NotConnected) => (
                format!(
                    "{} lost contact with its cluster (_Server says it is not connected); moving to the next remote",
                    self.remote()
                ),
                true,
            ),
            Some(Verdict::Behind { index, seen }) => (
                format!(
                    "{} fell behind a copy of {} already seen (log index {index} < {seen}); moving to the next remote",
                    self.remote(),
                    self.cfg.database
                ),
                true,
            ),
            Some(Verdict::NewDatabase) => (
                format!(
                    "{} now serves a new copy of {} (its cluster id changed): reading it afresh",
                    self.remote(),
                    self.cfg.database
                ),
                false,
            ),
        };
        log::warn!("{}: {reason}", self.cfg.label);
        if next {
            self.next_remote += 1;
        }
        let wait = self.failure_wait();
        self.drop_connection(&reason, wait)
    }

    /// Drops the connection and reconnects after the usual back-off, e.g.
    /// to resynchronise after an update that could not be applied.
    pub fn reconnect(&mut self, reason: &str) -> Vec<ClientEvent> {
        log::warn!("{}: {reason}; reconnecting", self.cfg.label);
        let wait = self.failure_wait();
        self.drop_connection(reason, wait)
    }

    /// Closes the connection for good (shutdown).
    pub fn close(&mut self) {
        self.drop_connection("shutting down", MAX_BACKOFF * 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: usize, shuffle: bool) -> Client {
        let remotes = (0..n)
            .map(|i| Remote::Unix(format!("/nonexistent/{i}.sock").into()))
            .collect();
        Client::new(
            ClientConfig {
                label: "test".into(),
                database: "OVN_Southbound".into(),
                remotes,
                tls: None,
                probe_interval: None,
                connect_timeout: Duration::from_secs(1),
                shuffle_remotes: shuffle,
                required: &[],
            },
            Arc::new(|_| {}),
        )
    }

    #[test]
    fn shuffled_remotes_spread_the_first_connections_over_every_member() {
        let mut firsts = HashSet::new();
        for _ in 0..64 {
            firsts.insert(client(3, true).remote().to_string());
        }
        assert_eq!(firsts.len(), 3, "{firsts:?}");
        for _ in 0..8 {
            assert_eq!(
                client(3, false).remote().to_string(),
                "unix:/nonexistent/0.sock"
            );
        }
    }
}
