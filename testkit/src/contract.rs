//! The provider contract of `docs/abi.md` ("Call order"), checked from the
//! journal of the counting provider (`ffi-tests/c/counting_provider.c`)
//! after a fault or load scenario.
//!
//! The provider checks what one process can see as the calls come, and
//! journals each breach as a `VIOLATION` line; this module adds what needs
//! the whole journal (several agent processes, one after the other) and the
//! database at the end:
//!
//! - each CREATE that `port_prepare` answered true gets exactly one
//!   `port_ctx_destroy` from a process that ended with `destroy`, and at
//!   most one from a process that was killed;
//! - `port_finish` only for committed operations: the interface of a
//!   finished CREATE is in the database at the end, unless the port was
//!   removed after it; every `port_finish` of a REMOVE follows a prepared
//!   REMOVE of the same port in the same process;
//! - no call after `destroy`.

use crate::workspace_root;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The provider's type, as logical ports name it in `vif-plug-type`.
pub const TYPE: &str = "counting";

/// Builds the counting provider into `dir` and returns its path.
pub fn counting_provider(dir: &Path) -> PathBuf {
    let so = dir.join("libcounting_provider.so");
    crate::compile_c_shared(
        &workspace_root().join("ffi-tests/c/counting_provider.c"),
        &[],
        &so,
    );
    so
}

/// What the journal says, and every breach of the contract found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Agent processes that initialised the provider.
    pub processes: usize,
    /// Processes that ended without `destroy` (killed).
    pub killed: usize,
    /// CREATE prepares answered true.
    pub creates: usize,
    /// `port_finish` of a CREATE.
    pub finishes: usize,
    /// `port_ctx_destroy`.
    pub ctx_destroys: usize,
    /// REMOVE prepares answered true.
    pub removes: usize,
    /// `port_finish` of a REMOVE.
    pub finish_removes: usize,
    /// Every breach, one line each.
    pub violations: Vec<String>,
}

impl Report {
    /// One line for a table: the counts and the number of violations.
    pub fn summary(&self) -> String {
        format!(
            "{} process(es) ({} killed); {} create, {} finish, {} ctx_destroy, {} remove, {} finish-remove; {} violation(s)",
            self.processes,
            self.killed,
            self.creates,
            self.finishes,
            self.ctx_destroys,
            self.removes,
            self.finish_removes,
            self.violations.len()
        )
    }
}

#[derive(Debug)]
struct Line<'a> {
    pid: &'a str,
    event: &'a str,
    lport: &'a str,
    ctx: &'a str,
}

/// Checks the journal at `path` against the interfaces present in the
/// local database at the end (`present`: interface names).
pub fn check(path: &Path, present: &BTreeSet<String>) -> Report {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    check_text(&text, present)
}

