//! Typed views of the rows the agent monitors. Every table and column the
//! agent reads is spelt here once, and the monitor requests list the same
//! constants, so a misspelt column is a compile error (or a failing schema
//! test, `every_monitored_column_is_in_the_installed_schemas`), never an
//! empty value that reads as "not requested here".
//!
//! The views borrow the replica's rows; nothing is copied until a caller
//! asks for an owned value. Column meanings follow `ovn-sb(5)` and
//! `ovs-vswitchd.conf.db(5)`.

use crate::ovsdb::replica::{col, Row};
use crate::ovsdb::schema::Required;
use crate::ovsdb::{Datum, Schema, Uuid};

/// A table the agent monitors: its name and the columns it reads.
pub trait Table {
    /// The table name.
    const TABLE: &'static str;
    /// Columns monitored. Columns a server's schema lacks are left out of
    /// the request and read as their defaults (see [`monitored_columns`]).
    const COLUMNS: &'static [&'static str];
}

/// The columns of `T` that `schema` has, for a monitor request: an older
/// server that lacks an optional column (e.g. OVN before 22.06 has no
/// `requested_additional_chassis`) is still monitored.
pub fn monitored_columns<T: Table>(schema: Option<&Schema>) -> Vec<&'static str> {
    T::COLUMNS
        .iter()
        .copied()
        .filter(|c| schema.is_none_or(|s| s.kind(T::TABLE, c).is_some()))
        .collect()
}

macro_rules! view {
    ($(#[$m:meta])* $name:ident = $table:literal [$($col:ident = $cname:literal),* $(,)?]) => {
        $(#[$m])*
        #[derive(Clone, Copy)]
        pub struct $name<'a>(pub &'a Row);

        impl $name<'_> {
            $(
                #[doc = concat!("Column `", $cname, "`.")]
                pub const $col: &'static str = $cname;
            )*
        }

        impl Table for $name<'_> {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$($cname),*];
        }
    };
}

fn string(d: &Datum) -> &str {
    d.as_str().unwrap_or("")
}

/// The Southbound columns the agent cannot work without (every monitored
/// one but `requested_additional_chassis`, which only live migration
/// needs), with the OVN release that brought each.
pub const SB_REQUIRED: &[Required] = &[
    Required {
        table: "Port_Binding",
        column: "logical_port",
        since: "OVN 2.5",
    },
    Required {
        table: "Port_Binding",
        column: "type",
        since: "OVN 2.5",
    },
    Required {
        table: "Port_Binding",
        column: "options",
        since: "OVN 2.5",
    },
    Required {
        table: "Port_Binding",
        column: "requested_chassis",
        since: "OVN 21.12",
    },
    Required {
        table: "Port_Binding",
        column: "mac",
        since: "OVN 2.5",
    },
    Required {
        table: "Chassis",
        column: "name",
        since: "OVN 2.5",
    },
    Required {
        table: "Chassis",
        column: "hostname",
        since: "OVN 2.7",
    },
    Required {
        table: "SB_Global",
        column: "options",
        since: "OVN 2.7",
    },
];

/// The local database columns the agent cannot work without.
pub const LOCAL_REQUIRED: &[Required] = &[
    Required {
        table: "Interface",
        column: "mtu_request",
        since: "Open vSwitch 2.6",
    },
    Required {
        table: "Open_vSwitch",
        column: "dpdk_initialized",
        since: "Open vSwitch 2.10",
    },
    Required {
        table: "Interface",
        column: "external_ids",
        since: "Open vSwitch 1.0",
    },
    Required {
        table: "Bridge",
        column: "datapath_type",
        since: "Open vSwitch 1.0",
    },
];

// ---- OVN Southbound -------------------------------------------------------

