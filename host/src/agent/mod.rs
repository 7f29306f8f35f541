//! The plugging agent (`vif-plug-host run`): it watches the Southbound
//! database for logical ports the CMS wants plugged on this chassis, asks
//! the providers what to plug, and keeps the local Open vSwitch database in
//! line, as ovn-controller's VIF plug support does, beside a stock
//! ovn-controller.
//!
//! - [`local_view`] and [`sb_view`]: the monitored rows and their indices;
//! - [`reconcile`]: the per-port decision and the transaction it becomes;
//! - [`iface_diff`]: what to change on an interface, and what not to touch;
//! - this module: the event loop, monitors, completeness, the transaction
//!   in flight, provider `run`, signals.

pub mod iface_diff;
pub mod local_view;
pub mod options;
pub mod reconcile;
pub mod sb_view;

use crate::ovsdb::client::{Client, ClientConfig, ClientEvent};
use crate::ovsdb::connection::ConnEvent;
use crate::ovsdb::txn::{check_result, failed_op};
use crate::ovsdb::{remote, Remote, Uuid};
use crate::registry::Registry;
use local_view::LocalView;
pub use options::AgentOptions;
use reconcile::{Applied, Inputs, Plan, Warned};
use sb_view::SbView;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
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
}

/// After a failed transaction, wait this long before the next one.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);
/// On shutdown, how long to wait for a transaction in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn poster(tx: &Sender<Event>, wrap: fn(ConnEvent) -> Event) -> crate::ovsdb::connection::Post {
    let tx = Mutex::new(tx.clone());
    Arc::new(move |ev| {
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(wrap(ev));
    })
}

/// Monitor state of one database.
#[derive(Debug, Default)]
struct Monitor {
    /// The `monitor_cond` request awaiting its reply.
    request: Option<u64>,
    /// Whether the reply (the complete initial contents) has arrived.
    complete: bool,
    /// The server lacks `monitor_cond`: plain `monitor` is used.
    plain: bool,
}

/// The Southbound monitor's view of our chassis.
#[derive(Debug, Default)]
struct SbCondition {
    /// The chassis the Port_Binding condition currently selects.
    chassis: Option<Uuid>,
    /// The chassis name the Chassis condition selects.
    name: String,
    /// A `monitor_cond_change` awaiting its reply.
    change: Option<u64>,
    /// The chassis name the server-side Chassis condition selects.
    selected: Option<String>,
}

struct InFlight {
    id: u64,
    plans: Vec<Plan>,
    /// The plan each operation of the transaction belongs to.
    owners: Vec<Option<usize>>,
}

/// The agent.
pub struct Agent {
    opts: AgentOptions,
    registry: Registry,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    local: Client,
    sb: Option<Client>,
    lv: LocalView,
    sv: SbView,
    local_mon: Monitor,
    sb_mon: Monitor,
    cond: SbCondition,
    dirty: HashSet<String>,
    declined: HashSet<String>,
    applied: HashMap<String, Applied>,
    warned: Warned,
    in_flight: Option<InFlight>,
    not_before: Instant,
    next_run: Instant,
    bridge: String,
    stopping: Option<Instant>,
    /// Ports to unplug once both views are complete.
    deferred: HashSet<String>,
    /// Ports waiting for an interface name to be freed.
    blocked: HashSet<String>,
    /// Consecutive failed transactions per port, and until when a port that
    /// made one fail is held back.
    failures: HashMap<String, u32>,
    quarantine: HashMap<String, Instant>,
    /// Consecutive failed transactions not attributable to one port.
    global_failures: u32,
    /// Ports of a failed batch whose failure named no port: they are tried
    /// one per transaction, so that a failure is attributable.
    suspects: HashSet<String>,
    /// Last seen `dpdk_initialized`.
    dpdk: Option<bool>,
}

const MONITOR_ID: &str = "vif-plug-host";

