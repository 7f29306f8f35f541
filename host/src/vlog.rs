//! Log levels that change at run time, as OVS daemons' `vlog/list` and
//! `vlog/set` do (`lib/vlog.c`), over the `log` crate: the agent's logger
//! filters by module (a log target and everything under it, e.g.
//! `vif_plug_host::agent` or `provider::representor`), starting from
//! `RUST_LOG`, and writes through env_logger's formatting to standard
//! error (journald under systemd).
//!
//! Module names contain `::`, so in a `vlog/set` spec only a single `:`
//! separates words: `vif_plug_host::agent:dbg` sets that module to debug,
//! `ANY:info` or `info` sets the default and clears the modules'.

use log::{LevelFilter, Log, Metadata, Record};
use std::collections::BTreeSet;
use std::sync::{OnceLock, RwLock};

/// Levels: the default and per module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Levels {
    /// For targets no module covers.
    pub default: LevelFilter,
    /// Per module, in the order set.
    pub modules: Vec<(String, LevelFilter)>,
}

impl Levels {
    /// From a `RUST_LOG`-style spec (`info,vif_plug_host::agent=debug`);
    /// `fallback` when the spec gives no default. Parts it cannot read are
    /// returned for a warning.
    pub fn from_spec(spec: &str, fallback: LevelFilter) -> (Levels, Vec<String>) {
        let mut levels = Levels {
            default: fallback,
            modules: Vec::new(),
        };
        let mut bad = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((m, l)) => match level(l) {
                    Some(l) => levels.set_module(m, l),
                    None => bad.push(part.to_owned()),
                },
                None => match level(part) {
                    Some(l) => levels.default = l,
                    // A bare module means everything from it.
                    None => levels.set_module(part, LevelFilter::Trace),
                },
            }
        }
        (levels, bad)
    }

    fn set_module(&mut self, module: &str, l: LevelFilter) {
        match self.modules.iter_mut().find(|(m, _)| m == module) {
            Some(e) => e.1 = l,
            None => self.modules.push((module.to_owned(), l)),
        }
    }

    /// The level for `target`: its longest covering module's, else the
    /// default.
    pub fn for_target(&self, target: &str) -> LevelFilter {
        self.modules
            .iter()
            .filter(|(m, _)| {
                target == m
                    || target
                        .strip_prefix(m.as_str())
                        .is_some_and(|r| r.starts_with("::"))
            })
            .max_by_key(|(m, _)| m.len())
            .map_or(self.default, |(_, l)| *l)
    }

    /// The most verbose level anywhere (for `log::set_max_level`).
    pub fn max(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, std::cmp::max)
    }

    /// Applies one `vlog/set` spec: words separated by single colons, in
    /// any order: a module (or `ANY`), a destination (`console` or `ANY`),
    /// a level (`off emer err warn info dbg`, or `error debug trace`).
    ///
    /// Errors: a destination this agent has not (it logs to standard error
    /// only), two levels, a pattern, no level, a word that is none of
    /// these after a module, a module outside the agent's and providers'
    /// targets (`vif_plug_host…`, `provider…`), or more than
    /// [`MAX_MODULES`] modules set.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let mut module = None;
        let mut lvl = None;
        for word in words(spec) {
            if let Some(l) = level(&word) {
                if lvl.replace(l).is_some() {
                    return Err(format!("{spec}: more than one level"));
                }
            } else if word.eq_ignore_ascii_case("console")
                || word.eq_ignore_ascii_case("ANY") && module.is_some()
            {
                // The only destination.
            } else if ["syslog", "file"]
                .iter()
                .any(|d| word.eq_ignore_ascii_case(d))
            {
                return Err(format!(
                    "{spec}: this agent logs to standard error only (the journal under systemd), so there is no {word} destination"
                ));
            } else if word.eq_ignore_ascii_case("PATTERN") {
                return Err(format!("{spec}: log patterns cannot be changed"));
            } else if let Some(m) = &module {
                return Err(format!(
                    "{spec}: {word:?} is not a level (off, emer, err, warn, info, dbg) nor a destination (console), and {m:?} is already the module"
                ));
            } else {
                module = Some(word.clone());
            }
        }
        let Some(l) = lvl else {
            return Err(format!(
                "{spec}: no level (off, emer, err, warn, info or dbg)"
            ));
        };
        match module.as_deref() {
            None => {
                self.default = l;
                self.modules.clear();
            }
            Some(m) if m.eq_ignore_ascii_case("ANY") => {
                self.default = l;
                self.modules.clear();
            }
            Some(m) if !is_module(m) => {
                return Err(format!(
                    "{spec}: no module {m:?}: modules are the agent's log targets (vif_plug_host::…) and providers' (provider::TYPE); vlog/list shows them"
                ))
            }
            Some(m)
                if self.modules.len() >= MAX_MODULES
                    && !self.modules.iter().any(|(have, _)| have == m) =>
            {
                return Err(format!(
                    "{spec}: {MAX_MODULES} modules have levels of their own already; set ANY to start over"
                ))
            }
            Some(m) => self.set_module(m, l),
        }
        Ok(())
    }
}