/// [`check`] on the journal's text.
pub fn check_text(text: &str, present: &BTreeSet<String>) -> Report {
    let mut r = Report::default();
    let mut lines = Vec::new();
    for raw in text.lines() {
        let f: Vec<&str> = raw.splitn(4, ' ').collect();
        if f.get(1) == Some(&"VIOLATION") {
            r.violations
                .push(format!("process {}: {}", f[0], f[2..].join(" ")));
            continue;
        }
        match f.as_slice() {
            [pid, event, lport, ctx] => lines.push(Line {
                pid,
                event,
                lport,
                ctx,
            }),
            _ => r
                .violations
                .push(format!("unreadable journal line {raw:?}")),
        }
    }
    // Per process: contexts created and destroyed, removes pending, ended.
    let mut created: HashMap<(&str, &str), &str> = HashMap::new();
    let mut destroyed: HashMap<(&str, &str), usize> = HashMap::new();
    let mut pending_remove: HashMap<(&str, &str), usize> = HashMap::new();
    let mut ended: BTreeSet<&str> = BTreeSet::new();
    let mut pids: BTreeSet<&str> = BTreeSet::new();
    // Finished CREATEs not yet excused by a later removal: lport -> where.
    let mut finished: BTreeMap<&str, String> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        if ended.contains(l.pid) && l.event != "init" {
            r.violations.push(format!(
                "process {}: {} of {} after destroy",
                l.pid, l.event, l.lport
            ));
        }
        match l.event {
            "init" => {
                pids.insert(l.pid);
                ended.remove(l.pid);
            }
            "destroy" => {
                ended.insert(l.pid);
            }
            "create" => {
                r.creates += 1;
                created.insert((l.pid, l.ctx), l.lport);
            }
            "decline" => {}
            "finish" => {
                r.finishes += 1;
                finished.insert(l.lport, format!("process {} line {}", l.pid, i + 1));
            }
            "ctx-destroy" => {
                r.ctx_destroys += 1;
                *destroyed.entry((l.pid, l.ctx)).or_default() += 1;
            }
            "remove" => {
                r.removes += 1;
                *pending_remove.entry((l.pid, l.lport)).or_default() += 1;
                finished.remove(l.lport);
            }
            "finish-remove" => {
                r.finish_removes += 1;
                match pending_remove.get_mut(&(l.pid, l.lport)) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => r.violations.push(format!(
                        "process {}: port_finish of a REMOVE of {} that was not prepared",
                        l.pid, l.lport
                    )),
                }
            }
            other => r
                .violations
                .push(format!("process {}: unknown event {other}", l.pid)),
        }
    }
    r.processes = pids.len();
    r.killed = pids.iter().filter(|p| !ended.contains(*p)).count();
    for ((pid, ctx), lport) in &created {
        let n = destroyed.get(&(*pid, *ctx)).copied().unwrap_or(0);
        let ok = if ended.contains(pid) { n == 1 } else { n <= 1 };
        if !ok {
            r.violations.push(format!(
                "process {pid}: context {ctx} of {lport} destroyed {n} time(s)"
            ));
        }
    }
    for ((pid, ctx), n) in &destroyed {
        if !created.contains_key(&(*pid, *ctx)) {
            r.violations.push(format!(
                "process {pid}: {n} port_ctx_destroy of context {ctx}, never created"
            ));
        }
    }
    for (lport, at) in finished {
        // The interface is named after the logical port (first 15 bytes).
        let name: String = lport.chars().take(15).collect();
        if !present.contains(&name) {
            r.violations.push(format!(
                "{at}: port_finish of {lport}, whose interface is not in the database and which was never removed"
            ));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> BTreeSet<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_clean_life_passes() {
        let j = "1 init - 0\n1 create p1 1\n1 finish p1 1\n1 ctx-destroy p1 1\n\
                 1 remove p2 0\n1 finish-remove p2 0\n1 destroy - 0\n";
        let r = check_text(j, &names(&["p1"]));
        assert!(r.violations.is_empty(), "{r:?}");
        assert_eq!((r.processes, r.killed, r.creates), (1, 0, 1));
    }

    #[test]
    fn breaches_are_each_named() {
        let cases = [
            // Killed processes may leave contexts; ended ones may not.
            (
                "1 init - 0\n1 create p1 1\n1 destroy - 0\n",
                "destroyed 0 time(s)",
            ),
            (
                "1 init - 0\n1 create p1 1\n1 ctx-destroy p1 1\n1 ctx-destroy p1 1\n",
                "destroyed 2 time(s)",
            ),
            ("1 init - 0\n1 ctx-destroy p1 7\n", "never created"),
            ("1 init - 0\n1 finish-remove p1 0\n", "not prepared"),
            (
                "1 init - 0\n1 destroy - 0\n1 create p1 1\n",
                "after destroy",
            ),
            (
                "1 init - 0\n1 create p9 1\n1 finish p9 1\n1 ctx-destroy p9 1\n",
                "not in the database",
            ),
            ("1 VIOLATION port_finish twice p1\n", "port_finish twice"),
        ];
        for (journal, want) in cases {
            let r = check_text(journal, &names(&["p1"]));
            assert!(
                r.violations.iter().any(|v| v.contains(want)),
                "{journal:?}: want {want:?}, got {:?}",
                r.violations
            );
        }
        let killed = check_text("1 init - 0\n1 create p1 1\n2 init - 0\n", &names(&[]));
        assert!(killed.violations.is_empty(), "{killed:?}");
        assert_eq!((killed.processes, killed.killed), (2, 2));
        // A finish excused by a later removal.
        let removed = check_text(
            "1 init - 0\n1 create p1 1\n1 finish p1 1\n1 ctx-destroy p1 1\n1 remove p1 0\n",
            &names(&[]),
        );
        assert!(removed.violations.is_empty(), "{removed:?}");
    }
}
