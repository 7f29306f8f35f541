//! One class's life cycle as `check` drives it through the worker: init's
//! results, run, CREATE, UPDATE, the paths that do not commit, REMOVE, run
//! again, destroy. Each step's request is one message; its answers are
//! validated as the agent validates them.

use super::report::Reporter;
use super::{limits, CheckOptions, SLOW};
use crate::dispatch::answers::{to_call, validate};
use crate::dispatch::library::describe_failure;
use crate::provider::{PortOutput, PortRequest, PrepareError};
use crate::worker::process::{Reply, WorkerFailure, WorkerProcess};
use crate::worker::protocol::{Answer, FromWorker, Op, ToWorker};
use std::io;

/// The worker is gone: the file's remaining steps cannot run.
pub(crate) type Gone = ();

/// The two calls of a class's start, to which a contract breach heard then
/// is attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitStep {
    /// `init`.
    Init,
    /// `get_maintained_iface_options`.
    MaintainedOptions,
}

impl InitStep {
    /// The callback's name in the ABI.
    pub fn callback(self) -> &'static str {
        match self {
            InitStep::Init => "init",
            InitStep::MaintainedOptions => "get_maintained_iface_options",
        }
    }
}

/// Drives the classes of one worker.
pub(crate) struct Driver<'a> {
    pub worker: &'a mut WorkerProcess,
    pub opts: &'a CheckOptions,
    pub next_id: u64,
}

/// What a prepare came to.
enum Prepared {
    Create(u64, Box<PortOutput>),
    Remove(u64),
    /// Declined (prepare returned false).
    Declined,
    /// Refused: reported as a FAIL already.
    Refused,
}

/// What a CREATE (or UPDATE) came to.
enum Created {
    Accepted(Box<PortOutput>),
    Declined,
    /// Refused: reported as a FAIL already.
    Refused,
}

/// The CREATE answers of one class.
#[derive(Default)]
struct Tally {
    accepted: usize,
    declined: usize,
}

impl Tally {
    fn add(&mut self, c: &Created) {
        match c {
            Created::Accepted(_) => self.accepted += 1,
            Created::Declined => self.declined += 1,
            Created::Refused => {}
        }
    }
}

fn describe(o: &PortOutput) -> String {
    let opts: Vec<String> = o.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "interface {:?}, type {}, options {{{}}}",
        o.name,
        o.iface_type
            .as_deref()
            .map_or("NULL (system)".into(), |t| format!("{t:?}")),
        opts.join(", ")
    )
}