view!(
    /// `Port_Binding`: one logical port (ovn-sb(5)).
    PortBinding = "Port_Binding" [
        LOGICAL_PORT = "logical_port",
        TYPE = "type",
        OPTIONS = "options",
        REQUESTED_CHASSIS = "requested_chassis",
        REQUESTED_ADDITIONAL_CHASSIS = "requested_additional_chassis",
        MAC = "mac",
    ]
);

impl<'a> PortBinding<'a> {
    /// The logical port's name.
    pub fn logical_port(self) -> &'a str {
        string(col(self.0, Self::LOGICAL_PORT))
    }
    /// The binding type: `""` for a VIF.
    pub fn ptype(self) -> &'a str {
        string(col(self.0, Self::TYPE))
    }
    /// `options`, copied from the Northbound `Logical_Switch_Port`.
    pub fn options(self) -> &'a Datum {
        col(self.0, Self::OPTIONS)
    }
    /// The chassis ovn-northd resolved from the first name in
    /// `options:requested-chassis` (a weak reference: empty when that
    /// chassis row does not exist).
    pub fn requested_chassis(self) -> Option<Uuid> {
        col(self.0, Self::REQUESTED_CHASSIS).as_uuid()
    }
    /// The chassis resolved from the other names (OVN 22.06 and later).
    pub fn requested_additional_chassis(self) -> impl Iterator<Item = Uuid> + 'a {
        col(self.0, Self::REQUESTED_ADDITIONAL_CHASSIS).uuids()
    }
    /// `mac`: each entry a MAC and the port's addresses, or a word
    /// (`router`, `unknown`, `dynamic`).
    pub fn macs(self) -> impl Iterator<Item = &'a str> + 'a {
        col(self.0, Self::MAC)
            .atoms()
            .iter()
            .filter_map(|a| a.as_str())
    }
}

view!(
    /// `Chassis`: a hypervisor or gateway (ovn-sb(5)).
    Chassis = "Chassis" [NAME = "name", HOSTNAME = "hostname"]
);

impl<'a> Chassis<'a> {
    /// Its name (`external_ids:system-id` of that chassis).
    pub fn name(self) -> &'a str {
        string(col(self.0, Self::NAME))
    }
    /// Its hostname, which `requested-chassis` may name instead.
    pub fn hostname(self) -> &'a str {
        string(col(self.0, Self::HOSTNAME))
    }
}

view!(
    /// `SB_Global`: the Southbound's single global row (ovn-sb(5)).
    SbGlobal = "SB_Global" [OPTIONS = "options"]
);

impl<'a> SbGlobal<'a> {
    /// `options:northd_internal_version`, which ovn-northd writes in the
    /// transaction that populates the database: its presence tells a
    /// database that ovn-northd has filled from one that was just created
    /// (or only initialised with `ovn-sbctl init`).
    pub fn northd_internal_version(self) -> Option<&'a str> {
        col(self.0, Self::OPTIONS)
            .map_get("northd_internal_version")
            .filter(|v| !v.is_empty())
    }
}

// ---- Open vSwitch ---------------------------------------------------------

view!(
    /// `Open_vSwitch`: the local database's single global row.
    OpenVswitch = "Open_vSwitch" [
        EXTERNAL_IDS = "external_ids",
        DPDK_INITIALIZED = "dpdk_initialized",
    ]
);

impl<'a> OpenVswitch<'a> {
    /// A non-empty `external_ids` value, as ovn-controller reads its
    /// settings (`system-id`, `ovn-remote`, `ovn-bridge`).
    pub fn external_id(self, key: &str) -> Option<&'a str> {
        col(self.0, Self::EXTERNAL_IDS)
            .map_get(key)
            .filter(|v| !v.is_empty())
    }
    /// Whether DPDK has been initialised.
    pub fn dpdk_initialized(self) -> bool {
        col(self.0, Self::DPDK_INITIALIZED)
            .as_bool()
            .unwrap_or(false)
    }
}

