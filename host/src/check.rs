//! `vif-plug-host check`: the conformance run a vendor does before shipping a
//! provider. It loads each file as the agent would, drives every class
//! through the whole port life cycle on sample ports, and reports each step
//! and each violation of the contract.

use crate::config::ProviderConfig;
use crate::loader;
use crate::provider::{ExistingIface, PortOutput, PortRequest, PrepareError, Provider};
use crate::registry::Registry;
use std::io::{self, Write};
use std::path::Path;

/// Error lines providers logged and nobody reported yet; `check` quotes
/// them in its report, so a failure reads with the provider's own reason.
static PROVIDER_ERRORS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Wraps the program's logger to remember the providers' error lines.
pub struct RecordingLogger<L>(pub L);

impl<L: log::Log> log::Log for RecordingLogger<L> {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        self.0.enabled(m)
            || (m.level() == log::Level::Error && m.target().starts_with("provider::"))
    }

    fn log(&self, r: &log::Record<'_>) {
        if r.level() == log::Level::Error && r.target().starts_with("provider::") {
            PROVIDER_ERRORS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r.args().to_string());
        }
        if self.0.enabled(r.metadata()) {
            self.0.log(r);
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// Takes the provider error lines recorded so far.
fn take_provider_errors() -> Vec<String> {
    std::mem::take(&mut *PROVIDER_ERRORS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Inputs to a check run.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Configuration given to the providers' `init`.
    pub config: ProviderConfig,
    /// Extra logical port options on the sample ports, e.g. the lookup keys
    /// a hardware provider needs (`vif-plug:representor:pf-mac=...`).
    pub lport_options: Vec<(String, String)>,
}

/// Totals of a check run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files checked.
    pub files: usize,
    /// Classes found.
    pub classes: usize,
    /// Contract violations found.
    pub violations: usize,
}

impl Summary {
    /// True when nothing was violated.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// Writes the report lines and counts violations.
struct Reporter<'w> {
    out: &'w mut dyn Write,
    summary: Summary,
}

impl Reporter<'_> {
    fn line(&mut self, indent: usize, tag: &str, text: &str) -> io::Result<()> {
        writeln!(
            self.out,
            "{:indent$}{tag:<5} {text}",
            "",
            indent = indent * 2
        )
    }
    fn ok(&mut self, text: &str) -> io::Result<()> {
        self.line(2, "ok", text)
    }
    fn note(&mut self, text: &str) -> io::Result<()> {
        self.line(2, "note", text)
    }
    fn fail(&mut self, indent: usize, text: &str) -> io::Result<()> {
        self.summary.violations += 1;
        self.line(indent, "FAIL", text)
    }
}

/// Checks each file in turn and writes a readable report to `out`.
pub fn run(
    files: &[impl AsRef<Path>],
    opts: &CheckOptions,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let mut r = Reporter {
        out,
        summary: Summary::default(),
    };
    for file in files {
        check_file(file.as_ref(), opts, &mut r)?;
    }
    let s = r.summary;
    writeln!(
        r.out,
        "\n{}: {} file(s), {} class(es), {} violation(s)",
        if s.passed() { "PASS" } else { "FAIL" },
        s.files,
        s.classes,
        s.violations
    )?;
    Ok(s)
}

fn check_file(path: &Path, opts: &CheckOptions, r: &mut Reporter<'_>) -> io::Result<()> {
    r.summary.files += 1;
    writeln!(r.out, "{}", path.display())?;
    let lib = match loader::load_library(path) {
        Ok(lib) => lib,
        Err(e) => return r.fail(1, &e.to_string()),
    };
    r.line(
        1,
        "ok",
        &format!(
            "loaded: ABI {}.{}, struct sizes match{}",
            lib.abi.major,
            lib.abi.minor,
            if lib.rust_layout_checked {
                ", Rust type layout matches"
            } else {
                " (no Rust layout exported: a C provider)"
            }
        ),
    )?;
    if lib.classes.is_empty() {
        return r.fail(1, "vif_plug_provider_classes is empty: nothing to load");
    }
    // Register every class first, as the agent does, so that two classes
    // with the same type are caught; then drive each; then destroy each.
    let mut registry = Registry::new();
    let mut types = Vec::new();
    for class in lib.classes {
        r.summary.classes += 1;
        match class {
            Ok(c) => {
                let type_name = c.type_name().to_owned();
                take_provider_errors();
                match registry.register(c, &opts.config) {
                    Ok(_) => types.push(type_name),
                    Err(e) => {
                        let said = take_provider_errors();
                        if said.is_empty() {
                            r.fail(1, &e.to_string())?
                        } else {
                            r.fail(1, &format!("{e}: {}", said.join("; ")))?
                        }
                    }
                }
            }
            Err((i, e)) => r.fail(1, &format!("class #{i}: {e}"))?,
        }
    }
    for t in opts.config.types() {
        if registry.get(t).is_none() {
            r.line(
                1,
                "note",
                &format!("--provider-config given for {t:?}, which this file does not provide"),
            )?;
        }
    }
    for type_name in types {
        writeln!(r.out, "  class {type_name:?}")?;
        if let Some(provider) = registry.get(&type_name) {
            drive(provider, opts, r)?;
        }
        match registry.unregister(&type_name) {
            Ok(()) => r.ok("destroy")?,
            Err(e) => r.fail(2, &e.to_string())?,
        }
    }
    Ok(())
}

