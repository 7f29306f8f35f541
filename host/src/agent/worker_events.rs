//! What the agent does when a provider worker dies, comes back or is left
//! down (see `dispatch::workers`): the port whose call was in flight is
//! quarantined and asked alone when released, the library's ports are
//! asked again once its worker is back, and nothing is unplugged because a
//! worker died.

use super::Agent;
use crate::dispatch::WorkerEvent;
use std::time::Instant;

impl Agent {
    /// Acts on what happened to provider workers: the ports of a call in
    /// flight when one died are quarantined (one line says it all), and a
    /// worker back up, or left down, has every port decided afresh.
    /// Nothing is unplugged because a worker died.
    pub(super) fn on_worker_events(&mut self) {
        for ev in self.providers.take_events() {
            match ev {
                WorkerEvent::Crashed {
                    provider,
                    library,
                    what,
                    lports,
                    restart_in,
                } => {
                    let now = Instant::now();
                    let held: Vec<String> = lports
                        .iter()
                        .map(|l| {
                            let hold = self.ports.quarantine(l, now);
                            // Released, it is asked alone: if it crashes the
                            // worker again, no other port's call goes too.
                            self.ports.suspect_when_released(l);
                            format!("{l} quarantined for {} ms", hold.as_millis())
                        })
                        .collect();
                    let ports = if lports.is_empty() {
                        String::new()
                    } else {
                        format!(" for logical port {}", lports.join(", "))
                    };
                    let held = if held.is_empty() {
                        String::new()
                    } else {
                        format!("{}; ", held.join(", "))
                    };
                    log::error!(
                        "provider {provider} ({}): {what}{ports}: {held}restarting its worker in {} ms; its other ports wait for it and nothing is unplugged",
                        library.display(),
                        restart_in.as_millis()
                    );
                }
                WorkerEvent::Restarted { types, .. } => {
                    // Only that library's ports are asked again; the
                    // others' answers did not die with it.
                    self.ports.forget_applied_of(&types);
                    self.mark_everything();
                }
                WorkerEvent::GaveUp { .. } => self.mark_everything(),
            }
        }
    }
}