view!(
    /// `Bridge`.
    Bridge = "Bridge" [NAME = "name", DATAPATH_TYPE = "datapath_type", PORTS = "ports"]
);

impl<'a> Bridge<'a> {
    /// Its name.
    pub fn name(self) -> &'a str {
        string(col(self.0, Self::NAME))
    }
    /// `datapath_type` (`""` for the default, `netdev` for userspace).
    pub fn datapath_type(self) -> &'a str {
        string(col(self.0, Self::DATAPATH_TYPE))
    }
    /// Its ports.
    pub fn ports(self) -> impl Iterator<Item = Uuid> + 'a {
        col(self.0, Self::PORTS).uuids()
    }
    /// The facts that, when they change, change what providers answer.
    pub fn identity(self) -> (&'a str, &'a str) {
        (self.name(), self.datapath_type())
    }
}

view!(
    /// `Port`.
    Port = "Port" [NAME = "name", INTERFACES = "interfaces"]
);

impl<'a> Port<'a> {
    /// Its name.
    pub fn name(self) -> &'a str {
        string(col(self.0, Self::NAME))
    }
    /// Its interfaces.
    pub fn interfaces(self) -> impl Iterator<Item = Uuid> + 'a {
        col(self.0, Self::INTERFACES).uuids()
    }
}

view!(
    /// `Interface`.
    Interface = "Interface" [
        NAME = "name",
        TYPE = "type",
        OPTIONS = "options",
        EXTERNAL_IDS = "external_ids",
        MTU_REQUEST = "mtu_request",
        OFPORT = "ofport",
        ERROR = "error",
    ]
);

/// `external_ids` key naming the logical port an interface stands for
/// (read by ovn-controller to bind it).
pub const IFACE_ID: &str = "iface-id";
/// `external_ids` key marking an interface as plugged by a VIF plug
/// provider, with the provider's type (the reference's `ovn-plugged`).
pub const OVN_PLUGGED: &str = "ovn-plugged";
/// `external_ids` key that ovn-controller compares with the binding's
/// `options:iface-id-ver` before claiming the port (OVN's
/// `controller/binding.c`).
pub const IFACE_ID_VER: &str = "iface-id-ver";
/// `external_ids` key naming the integration bridge the agent plugged the
/// interface on: if `ovn-bridge` changes while the agent is down, the
/// interfaces it finds on a bridge so marked are still its own, to move.
pub const VIF_PLUG_BRIDGE: &str = "vif-plug-bridge";
/// The `external_ids` keys the agent owns on the interfaces it plugs.
pub const OUR_EXTERNAL_IDS: &[&str] = &[IFACE_ID, OVN_PLUGGED, IFACE_ID_VER, VIF_PLUG_BRIDGE];

