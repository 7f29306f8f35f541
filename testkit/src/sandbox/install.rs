//! Finding the Open vSwitch and OVN binaries and schemas a sandbox runs,
//! and naming the Debian packages when some are missing.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The command that installs everything the sandbox needs on Debian.
pub(super) const APT_HINT: &str = "apt-get install openvswitch-switch ovn-central ovn-host";

/// Directories searched for binaries after `PATH`: `ovsdb-server` and
/// `ovs-vswitchd` live in `/usr/sbin`, which is not on an ordinary user's
/// `PATH`.
pub(super) const EXTRA_BIN_DIRS: &[&str] = &[
    "/usr/sbin",
    "/sbin",
    "/usr/local/sbin",
    "/usr/bin",
    "/usr/local/bin",
];

/// Where the database schemas may be installed.
pub(super) const SCHEMA_DIRS: &[&str] = &["/usr/share", "/usr/local/share"];

/// One of the daemons a [`Sandbox`](super::Sandbox) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Daemon {
    /// `ovsdb-server` for the OVN Northbound database (`nb.sock`).
    NbDb,
    /// `ovsdb-server` for the OVN Southbound database (`sb.sock`); with
    /// [`super::SandboxOptions::sb_cluster`], the first member of its Raft
    /// cluster.
    SbDb,
    /// The second member of a clustered Southbound (`sb2.sock`).
    SbDb2,
    /// The third member of a clustered Southbound (`sb3.sock`).
    SbDb3,
    /// `ovn-northd`, translating Northbound into Southbound.
    Northd,
    /// `ovsdb-server` for the local Open_vSwitch database (`db.sock`).
    OvsDb,
    /// `ovs-vswitchd`, running `br-int` on the userspace datapath.
    Vswitchd,
    /// `ovn-controller`, the chassis.
    OvnController,
}

impl Daemon {
    /// Every daemon, in start order.
    pub const ALL: [Daemon; 8] = [
        Daemon::NbDb,
        Daemon::SbDb,
        Daemon::SbDb2,
        Daemon::SbDb3,
        Daemon::Northd,
        Daemon::OvsDb,
        Daemon::Vswitchd,
        Daemon::OvnController,
    ];

    /// The program this daemon runs.
    pub fn program(self) -> &'static str {
        match self {
            Daemon::NbDb | Daemon::SbDb | Daemon::SbDb2 | Daemon::SbDb3 | Daemon::OvsDb => {
                "ovsdb-server"
            }
            Daemon::Northd => "ovn-northd",
            Daemon::Vswitchd => "ovs-vswitchd",
            Daemon::OvnController => "ovn-controller",
        }
    }

    /// Base name of the daemon's files in the sandbox directory
    /// (`<stem>.pid`, `<stem>.log`). The three database servers get short
    /// names of their own; the others keep their program names so that
    /// `ovs-appctl -t ovs-vswitchd` and friends find them the usual way when
    /// `OVS_RUNDIR`/`OVN_RUNDIR` point at the sandbox.
    pub(super) fn stem(self) -> &'static str {
        match self {
            Daemon::NbDb => "nb",
            Daemon::SbDb => "sb",
            Daemon::SbDb2 => "sb2",
            Daemon::SbDb3 => "sb3",
            Daemon::OvsDb => "db",
            Daemon::Northd => "ovn-northd",
            Daemon::Vswitchd => "ovs-vswitchd",
            Daemon::OvnController => "ovn-controller",
        }
    }

    /// The database file and schema of a database server.
    pub(super) fn database(self) -> Option<(&'static str, Schema)> {
        match self {
            Daemon::NbDb => Some(("nb.db", Schema::Nb)),
            Daemon::SbDb => Some(("sb.db", Schema::Sb)),
            Daemon::SbDb2 => Some(("sb2.db", Schema::Sb)),
            Daemon::SbDb3 => Some(("sb3.db", Schema::Sb)),
            Daemon::OvsDb => Some(("conf.db", Schema::Vswitch)),
            _ => None,
        }
    }
}

/// The database schemas the sandbox creates databases from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Schema {
    Nb,
    Sb,
    Vswitch,
}

