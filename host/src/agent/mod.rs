//! The plugging agent (`vif-plug-host run`): it watches the Southbound
//! database for logical ports the CMS wants plugged on this chassis, asks
//! the providers what to plug, and keeps the local Open vSwitch database in
//! line, as ovn-controller's VIF plug support does, beside a stock
//! ovn-controller.
//!
//! The shape is that of ovn-controller's incremental engine in miniature:
//!
//! - [`local_session`], [`sb_session`]: the two databases; they own their
//!   connections and monitors and expose facts ([`local_view`],
//!   [`sb_view`], typed through [`rows`]), deciding nothing about ports;
//! - [`evidence`]: the facts about one logical port, gathered;
//! - [`port_state`]: one record per logical port and the pure transition
//!   `step` (the rules table, with [`placement`] and [`lport_options`]);
//! - [`port_table`]: the records, which ports need deciding, and the log
//!   of their phase changes;
//! - [`prepare`]: carrying an intent out through the providers into a
//!   [`plan`] ([`iface_diff`] says what to change on an interface);
//! - [`in_flight`]: the one transaction in flight and its settlement;
//! - `worker_events`: what the agent does when a provider worker dies,
//!   comes back, or stays down;
//! - this module: the event loop, which only moves events between them.

mod config_change;
pub mod control;
pub mod evidence;
pub mod iface_diff;
pub mod iface_health;
pub mod in_flight;
pub mod local_session;
pub mod local_view;
pub mod lport_macs;
pub mod lport_options;
pub mod notify;
pub mod options;
pub mod placement;
pub mod plan;
pub mod port_state;
pub mod port_table;
pub mod prepare;
pub mod probe;
pub mod readiness;
pub mod requests;
pub mod rows;
pub mod sb_session;
pub mod sb_view;
mod service_manager;
mod worker_events;

use crate::dispatch::Providers;
use crate::ovsdb::client::{Client, ClientConfig, ClientEvent};
use crate::ovsdb::connection::{ConnEvent, Post};
use crate::ovsdb::Uuid;
use evidence::{BridgeNames, Sources};
use in_flight::Writer;
use local_session::{LocalSession, LocalUpdate, LOCK_NAME};
pub use options::AgentOptions;
use port_state::{BindingView, Intent, Phase};
use port_table::PortTable;
use prepare::{IntegrationBridge, Outcome};
use sb_session::SbSession;
use std::collections::HashSet;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What wakes the agent.
pub enum Event {
    /// From the local database connection.
    Local(ConnEvent),
    /// From the Southbound connection.
    Sb(ConnEvent),
    /// SIGTERM or SIGINT.
    Stop(i32),
    /// A command from the control socket ([`crate::unixctl`]).
    Control(crate::unixctl::Control),
}

/// Stops a running agent from another thread (a signal handler).
#[derive(Clone)]
pub struct StopHandle {
    tx: Sender<Event>,
    signal: Arc<std::sync::atomic::AtomicI32>,
}

impl StopHandle {
    /// Asks the agent to stop, for signal `sig`. Seen at once, even when
    /// a flood of database events is queued ahead of the wake-up. Returns
    /// false once the agent is gone.
    pub fn stop(&self, sig: i32) -> bool {
        self.signal.store(sig, std::sync::atomic::Ordering::SeqCst);
        self.tx.send(Event::Stop(sig)).is_ok()
    }
}

/// Port events (marks and decisions) after which the agent returns free
/// memory to the system before it sleeps (see [`crate::memory`]).
const TRIM_AFTER: usize = 500;

/// On shutdown, how long to wait for a transaction in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Limit for each step of connecting to a database (TCP connect, TLS
/// handshake, each of the first answers): a server that accepts and then
/// says nothing is left for the next remote after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn poster(tx: &Sender<Event>, wrap: fn(ConnEvent) -> Event) -> Post {
    let tx = Mutex::new(tx.clone());
    Arc::new(move |ev| {
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(wrap(ev));
    })
}

