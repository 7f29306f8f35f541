//! Programming the MAC address of a VF or SF as the host sees it, from the
//! logical port's first MAC (`Port_Binding.mac`, ABI 1.1): devlink's port
//! function `hw_addr` (`DEVLINK_CMD_PORT_SET`, as
//! `devlink port function set DEV/INDEX hw_addr MAC` does).
//!
//! A port is plugged once its function shows the MAC: confirmed by the
//! `PORT_NEW` notification the kernel sends after the change, or, if none
//! comes, by re-reading the port. A request without an answer, refused, or
//! acknowledged but not visible afterwards is tried again with back-off,
//! the port declined meanwhile with the reason. A device that cannot set
//! function MACs (`EOPNOTSUPP`) is said once, and its ports are plugged
//! anyway: the hypervisor may program the MAC itself.

use crate::channel::{Channel, Request};
use crate::mac::MacAddr;
use crate::port::{DevlinkPort, PortKey};
use crate::sync::errno_text;
use crate::table::PortTable;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// `EOPNOTSUPP`: the driver or firmware cannot set a function's MAC.
pub const EOPNOTSUPP: i32 = 95;
/// How long a request may go unanswered.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long after an acknowledgement the `PORT_NEW` may take before the
/// port is re-read.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_millis(500);
/// First wait before a failed attempt is repeated; doubles per attempt.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest wait between attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where setting one function's MAC stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Programming {
    /// `PORT_SET` sent as request `seq`, unanswered.
    Sent {
        /// Request sequence number.
        seq: u32,
        /// The MAC asked for.
        mac: MacAddr,
        /// When it was sent.
        since: Instant,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Acknowledged; waiting to see the MAC on the port.
    Acked {
        /// The MAC asked for.
        mac: MacAddr,
        /// When the acknowledgement came.
        since: Instant,
        /// Attempt number.
        attempt: u32,
    },
    /// Re-reading the port (`PORT_GET` request `seq`).
    Rereading {
        /// Request sequence number.
        seq: u32,
        /// The MAC asked for.
        mac: MacAddr,
        /// When the re-read was sent.
        since: Instant,
        /// Attempt number.
        attempt: u32,
    },
    /// Attempt `attempt` failed; the next may go at `retry_at`.
    Failed {
        /// The MAC asked for.
        mac: MacAddr,
        /// When to try again.
        retry_at: Instant,
        /// Attempt number that failed.
        attempt: u32,
        /// Why, for the decline.
        why: String,
        /// Whether `run` has reported that the retry is due.
        due_reported: bool,
    },
    /// The device cannot set function MACs.
    Unsupported {
        /// The MAC that was asked for.
        mac: MacAddr,
    },
}

impl Programming {
    /// Whether a request is unanswered or its effect not yet seen.
    fn in_flight(&self) -> bool {
        matches!(
            self,
            Programming::Sent { .. } | Programming::Acked { .. } | Programming::Rereading { .. }
        )
    }

    fn mac(&self) -> MacAddr {
        match self {
            Programming::Sent { mac, .. }
            | Programming::Acked { mac, .. }
            | Programming::Rereading { mac, .. }
            | Programming::Failed { mac, .. }
            | Programming::Unsupported { mac } => *mac,
        }
    }
}

/// What to do with a port whose function should have `want`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Plug it: the function has the MAC, or cannot be given one.
    Plug,
    /// Send attempt `attempt`.
    Send {
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Decline for now, for this reason.
    Wait(String),
}

