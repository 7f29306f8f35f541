//! The Southbound inactivity probe interval, chosen as ovn-controller
//! chooses it (`set_idl_probe_interval` in OVN's `lib/ovn-util.c`, and
//! `reconnect_set_probe_interval` in OVS's `lib/reconnect.c`):
//!
//! - `--probe-interval MS` on our command line wins, as every flag does over
//!   the database;
//! - else `external_ids:ovn-remote-probe-interval-<chassis>`, else
//!   `external_ids:ovn-remote-probe-interval`, in milliseconds: `0` turns the
//!   probe off, `-1` means the default, and a value under 1000 is raised
//!   to 1000 (said once);
//! - else the default: 5000 ms when a remote is `tcp:` or `ssl:`, off for
//!   Unix sockets.
//!
//! Unlike ovn-controller, a value that is not a number, or that had to be
//! raised or is beyond what OVS accepts, is reported (once per value)
//! rather than used silently.

use crate::ovsdb::Remote;
use std::time::Duration;

/// `probe` for a connection to `remotes`, or none: probes make no sense on
/// a Unix socket to a local daemon (as in OVS).
pub fn for_remotes(remotes: &[Remote], probe: Option<Duration>) -> Option<Duration> {
    if remotes.iter().all(|r| matches!(r, Remote::Unix(_))) {
        None
    } else {
        probe
    }
}

/// The default interval for network remotes (ovn-controller's
/// `DEFAULT_PROBE_INTERVAL_MSEC`).
pub const DEFAULT: Duration = Duration::from_millis(5000);
/// The shortest interval (OVS `reconnect.c`).
pub const MINIMUM: Duration = Duration::from_millis(1000);
/// The `external_ids` key.
pub const KEY: &str = "ovn-remote-probe-interval";

/// Where the interval came from, for the log line that announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--probe-interval`.
    Flag,
    /// This `external_ids` key (plain or per-chassis).
    ExternalIds(String),
    /// Neither: the default for the remotes.
    Default,
}

/// The chosen interval (`None`: no probe) and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The interval.
    pub interval: Option<Duration>,
    /// Where it came from.
    pub source: Source,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.interval {
            Some(i) => write!(f, "{} ms", i.as_millis())?,
            None => write!(f, "off")?,
        }
        match &self.source {
            Source::Flag => write!(f, " (--probe-interval)"),
            Source::ExternalIds(k) => write!(f, " (external_ids:{k})"),
            Source::Default => write!(f, " (default for these remotes)"),
        }
    }
}

/// Chooses the Southbound probe. `flag` is `--probe-interval` in ms, if
/// given; `ext` is the `external_ids` key that was set and its value, if
/// any (the per-chassis key already preferred by the caller). Returns the
/// setting, and a complaint when `ext` holds no usable number.
pub fn southbound(
    flag: Option<u64>,
    ext: Option<(&str, &str)>,
    remotes: &[Remote],
) -> (Setting, Option<String>) {
    let default = Setting {
        interval: remotes
            .iter()
            .any(|r| !matches!(r, Remote::Unix(_)))
            .then_some(DEFAULT),
        source: Source::Default,
    };
    if let Some(ms) = flag {
        let (interval, complaint) = bounded(ms, "--probe-interval");
        return (
            Setting {
                interval,
                source: Source::Flag,
            },
            complaint,
        );
    }
    let Some((key, value)) = ext else {
        return (default, None);
    };
    match value.trim().parse::<i64>() {
        Ok(-1) => (default, None),
        Ok(ms) if (0..=MAXIMUM_MS).contains(&ms) => {
            let (interval, complaint) = bounded(ms.unsigned_abs(), &format!("external_ids:{key}"));
            (
                Setting {
                    interval,
                    source: Source::ExternalIds(key.to_owned()),
                },
                complaint,
            )
        }
        Ok(ms) if ms > MAXIMUM_MS => (
            default.clone(),
            Some(format!(
                "external_ids:{key}={value:?} is more than {MAXIMUM_MS} ms (24 days, the most OVS accepts); using {default}"
            )),
        ),
        _ => (
            default.clone(),
            Some(format!(
                "external_ids:{key}={value:?} is not a number of milliseconds (0: off, -1: default); using {default}"
            )),
        ),
    }
}

/// The longest interval: OVS keeps it in an `int` of milliseconds.
pub const MAXIMUM_MS: i64 = i32::MAX as i64;