impl Agent {
    /// An agent with its providers registered.
    pub fn new(opts: AgentOptions, registry: Registry) -> Agent {
        let (tx, rx) = channel();
        let local = Client::new(
            ClientConfig {
                label: "local".into(),
                database: "Open_vSwitch".into(),
                remotes: opts.ovs_remote.clone(),
                tls: opts.tls.clone(),
                probe_interval: probe_for(&opts.ovs_remote, opts.probe_interval),
                connect_timeout: Duration::from_secs(5),
            },
            poster(&tx, Event::Local),
        );
        Agent {
            bridge: opts
                .bridge
                .clone()
                .unwrap_or_else(|| options::DEFAULT_BRIDGE.into()),
            cond: SbCondition {
                name: opts.chassis.clone().unwrap_or_default(),
                ..Default::default()
            },
            opts,
            registry,
            tx,
            rx,
            local,
            sb: None,
            lv: LocalView::default(),
            sv: SbView::default(),
            local_mon: Monitor::default(),
            sb_mon: Monitor::default(),
            dirty: HashSet::new(),
            declined: HashSet::new(),
            applied: HashMap::new(),
            warned: Warned::default(),
            in_flight: None,
            not_before: Instant::now(),
            next_run: Instant::now(),
            stopping: None,
            deferred: HashSet::new(),
            blocked: HashSet::new(),
            failures: HashMap::new(),
            quarantine: HashMap::new(),
            global_failures: 0,
            suspects: HashSet::new(),
            dpdk: None,
        }
    }

    /// A sender for events, e.g. for a signal handler.
    pub fn sender(&self) -> Sender<Event> {
        self.tx.clone()
    }