/// The decision for one port (pure): `current` is the MAC its function
/// reports, `state` where programming stands.
pub fn verdict(
    current: Option<MacAddr>,
    want: MacAddr,
    state: Option<&Programming>,
    now: Instant,
) -> Verdict {
    // A request for another MAC still in flight may yet land after this
    // look: set ours again, after it.
    let other_in_flight = state.is_some_and(|s| s.in_flight() && s.mac() != want);
    if current == Some(want) && !other_in_flight {
        return Verdict::Plug;
    }
    let Some(state) = state.filter(|s| s.mac() == want) else {
        return Verdict::Send { attempt: 1 };
    };
    match state {
        Programming::Unsupported { .. } => Verdict::Plug,
        Programming::Sent { .. } => Verdict::Wait("waiting for the kernel's answer".into()),
        Programming::Acked { .. } | Programming::Rereading { .. } => {
            Verdict::Wait("acknowledged; waiting to see it on the port".into())
        }
        Programming::Failed {
            retry_at,
            attempt,
            why,
            ..
        } if now < *retry_at => Verdict::Wait(format!(
            "attempt {attempt} failed ({why}); trying again in {} ms",
            (*retry_at - now).as_millis()
        )),
        Programming::Failed { attempt, .. } => Verdict::Send {
            attempt: attempt + 1,
        },
    }
}