/// The agent.
pub struct Agent {
    opts: AgentOptions,
    providers: Providers,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    local: LocalSession,
    sb: SbSession,
    ports: PortTable,
    writer: Writer,
    bridges: BridgeNames,
    /// Last seen `dpdk_initialized`.
    dpdk: Option<bool>,
    /// Last seen `external_ids:ovn-remote`.
    ovn_remote: Option<String>,
    /// The Southbound probe in force, and the last complaint about its
    /// setting (said once per value).
    sb_probe: Option<probe::Setting>,
    probe_complaint: Option<String>,
    /// `external_ids:hostname` (or its per-chassis key), if set; else the
    /// system's hostname is read afresh at each decision, as ovn-controller
    /// does.
    hostname_key: Option<String>,
    next_run: Instant,
    stopping: Option<Instant>,
    /// The signal a [`StopHandle`] stopped us with; 0 while none.
    stop_signal: Arc<std::sync::atomic::AtomicI32>,
    /// Port events since memory was last trimmed.
    burst: usize,
    /// The interface errors already said.
    health: iface_health::HealthWatch,
    /// The service manager's socket and what it was told; `None` when
    /// not started by one (`NOTIFY_SOCKET` unset) or its address is not
    /// usable (said once at start).
    manager: Option<(notify::Notifier, readiness::Readiness)>,
    /// The last failed send to the service manager: when, and its error
    /// (sends are retried once a second).
    notify_failed: Option<(Instant, std::io::ErrorKind)>,
    /// The last warning about it: when, and for which error (one per kind
    /// of error a minute, so a manager that reads slowly is not a stream
    /// of warnings).
    notify_warned: Option<(Instant, std::io::ErrorKind)>,
}

impl Agent {
    /// An agent with its providers registered (a [`crate::Registry`] for
    /// in-process providers, or [`Providers`] in either mode).
    pub fn new(opts: AgentOptions, providers: impl Into<Providers>) -> Agent {
        let mut providers = providers.into();
        let (tx, rx) = channel();
        let local = Client::new(
            ClientConfig {
                label: "local".into(),
                database: "Open_vSwitch".into(),
                remotes: opts.ovs_remote.clone(),
                tls: opts.tls.clone(),
                probe_interval: probe::for_remotes(
                    &opts.ovs_remote,
                    opts.probe_interval.map_or(Some(probe::DEFAULT), |ms| {
                        (ms > 0).then(|| Duration::from_millis(ms).max(probe::MINIMUM))
                    }),
                ),
                connect_timeout: CONNECT_TIMEOUT,
                shuffle_remotes: false,
                required: rows::LOCAL_REQUIRED,
            },
            poster(&tx, Event::Local),
        );
        let stop_signal: Arc<std::sync::atomic::AtomicI32> = Arc::default();
        providers.set_interrupt(stop_signal.clone());
        Agent {
            sb: SbSession::new(opts.chassis.clone().unwrap_or_default(), opts.unplug_settle),
            opts,
            providers,
            tx,
            rx,
            local: LocalSession::new(local),
            ports: PortTable::default(),
            writer: Writer::default(),
            bridges: BridgeNames::default(),
            dpdk: None,
            ovn_remote: None,
            sb_probe: None,
            probe_complaint: None,
            hostname_key: None,
            next_run: Instant::now(),
            stopping: None,
            stop_signal,
            burst: 0,
            health: Default::default(),
            manager: match notify::Notifier::from_env() {
                None => None,
                Some(Ok(n)) => Some((n, Default::default())),
                Some(Err(e)) => {
                    log::warn!("{e}: the service manager will not be told anything");
                    None
                }
            },
            notify_failed: None,
            notify_warned: None,
        }
    }