    /// Runs until stopped by [`Event::Stop`]. Plugged ports stay in place.
    pub fn run(mut self) {
        log::info!(
            "vif-plug-host agent started with provider(s): {}",
            self.registry
                .iter()
                .map(|p| p.type_name().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
        loop {
            let now = Instant::now();
            let mut deadline = self.next_run;
            let (events, next) = self.local.tick(now);
            self.on_local_events(events);
            deadline = next.map_or(deadline, |n| deadline.min(n));
            if let Some(sb) = self.sb.as_mut() {
                let (events, next) = sb.tick(now);
                self.on_sb_events(events);
                deadline = next.map_or(deadline, |n| deadline.min(n));
            }
            if let Some(n) = self.release_quarantine(now) {
                deadline = deadline.min(n);
            }
            // Only wake for pending work that can actually be done.
            if !self.dirty.is_empty()
                && self.in_flight.is_none()
                && self.local_mon.complete
                && self.stopping.is_none()
            {
                deadline = deadline.min(self.not_before);
            }
            if let Some(t) = self.stopping {
                if self.in_flight.is_none() || now >= t + SHUTDOWN_GRACE {
                    break;
                }
                deadline = deadline.min(t + SHUTDOWN_GRACE);
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(ev) => self.on_event(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Take everything already queued before deciding, so a burst of
            // updates becomes one transaction.
            while let Ok(ev) = self.rx.try_recv() {
                self.on_event(ev);
            }
            self.run_providers();
            if self.stopping.is_none() {
                self.reconcile();
            }
        }
        self.shutdown();
    }

    fn shutdown(mut self) {
        if let Some(f) = self.in_flight.take() {
            log::warn!(
                "stopping with a transaction of {} operation(s) unanswered; its outcome is not known",
                f.plans.len()
            );
        }
        self.local.close();
        log::info!("local: received {} bytes in all", self.local.rx_bytes());
        if let Some(sb) = self.sb.as_mut() {
            sb.close();
            log::info!("southbound: received {} bytes in all", sb.rx_bytes());
        }
        self.registry.destroy_all();
        log::info!("stopped; plugged ports are left in place");
    }

    fn run_providers(&mut self) {
        let now = Instant::now();
        let changed = self.registry.run_all();
        if now >= self.next_run {
            self.next_run = now + self.opts.provider_run_interval;
        }
        if changed {
            log::debug!("a provider reported a change: reconsidering every port");
            self.applied.clear();
            let all: Vec<String> = self
                .declined
                .drain()
                .chain(self.sv.lports().cloned())
                .chain(self.lv.lports().cloned())
                .collect();
            self.dirty.extend(all);
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Local(e) => {
                let events = self.local.handle(e);
                self.on_local_events(events);
            }
            Event::Sb(e) => {
                let events = match self.sb.as_mut() {
                    Some(sb) => sb.handle(e),
                    None => Vec::new(),
                };
                self.on_sb_events(events);
            }
            Event::Stop(sig) => {
                log::info!("signal {sig} received: stopping");
                self.stopping = Some(Instant::now());
            }
        }
    }

    /// Moves ports whose quarantine ended back to work; returns the next
    /// end of a quarantine.
    fn release_quarantine(&mut self, now: Instant) -> Option<Instant> {
        let due: Vec<String> = self
            .quarantine
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(l, _)| l.clone())
            .collect();
        for l in due {
            self.quarantine.remove(&l);
            self.dirty.insert(l);
        }
        self.quarantine.values().min().copied()
    }

    fn on_local_events(&mut self, events: Vec<ClientEvent>) {
        for e in events {
            match e {
                ClientEvent::Ready => {
                    self.local_mon = Monitor {
                        plain: self.local_mon.plain,
                        ..Monitor::default()
                    };
                    self.request_local_monitor();
                }
                ClientEvent::Reply { id, result } if Some(id) == self.local_mon.request => {
                    self.local_mon.request = None;
                    let mut changes = self.lv.reset();
                    match self.apply_local(&result) {
                        Ok(c) => changes.extend(c),
                        Err(e) => {
                            self.lv.reset();
                            let events = self.local.reconnect(&format!("bad monitor reply ({e})"));
                            self.on_local_events(events);
                            continue;
                        }
                    }
                    let affected = self.lv.index(&changes);
                    self.local_mon.complete = true;
                    log::info!(
                        "local: {} interface(s) in view",
                        self.lv.replica.len("Interface")
                    );
                    self.dirty.extend(affected.lports);
                    self.on_config_change();
                    self.dirty_everything();
                }
                ClientEvent::Error { id, error } if Some(id) == self.local_mon.request => {
                    self.local_mon.request = None;
                    if !self.local_mon.plain && error.to_string().contains("unknown method") {
                        log::info!("local: server has no monitor_cond; using monitor");
                        self.local_mon.plain = true;
                        self.request_local_monitor();
                    } else {
                        let events = self.local.reconnect(&format!("monitor refused ({error})"));
                        self.on_local_events(events);
                    }
                }
                ClientEvent::Reply { id, result } if self.is_txn(id) => self.txn_done(Ok(result)),
                ClientEvent::Error { id, error } if self.is_txn(id) => {
                    self.txn_done(Err(error.to_string()))
                }
                ClientEvent::Notify { method, params }
                    if method == "update2" || method == "update" =>
                {
                    let updates = take_updates(params);
                    match self.apply_local(&updates) {
                        Ok(changes) => {
                            let affected = self.lv.index(&changes);
                            self.dirty.extend(affected.lports);
                            if affected.config {
                                self.on_config_change();
                            }
                            if !affected.bridges.is_empty() {
                                self.on_bridges_changed(&affected.bridges);
                            }
                            if affected.names_freed {
                                let blocked: Vec<String> = self.blocked.drain().collect();
                                self.dirty.extend(blocked);
                            }
                        }
                        Err(e) => {
                            // The view may be half-updated: start afresh.
                            self.local_mon.complete = false;
                            let events = self
                                .local
                                .reconnect(&format!("cannot apply an update ({e})"));
                            self.on_local_events(events);
                        }
                    }
                }
                ClientEvent::Disconnected { in_flight, .. } => {
                    self.local_mon.complete = false;
                    self.local_mon.request = None;
                    if self
                        .in_flight
                        .as_ref()
                        .is_some_and(|f| in_flight.contains(&f.id))
                    {
                        self.txn_done(Err("connection lost before the reply".into()));
                    }
                }
                _ => {}
            }
        }
    }

    fn apply_local(
        &mut self,
        updates: &Value,
    ) -> Result<Vec<crate::ovsdb::replica::RowChange>, String> {
        if self.local_mon.plain {
            self.lv.replica.apply_update(updates)
        } else {
            let schema = self.local.schema().ok_or("no schema")?;
            self.lv.replica.apply_update2(schema, updates)
        }
    }

    fn request_local_monitor(&mut self) {
        let Some(schema) = self.local.schema() else {
            return;
        };
        let mut params = local_view::monitor_params(schema, &json!(MONITOR_ID));
        let method = if self.local_mon.plain {
            // Plain monitor takes {table: {columns}} without conditions.
            if let Some(tables) = params.get_mut(2).and_then(Value::as_object_mut) {
                for v in tables.values_mut() {
                    *v = v[0].clone();
                }
            }
            "monitor"
        } else {
            "monitor_cond"
        };
        self.local_mon.request = self.local.request(method, params);
    }

    /// Settings from the Open_vSwitch row (unless overridden by flags).
    fn on_config_change(&mut self) {
        let cfg = self.lv.config();
        // The Southbound remote.
        let sb_remote = match &self.opts.sb_remote {
            Some(r) => Some(r.clone()),
            None => match cfg.ovn_remote.as_deref().map(remote::parse_list) {
                Some(Ok(r)) => Some(r),
                Some(Err(e)) => {
                    log::error!("external_ids:ovn-remote: {e}");
                    None
                }
                None => None,
            },
        };
        match (&mut self.sb, sb_remote) {
            (None, Some(remotes)) => {
                log::info!(
                    "southbound: {}",
                    remotes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                );
                self.sb = Some(Client::new(
                    ClientConfig {
                        label: "southbound".into(),
                        database: "OVN_Southbound".into(),
                        probe_interval: probe_for(&remotes, self.opts.probe_interval),
                        remotes,
                        tls: self.opts.tls.clone(),
                        connect_timeout: Duration::from_secs(5),
                    },
                    poster(&self.tx, Event::Sb),
                ));
            }
            (Some(sb), Some(remotes)) => {
                let events = sb.set_remotes(remotes);
                self.on_sb_events(events);
            }
            (None, None) if self.local_mon.complete => log::warn!(
                "no Southbound remote: set external_ids:ovn-remote or pass --ovnsb-remote"
            ),
            _ => {}
        }
        // The chassis name.
        let name = self
            .opts
            .chassis
            .clone()
            .or(cfg.system_id)
            .unwrap_or_default();
        if name != self.cond.name {
            log::info!("chassis name: {name:?}");
            self.cond.name = name;
            self.follow_chassis();
        }
        // The integration bridge.
        let bridge = self
            .opts
            .bridge
            .clone()
            .or(cfg.ovn_bridge)
            .unwrap_or_else(|| options::DEFAULT_BRIDGE.into());
        if bridge != self.bridge {
            log::info!("integration bridge: {bridge}");
            self.bridge = bridge;
            self.applied.clear();
            self.dirty_everything();
        }
        // DPDK becoming available can change providers' answers.
        if self.dpdk.is_some_and(|d| d != cfg.dpdk_initialized) {
            self.applied.clear();
            self.dirty_everything();
        }
        self.dpdk = Some(cfg.dpdk_initialized);
    }

    fn on_bridges_changed(&mut self, bridges: &HashSet<Uuid>) {
        if self
            .lv
            .bridge(&self.bridge)
            .is_none_or(|(u, _)| bridges.contains(&u))
        {
            // The integration bridge appeared, went, or changed datapath.
            self.applied.clear();
            self.dirty_everything();
        }
    }

    /// Marks every known port for a fresh decision.
    fn dirty_everything(&mut self) {
        let all: Vec<String> = self
            .sv
            .lports()
            .chain(self.lv.lports())
            .chain(self.declined.iter())
            .chain(self.blocked.iter())
            .cloned()
            .collect();
        self.dirty.extend(all);
    }

    fn on_sb_events(&mut self, events: Vec<ClientEvent>) {
        for e in events {
            match e {
                ClientEvent::Ready => {
                    self.sb_mon = Monitor {
                        plain: self.sb_mon.plain,
                        ..Monitor::default()
                    };
                    self.cond.change = None;
                    self.request_sb_monitor();
                }
                ClientEvent::Reply { id, result } if Some(id) == self.sb_mon.request => {
                    self.sb_mon.request = None;
                    let mut changes = self.sv.reset();
                    match self.apply_sb(&result) {
                        Ok(c) => changes.extend(c),
                        Err(e) => {
                            self.sv.reset();
                            self.sb_reconnect(&format!("bad monitor reply ({e})"));
                            continue;
                        }
                    }
                    let lports = self.sv.index(&changes);
                    self.dirty.extend(lports);
                    self.sb_mon.complete = true;
                    self.follow_chassis();
                    self.log_if_complete();
                }
                ClientEvent::Error { id, error } if Some(id) == self.sb_mon.request => {
                    self.sb_mon.request = None;
                    if !self.sb_mon.plain && error.to_string().contains("unknown method") {
                        log::warn!("southbound: server has no monitor_cond; monitoring every port binding (more traffic)");
                        self.sb_mon.plain = true;
                        self.request_sb_monitor();
                    } else {
                        self.sb_reconnect(&format!("monitor refused ({error})"));
                    }
                }
                ClientEvent::Reply { id, .. } if Some(id) == self.cond.change => {
                    self.cond.change = None;
                    self.follow_chassis();
                    self.log_if_complete();
                }
                ClientEvent::Error { id, error } if Some(id) == self.cond.change => {
                    // The server still filters on the old condition: this
                    // view must not be trusted; start afresh.
                    self.cond.change = None;
                    self.sb_reconnect(&format!("monitor_cond_change refused ({error})"));
                }
                ClientEvent::Notify { method, params }
                    if method == "update2" || method == "update" =>
                {
                    let updates = take_updates(params);
                    match self.apply_sb(&updates) {
                        Ok(changes) => {
                            log::debug!("southbound: update of {} row(s)", changes.len());
                            let chassis_changed = changes.iter().any(|c| c.table == "Chassis");
                            let lports = self.sv.index(&changes);
                            self.dirty.extend(lports);
                            if chassis_changed {
                                self.follow_chassis();
                            }
                        }
                        Err(e) => self.sb_reconnect(&format!("cannot apply an update ({e})")),
                    }
                }
                ClientEvent::Disconnected { .. } => {
                    // Nothing is unplugged while the Southbound view is
                    // incomplete; the reconnect delivers it afresh.
                    self.sb_mon.complete = false;
                    self.sb_mon.request = None;
                    self.cond.change = None;
                }
                _ => {}
            }
        }
    }

    /// Marks the Southbound view incomplete and reconnects, for a fresh
    /// monitor.
    fn sb_reconnect(&mut self, reason: &str) {
        self.sb_mon.complete = false;
        self.cond.selected = None;
        let events = match self.sb.as_mut() {
            Some(sb) => sb.reconnect(reason),
            None => return,
        };
        self.on_sb_events(events);
    }

    fn request_sb_monitor(&mut self) {
        let id = json!(MONITOR_ID);
        let (method, params) = if self.sb_mon.plain {
            ("monitor", sb_view::monitor_plain_params(&id))
        } else {
            (
                "monitor_cond",
                sb_view::monitor_params(&id, &self.cond.name, self.cond.chassis),
            )
        };
        self.sb_mon.request = self.sb.as_mut().and_then(|c| c.request(method, params));
        if self.sb_mon.request.is_some() {
            self.cond.selected = Some(self.cond.name.clone());
        }
    }

    fn apply_sb(
        &mut self,
        updates: &Value,
    ) -> Result<Vec<crate::ovsdb::replica::RowChange>, String> {
        if self.sb_mon.plain {
            return self.sv.replica.apply_update(updates);
        }
        let schema = self
            .sb
            .as_ref()
            .and_then(Client::schema)
            .ok_or("no schema")?;
        self.sv.replica.apply_update2(schema, updates)
    }

    /// Keeps the Port_Binding condition on our chassis (its UUID is known
    /// only from the Chassis rows).
    fn follow_chassis(&mut self) {
        if self.cond.change.is_some() || self.sb_mon.request.is_some() {
            return; // re-checked when the pending request is answered
        }
        let current = self.sv.chassis(&self.cond.name);
        // With conditions, the server must be selecting the chassis by the
        // name we now have; a plain monitor holds every chassis.
        let selected_name_ok =
            self.sb_mon.plain || self.cond.selected.as_deref() == Some(self.cond.name.as_str());
        if current == self.cond.chassis && selected_name_ok {
            return;
        }
        if current != self.cond.chassis {
            match current {
                Some(c) => log::info!("chassis {:?} is {c}", self.cond.name),
                None => log::warn!(
                    "chassis {:?} is not in the Southbound database (yet): waiting for ovn-controller to register it",
                    self.cond.name
                ),
            }
        }
        self.cond.chassis = current;
        self.dirty_everything();
        if self.sb_mon.plain {
            return; // no conditions to change: the agent filters itself
        }
        let params = sb_view::condition_change_params(&json!(MONITOR_ID), &self.cond.name, current);
        self.cond.change = self
            .sb
            .as_mut()
            .and_then(|c| c.request("monitor_cond_change", params));
        if self.cond.change.is_some() {
            self.cond.selected = Some(self.cond.name.clone());
        }
    }

    fn log_if_complete(&self) {
        if self.sb_complete() {
            log::info!(
                "southbound: {} port binding(s) requested for chassis {:?}",
                self.sv.replica.len("Port_Binding"),
                self.cond.name
            );
        }
    }

    fn sb_complete(&self) -> bool {
        self.sb_mon.complete
            && self.cond.change.is_none()
            && (self.sb_mon.plain || self.cond.selected.as_deref() == Some(self.cond.name.as_str()))
            && self.cond.chassis.is_some()
            && self.cond.chassis == self.sv.chassis(&self.cond.name)
    }

    fn is_txn(&self, id: u64) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.id == id)
    }

    fn reconcile(&mut self) {
        if self.in_flight.is_some() || !self.local_mon.complete || Instant::now() < self.not_before
        {
            return;
        }
        let can_unplug = self.sb_complete();
        if can_unplug && !self.deferred.is_empty() {
            // Unplugs that waited for complete views can be decided now.
            let deferred: Vec<String> = self.deferred.drain().collect();
            self.dirty.extend(deferred);
        }
        if self.dirty.is_empty() {
            return;
        }
        let lports: Vec<String> = match self.dirty.iter().find(|l| self.suspects.contains(*l)) {
            // Isolating a failure: one suspect alone in its transaction.
            Some(suspect) => {
                let suspect = suspect.clone();
                self.dirty.remove(&suspect);
                self.suspects.remove(&suspect);
                vec![suspect]
            }
            None => self
                .dirty
                .drain()
                .filter(|l| !self.quarantine.contains_key(l))
                .collect(),
        };
        let mut plans: Vec<Plan> = Vec::new();
        let mut settled = Vec::new();
        let mut gone = Vec::new();
        {
            let inputs = Inputs {
                local: &self.lv,
                sb: &self.sv,
                registry: &self.registry,
                chassis: self.cond.chassis,
                bridge: reconcile::IntegrationBridge::find(&self.lv, &self.bridge),
                bridge_name: &self.bridge,
                can_unplug,
                applied: &self.applied,
                dpdk_initialized: self.lv.config().dpdk_initialized,
            };
            for lport in &lports {
                let d = reconcile::decide(&inputs, lport, &mut self.warned);
                set_membership(&mut self.declined, lport, d.declined);
                set_membership(&mut self.blocked, lport, d.blocked);
                set_membership(&mut self.deferred, lport, d.unplug_deferred);
                if let Some(a) = d.settled {
                    settled.push((lport.clone(), a));
                }
                if d.gone {
                    gone.push(lport.clone());
                }
                plans.extend(d.plans);
            }
        }
        self.applied.extend(settled);
        for lport in gone {
            self.applied.remove(&lport);
            self.failures.remove(&lport);
            self.warned.forget(&lport);
        }
        self.drop_duplicate_names(&mut plans);
        if plans.is_empty() {
            return;
        }
        let (txn, owners) = reconcile::build_txn(&plans);
        log::debug!(
            "decided {} logical port(s): {} operation(s) to commit",
            lports.len(),
            plans.len()
        );
        match self.local.request_json("transact", &txn.params_json()) {
            Some(id) => {
                // Logged after sending, so that logging adds no latency.
                log::debug!("transaction of {} operation(s) sent", plans.len());
                for p in &plans {
                    log_plan(p, &self.bridge);
                }
                self.in_flight = Some(InFlight { id, plans, owners })
            }
            None => {
                // Not connected: drop the operations (ctx_destroy, no
                // finish) and decide again once reconnected.
                self.dirty
                    .extend(plans.iter().map(|p| p.lport().to_owned()));
            }
        }
    }

    /// Two ports the provider gave the same interface name cannot both be
    /// created: keep the first, hold the others until the name is free.
    fn drop_duplicate_names(&mut self, plans: &mut Vec<Plan>) {
        let mut names = HashSet::new();
        let mut kept = Vec::with_capacity(plans.len());
        for plan in plans.drain(..) {
            if let Plan::Create { lport, op, .. } = &plan {
                let name = op.output().name.clone();
                if !names.insert(name.clone()) {
                    self.warned.once(
                        lport,
                        format!("logical port {lport}: another port in this batch is plugged as {name:?} already; not plugging it until that name is free"),
                    );
                    self.blocked.insert(lport.clone());
                    continue; // dropped: ctx_destroy, no finish
                }
            }
            kept.push(plan);
        }
        *plans = kept;
    }

    fn txn_done(&mut self, result: Result<Value, String>) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        // The failed operation's plan; a lone plan is its own culprit.
        let culprit = result
            .as_ref()
            .ok()
            .and_then(failed_op)
            .and_then(|i| f.owners.get(i).copied().flatten())
            .or((f.plans.len() == 1).then_some(0));
        let connection_lost = result.is_err();
        let outcome = result.and_then(|r| check_result(&r));
        let n = f.plans.len();
        let Err(e) = outcome else {
            self.committed(f.plans);
            self.global_failures = 0;
            log::debug!("transaction of {n} operation(s) committed");
            return;
        };
        for plan in &f.plans {
            self.dirty.insert(plan.lport().to_owned());
            self.applied.remove(plan.lport());
        }
        match culprit.map(|i| f.plans[i].lport().to_owned()) {
            Some(lport) => {
                // One port's operation failed: hold that port back (longer
                // each time) and retry the others right away.
                let k = self.failures.entry(lport.clone()).or_default();
                *k += 1;
                let hold = backoff(*k);
                log::warn!(
                    "transaction of {n} operation(s) failed because of logical port {lport}: {e}; retrying the others now and {lport} in {} ms",
                    hold.as_millis()
                );
                self.dirty.remove(&lport);
                self.quarantine.insert(lport, Instant::now() + hold);
            }
            None if n > 1 && !connection_lost => {
                log::warn!(
                    "transaction of {n} operation(s) failed: {e}; no single port is named, so its ports are retried one per transaction"
                );
                self.suspects
                    .extend(f.plans.iter().map(|p| p.lport().to_owned()));
            }
            None => {
                self.global_failures += 1;
                let hold = backoff(self.global_failures);
                log::warn!(
                    "transaction of {n} operation(s) failed: {e}; recomputing from fresh state in {} ms",
                    hold.as_millis()
                );
                self.not_before = Instant::now() + hold;
            }
        }
        // Dropping the plans calls ctx_destroy for each CREATE, without
        // finish.
        drop(f.plans);
    }

