//! What the agent tells its service manager, and when: the stage it is
//! in, `READY=1` and `STATUS=` lines (decided in [`super::readiness`]) sent
//! through [`super::notify`], with failures said once a minute.

use super::{readiness, Agent};
use std::time::{Duration, Instant};

impl Agent {
    /// Where reading the databases stands, for the service manager.
    fn stage(&self, now: Instant, ready_sent: bool) -> readiness::Stage {
        readiness::stage(&readiness::StageInputs {
            ready_sent,
            local_complete: self.local.is_complete(),
            sb_remote: self.sb.has_remote(),
            sb_complete: self.sb.is_complete(),
            sb_doubt: self.sb.doubt(now),
            standby: self.local.is_standby(),
        })
    }

    /// Sends `READY=1` and the status line when due (see
    /// [`readiness::Readiness`]); nothing when not started by systemd.
    pub(super) fn tell_service_manager(&mut self) {
        let now = Instant::now();
        let Some((_, r)) = self.manager.as_mut() else {
            return;
        };
        r.touch();
        let (ready_sent, due) = (r.is_ready(), r.due(now));
        if ready_sent && !due {
            return;
        }
        let stage = self.stage(now, ready_sent);
        // READY=1 goes out as soon as it is true, not at the next status
        // slot (the stage alone is cheap; the line walks every port),
        // unless a send failed within the second.
        let retry_later = self
            .notify_failed
            .is_some_and(|(t, _)| now < t + readiness::STATUS_EVERY);
        let ready_now = !ready_sent && matches!(stage, readiness::Stage::Running { .. });
        let send_ready_now = ready_now && !retry_later;
        if !due && !send_ready_now {
            return;
        }
        let line = readiness::status_line(&stage, &self.port_lines());
        let Some((_, r)) = self.manager.as_mut() else {
            return;
        };
        let notices = r.step(now, &stage, line);
        if notices.is_empty() {
            return;
        }
        let lines = notices
            .iter()
            .map(|n| match n {
                readiness::Notice::Ready => "READY=1".to_owned(),
                readiness::Notice::Status(s) => format!("STATUS={s}"),
            })
            .collect();
        if self.notify(lines) {
            if notices.contains(&readiness::Notice::Ready) {
                log::info!("both databases are read: told the service manager we are ready");
            }
        } else if let Some((_, r)) = self.manager.as_mut() {
            r.unsent(&notices);
        }
    }

    /// Sends `lines` to the service manager; false if it did not take
    /// them. A failure is warned about once per kind of error (the agent
    /// works the same without the manager), and its end is said.
    pub(super) fn notify(&mut self, lines: Vec<String>) -> bool {
        let Some((n, _)) = self.manager.as_ref() else {
            return false;
        };
        match n.send(&lines) {
            Ok(()) => {
                if self.notify_failed.take().is_some() {
                    log::debug!("the service manager's socket takes messages again");
                }
                true
            }
            Err(e) => {
                let now = Instant::now();
                let said = self
                    .notify_warned
                    .is_some_and(|(t, k)| k == e.kind() && now < t + Duration::from_secs(60));
                if !said {
                    log::warn!(
                        "telling the service manager (NOTIFY_SOCKET={}) failed: {e}; tried again every second, and the agent works the same meanwhile",
                        n.address()
                    );
                    self.notify_warned = Some((now, e.kind()));
                }
                self.notify_failed = Some((now, e.kind()));
                false
            }
        }
    }
}