    /// A handle that stops the agent, for a signal handler.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            tx: self.tx.clone(),
            signal: self.stop_signal.clone(),
        }
    }

    /// Notices a stop asked for through a [`StopHandle`], ahead of the
    /// queue.
    fn stop_requested(&mut self) -> bool {
        let sig = self.stop_signal.load(std::sync::atomic::Ordering::SeqCst);
        if sig != 0 && self.stopping.is_none() {
            self.on_event(Event::Stop(sig));
        }
        sig != 0
    }

    /// A sender for events, e.g. for a signal handler.
    pub fn sender(&self) -> Sender<Event> {
        self.tx.clone()
    }

    /// Runs until stopped by [`Event::Stop`]. Plugged ports stay in place.
    pub fn run(mut self) {
        log::info!(
            "vif-plug-host agent started with provider(s): {} ({})",
            self.providers.types().join(", "),
            match self.providers.isolation() {
                crate::dispatch::Isolation::Process => "each library in a worker process",
                crate::dispatch::Isolation::None => "in process",
            }
        );
        loop {
            let now = Instant::now();
            let mut deadline = self.next_run;
            let (events, next) = self.local.client().tick(now);
            self.on_local_events(events);
            deadline = next.map_or(deadline, |n| deadline.min(n));
            if let Some(sb) = self.sb.client() {
                let (events, next) = sb.tick(now);
                self.on_sb_events(events);
                deadline = next.map_or(deadline, |n| deadline.min(n));
            }
            if let Some(n) = self.ports.release_quarantine(now) {
                deadline = deadline.min(n);
            }
            if let Some(n) = self.providers.tick(now) {
                deadline = deadline.min(n);
            }
            self.on_worker_events();
            if let Some(t) = self.sb.settle_deadline() {
                deadline = deadline.min(t);
            }
            if let Some(t) = self.writer.check_slow(now) {
                deadline = deadline.min(t);
            }
            if let Some(t) = self.manager.as_ref().and_then(|(_, r)| r.next_due()) {
                deadline = deadline.min(t);
            }
            // Only wake for pending work that can actually be done.
            if self.local.may_write()
                && !self.writer.busy()
                && self.stopping.is_none()
                && self.ports.has_due(now)
            {
                deadline = deadline.min(self.writer.not_before());
            }
            self.stop_requested();
            if let Some(t) = self.stopping {
                if !self.writer.busy() || now >= t + SHUTDOWN_GRACE {
                    break;
                }
                deadline = deadline.min(t + SHUTDOWN_GRACE);
            }
            if self.burst >= TRIM_AFTER {
                // About to sleep after a burst: give its memory back.
                crate::memory::trim();
                self.burst = 0;
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(ev) => self.on_event(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Take everything already queued before deciding, so a burst of
            // updates becomes one transaction; but a stop goes first.
            while !self.stop_requested() {
                let Ok(ev) = self.rx.try_recv() else { break };
                self.on_event(ev);
            }
            let busy = Instant::now();
            self.run_providers();
            if self.sb.refresh_certainty(Instant::now()) {
                self.mark_everything();
            }
            if self.stopping.is_none() {
                self.reconcile();
            }
            self.providers.end_iteration();
            self.on_worker_events();
            self.tell_service_manager();
            // Time spent in providers (and deciding) is the agent's, not
            // the servers': their silence meanwhile is not held against
            // them.
            let away = busy.elapsed();
            self.local.client().excuse(away);
            if let Some(sb) = self.sb.client() {
                sb.excuse(away);
            }
        }
        self.shutdown();
    }

    fn shutdown(mut self) {
        // Said first: systemd then knows a slow stop (providers' destroy)
        // is a stop.
        if self.manager.is_some() {
            self.notify(vec!["STOPPING=1".into(), "STATUS=stopping".into()]);
        }
        if let Some((n, what)) = self.writer.abandon() {
            log::warn!(
                "stopping with a transaction of {n} operation(s) unanswered ({what}); its outcome is not known: the next start reads what the database holds and carries on from there"
            );
        }
        self.local.client().close();
        log::info!(
            "local: received {} bytes in all",
            self.local.client().rx_bytes()
        );
        if let Some(sb) = self.sb.client() {
            sb.close();
        }
        if let Some(n) = self.sb.rx_bytes() {
            log::info!("southbound: received {n} bytes in all");
        }
        self.providers.destroy_all();
        log::info!("stopped; plugged ports are left in place");
    }

    fn run_providers(&mut self) {
        let now = Instant::now();
        let changed = self.providers.run_all();
        if now >= self.next_run {
            self.next_run = now + self.opts.provider_run_interval;
        }
        if changed {
            log::debug!("a provider reported a change: reconsidering every port");
            self.ports.forget_applied();
            self.mark_everything();
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Local(e) => {
                let events = self.local.client().handle(e);
                self.on_local_events(events);
            }
            Event::Sb(e) => {
                let events = match self.sb.client() {
                    Some(sb) => sb.handle(e),
                    None => Vec::new(),
                };
                self.on_sb_events(events);
            }
            Event::Stop(_) if self.stopping.is_some() => {}
            Event::Stop(sig) => {
                log::info!("signal {sig} received: stopping");
                self.stopping = Some(Instant::now());
            }
            Event::Control(c) => self.on_control(c),
        }
    }

    fn on_local_events(&mut self, events: Vec<ClientEvent>) {
        if events.is_empty() {
            return;
        }
        let LocalUpdate {
            affected,
            loaded,
            replies,
            lost,
            lock_changed: _,
        } = self.local.on_events(events);
        for (id, result) in replies {
            if self.writer.is_ours(id) {
                self.writer.settle(result, &mut self.ports);
            }
        }
        if lost.iter().any(|id| self.writer.is_ours(*id)) {
            self.writer.settle(
                Err("connection lost before the reply".into()),
                &mut self.ports,
            );
        }
        self.burst += affected.lports.len();
        self.watch_health(&affected.lports);
        self.ports.mark_many(affected.lports);
        if affected.plugged_changed || loaded {
            let lookups = self.local.view().plugged_lports().clone();
            self.sb.set_lookups(lookups);
        }
        if loaded || affected.config {
            self.on_config_change();
        }
        if loaded {
            self.mark_everything();
        } else if !affected.bridges.is_empty() {
            self.on_bridges_changed(&affected.bridges);
        }
        if affected.names_freed {
            self.ports.mark_waiting_for_name();
        }
    }

    fn on_sb_events(&mut self, events: Vec<ClientEvent>) {
        if events.is_empty() {
            return;
        }
        let update = self.sb.on_events(events);
        self.burst += update.lports.len();
        self.ports.mark_many(update.lports);
        if update.recheck_all {
            self.mark_everything();
        }
    }

    fn on_bridges_changed(&mut self, bridges: &HashSet<Uuid>) {
        if self
            .local
            .view()
            .bridge(&self.bridges.current)
            .is_none_or(|(u, _)| bridges.contains(&u))
        {
            // The integration bridge appeared, went, or changed datapath.
            self.ports.forget_applied();
            self.mark_everything();
        }
    }

    /// Marks every port the agent knows of for a fresh decision.
    fn mark_everything(&mut self) {
        self.ports.mark_known();
        self.ports.mark_many(self.sb.lports().cloned());
        self.ports
            .mark_many(self.local.view().plugged_lports().iter().cloned());
    }

    /// Decides the marked ports and sends their changes as one transaction.
    fn reconcile(&mut self) {
        let now = Instant::now();
        if self.writer.busy() || !self.local.may_write() || now < self.writer.not_before() {
            return;
        }
        let due = self.ports.take_due(now);
        self.burst += due.len();
        if due.is_empty() {
            self.ports.end_iteration();
            return;
        }
        if self.hostname_key.is_none() {
            self.sb.set_local_hostname(system_hostname());
        }
        let view = self.local.view();
        let integration = view
            .bridge(&self.bridges.current)
            .map(|(uuid, b)| IntegrationBridge {
                uuid,
                name: b.name().to_owned(),
                datapath_type: b.datapath_type().to_owned(),
            });
        let sources = Sources {
            local: view,
            sb: &self.sb,
            providers: &self.providers,
            bridges: &self.bridges,
            now,
        };
        let cx = prepare::Context {
            providers: &self.providers,
            local: view,
            bridge: integration.as_ref(),
            dpdk_initialized: self.dpdk.unwrap_or(false),
        };
        let mut claimed = HashSet::new();
        let mut plans = Vec::new();
        let mut blocked = Vec::new();
        // Decide every port first, so that the provider calls they need
        // go to each worker in one batch; then carry the intents out.
        let mut decided = Vec::with_capacity(due.len());
        let mut foreseen = Vec::new();
        for lport in &due {
            let ev = evidence::gather(&sources, lport);
            self.ports.note_elsewhere(lport, &ev.elsewhere);
            let rec = self.ports.record(lport);
            let decision = port_state::step(rec, &ev);
            let vanished =
                rec.phase == Phase::Plugged && rec.applied.is_some() && ev.ours.is_none();
            if let (
                BindingView::Present(b),
                Intent::Plug { .. } | Intent::Check { .. } | Intent::Replace { .. },
            ) = (&ev.binding, &decision.intent)
            {
                self.ports.note_problems(lport, &b.options.problems);
            }
            foreseen.extend(requests::foresee(&cx, lport, &ev, &decision.intent));
            decided.push((lport, ev, decision, vanished));
        }
        self.providers.prefetch(&foreseen);
        drop(foreseen);
        for (lport, ev, decision, vanished) in decided {
            // The phase is set once, from what carrying the intent out
            // gave: a port that declines again passes through no other.
            let phase = match prepare::carry_out(&cx, &mut claimed, lport, &ev, decision.intent) {
                None => decision.phase,
                Some(Outcome::Postponed { provider, reason }) => {
                    log::debug!(
                        "logical port {lport}: provider {provider} not asked ({reason}); decided again when its worker is back"
                    );
                    continue;
                }
                Some(Outcome::Plan(mut p)) => {
                    if vanished {
                        p.why = Some("its interface was removed by someone else".into());
                    }
                    plans.push(*p);
                    continue; // in flight once sent
                }
                Some(Outcome::Blocked(b)) => {
                    blocked.push(*b);
                    continue; // decided below, with the whole batch
                }
                Some(Outcome::Unchanged(applied)) => {
                    self.ports.set_applied(lport, *applied);
                    Phase::Plugged
                }
                Some(Outcome::Declined { provider, reason }) => {
                    port_state::declined(&self.ports.record(lport).phase, provider, reason)
                }
                Some(Outcome::NameTaken { name, holder }) => Phase::WaitingForName {
                    name,
                    holder,
                    replacing: ev.ours.is_some(),
                },
                Some(Outcome::Deferred(what, doubt)) => Phase::Deferred(what, doubt),
            };
            self.ports.set_phase(lport, phase);
        }
        let decided: HashSet<&String> = due.iter().collect();
        let mut together = Vec::new();
        for b in prepare::unblock(&mut plans, blocked, &mut claimed) {
            // A port whose name is held by a port not decided with it (one
            // half of a swap the CMS asked for in two steps) is decided
            // again with that port; deciding them together once is enough.
            if b.holder_lports.iter().any(|l| !decided.contains(l)) {
                together.extend(b.holder_lports.iter().cloned());
                together.push(b.plan.lport.clone());
            }
            // Dropping the plan drops its operations unfinished.
            let phase = Phase::WaitingForName {
                name: b.name,
                holder: b.holder,
                replacing: b.plan.kind() == port_state::OpKind::Replace,
            };
            self.ports.set_phase(&b.plan.lport, phase);
        }
        self.ports.mark_many(together);
        log::debug!(
            "decided {} logical port(s): {} operation(s) to commit",
            due.len(),
            plans.len()
        );
        if !plans.is_empty() {
            self.writer.send(
                self.local.client(),
                plans,
                LOCK_NAME,
                &self.bridges.current,
                &mut self.ports,
            );
        }
        self.ports.end_iteration();
    }
}

/// The system's hostname, as ovn-controller takes it (`gethostname`) when
/// `external_ids:hostname` is not set.
fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
