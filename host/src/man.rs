//! The manual page, vif-plug-host(1), generated from the command-line
//! definition so that it always says what `--help` says.
//!
//! One page for the whole command. Readers of `man vif-plug-host` look for
//! the agent's options (`run`) there, as they do for ovs-vsctl(8) or
//! ovn-controller(8), so every visible subcommand gets a subsection of its
//! own with its synopsis, description and options, instead of a page per
//! subcommand (clap_mangen's default, git's style) that a reader would first
//! have to know to ask for.

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vif_plug_host::loader::DEFAULT_PROVIDER_DIR;

use crate::cli::Cli;

/// The page's file name.
pub const FILE_NAME: &str = "vif-plug-host.1";

/// Writes the page for this program's command line, in roff.
pub fn render(w: &mut dyn Write) -> io::Result<()> {
    render_command(Cli::command(), w)
}

/// Writes the page for `cmd` and its visible subcommands, in roff.
pub fn render_command(cmd: clap::Command, w: &mut dyn Write) -> io::Result<()> {
    let mut page = Vec::new();
    render_parts(cmd, &mut page)?;
    w.write_all(&preamble_once(&page))
}

/// The page in parts, each written with roff's preamble (the definition of
/// the apostrophe string).
fn render_parts(cmd: clap::Command, w: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let man = Man::new(cmd.clone()).title(cmd.get_name().to_uppercase());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;

    Roff::new().control("SH", ["COMMANDS"]).to_writer(w)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        Roff::new().control("SS", [name]).to_writer(w)?;
        let page = Man::new(sub.clone());
        subsection(w, None, |b| page.render_synopsis_section(b))?;
        subsection(w, None, |b| page.render_description_section(b))?;
        subsection(w, Some("Options:"), |b| page.render_options_section(b))?;
    }

    files_and_environment().to_writer(w)?;
    man.render_version_section(w)
}

/// `page` with the roff preamble's lines only where they first appear: each
/// part rendered on its own repeats them. roff escapes a text line that
/// starts with a dot, so these lines are never text.
fn preamble_once(page: &[u8]) -> Vec<u8> {
    let preamble = Roff::new().render();
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut out = Vec::with_capacity(page.len());
    for line in page.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if preamble.lines().any(|p| p.as_bytes() == text) {
            if seen.contains(&text) {
                continue;
            }
            seen.push(text);
        }
        out.extend_from_slice(line);
    }
    out
}

/// Writes one part of a subcommand's subsection: what `render` writes,
/// without its `.SH` headings (a man page has no level below `.SS`), as a
/// paragraph of its own, after `label` if given.
fn subsection(
    w: &mut dyn Write,
    label: Option<&str>,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    let mut head = Roff::new();
    head.control("PP", []);
    if let Some(label) = label {
        head.text([roman(label)]);
    }
    head.to_writer(w)?;
    // roff escapes a text line that starts with a dot: these are headings.
    for line in buf.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b".SH ") {
            w.write_all(line)?;
        }
    }
    Ok(())
}

/// CONTROL COMMANDS, ENVIRONMENT, FILES and SEE ALSO: what `--help`
/// does not say. The control commands come from the control socket's own
/// table, so the page lists exactly what the agent answers.
fn files_and_environment() -> Roff {
    let mut r = Roff::new();
    let entry = |r: &mut Roff, term: &str, text: &str| {
        r.control("TP", []).text([bold(term)]).text([roman(text)]);
    };
    r.control("SH", ["CONTROL COMMANDS"]);
    r.text([roman(
        "While run is running, ovs-appctl -t vif-plug-host COMMAND [ARG...] sends it these \
         commands through its control socket (see --rundir and --unixctl).",
    )]);
    for c in vif_plug_host::unixctl::protocol::COMMANDS {
        let term = if c.usage.is_empty() {
            c.name.to_owned()
        } else {
            format!("{} {}", c.name, c.usage)
        };
        entry(&mut r, &term, c.help);
    }
    r.control("SH", ["ENVIRONMENT"]);
    entry(
        &mut r,
        "RUST_LOG",
        "Log level, globally or per target: error, warn, info (the default), debug or trace; \
         for example info,provider::representor=debug. Logs go to standard error.",
    );
    entry(
        &mut r,
        "OVS_RUNDIR",
        "Where run puts its pidfile and control socket when --rundir is not given.",
    );
    entry(
        &mut r,
        "NOTIFY_SOCKET",
        "Set by systemd for Type=notify services: run sends READY=1 once both the local \
         database and the Southbound are read, STATUS= lines with its port counts, and \
         STOPPING=1. Provider worker processes are not given it.",
    );
    r.control("SH", ["FILES"]);
    entry(
        &mut r,
        DEFAULT_PROVIDER_DIR,
        "Provider libraries (*.so) loaded when neither --provider nor --provider-dir is given. \
         A library and every directory above it must be owned by root (or the agent's user) \
         and not writable by group or others.",
    );
    entry(
        &mut r,
        "/var/run/openvswitch/vif-plug-host.pid",
        "The agent's pidfile (directory: --rundir).",
    );
    entry(
        &mut r,
        "/var/run/openvswitch/vif-plug-host.PID.ctl",
        "The agent's control socket, for ovs-appctl -t vif-plug-host (see --unixctl).",
    );
    entry(
        &mut r,
        "/etc/default/vif-plug-host",
        "In the Debian package: VIF_PLUG_HOST_OPTS, the options the systemd unit passes to run.",
    );
    r.control("SH", ["SEE ALSO"]);
    r.text([roman(
        "ovn-controller(8), ovs-vswitchd(8), ovsdb-server(1), ovs-appctl(8), \
         and the documentation in /usr/share/doc/vif-plug-host \
         (operations.md, architecture.md, writing-a-provider.md).",
    )]);
    r
}

/// `vif-plug-host man [DIR]`: the page on standard output, or written to
/// DIR/vif-plug-host.1 (its path then printed).
pub fn main(dir: Option<PathBuf>) -> ExitCode {
    let written = match &dir {
        None => render(&mut io::stdout().lock()).map(|()| None),
        Some(dir) => write_to(dir).map(Some),
    };
    match written {
        Ok(Some(path)) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vif-plug-host: writing the manual page: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes the page to `dir`/vif-plug-host.1 and returns that path.
pub fn write_to(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    let mut page = Vec::new();
    render(&mut page)?;
    fs::write(&path, page)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(path)
}
