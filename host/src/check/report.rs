//! What `check` writes, and what it hears from providers: the report's
//! lines and totals, and the provider error lines (including the SDK's
//! caught-panic reports) recorded by the program's logger.

use std::io::{self, Write};

/// Most untagged provider error lines kept between two steps.
const MAX_HEARD: usize = 1024;

/// Error lines providers logged and nobody reported yet; `check` quotes
/// them in its report, so a failure reads with the provider's own reason.
static PROVIDER_ERRORS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Wraps the program's logger to remember the providers' error lines
/// (those a worker forwards are logged in this process under the same
/// target, so they are seen here too).
pub struct RecordingLogger<L>(pub L);

impl<L: log::Log> log::Log for RecordingLogger<L> {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        self.0.enabled(m)
            || (m.level() == log::Level::Error && m.target().starts_with("provider::"))
    }

    fn log(&self, r: &log::Record<'_>) {
        if r.level() == log::Level::Error && r.target().starts_with("provider::") {
            let line = r.args().to_string();
            let mut heard = PROVIDER_ERRORS.lock().unwrap_or_else(|e| e.into_inner());
            // A provider flooding error lines within one step must not grow
            // check without bound: past the cap only tagged lines, which
            // are violations, are kept.
            if heard.len() < MAX_HEARD || violation(&line).is_some() {
                heard.push((r.target().trim_start_matches("provider::").to_owned(), line));
            }
        }
        if self.0.enabled(r.metadata()) {
            self.0.log(r);
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// Takes the provider error lines recorded so far: (provider type, text).
pub(crate) fn take_provider_errors() -> Vec<(String, String)> {
    std::mem::take(&mut *PROVIDER_ERRORS.lock().unwrap_or_else(|e| e.into_inner()))
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
    /// Warnings (slow callbacks).
    pub warnings: usize,
    /// `port_prepare` answers received and validated.
    pub answers: usize,
    /// Of those, how many declined (returned false).
    pub declined: usize,
}

impl Summary {
    /// True when nothing was violated.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// Writes the report lines and counts violations.
pub(crate) struct Reporter<'w> {
    pub out: &'w mut dyn Write,
    pub summary: Summary,
    /// The provider panicked during the current step: its "ok" lines are
    /// not written (the FAIL says what happened).
    pub step_failed: bool,
}

impl Reporter<'_> {
    pub fn line(&mut self, indent: usize, tag: &str, text: &str) -> io::Result<()> {
        writeln!(
            self.out,
            "{:indent$}{tag:<5} {}",
            "",
            // Names and messages come from the provider: a bidirectional
            // control in one must not make a FAIL line read otherwise.
            crate::text::escape_bidi(text),
            indent = indent * 2
        )
    }
    pub fn ok(&mut self, text: &str) -> io::Result<()> {
        if self.step_failed {
            return Ok(());
        }
        self.line(2, "ok", text)
    }
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        self.line(2, "note", text)
    }
    pub fn warn(&mut self, text: &str) -> io::Result<()> {
        self.summary.warnings += 1;
        self.line(2, "WARN", text)
    }
    pub fn fail(&mut self, indent: usize, text: &str) -> io::Result<()> {
        self.summary.violations += 1;
        self.line(indent, "FAIL", text)
    }

    /// A FAIL for each tagged line heard since the last step (see
    /// [`violation`]); the other lines were logged already and are dropped.
    pub fn report_violations(&mut self, what: &str) -> io::Result<()> {
        for (provider, line) in take_provider_errors() {
            if let Some(v) = violation(&line) {
                self.step_failed = true;
                self.fail(2, &format!("{what}: provider {provider:?} {v}"))?;
            }
        }
        Ok(())
    }
}

/// What a tagged provider error line reports, as the rest of a FAIL line
/// after the provider's name: a panic the SDK caught
/// ([`vif_plug_abi::CAUGHT_PANIC_TAG`]), an answer it could not pass on
/// ([`vif_plug_abi::BAD_ANSWER_TAG`]), a breach the host survived
/// ([`crate::provider::CONTRACT_TAG`]). `None` for any other line.
pub(crate) fn violation(line: &str) -> Option<String> {
    if let Some(panic) = line.strip_prefix(vif_plug_abi::CAUGHT_PANIC_TAG) {
        Some(format!("panicked (caught by the SDK): {panic}"))
    } else if let Some(bad) = line.strip_prefix(vif_plug_abi::BAD_ANSWER_TAG) {
        Some(format!(
            "gave an answer the SDK could not pass to the host, so it declined instead: {bad}"
        ))
    } else {
        line.strip_prefix(crate::provider::CONTRACT_TAG)
            .map(|breach| format!("broke the contract: {breach}"))
    }
}