fn sample(type_name: &str, lport: &str, opts: &CheckOptions) -> PortRequest {
    opts.lport_options.iter().fold(
        PortRequest::new(lport, "br-int")
            .with_option("vif-plug-type", type_name)
            .with_option("requested-chassis", "check-chassis"),
        |req, (k, v)| req.with_option(k, v),
    )
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

/// CREATE prepare -> finish -> ctx_destroy; returns the answer if any.
fn create(
    p: &Provider,
    req: &PortRequest,
    what: &str,
    r: &mut Reporter<'_>,
) -> io::Result<Option<PortOutput>> {
    match p.prepare_create(req) {
        Ok(op) => {
            let out = op.output().clone();
            r.ok(&format!(
                "{what} {}: prepare -> {}",
                req.lport_name,
                describe(&out)
            ))?;
            op.finish();
            r.ok(&format!("{what} {}: finish, ctx_destroy", req.lport_name))?;
            Ok(Some(out))
        }
        Err(PrepareError::Declined) => {
            r.note(&format!(
                "{what} {}: declined (prepare returned false); if the provider needs lookup keys, pass them with --lport-option",
                req.lport_name
            ))?;
            Ok(None)
        }
        Err(e) => {
            r.fail(2, &format!("{what} {}: {e}", req.lport_name))?;
            Ok(None)
        }
    }
}

fn drive(p: &Provider, opts: &CheckOptions, r: &mut Reporter<'_>) -> io::Result<()> {
    r.ok("init")?;
    let maintained = p.maintained_options();
    r.ok(&format!(
        "maintained interface options: {}",
        if maintained.is_empty() {
            "(none)".to_owned()
        } else {
            maintained.join(", ")
        }
    ))?;
    r.ok(&format!("run -> {}", p.run()))?;

    let t = p.type_name();
    let first = sample(t, "lsp1", opts);
    let created = create(p, &first, "CREATE", r)?;
    create(
        p,
        &sample(t, "a-logical-port-name-longer-than-ifnamsiz", opts),
        "CREATE",
        r,
    )?;

    let mut existing = first.clone();
    if let Some(out) = &created {
        // The update path: the interface exists, with an option another
        // program maintains next to the provider's own.
        let mut options: Vec<(String, String)> = out.options.iter().cloned().collect();
        options.push(("check-foreign-option".into(), "kept".into()));
        existing.iface = Some(ExistingIface {
            name: out.name.clone(),
            iface_type: out.iface_type.clone().unwrap_or_default(),
            options,
        });
        create(p, &existing, "UPDATE", r)?;
    }

    // A transaction that did not commit: ctx_destroy without finish, and a
    // removal that is simply dropped.
    match p.prepare_create(&existing) {
        Ok(op) => {
            drop(op);
            r.ok("CREATE lsp1 (not committed): prepare, ctx_destroy without finish")?;
        }
        Err(PrepareError::Declined) => {}
        Err(e) => r.fail(2, &format!("CREATE lsp1 (not committed): {e}"))?,
    }
    match p.prepare_remove(&existing) {
        Ok(op) => {
            drop(op);
            r.ok("REMOVE lsp1 (not committed): prepare (ctx_out NULL) -> true, no finish")?;
        }
        Err(PrepareError::Declined) => {}
        Err(e) => r.fail(2, &format!("REMOVE lsp1 (not committed): {e}"))?,
    }

    match p.prepare_remove(&existing) {
        Ok(op) => {
            op.finish();
            r.ok("REMOVE lsp1: prepare (ctx_out NULL) -> true, finish")?;
        }
        Err(PrepareError::Declined) => r.note("REMOVE lsp1: declined (prepare returned false)")?,
        Err(e) => r.fail(2, &format!("REMOVE lsp1: {e}"))?,
    }
    r.ok(&format!("run -> {}", p.run()))
}
