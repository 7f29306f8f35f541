//! Watches a database from a thread of its own through our OVSDB client and
//! records when each row of interest appears and goes, so latencies are
//! measured from events, not by polling a CLI.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vif_plug_host::ovsdb::client::{Client, ClientConfig, ClientEvent};
use vif_plug_host::ovsdb::remote;

/// What a watcher saw, per key: when it first appeared and when it last
/// went.
#[derive(Default, Debug)]
pub struct Seen {
    pub appeared: HashMap<String, Instant>,
    pub gone: HashMap<String, Instant>,
}

/// A watcher; stops when dropped.
pub struct Watch {
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Which rows to watch and how to key them.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Local `Interface` rows carrying `external_ids:ovn-plugged`, keyed by
    /// `external_ids:iface-id`.
    PluggedInterfaces,
    /// Southbound `Port_Binding` rows with `up` true, keyed by
    /// `logical_port`.
    UpBindings,
    /// Every Southbound `Port_Binding` row, keyed by `logical_port`.
    Bindings,
}

impl Watch {
    /// Starts watching `remote`; returns once the initial contents are in.
    pub fn start(remote_str: &str, kind: Kind) -> Watch {
        let (database, table, columns) = match kind {
            Kind::PluggedInterfaces => ("Open_vSwitch", "Interface", json!(["external_ids"])),
            Kind::UpBindings => (
                "OVN_Southbound",
                "Port_Binding",
                json!(["logical_port", "up"]),
            ),
            Kind::Bindings => ("OVN_Southbound", "Port_Binding", json!(["logical_port"])),
        };
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = channel();
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let mut client = Client::new(
            ClientConfig {
                label: "watch".into(),
                database: database.into(),
                remotes: remote::parse_list(remote_str).unwrap(),
                tls: None,
                probe_interval: None,
                connect_timeout: Duration::from_secs(5),
                shuffle_remotes: false,
                required: &[],
            },
            Arc::new(move |e| {
                let _ = tx.lock().unwrap().send(e);
            }),
        );
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            // Rows by UUID: the key they were counted under, if counted.
            let mut counted: HashMap<String, String> = HashMap::new();
            let mut ready_tx = Some(ready_tx);
            let mut monitor = None;
            while !st.load(Ordering::Relaxed) {
                let (mut events, _) = client.tick(Instant::now());
                if let Ok(ev) = rx.recv_timeout(Duration::from_millis(20)) {
                    events.extend(client.handle(ev));
                }
                let now = Instant::now();
                for e in events {
                    match e {
                        ClientEvent::Ready => {
                            monitor = client.request(
                                "monitor",
                                json!([database, "watch", {table: {"columns": columns}}]),
                            );
                        }
                        ClientEvent::Reply { id, result } if Some(id) == monitor => {
                            apply(kind, &result.value()[table], &mut counted, &s, now);
                            if let Some(t) = ready_tx.take() {
                                let _ = t.send(());
                            }
                        }
                        ClientEvent::Notify { method, params } if method == "update" => {
                            apply(kind, &params.value()[1][table], &mut counted, &s, now);
                        }
                        _ => {}
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("watcher ready");
        Watch { seen, stop }
    }

    /// When `key` appeared, if it has.
    pub fn appeared(&self, key: &str) -> Option<Instant> {
        self.seen.lock().unwrap().appeared.get(key).copied()
    }

    /// When `key` went, if it has.
    pub fn gone(&self, key: &str) -> Option<Instant> {
        self.seen.lock().unwrap().gone.get(key).copied()
    }
}

/// The key a row is counted under, if it counts.
fn key_of(kind: Kind, row: &Value) -> Option<String> {
    match kind {
        Kind::PluggedInterfaces => {
            let pairs = row["external_ids"][1].as_array()?;
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|p| p[0] == k)
                    .and_then(|p| p[1].as_str().map(str::to_owned))
            };
            get("ovn-plugged")?;
            get("iface-id")
        }
        Kind::UpBindings => {
            let up = match &row["up"] {
                Value::Bool(b) => *b,
                Value::Array(a) => a.get(1).and_then(|s| s[0].as_bool()).unwrap_or(false),
                _ => false,
            };
            up.then(|| row["logical_port"].as_str().map(str::to_owned))
                .flatten()
        }
        Kind::Bindings => row["logical_port"].as_str().map(str::to_owned),
    }
}

fn apply(
    kind: Kind,
    updates: &Value,
    counted: &mut HashMap<String, String>,
    seen: &Mutex<Seen>,
    now: Instant,
) {
    let Some(rows) = updates.as_object() else {
        return;
    };
    let mut seen = seen.lock().unwrap();
    for (uuid, change) in rows {
        let key = change.get("new").and_then(|n| key_of(kind, n));
        let before = counted.get(uuid).cloned();
        if before == key {
            continue;
        }
        if let Some(old) = before {
            seen.gone.insert(old, now);
            counted.remove(uuid);
        }
        if let Some(new) = key {
            seen.appeared.entry(new.clone()).or_insert(now);
            seen.gone.remove(&new);
            counted.insert(uuid.clone(), new);
        }
    }
}