impl<'a> Interface<'a> {
    /// Its name.
    pub fn name(self) -> &'a str {
        string(col(self.0, Self::NAME))
    }
    /// Its type (`""` for a system interface).
    pub fn itype(self) -> &'a str {
        string(col(self.0, Self::TYPE))
    }
    /// `options`.
    pub fn options(self) -> &'a Datum {
        col(self.0, Self::OPTIONS)
    }
    /// `external_ids`.
    pub fn external_ids(self) -> &'a Datum {
        col(self.0, Self::EXTERNAL_IDS)
    }
    /// `external_ids:iface-id`: the logical port it stands for.
    pub fn iface_id(self) -> Option<&'a str> {
        self.external_ids().map_get(IFACE_ID)
    }
    /// `external_ids:ovn-plugged`: the provider type that plugged it.
    pub fn plugged_by(self) -> Option<&'a str> {
        self.external_ids().map_get(OVN_PLUGGED)
    }
    /// `external_ids:vif-plug-bridge`: the integration bridge the agent
    /// plugged it on.
    pub fn plugged_on(self) -> Option<&'a str> {
        self.external_ids().map_get(VIF_PLUG_BRIDGE)
    }
    /// `mtu_request`.
    pub fn mtu_request(self) -> Option<i64> {
        col(self.0, Self::MTU_REQUEST).as_int()
    }
    /// `ofport`, set by ovs-vswitchd: the OpenFlow port number, `-1` if it
    /// could not add the interface, `None` until it has looked at it.
    pub fn ofport(self) -> Option<i64> {
        col(self.0, Self::OFPORT).as_int()
    }
    /// `error`, set by ovs-vswitchd when it could not configure the
    /// interface (e.g. "could not open network device pf0vf3 (No such
    /// device)").
    pub fn error(self) -> Option<&'a str> {
        col(self.0, Self::ERROR).as_str().filter(|e| !e.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(path: &str) -> Option<Schema> {
        let text = std::fs::read_to_string(path).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        Schema::from_json(&json).ok()
    }

    fn check<T: Table>(schema: &Schema, missing: &mut Vec<String>) {
        for c in T::COLUMNS {
            if schema.kind(T::TABLE, c).is_none() {
                missing.push(format!("{}.{c}", T::TABLE));
            }
        }
    }

    /// The column names, checked against the schemas Debian's packages
    /// install (the tests' prerequisites; see scripts/install-deps).
    #[test]
    fn every_monitored_column_is_in_the_installed_schemas() {
        let sb = installed("/usr/share/ovn/ovn-sb.ovsschema")
            .expect("ovn-sb.ovsschema from Debian's ovn-common package");
        let ovs = installed("/usr/share/openvswitch/vswitch.ovsschema")
            .expect("vswitch.ovsschema from Debian's openvswitch-common package");
        let mut missing = Vec::new();
        check::<PortBinding>(&sb, &mut missing);
        check::<Chassis>(&sb, &mut missing);
        check::<SbGlobal>(&sb, &mut missing);
        check::<OpenVswitch>(&ovs, &mut missing);
        check::<Bridge>(&ovs, &mut missing);
        check::<Port>(&ovs, &mut missing);
        check::<Interface>(&ovs, &mut missing);
        assert!(missing.is_empty(), "not in the schemas: {missing:?}");
        assert!(sb.missing(SB_REQUIRED).is_empty());
        assert!(ovs.missing(LOCAL_REQUIRED).is_empty());
        // Every required column is monitored (so it is read, not only
        // demanded).
        for r in SB_REQUIRED.iter().chain(LOCAL_REQUIRED) {
            let monitored = [
                (PortBinding::TABLE, PortBinding::COLUMNS),
                (Chassis::TABLE, Chassis::COLUMNS),
                (SbGlobal::TABLE, SbGlobal::COLUMNS),
                (OpenVswitch::TABLE, OpenVswitch::COLUMNS),
                (Bridge::TABLE, Bridge::COLUMNS),
                (Port::TABLE, Port::COLUMNS),
                (Interface::TABLE, Interface::COLUMNS),
            ]
            .iter()
            .any(|(t, cols)| *t == r.table && cols.contains(&r.column));
            assert!(monitored, "{r:?} is not monitored");
        }
    }

    #[test]
    fn a_server_without_an_optional_column_is_still_monitored() {
        let old = Schema::from_json(&serde_json::json!({"name": "OVN_Southbound", "tables": {
            "Port_Binding": {"columns": {
                "logical_port": {"type": "string"}, "type": {"type": "string"},
                "options": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                "requested_chassis": {"type": {"key": {"type": "uuid"}, "min": 0, "max": 1}},
                "mac": {"type": {"key": "string", "min": 0, "max": "unlimited"}}
            }}
        }}))
        .unwrap();
        assert_eq!(
            monitored_columns::<PortBinding>(Some(&old)),
            [
                "logical_port",
                "type",
                "options",
                "requested_chassis",
                "mac"
            ]
        );
        assert_eq!(monitored_columns::<PortBinding>(None).len(), 6);
    }
}
