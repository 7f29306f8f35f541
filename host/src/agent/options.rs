//! What `vif-plug-host run` is told on its command line.

use crate::ovsdb::Remote;
use std::sync::Arc;
use std::time::Duration;

/// Default local database remote, as ovn-controller has it.
pub const DEFAULT_OVS_REMOTE: &str = "unix:/var/run/openvswitch/db.sock";
/// Default integration bridge.
pub const DEFAULT_BRIDGE: &str = "br-int";

/// Agent settings. `None` means "as ovn-controller would": read from the
/// local database's `Open_vSwitch` row.
#[derive(Clone)]
pub struct AgentOptions {
    /// The local Open vSwitch database.
    pub ovs_remote: Vec<Remote>,
    /// The Southbound database; default `external_ids:ovn-remote`.
    pub sb_remote: Option<Vec<Remote>>,
    /// Our chassis name; default `external_ids:system-id`.
    pub chassis: Option<String>,
    /// Integration bridge; default `external_ids:ovn-bridge`, else br-int.
    pub bridge: Option<String>,
    /// TLS for `ssl:` remotes.
    pub tls: Option<Arc<crate::ovsdb::stream::TlsSource>>,
    /// `--probe-interval` in milliseconds, if given (0: off). It sets the
    /// probe of both databases; without it the Southbound's follows
    /// `external_ids:ovn-remote-probe-interval` (see [`super::probe`]) and
    /// the local database's is 5000 ms on TCP/TLS.
    pub probe_interval: Option<u64>,
    /// How often providers' `run` is called while idle.
    pub provider_run_interval: Duration,
    /// After connecting to a Southbound that is already populated, how
    /// long to wait before anything is unplugged, so that ovn-northd can
    /// bring a restarted or restored database up to date first.
    pub unplug_settle: Duration,
}