fn retry_wait(attempt: u32) -> Duration {
    RETRY_MIN
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

/// Every function whose MAC is being programmed.
#[derive(Debug, Default)]
pub struct MacProgrammer {
    states: HashMap<PortKey, Programming>,
    /// Devices (bus, device) already said to be unable to set MACs.
    said_unsupported: HashSet<(String, String)>,
}

fn describe_port(p: &DevlinkPort) -> String {
    format!(
        "{} ({}/{}/{})",
        p.netdev_name.as_deref().unwrap_or("?"),
        p.key.bus,
        p.key.dev,
        p.key.index
    )
}

impl MacProgrammer {
    /// An idle programmer.
    pub fn new() -> MacProgrammer {
        MacProgrammer::default()
    }

    /// Where programming `key` stands.
    pub fn state(&self, key: &PortKey) -> Option<&Programming> {
        self.states.get(key)
    }

    /// Every port being programmed, for `describe`.
    pub fn states(&self) -> impl Iterator<Item = (&PortKey, &Programming)> {
        self.states.iter()
    }

    /// Whether `port` may be plugged with `want` as its function's MAC;
    /// sends a `PORT_SET` when one is due. `Err` is the reason to decline.
    pub fn ensure(
        &mut self,
        port: &DevlinkPort,
        want: MacAddr,
        channel: &mut dyn Channel,
        now: Instant,
    ) -> Result<(), String> {
        let device = (port.key.bus.clone(), port.key.dev.clone());
        if port.hw_addr != Some(want) && self.said_unsupported.contains(&device) {
            // Said once for the device; its other functions cannot either.
            return Ok(());
        }
        match verdict(port.hw_addr, want, self.states.get(&port.key), now) {
            Verdict::Plug => Ok(()),
            Verdict::Wait(why) => Err(format!("setting its function MAC to {want}: {why}")),
            Verdict::Send { attempt } => {
                let what = describe_port(port);
                match channel.send(&Request::SetFunctionMac(port.key.clone(), want)) {
                    Ok(seq) => {
                        let from = port.hw_addr.map_or("none".to_owned(), |m| m.to_string());
                        log::info!(
                            "devlink: setting the function MAC of {what} to {want} (was {from}), attempt {attempt}"
                        );
                        self.states.insert(
                            port.key.clone(),
                            Programming::Sent {
                                seq,
                                mac: want,
                                since: now,
                                attempt,
                            },
                        );
                        Err(format!("setting its function MAC to {want}: request sent"))
                    }
                    Err(e) => {
                        self.fail(&port.key, want, attempt, e.clone(), now);
                        Err(format!("setting its function MAC to {want}: {e}"))
                    }
                }
            }
        }
    }

    fn fail(&mut self, key: &PortKey, mac: MacAddr, attempt: u32, why: String, now: Instant) {
        let wait = retry_wait(attempt);
        log::warn!(
            "devlink: setting the function MAC of {}/{}/{} to {mac} failed ({why}), attempt {attempt}; trying again in {} ms",
            key.bus,
            key.dev,
            key.index,
            wait.as_millis()
        );
        self.states.insert(
            key.clone(),
            Programming::Failed {
                mac,
                retry_at: now + wait,
                attempt,
                why,
                due_reported: false,
            },
        );
    }

    /// An acknowledgement of request `seq` (errno 0) or its refusal.
    /// Returns true if a port's verdict changed.
    ///
    /// `dumping`: a dump runs, so a re-read's reply is held until it ends;
    /// its acknowledgement then proves nothing yet.
    pub fn on_ack(
        &mut self,
        seq: u32,
        errno: i32,
        table: &PortTable,
        dumping: bool,
        now: Instant,
    ) -> bool {
        let Some((key, state)) = self.states.iter().find(|(_, s)| {
            matches!(s, Programming::Sent { seq: s, .. } | Programming::Rereading { seq: s, .. } if *s == seq)
        }) else {
            return false;
        };
        let (key, state) = (key.clone(), state.clone());
        match (state, errno) {
            (Programming::Sent { mac, attempt, .. }, 0) => {
                self.states.insert(
                    key,
                    Programming::Acked {
                        mac,
                        since: now,
                        attempt,
                    },
                );
                false
            }
            (Programming::Sent { mac, .. }, EOPNOTSUPP) => {
                let device = (key.bus.clone(), key.dev.clone());
                if self.said_unsupported.insert(device) {
                    log::warn!(
                        "devlink: {}/{} cannot set the MAC address of its functions ({}); its representors are plugged without it (the hypervisor may set the MAC itself; vif-plug:representor:program-mac=false stops asking)",
                        key.bus,
                        key.dev,
                        errno_text(errno)
                    );
                }
                self.states.insert(key, Programming::Unsupported { mac });
                true
            }
            (Programming::Sent { mac, attempt, .. }, errno) => {
                self.fail(
                    &key,
                    mac,
                    attempt,
                    format!("refused: {}", errno_text(errno)),
                    now,
                );
                false
            }
            (Programming::Rereading { mac, attempt, .. }, 0) if dumping => {
                // Look again once the dump (and the held reply) are in.
                self.states.insert(
                    key,
                    Programming::Acked {
                        mac,
                        since: now,
                        attempt,
                    },
                );
                false
            }
            (Programming::Rereading { mac, attempt, .. }, errno) => {
                let seen = table.get(&key).and_then(|p| p.hw_addr);
                if seen == Some(mac) {
                    return self.confirm(&key, table);
                }
                let why = if errno == 0 {
                    let seen = seen.map_or("none".to_owned(), |m| m.to_string());
                    format!("acknowledged, but the function still reports {seen}")
                } else {
                    format!("re-reading the port failed: {}", errno_text(errno))
                };
                self.fail(&key, mac, attempt, why, now);
                false
            }
            _ => false,
        }
    }

    fn confirm(&mut self, key: &PortKey, table: &PortTable) -> bool {
        if let Some(s) = self.states.remove(key) {
            let what = table.get(key).map_or(String::new(), describe_port);
            log::info!(
                "devlink: the function MAC of {what} is {}, confirmed",
                s.mac()
            );
        }
        true
    }

    /// Confirmations seen in the table, timeouts, re-reads and due retries.
    /// Returns true if a port's verdict changed (the agent should ask
    /// again).
    pub fn tick(&mut self, table: &PortTable, channel: &mut dyn Channel, now: Instant) -> bool {
        let mut changed = false;
        // A device with no port left (a driver reload, a firmware update)
        // is asked again when it comes back.
        self.said_unsupported
            .retain(|(bus, dev)| table.by_device(bus, dev).next().is_some());
        let keys: Vec<PortKey> = self.states.keys().cloned().collect();
        for key in keys {
            let Some(port) = table.get(&key) else {
                // The port is gone; so is the question.
                self.states.remove(&key);
                continue;
            };
            let state = self.states[&key].clone();
            let current = port.hw_addr;
            match state {
                Programming::Unsupported { .. } => {}
                s if current == Some(s.mac()) => changed |= self.confirm(&key, table),
                Programming::Sent {
                    mac,
                    since,
                    attempt,
                    ..
                } if now >= since + ANSWER_TIMEOUT => {
                    let ms = ANSWER_TIMEOUT.as_millis();
                    self.fail(&key, mac, attempt, format!("no answer within {ms} ms"), now);
                }
                Programming::Acked {
                    mac,
                    since,
                    attempt,
                } if now >= since + CONFIRM_TIMEOUT => {
                    match channel.send(&Request::GetPort(key.clone())) {
                        Ok(seq) => {
                            self.states.insert(
                                key,
                                Programming::Rereading {
                                    seq,
                                    mac,
                                    since: now,
                                    attempt,
                                },
                            );
                        }
                        Err(e) => self.fail(&key, mac, attempt, e, now),
                    }
                }
                Programming::Rereading {
                    mac,
                    since,
                    attempt,
                    ..
                } if now >= since + ANSWER_TIMEOUT => {
                    let why = "no answer to re-reading the port".to_owned();
                    self.fail(&key, mac, attempt, why, now);
                }
                Programming::Failed {
                    retry_at,
                    due_reported: false,
                    ..
                } if now >= retry_at => {
                    if let Some(Programming::Failed { due_reported, .. }) =
                        self.states.get_mut(&key)
                    {
                        *due_reported = true;
                    }
                    changed = true;
                }
                _ => {}
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    #[test]
    fn verdicts() {
        let now = Instant::now();
        let (a, b) = (mac("02:00:00:00:00:0a"), mac("02:00:00:00:00:0b"));
        let later = now + Duration::from_secs(1);
        let failed = Programming::Failed {
            mac: a,
            retry_at: later,
            attempt: 2,
            why: "refused".into(),
            due_reported: false,
        };
        let sent = Programming::Sent {
            seq: 3,
            mac: a,
            since: now,
            attempt: 1,
        };
        let cases: Vec<(Option<MacAddr>, Option<Programming>, Instant, Verdict)> = vec![
            // Already right: plug, whatever the state.
            (Some(a), None, now, Verdict::Plug),
            (Some(a), Some(sent.clone()), now, Verdict::Plug),
            // Differs, nothing asked yet: first attempt.
            (Some(b), None, now, Verdict::Send { attempt: 1 }),
            (None, None, now, Verdict::Send { attempt: 1 }),
            // A request in flight: wait.
            (
                Some(b),
                Some(sent),
                now,
                Verdict::Wait("waiting for the kernel's answer".into()),
            ),
            // Failed: wait until the retry, then the next attempt.
            (
                Some(b),
                Some(failed.clone()),
                now,
                Verdict::Wait("attempt 2 failed (refused); trying again in 1000 ms".into()),
            ),
            (Some(b), Some(failed), later, Verdict::Send { attempt: 3 }),
            // Unsupported: plug without it.
            (
                Some(b),
                Some(Programming::Unsupported { mac: a }),
                now,
                Verdict::Plug,
            ),
            // The logical port's MAC changed meanwhile: start over.
            (
                Some(b),
                Some(Programming::Unsupported {
                    mac: mac("02:00:00:00:00:0c"),
                }),
                now,
                Verdict::Send { attempt: 1 },
            ),
        ];
        for (i, (current, state, at, want)) in cases.into_iter().enumerate() {
            assert_eq!(verdict(current, a, state.as_ref(), at), want, "case {i}");
        }
    }

    #[test]
    fn back_off_doubles_to_its_cap() {
        let waits: Vec<u128> = (1..=10).map(|a| retry_wait(a).as_millis()).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }
}