    /// Finishes each committed operation and records what it applied.
    fn committed(&mut self, plans: Vec<Plan>) {
        for plan in plans {
            let lport = plan.lport().to_owned();
            self.dirty.insert(lport.clone());
            self.warned.forget(&lport);
            self.failures.remove(&lport);
            let applied = reconcile::created_state(&plan);
            match plan {
                Plan::Create { op, .. } => {
                    log::info!(
                        "plugged logical port {lport} as interface {}",
                        op.output().name
                    );
                    op.finish();
                    if let Some(a) = applied {
                        self.applied.insert(lport, a);
                    }
                }
                Plan::Update {
                    op,
                    expected,
                    lport_options,
                    ..
                } => {
                    op.finish();
                    self.applied.insert(
                        lport,
                        Applied {
                            lport_options,
                            iface: *expected,
                        },
                    );
                }
                Plan::Remove { op, .. } => {
                    log::info!("unplugged logical port {lport}");
                    op.finish();
                    self.applied.remove(&lport);
                }
            }
        }
    }
}

/// How long to hold back after the `n`th consecutive failure: 0.5 s,
/// doubling, at most 30 s.
fn backoff(n: u32) -> Duration {
    (RETRY_AFTER_FAILURE * 2u32.saturating_pow(n.saturating_sub(1).min(6)))
        .min(Duration::from_secs(30))
}

