//! `vif-plug-host man`, the manual page the Debian package ships: it covers
//! everything `--help` shows, and groff reads it without a warning.

use std::process::{Command, Output};
use testkit::private_dir;

fn host(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vif-plug-host {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(host(args).stdout).unwrap()
}

/// The subcommands `vif-plug-host --help` lists (hidden ones are not).
fn visible_subcommands() -> Vec<String> {
    let help = stdout(&["--help"]);
    let commands = help.split("Commands:\n").nth(1).expect("a Commands: list");
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .filter(|c| c != "help")
        .collect()
}

/// Long options in `--help` output, as roff writes them (`\-\-name`).
fn long_options(help: &str) -> Vec<String> {
    help.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .filter_map(|w| {
            w.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
        })
        .map(|w| w.trim_end_matches('-'))
        .filter(|w| !w.is_empty())
        .map(|w| format!("\\fB\\-\\-{}\\fR", w.replace('-', "\\-")))
        .collect()
}

#[test]
fn the_page_has_every_subcommand_and_option_that_help_shows() {
    let page = stdout(&["man"]);
    assert!(page.contains("\n.TH VIF-PLUG-HOST 1 "), "{page}");
    let subcommands = visible_subcommands();
    assert_eq!(subcommands, ["check", "run", "list-providers"]);
    for sub in &subcommands {
        assert!(
            page.contains(&format!(".SS \"vif-plug-host {sub}\"\n")),
            "no subsection for {sub}:\n{page}"
        );
        for opt in long_options(&stdout(&[sub, "--help"])) {
            assert!(page.contains(&opt), "{sub}: {opt} is not in the page");
        }
    }
    for hidden in ["worker", "man"] {
        assert!(!page.contains(&format!("vif-plug-host {hidden}")), "{page}");
    }
    for section in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "\"CONTROL COMMANDS\"",
        "ENVIRONMENT",
        "FILES",
        "\"SEE ALSO\"",
    ] {
        assert!(page.contains(&format!("\n.SH {section}\n")), "{section}");
    }
    // Every command the control socket answers, from its own table.
    for c in vif_plug_host::unixctl::protocol::COMMANDS {
        let name = format!("\\fB{}", c.name.replace('-', "\\-"));
        assert!(page.contains(&name), "{} is not in the page", c.name);
    }
    assert!(page.contains("NOTIFY_SOCKET"), "{page}");
    // Each part is rendered on its own; the preamble is kept once.
    assert_eq!(page.matches(".ds Aq \\(aq").count(), 1, "{page}");
}

#[test]
fn groff_reads_the_page_without_a_warning() {
    let page = stdout(&["man"]);
    let dir = private_dir();
    let file = dir.path().join("vif-plug-host.1");
    std::fs::write(&file, &page).unwrap();
    let out = match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("groff not run ({e}): install groff-base");
            return;
        }
        Err(e) => panic!("groff: {e}"),
    };
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn with_a_directory_the_page_is_written_there_and_its_path_printed() {
    let dir = private_dir();
    let printed = stdout(&["man", dir.path().to_str().unwrap()]);
    let file = dir.path().join("vif-plug-host.1");
    assert_eq!(printed.trim_end(), file.display().to_string());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout(&["man"]));
}

#[test]
fn an_unwritable_directory_is_an_error_naming_the_file() {
    let dir = private_dir();
    let missing = dir.path().join("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_vif-plug-host"))
        .args(["man", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing/vif-plug-host.1"), "{err}");
}