/// `0` is off; anything else at least [`MINIMUM`] and at most
/// [`MAXIMUM_MS`], with a complaint naming `what` when it had to be moved.
fn bounded(ms: u64, what: &str) -> (Option<Duration>, Option<String>) {
    if ms == 0 {
        return (None, None);
    }
    let d = Duration::from_millis(ms);
    if d < MINIMUM {
        let min = MINIMUM.as_millis();
        return (
            Some(MINIMUM),
            Some(format!(
                "{what}={ms} is under {min} ms, the shortest probe OVS allows: using {min} ms"
            )),
        );
    }
    if ms > MAXIMUM_MS as u64 {
        let max = Duration::from_millis(MAXIMUM_MS as u64);
        return (
            Some(max),
            Some(format!(
                "{what}={ms} is more than {MAXIMUM_MS} ms (24 days, the most OVS accepts): using {MAXIMUM_MS} ms"
            )),
        );
    }
    (Some(d), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp() -> Vec<Remote> {
        vec![Remote::Tcp {
            host: "10.0.0.1".into(),
            port: 6642,
        }]
    }

    fn unix() -> Vec<Remote> {
        vec![Remote::Unix("/run/ovn/ovnsb_db.sock".into())]
    }

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn the_table() {
        let ext = |v: &'static str| Some((KEY, v));
        #[allow(clippy::type_complexity)] // a table: one tuple per row
        let cases: Vec<(
            Option<u64>,
            Option<(&str, &str)>,
            Vec<Remote>,
            Option<Duration>,
            Source,
            bool,
        )> = vec![
            // flag, external_ids, remotes => interval, source, complaint
            (None, None, tcp(), ms(5000), Source::Default, false),
            (None, None, unix(), None, Source::Default, false),
            (Some(0), ext("3000"), tcp(), None, Source::Flag, false),
            (Some(2500), None, unix(), ms(2500), Source::Flag, false),
            (Some(10), None, tcp(), ms(1000), Source::Flag, true),
            (
                Some(u64::MAX),
                None,
                tcp(),
                ms(i32::MAX as u64),
                Source::Flag,
                true,
            ),
            (
                None,
                ext("3000"),
                tcp(),
                ms(3000),
                Source::ExternalIds(KEY.into()),
                false,
            ),
            // Set explicitly, it applies to a Unix socket too, as in
            // ovn-controller.
            (
                None,
                ext("3000"),
                unix(),
                ms(3000),
                Source::ExternalIds(KEY.into()),
                false,
            ),
            (
                None,
                ext("0"),
                tcp(),
                None,
                Source::ExternalIds(KEY.into()),
                false,
            ),
            (
                None,
                ext("200"),
                tcp(),
                ms(1000),
                Source::ExternalIds(KEY.into()),
                true,
            ),
            (
                None,
                ext("99999999999"),
                tcp(),
                ms(5000),
                Source::Default,
                true,
            ),
            (None, ext("-1"), tcp(), ms(5000), Source::Default, false),
            (None, ext("-7"), tcp(), ms(5000), Source::Default, true),
            (None, ext("5s"), tcp(), ms(5000), Source::Default, true),
            (None, ext(""), unix(), None, Source::Default, true),
            (
                None,
                Some(("ovn-remote-probe-interval-hv1", "4000")),
                tcp(),
                ms(4000),
                Source::ExternalIds("ovn-remote-probe-interval-hv1".into()),
                false,
            ),
        ];
        for (flag, ext, remotes, interval, source, complains) in cases {
            let (setting, complaint) = southbound(flag, ext, &remotes);
            let case = format!("flag {flag:?}, {ext:?}, {remotes:?}");
            assert_eq!(setting, Setting { interval, source }, "{case}");
            assert_eq!(complaint.is_some(), complains, "{case}: {complaint:?}");
        }
    }

    #[test]
    fn the_log_says_where_it_came_from() {
        let (s, _) = southbound(None, Some((KEY, "2000")), &tcp());
        assert_eq!(
            s.to_string(),
            "2000 ms (external_ids:ovn-remote-probe-interval)"
        );
        let (s, c) = southbound(None, Some((KEY, "soon")), &tcp());
        assert_eq!(s.to_string(), "5000 ms (default for these remotes)");
        assert_eq!(
            c.unwrap(),
            "external_ids:ovn-remote-probe-interval=\"soon\" is not a number of milliseconds (0: off, -1: default); using 5000 ms (default for these remotes)"
        );
        let (s, _) = southbound(Some(0), None, &tcp());
        assert_eq!(s.to_string(), "off (--probe-interval)");
    }
}
