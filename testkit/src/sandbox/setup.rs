//! Bringing a sandbox up: its databases, the daemons in order, the
//! integration bridge and the chassis configuration `ovn-controller` reads.

use super::process::run_output;
use super::{Daemon, Sandbox};

impl Sandbox {
    /// Creates the databases and starts the daemons, each after those it
    /// connects to.
    pub(super) fn bring_up(&self) -> Result<(), String> {
        for daemon in [Daemon::NbDb, Daemon::OvsDb]
            .into_iter()
            .chain(self.sb_members())
        {
            self.create_database(daemon)?;
        }
        self.start_daemon(Daemon::NbDb)?;
        for m in self.sb_members() {
            self.start_daemon(m)?;
        }
        self.wait_sb_cluster()?;
        self.start_daemon(Daemon::Northd)?;
        self.start_daemon(Daemon::OvsDb)?;
        self.vsctl(&["--no-wait", "init"])
            .map_err(|e| format!("initialising the Open_vSwitch database: {e}"))?;
        self.start_daemon(Daemon::Vswitchd)?;
        self.create_integration_bridge()?;
        self.configure_chassis()?;
        if self.opts.start_ovn_controller {
            self.start_daemon(Daemon::OvnController)?;
        }
        Ok(())
    }

    pub(super) fn create_database(&self, daemon: Daemon) -> Result<(), String> {
        let (file, schema) = daemon.database().expect("a database server");
        let mut cmd = self.command(self.install.binary("ovsdb-tool"));
        let raft = |i: usize| format!("tcp:127.0.0.1:{}", self.raft_ports[i]);
        match (self.opts.sb_cluster, daemon) {
            (true, Daemon::SbDb) => cmd
                .arg("create-cluster")
                .arg(self.file(file))
                .arg(self.install.schema(schema))
                .arg(raft(0)),
            (true, Daemon::SbDb2 | Daemon::SbDb3) => {
                let i = if daemon == Daemon::SbDb2 { 1 } else { 2 };
                cmd.arg("join-cluster")
                    .arg(self.file(file))
                    .arg("OVN_Southbound")
                    .arg(raft(i))
                    .arg(raft(0))
            }
            _ => cmd
                .arg("create")
                .arg(self.file(file))
                .arg(self.install.schema(schema)),
        };
        run_output(&mut cmd).map(drop)
    }

    /// Creates `br-int` as `ovn-controller` expects it, and checks that
    /// `ovs-vswitchd` really runs it on the userspace datapath: the bridge's
    /// own interface must get the local OpenFlow port and no error.
    pub(super) fn create_integration_bridge(&self) -> Result<(), String> {
        self.vsctl(&[
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
            "fail_mode=secure",
            "other_config:disable-in-band=true",
        ])
        .map_err(|e| self.daemon_error(Daemon::Vswitchd, &format!("creating br-int: {e}")))?;
        let ofport = self.vsctl(&["get", "Interface", "br-int", "ofport"]);
        let error = self.vsctl(&["get", "Interface", "br-int", "error"]);
        match (&ofport, &error) {
            (Ok(ofport), Ok(error)) if ofport == "65534" && error == "[]" => Ok(()),
            _ => Err(self.daemon_error(
                Daemon::Vswitchd,
                &format!(
                    "br-int does not work on the netdev datapath \
                     (ofport {ofport:?}, error {error:?})"
                ),
            )),
        }
    }

    /// Sets the Open_vSwitch external IDs `ovn-controller` reads its
    /// configuration from.
    pub(super) fn configure_chassis(&self) -> Result<(), String> {
        let ids = [
            ("system-id", self.opts.chassis_name.clone()),
            ("ovn-remote", self.sb_remote()),
            ("ovn-encap-type", "geneve".to_owned()),
            ("ovn-encap-ip", "127.0.0.1".to_owned()),
            ("ovn-bridge", "br-int".to_owned()),
            ("ovn-bridge-datapath-type", "netdev".to_owned()),
        ];
        // Values are quoted because OVSDB syntax would otherwise read a
        // remote's `:` specially.
        let settings: Vec<String> = ids
            .iter()
            .map(|(key, value)| format!("external_ids:{key}={}", ovsdb_string(value)))
            .collect();
        let mut args = vec!["set", "Open_vSwitch", "."];
        args.extend(settings.iter().map(String::as_str));
        self.vsctl(&args)
            .map(drop)
            .map_err(|e| format!("configuring the chassis: {e}"))
    }
}

/// Quotes `s` as an OVSDB string.
fn ovsdb_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovsdb_strings_are_quoted() {
        assert_eq!(ovsdb_string("unix:/a b"), "\"unix:/a b\"");
        assert_eq!(ovsdb_string("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