impl Schema {
    /// Path below a share directory, and the package installing it.
    pub(super) fn location(self) -> (&'static str, &'static str) {
        match self {
            Schema::Nb => ("ovn/ovn-nb.ovsschema", "ovn-central"),
            Schema::Sb => ("ovn/ovn-sb.ovsschema", "ovn-central"),
            Schema::Vswitch => ("openvswitch/vswitch.ovsschema", "openvswitch-switch"),
        }
    }
}

/// Every binary the sandbox runs, with the Debian package to install for it
/// (`ovsdb-server`, `ovsdb-tool` and `ovs-appctl` come from
/// openvswitch-common and the ctl tools from ovn-common, which those
/// packages pull in).
pub(super) const BINARIES: &[(&str, &str)] = &[
    ("ovsdb-tool", "openvswitch-switch"),
    ("ovsdb-server", "openvswitch-switch"),
    ("ovs-vswitchd", "openvswitch-switch"),
    ("ovs-vsctl", "openvswitch-switch"),
    ("ovs-appctl", "openvswitch-switch"),
    ("ovn-northd", "ovn-central"),
    ("ovn-nbctl", "ovn-central"),
    ("ovn-sbctl", "ovn-central"),
    ("ovn-controller", "ovn-host"),
];

/// Resolved paths of the binaries and schemas.
#[derive(Debug)]
pub(super) struct Installation {
    binaries: HashMap<&'static str, PathBuf>,
    schemas: [PathBuf; 3],
}

impl Installation {
    /// Finds everything on `PATH` and in the usual system directories, or
    /// names everything missing.
    pub(super) fn locate() -> Result<Installation, String> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let bin_dirs: Vec<PathBuf> = std::env::split_paths(&path)
            .chain(EXTRA_BIN_DIRS.iter().map(PathBuf::from))
            .collect();
        let share_dirs: Vec<PathBuf> = SCHEMA_DIRS.iter().map(PathBuf::from).collect();
        Self::locate_in(&bin_dirs, &share_dirs)
    }

    /// Finds the binaries in `bin_dirs` and the schemas in `share_dirs`.
    pub(super) fn locate_in(
        bin_dirs: &[PathBuf],
        share_dirs: &[PathBuf],
    ) -> Result<Installation, String> {
        let mut missing = Vec::new();
        let mut binaries = HashMap::new();
        for &(name, package) in BINARIES {
            match bin_dirs
                .iter()
                .map(|dir| dir.join(name))
                .find(|p| is_executable(p))
            {
                Some(path) => {
                    binaries.insert(name, path);
                }
                None => missing.push(format!("{name} (Debian package {package})")),
            }
        }
        let mut schemas = Vec::new();
        for schema in [Schema::Nb, Schema::Sb, Schema::Vswitch] {
            let (rel, package) = schema.location();
            match share_dirs
                .iter()
                .map(|dir| dir.join(rel))
                .find(|p| p.is_file())
            {
                Some(path) => schemas.push(path),
                None => missing.push(format!("{rel} (Debian package {package})")),
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "Open vSwitch/OVN sandbox: missing {}; install with `{APT_HINT}` \
                 (tests that need OVS and OVN fail rather than skip without them)",
                missing.join(", ")
            ));
        }
        let schemas = schemas.try_into().expect("three schemas");
        Ok(Installation { binaries, schemas })
    }

    pub(super) fn binary(&self, name: &str) -> &Path {
        &self.binaries[name]
    }

    pub(super) fn schema(&self, schema: Schema) -> &Path {
        // `locate` fills `schemas` in declaration order.
        &self.schemas[schema as usize]
    }
}

/// Checks that every binary and schema the sandbox needs is installed.
///
/// The error names each missing file and the Debian package providing it.
pub fn check_prerequisites() -> Result<(), String> {
    Installation::locate().map(drop)
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_prerequisites_are_named_with_their_packages() {
        let empty = tempfile::tempdir().unwrap();
        let err = Installation::locate_in(&[empty.path().to_owned()], &[empty.path().to_owned()])
            .unwrap_err();
        for (name, package) in BINARIES {
            assert!(
                err.contains(&format!("{name} (Debian package {package})")),
                "{err}"
            );
        }
        assert!(
            err.contains("ovn/ovn-sb.ovsschema (Debian package ovn-central)"),
            "{err}"
        );
        assert!(err.contains(APT_HINT), "{err}");
    }
}