impl Driver<'_> {
    /// Sends one request; reports slow callbacks, caught panics, and a
    /// worker that died or hung (then `Err`).
    fn ask(
        &mut self,
        what: &str,
        msg: &ToWorker,
        r: &mut Reporter<'_>,
    ) -> io::Result<Result<FromWorker, Gone>> {
        let result = self.worker.call(msg, &limits(self.opts));
        let slow = match &result {
            Ok(reply) => &reply.slow,
            Err(f) => &f.slow,
        };
        for s in slow {
            r.warn(&format!(
                "{what}: {} took {} ms (more than {} ms; the agent warns above 50 ms and kills the worker past --provider-timeout)",
                s.mark.callback,
                s.took.as_millis(),
                SLOW.as_millis()
            ))?;
        }
        match result {
            Ok(Reply { msg, .. }) => {
                r.report_violations(what)?;
                Ok(Ok(msg))
            }
            Err(f) => {
                r.report_violations(what)?;
                let mut d = describe_failure(&f);
                if let WorkerFailure::Died(Some(status)) = &f.what {
                    // Its last words first (the C library's "double free
                    // detected", a sanitizer's report).
                    self.worker
                        .wait_stderr(std::time::Duration::from_millis(200));
                    if what == "destroy" {
                        // The library is unmapped with its last class.
                        d.push_str(" (destroy, or unloading the library after it: its destructors run then; with --keep-loaded they run at the worker's exit instead)");
                    }
                    if status.code().is_some_and(|c| c != 0) {
                        d.push_str(&super::ending::tool_hint(self.worker.pid()));
                    }
                }
                // "run did not return…", not "run: run did not return…".
                if d.starts_with(what) {
                    r.fail(2, &d)?;
                } else {
                    r.fail(2, &format!("{what}: {d}"))?;
                }
                Ok(Err(()))
            }
        }
    }

    fn prepare(
        &mut self,
        t: &str,
        op: Op,
        req: &PortRequest,
        what: &str,
        r: &mut Reporter<'_>,
    ) -> io::Result<Result<Prepared, Gone>> {
        // A step starts with its prepare.
        r.step_failed = false;
        self.next_id += 1;
        let id = self.next_id;
        let msg = ToWorker::Prepare(vec![to_call(id, t, op, req)]);
        let answer = match self.ask(what, &msg, r)? {
            Ok(FromWorker::Prepared(mut a)) if a.len() == 1 => a.remove(0),
            Ok(other) => {
                r.fail(2, &format!("{what}: the worker answered {other:?}"))?;
                return Ok(Err(()));
            }
            Err(()) => return Ok(Err(())),
        };
        r.summary.answers += 1;
        Ok(Ok(match (op, answer) {
            // A decline the SDK made of a panic or of an answer it could
            // not pass on is a failure, already reported.
            (_, Answer::Declined(_)) if r.step_failed => Prepared::Refused,
            (_, Answer::Declined(_)) => Prepared::Declined,
            (
                Op::Create,
                Answer::Create {
                    name,
                    iface_type,
                    options,
                },
            ) => match validate(name, iface_type, options) {
                Ok(out) => Prepared::Create(id, Box::new(out)),
                Err(problems) => {
                    r.fail(2, &format!("{what}: {}", PrepareError::BadOutput(problems)))?;
                    // Released in the worker: port_ctx_destroy.
                    if self.settle(vec![], vec![id], what, r)?.is_err() {
                        return Ok(Err(()));
                    }
                    Prepared::Refused
                }
            },
            (Op::Remove, Answer::Remove) => Prepared::Remove(id),
            (_, Answer::BadOutput(problems)) => {
                r.fail(2, &format!("{what}: {}", PrepareError::BadOutput(problems)))?;
                Prepared::Refused
            }
            (_, Answer::BadRequest(why)) => {
                r.fail(
                    2,
                    &format!("{what}: cannot pass the port to the provider: {why}"),
                )?;
                Prepared::Refused
            }
            (_, other) => {
                r.fail(
                    2,
                    &format!("{what}: the worker answered {other:?} to a {op:?}"),
                )?;
                Prepared::Refused
            }
        }))
    }

    /// The REMOVE step for `existing`'s logical port: committed (`finish`)
    /// or, as in a transaction that did not commit, dropped.
    fn remove(
        &mut self,
        t: &str,
        existing: &PortRequest,
        committed: bool,
        r: &mut Reporter<'_>,
    ) -> io::Result<Result<(), Gone>> {
        let lport = &existing.lport_name;
        let step = if committed {
            format!("REMOVE {lport}")
        } else {
            format!("REMOVE {lport} (not committed)")
        };
        match self.prepare(t, Op::Remove, existing, &step, r)? {
            Ok(Prepared::Remove(id)) => {
                let (finish, drop) = if committed {
                    (vec![id], vec![])
                } else {
                    (vec![], vec![id])
                };
                if self.settle(finish, drop, &step, r)?.is_err() {
                    return Ok(Err(()));
                }
                let then = if committed { "finish" } else { "no finish" };
                r.ok(&format!("{step}: prepare (ctx_out NULL) -> true, {then}"))?;
            }
            Ok(Prepared::Declined) => {
                r.summary.declined += 1;
                r.note(&format!(
                    "{step}: declined (prepare returned false: keep the port for now)"
                ))?;
            }
            Ok(_) => {}
            Err(()) => return Ok(Err(())),
        }
        Ok(Ok(()))
    }

    fn settle(
        &mut self,
        committed: Vec<u64>,
        dropped: Vec<u64>,
        what: &str,
        r: &mut Reporter<'_>,
    ) -> io::Result<Result<(), Gone>> {
        match self.ask(what, &ToWorker::Settle { committed, dropped }, r)? {
            Ok(FromWorker::Done) => Ok(Ok(())),
            Ok(other) => {
                r.fail(2, &format!("{what}: the worker answered {other:?}"))?;
                Ok(Err(()))
            }
            Err(()) => Ok(Err(())),
        }
    }

    fn run(&mut self, t: &str, r: &mut Reporter<'_>) -> io::Result<Result<(), Gone>> {
        r.step_failed = false;
        match self.ask("run", &ToWorker::Run, r)? {
            Ok(FromWorker::Ran(changed)) => {
                r.ok(&format!("run -> {}", changed.iter().any(|c| c == t)))?;
                Ok(Ok(()))
            }
            Ok(other) => {
                r.fail(2, &format!("run: the worker answered {other:?}"))?;
                Ok(Err(()))
            }
            Err(()) => Ok(Err(())),
        }
    }

    /// CREATE prepare -> finish -> ctx_destroy.
    fn create(
        &mut self,
        t: &str,
        req: &PortRequest,
        what: &str,
        r: &mut Reporter<'_>,
    ) -> io::Result<Result<Created, Gone>> {
        let step = format!("{what} {}", req.lport_name);
        match self.prepare(t, Op::Create, req, &step, r)? {
            Ok(Prepared::Create(id, out)) => {
                r.ok(&format!("{step}: prepare -> {}", describe(&out)))?;
                // Another name for an existing interface: the agent does not
                // update it in place but replaces it (agent/prepare.rs): this
                // answer is released unfinished, and REMOVE and CREATE
                // follow.
                if let Some(old) = req.iface.as_ref().filter(|i| i.name != out.name) {
                    if self.settle(vec![], vec![id], &step, r)?.is_err() {
                        return Ok(Err(()));
                    }
                    r.note(&format!(
                        "{step}: a new name for interface {:?}, so the agent would replace it: ctx_destroy without finish, then REMOVE and CREATE",
                        old.name
                    ))?;
                    return Ok(Ok(Created::Accepted(out)));
                }
                if self.settle(vec![id], vec![], &step, r)?.is_err() {
                    return Ok(Err(()));
                }
                r.ok(&format!("{step}: finish, ctx_destroy"))?;
                Ok(Ok(Created::Accepted(out)))
            }
            Ok(Prepared::Declined) => {
                r.summary.declined += 1;
                r.note(&format!(
                    "{step}: declined (prepare returned false); if the provider needs lookup keys or facts, give them with --lport-option, --lport-mac, --datapath-type or --dpdk-initialized"
                ))?;
                Ok(Ok(Created::Declined))
            }
            Ok(Prepared::Refused | Prepared::Remove(_)) => Ok(Ok(Created::Refused)),
            Err(()) => Ok(Err(())),
        }
    }

    /// Drives class `t` through its life cycle.
    pub fn drive(
        &mut self,
        t: &str,
        maintained: &[String],
        breaches: &[(InitStep, String)],
        r: &mut Reporter<'_>,
    ) -> io::Result<Result<(), Gone>> {
        let listed = if maintained.is_empty() {
            "(none)".to_owned()
        } else {
            maintained.join(", ")
        };
        for step in [InitStep::Init, InitStep::MaintainedOptions] {
            let mut clean = true;
            for (_, v) in breaches.iter().filter(|(s, _)| *s == step) {
                clean = false;
                r.fail(2, &format!("{}: provider {t:?} {v}", step.callback()))?;
            }
            match (step, clean) {
                (InitStep::Init, true) => r.ok("init")?,
                (InitStep::Init, false) => {}
                (InitStep::MaintainedOptions, true) => {
                    r.ok(&format!("maintained interface options: {listed}"))?
                }
                (InitStep::MaintainedOptions, false) => {
                    r.note(&format!("maintained interface options kept: {listed}"))?
                }
            }
        }
        if self.run(t, r)?.is_err() {
            return Ok(Err(()));
        }
        let ports = &self.opts.ports;
        let lports = ports.lports();
        let mut tally = Tally::default();
        let mut first_answer = None;
        let mut names: Vec<(String, String)> = Vec::new();
        for (i, lport) in lports.iter().enumerate() {
            let Ok(created) = self.create(t, &ports.request(t, lport), "CREATE", r)? else {
                return Ok(Err(()));
            };
            if let Created::Accepted(out) = &created {
                if let Some((other, _)) = names.iter().find(|(_, n)| *n == out.name) {
                    r.fail(
                        2,
                        &format!(
                            "CREATE {lport}: interface {:?} is also the answer for {other}: the agent would plug only one of the two logical ports, holding the other until the name is free; build names that differ for different logical ports (PortOut::ifname only cuts), or, if the provider keys on --lport-option or --lport-mac, which every sample port gets alike, give each port its own with --lport-option-of or --lport-mac-of, or check one --lport at a time",
                            out.name
                        ),
                    )?;
                }
                names.push((lport.clone(), out.name.clone()));
                if i == 0 {
                    first_answer = Some((**out).clone());
                }
            }
            tally.add(&created);
        }

        let first = &lports[0];
        let mut existing = ports.request(t, first);
        existing.iface = ports.existing_iface(first, first_answer.as_ref());
        if existing.iface.is_none() {
            r.note(&format!(
                "UPDATE {first}, CREATE and REMOVE {first} (not committed), REMOVE {first}: not checked, since CREATE {first} made no interface to update or remove; describe one with --iface-type and --iface-option"
            ))?;
            self.judge_declines(&tally, r)?;
            return self.run_and_describe(t, r);
        }
        // The update path: the interface exists, with an option another
        // program maintains next to the provider's own.
        let Ok(updated) = self.create(t, &existing, "UPDATE", r)? else {
            return Ok(Err(()));
        };
        if let Created::Accepted(out) = &updated {
            if let Some((other, _)) = names.iter().find(|(l, n)| *n == out.name && l != first) {
                r.fail(
                    2,
                    &format!(
                        "UPDATE {first}: interface {:?} is the answer for {other}: the agent would plug only one of the two logical ports",
                        out.name
                    ),
                )?;
            }
        }
        tally.add(&updated);
        self.judge_declines(&tally, r)?;

        // A transaction that did not commit: ctx_destroy without finish, and
        // a removal that is simply dropped.
        let step = format!("CREATE {first} (not committed)");
        match self.prepare(t, Op::Create, &existing, &step, r)? {
            Ok(Prepared::Create(id, _)) => {
                if self.settle(vec![], vec![id], &step, r)?.is_err() {
                    return Ok(Err(()));
                }
                r.ok(&format!("{step}: prepare, ctx_destroy without finish"))?;
            }
            Ok(Prepared::Declined) => {
                r.summary.declined += 1;
                r.note(&format!(
                    "{step}: declined (prepare returned false), so the path of a change that does not commit was not checked"
                ))?;
            }
            Ok(_) => {}
            Err(()) => return Ok(Err(())),
        }
        if self.remove(t, &existing, false, r)?.is_err()
            || self.remove(t, &existing, true, r)?.is_err()
        {
            return Ok(Err(()));
        }
        self.run_and_describe(t, r)
    }

    fn run_and_describe(&mut self, t: &str, r: &mut Reporter<'_>) -> io::Result<Result<(), Gone>> {
        if self.run(t, r)?.is_err() {
            return Ok(Err(()));
        }
        self.describe(t, r)
    }

    /// A provider that declined every CREATE was not checked where it
    /// matters: a FAIL unless `--allow-decline` says that is right here.
    fn judge_declines(&mut self, tally: &Tally, r: &mut Reporter<'_>) -> io::Result<()> {
        if tally.accepted > 0 || tally.declined == 0 {
            return Ok(());
        }
        if self.opts.allow_decline {
            r.note(&format!(
                "every CREATE and UPDATE ({}) was declined: allowed by --allow-decline",
                tally.declined
            ))
        } else {
            r.fail(
                2,
                &format!(
                    "every CREATE and UPDATE ({}) was declined, so the create, update and finish paths were not checked: give the provider the lookup keys it needs (--lport-option, --lport-mac, --datapath-type, --dpdk-initialized), or pass --allow-decline if declining is right on this machine",
                    tally.declined
                ),
            )
        }
    }

    /// Asks class `t` for its inventory (ABI 1.1 `describe`).
    fn describe(&mut self, t: &str, r: &mut Reporter<'_>) -> io::Result<Result<(), Gone>> {
        r.step_failed = false;
        match self.ask("describe", &ToWorker::Describe(t.to_owned()), r)? {
            Ok(FromWorker::Described(Some(lines))) => {
                r.ok(&format!("describe -> {} line(s)", lines.len()))?;
                for l in lines.iter().take(5) {
                    r.line(3, "", l)?;
                }
                Ok(Ok(()))
            }
            Ok(FromWorker::Described(None)) => {
                r.note("describe: not provided (NULL, or built for ABI 1.0)")?;
                Ok(Ok(()))
            }
            Ok(other) => {
                r.fail(2, &format!("describe: the worker answered {other:?}"))?;
                Ok(Err(()))
            }
            Err(()) => Ok(Err(())),
        }
    }

    /// Destroys class `t`.
    pub fn destroy(&mut self, t: &str, r: &mut Reporter<'_>) -> io::Result<Result<(), Gone>> {
        r.step_failed = false;
        match self.ask("destroy", &ToWorker::DestroyClass(t.to_owned()), r)? {
            Ok(FromWorker::Destroyed(Ok(()))) => {
                r.ok("destroy")?;
                Ok(Ok(()))
            }
            Ok(FromWorker::Destroyed(Err(e))) => {
                let e = crate::registry::UnregisterError::DestroyFailed(t.to_owned(), e.errno);
                r.fail(2, &e.to_string())?;
                Ok(Ok(()))
            }
            Ok(other) => {
                r.fail(2, &format!("destroy: the worker answered {other:?}"))?;
                Ok(Err(()))
            }
            Err(()) => Ok(Err(())),
        }
    }
}