/// The most modules with a level of their own (a bound on what requests
/// can make the agent keep and check for every log record).
pub const MAX_MODULES: usize = 256;

/// The longest module name, in bytes (real ones are under 60).
pub const MAX_MODULE_NAME: usize = 128;

/// The roots of every log target the agent and its providers log under.
const ROOTS: &[&str] = &["vif_plug_host", "provider"];

/// Log targets listed by `vlog/list` before they log anything: those
/// `docs/operations.md` names.
const DOCUMENTED: &[&str] = &[
    "vif_plug_host::agent",
    "vif_plug_host::ovsdb::client",
    "vif_plug_host::loader",
    "vif_plug_host::dispatch::workers",
    "vif_plug_host::worker",
    "vif_plug_host::unixctl",
];

/// Whether `m` is one of [`ROOTS`] or a module under one (Rust paths:
/// letters, digits, `_`, `::`).
fn is_module(m: &str) -> bool {
    let wellformed = m.split("::").all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    wellformed
        && m.len() <= MAX_MODULE_NAME
        && ROOTS
            .iter()
            .any(|r| m == *r || m.strip_prefix(r).is_some_and(|rest| rest.starts_with("::")))
}

/// A spec's words: split at single colons, `::` kept inside module names.
fn words(spec: &str) -> Vec<String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = vec![String::new()];
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ':' && chars.get(i + 1) == Some(&':') {
            out.last_mut().expect("one word").push_str("::");
            i += 2;
        } else if chars[i] == ':' {
            out.push(String::new());
            i += 1;
        } else {
            out.last_mut().expect("one word").push(chars[i]);
            i += 1;
        }
    }
    out.into_iter().filter(|w| !w.is_empty()).collect()
}

/// A level name, OVS's or Rust's.
fn level(s: &str) -> Option<LevelFilter> {
    Some(match s.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::Off,
        "emer" | "err" | "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "dbg" | "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

/// A level as `vlog/list` shows it.
fn name(l: LevelFilter) -> &'static str {
    match l {
        LevelFilter::Off => "OFF",
        LevelFilter::Error => "ERR",
        LevelFilter::Warn => "WARN",
        LevelFilter::Info => "INFO",
        LevelFilter::Debug => "DBG",
        LevelFilter::Trace => "TRACE",
    }
}

/// The agent's logger.
pub struct Vlog {
    out: env_logger::Logger,
    levels: RwLock<Levels>,
    /// Targets seen so far, for `vlog/list`.
    seen: RwLock<BTreeSet<String>>,
}

static INSTALLED: OnceLock<&'static Vlog> = OnceLock::new();

impl Log for Vlog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        let levels = self.levels.read().unwrap_or_else(|e| e.into_inner());
        m.level() <= levels.for_target(m.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        let known = self
            .seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(target);
        if !known {
            self.seen
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(target.to_owned());
        }
        // Names in log lines come from the CMS (logical ports) and from
        // providers: a line break or other control character in one must
        // not forge a line of the journal, nor a bidirectional formatting
        // character reorder what a terminal shows of it.
        let text = record.args().to_string();
        if text.chars().any(crate::provider::escaped_in_a_line) {
            let shown = crate::provider::one_line(&text);
            self.out.log(
                &Record::builder()
                    .args(format_args!("{shown}"))
                    .level(record.level())
                    .target(record.target())
                    .module_path(record.module_path())
                    .file(record.file())
                    .line(record.line())
                    .build(),
            );
        } else {
            self.out.log(record);
        }
    }

    fn flush(&self) {
        self.out.flush();
    }
}

/// Installs the agent's logger with levels from `RUST_LOG` (default
/// `info`). Unreadable parts of `RUST_LOG` are warned about once.
pub fn install() -> Result<(), log::SetLoggerError> {
    let spec = std::env::var("RUST_LOG").unwrap_or_default();
    let (levels, bad) = Levels::from_spec(&spec, LevelFilter::Info);
    let out = env_logger::Builder::new()
        .filter_level(LevelFilter::Trace)
        .format_timestamp_millis()
        .build();
    let max = levels.max();
    let vlog: &'static Vlog = Box::leak(Box::new(Vlog {
        out,
        levels: RwLock::new(levels),
        seen: RwLock::new(DOCUMENTED.iter().map(|m| m.to_string()).collect()),
    }));
    log::set_logger(vlog)?;
    log::set_max_level(max);
    let _ = INSTALLED.set(vlog);
    for b in bad {
        log::warn!("RUST_LOG: cannot read {b:?}; ignored");
    }
    Ok(())
}

