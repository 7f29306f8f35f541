//! Where a Port_Binding may be bound, seen from this chassis: OVN's own
//! rule (`lport_can_bind_on_this_chassis` in OVN's `controller/lport.c`),
//! with one case told apart that OVN folds into the others: *listed*, a
//! binding whose `requested-chassis` option names us while neither chassis
//! reference does. That is what a binding looks like while our Chassis row
//! is re-created (ovn-controller re-registering, `ovn-sbctl chassis-del`)
//! or a Southbound is repopulated: ovsdb-server clears the weak references
//! to the old row, and ovn-northd has not resolved the names again. It is
//! a reason to keep a port, never to plug or unplug one.

use crate::ovsdb::Uuid;
use std::fmt;

/// Where a binding may be bound, from this chassis's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// `requested_chassis` is our chassis: the port belongs here.
    Main,
    /// `requested_additional_chassis` holds our chassis: the port is being
    /// live-migrated to or from here.
    Additional,
    /// The `requested-chassis` option names us (by name or hostname) but
    /// neither reference does: ovn-northd has not resolved it yet.
    Listed,
    /// No chassis is requested at all: any chassis may bind it.
    Anywhere,
    /// Requested on other chassis only.
    NotHere,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::Main => "main",
            Placement::Additional => "additional",
            Placement::Listed => "listed",
            Placement::Anywhere => "anywhere",
            Placement::NotHere => "not here",
        })
    }
}

/// This chassis as the Southbound knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OurChassis<'a> {
    /// Our Chassis row, if it exists now.
    pub uuid: Option<Uuid>,
    /// Our chassis name (`external_ids:system-id`), known even while the
    /// row does not exist.
    pub name: &'a str,
    /// `Chassis.hostname` of our row, if known.
    pub hostname: Option<&'a str>,
    /// The hostname ovn-controller registers for this chassis, known
    /// locally (`external_ids:hostname`, else the system's): a re-created
    /// row may not carry it yet.
    pub local_hostname: Option<&'a str>,
    /// The last hostname our row carried (the system's may have changed
    /// since, and the row been re-created without one).
    pub remembered_hostname: Option<&'a str>,
}

impl OurChassis<'_> {
    fn is_named(&self, name: &str) -> bool {
        let is = |h: Option<&str>| h.is_some_and(|h| !h.is_empty() && h == name);
        name == self.name
            || is(self.hostname)
            || is(self.local_hostname)
            || is(self.remembered_hostname)
    }
}

/// What a binding says about where it goes.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `requested_chassis`.
    pub main: Option<Uuid>,
    /// `requested_additional_chassis`.
    pub additional: &'a [Uuid],
    /// The names in `options:requested-chassis`, in order.
    pub names: &'a [String],
}

/// The placement of a binding that requests `req`, for chassis `us`.
pub fn placement(req: &Request<'_>, us: &OurChassis<'_>) -> Placement {
    if let Some(ours) = us.uuid {
        if req.main == Some(ours) {
            return Placement::Main;
        }
        if req.additional.contains(&ours) {
            return Placement::Additional;
        }
    }
    if req.names.is_empty() {
        return Placement::Anywhere;
    }
    if req.names.iter().any(|n| us.is_named(n)) {
        return Placement::Listed;
    }
    Placement::NotHere
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Uuid = Uuid(1);
    const OLD_US: Uuid = Uuid(9);
    const HV2: Uuid = Uuid(2);

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|n| n.to_string()).collect()
    }

    /// The rules table of docs/architecture.md, row by row.
    #[test]
    fn the_rules_table() {
        let us = OurChassis {
            uuid: Some(US),
            name: "hv1",
            hostname: Some("host1.example"),
            local_hostname: None,
            remembered_hostname: None,
        };
        // Re-created by hand (`ovn-sbctl chassis-add`): no hostname yet,
        // but this host knows its own.
        let bare = OurChassis {
            uuid: Some(Uuid(8)),
            hostname: Some(""),
            local_hostname: Some("host1.example"),
            ..us
        };
        // The system's hostname changed since the row last carried one.
        let renamed_host = OurChassis {
            uuid: Some(Uuid(8)),
            hostname: Some(""),
            local_hostname: Some("host2.example"),
            remembered_hostname: Some("host1.example"),
            ..us
        };
        let recreated = OurChassis {
            uuid: Some(Uuid(7)),
            ..us
        };
        let gone = OurChassis { uuid: None, ..us };
        // (requested_chassis, additional, option, chassis, expected)
        type Row<'a> = (
            Option<Uuid>,
            &'a [Uuid],
            &'a [&'a str],
            OurChassis<'a>,
            Placement,
        );
        let table: &[Row] = &[
            (Some(US), &[], &["hv1"], us, Placement::Main),
            // The reference is what counts, not the option's spelling.
            (Some(US), &[], &["host1.example"], us, Placement::Main),
            (Some(HV2), &[US], &["hv2", "hv1"], us, Placement::Additional),
            (None, &[US], &["hv2", "hv1"], us, Placement::Additional),
            // Our row was re-created: the references were cleared.
            (None, &[], &["hv1"], recreated, Placement::Listed),
            (
                Some(HV2),
                &[],
                &["hv2", "hv1"],
                recreated,
                Placement::Listed,
            ),
            (None, &[], &["host1.example"], recreated, Placement::Listed),
            (None, &[], &["host1.example"], bare, Placement::Listed),
            (None, &[], &["other.example"], bare, Placement::NotHere),
            (
                None,
                &[],
                &["host1.example"],
                renamed_host,
                Placement::Listed,
            ),
            // Our row is gone: a reference cannot name it.
            (None, &[], &["hv1"], gone, Placement::Listed),
            (Some(OLD_US), &[], &["hv1"], gone, Placement::Listed),
            (None, &[], &[], us, Placement::Anywhere),
            (Some(HV2), &[], &[], us, Placement::Anywhere),
            (Some(HV2), &[], &["hv2"], us, Placement::NotHere),
            (None, &[], &["hv2"], us, Placement::NotHere),
            (None, &[], &["hv2"], gone, Placement::NotHere),
            (
                Some(HV2),
                &[Uuid(3)],
                &["hv2", "hv3"],
                us,
                Placement::NotHere,
            ),
            // A name is matched whole, not as a prefix.
            (None, &[], &["hv1x", "xhv1"], us, Placement::NotHere),
        ];
        for (i, (main, additional, option, chassis, expected)) in table.iter().enumerate() {
            let n = names(option);
            let req = Request {
                main: *main,
                additional,
                names: &n,
            };
            assert_eq!(
                placement(&req, chassis),
                *expected,
                "row {i}: {main:?} {additional:?} {option:?} {chassis:?}"
            );
        }
    }

    #[test]
    fn an_empty_hostname_matches_nothing() {
        let us = OurChassis {
            uuid: None,
            name: "hv1",
            hostname: Some(""),
            local_hostname: Some(""),
            remembered_hostname: None,
        };
        let n = names(&["hv2"]);
        let req = Request {
            main: None,
            additional: &[],
            names: &n,
        };
        assert_eq!(placement(&req, &us), Placement::NotHere);
    }
}