/// The `<table-updates>` of an `update`/`update2` notification, moved out
/// of its parameters rather than copied (it can hold thousands of rows).
fn take_updates(params: Value) -> Value {
    match params {
        Value::Array(mut p) if p.len() > 1 => p.swap_remove(1),
        _ => Value::Null,
    }
}

fn set_membership(set: &mut HashSet<String>, item: &str, member: bool) {
    if member {
        set.insert(item.to_owned());
    } else {
        set.remove(item);
    }
}

fn log_plan(plan: &Plan, bridge: &str) {
    match plan {
        Plan::Create { lport, op, .. } => {
            let out = op.output();
            log::info!(
                "plugging logical port {lport}: interface {} (type {}) on {bridge}, provider {}",
                out.name,
                out.iface_type.as_deref().unwrap_or("system"),
                op.type_name()
            );
        }
        Plan::Update { lport, update, .. } => {
            log::info!("updating interface of logical port {lport}: {update:?}")
        }
        Plan::Remove {
            lport, iface_name, ..
        } => log::info!("unplugging logical port {lport}: removing interface {iface_name}"),
    }
}

/// Probes make no sense on a Unix socket to a local daemon (as in OVS).
fn probe_for(remotes: &[Remote], probe: Option<Duration>) -> Option<Duration> {
    if remotes.iter().all(|r| matches!(r, Remote::Unix(_))) {
        None
    } else {
        probe
    }
}