/// `vlog/list`: the default and every module set or seen, with its level.
pub fn list() -> String {
    let Some(v) = INSTALLED.get() else {
        return "the run-time log levels are not in use in this process\n".into();
    };
    let levels = v.levels.read().unwrap_or_else(|e| e.into_inner());
    let seen = v.seen.read().unwrap_or_else(|e| e.into_inner());
    let mut modules: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
    modules.extend(levels.modules.iter().map(|(m, _)| m.as_str()));
    let mut out = format!("{:<44}console\n{:<44}-------\n", "", "");
    out += &format!("{:<44}{}\n", "ANY (default)", name(levels.default));
    for m in modules {
        out += &format!("{m:<44}{}\n", name(levels.for_target(m)));
    }
    out
}

/// `vlog/set SPEC...`: applies each spec in order (see [`Levels::apply`]);
/// nothing changes if any is refused.
pub fn set(specs: &[String]) -> Result<String, String> {
    let Some(v) = INSTALLED.get() else {
        return Err("the run-time log levels are not in use in this process".into());
    };
    if specs.is_empty() {
        return Err("usage: vlog/set [MODULE][:console][:LEVEL]... (e.g. vif_plug_host::agent:dbg, ANY:info)".into());
    }
    let mut levels = v.levels.write().unwrap_or_else(|e| e.into_inner());
    let mut next = levels.clone();
    for s in specs {
        next.apply(s)?;
    }
    *levels = next;
    log::set_max_level(levels.max());
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use LevelFilter::*;

    #[test]
    fn rust_log_specs_and_the_longest_module_wins() {
        let (l, bad) = Levels::from_spec(
            "warn,vif_plug_host::agent=debug,vif_plug_host=info,x=nope",
            Info,
        );
        assert_eq!(bad, ["x=nope"]);
        assert_eq!(l.default, Warn);
        assert_eq!(l.for_target("vif_plug_host::agent::port_table"), Debug);
        assert_eq!(l.for_target("vif_plug_host::agent"), Debug);
        assert_eq!(
            l.for_target("vif_plug_host::agentx"),
            Info,
            "a prefix is a whole module"
        );
        assert_eq!(l.for_target("vif_plug_host::ovsdb"), Info);
        assert_eq!(l.for_target("provider::representor"), Warn);
        assert_eq!(l.max(), Debug);
    }

    #[test]
    fn vlog_set_specs_as_ovs_writes_them() {
        let (mut l, _) = Levels::from_spec("info", Info);
        l.apply("provider::representor:dbg").unwrap();
        assert_eq!(l.for_target("provider::representor"), Debug);
        l.apply("vif_plug_host::agent:console:warn").unwrap();
        assert_eq!(l.for_target("vif_plug_host::agent::in_flight"), Warn);
        l.apply("ANY:console:err").unwrap();
        assert_eq!((l.default, l.modules.len()), (Error, 0));
        l.apply("dbg").unwrap();
        assert_eq!(l.default, Debug);
        for (bad, why) in [
            ("x:syslog:dbg", "no syslog destination"),
            ("x:file:dbg", "no file destination"),
            ("x", "no level"),
            ("x:dbg:info", "more than one level"),
            ("PATTERN:console:%m", "patterns cannot be changed"),
            (
                "provider::x:bogus",
                "\"bogus\" is not a level (off, emer, err, warn, info, dbg) nor a destination (console), and \"provider::x\" is already the module",
            ),
            ("bogus::module:info", "no module \"bogus::module\""),
            ("vif_plug_hostx:info", "no module"),
            ("provider:::info", "no module \"provider::\""),
            ("provider::a b:info", "no module"),
            (&format!("provider::{}:info", "a".repeat(200)), "no module"),
        ] {
            let before = l.clone();
            assert!(l.apply(bad).unwrap_err().contains(why), "{bad}");
            assert_eq!(l, before, "{bad} changed nothing");
        }
        // Levels in any case; module names are taken as given.
        l.apply("provider::x:DBG").unwrap();
        assert_eq!(l.for_target("provider::x"), Debug);
        // A bounded number of modules.
        l.apply("ANY:info").unwrap();
        for i in 0..MAX_MODULES {
            l.apply(&format!("provider::p{i}:dbg")).unwrap();
        }
        l.apply("provider::p0:warn").unwrap();
        assert!(l
            .apply("provider::one_more:dbg")
            .unwrap_err()
            .contains("256 modules"));
    }
}
