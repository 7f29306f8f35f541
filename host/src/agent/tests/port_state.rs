//! The rules table of docs/architecture.md, row by row, as unit tests of
//! [`super::step`].

use super::*;
use super::{Intent as I, Phase as P};
use crate::agent::lport_options;
use crate::ovsdb::Datum;

fn options(pairs: &[(&str, &str)]) -> LportOptions {
    lport_options::parse(&Datum::str_map(pairs.iter().copied()))
}

fn binding(placement: Placement, opts: &[(&str, &str)]) -> BindingView {
    BindingView::Present(Binding {
        ptype: String::new(),
        placement,
        options: options(opts),
        macs: Vec::new(),
    })
}

fn ours(provider: &str, bridge: OurBridge) -> OurIface {
    OurIface {
        uuid: Uuid(10),
        name: "vif1".into(),
        provider: provider.into(),
        provider_loaded: provider != "gone",
        bridge,
        at: Location::default(),
        state: IfaceState::default(),
    }
}

fn evidence(binding: BindingView, ours: Option<OurIface>) -> Evidence {
    Evidence {
        binding,
        doubt: None,
        ours,
        foreign: None,
        elsewhere: Vec::new(),
        bridge_exists: true,
        plug_type_loaded: true,
    }
}

const DUMMY: &[(&str, &str)] = &[("vif-plug-type", "dummy")];
const OTHER: &[(&str, &str)] = &[("vif-plug-type", "other")];

fn plugged() -> Option<OurIface> {
    Some(ours("dummy", OurBridge::Integration))
}

fn plug() -> I {
    I::Plug {
        provider: "dummy".into(),
    }
}

fn check() -> I {
    I::Check {
        provider: "dummy".into(),
    }
}

/// Every row of the rules table in docs/architecture.md: binding
/// (placement, options) x our interface x the view's certainty.
#[test]
fn the_rules_table() {
    let fresh = PortRecord::default();
    let chassis_gone = Some(Doubt::NoChassis("hv1".into()));
    let not_populated = Some(Doubt::NotPopulated);
    let rows: Vec<(&str, Evidence, Phase, Intent)> = vec![
        // ---- main ----
        (
            "main, plug type loaded, nothing plugged: plug",
            evidence(binding(Placement::Main, DUMMY), None),
            P::Idle,
            plug(),
        ),
        (
            "main, plugged, inputs not known to be applied: check",
            evidence(binding(Placement::Main, DUMMY), plugged()),
            P::Plugged,
            check(),
        ),
        (
            "main, plug type not loaded: refused, ours kept",
            Evidence {
                plug_type_loaded: false,
                ..evidence(binding(Placement::Main, DUMMY), plugged())
            },
            P::Refused(Refusal::NoProvider("dummy".into())),
            I::None,
        ),
        (
            "main, a foreign interface stands for it: refused",
            Evidence {
                foreign: Some("tap5".into()),
                ..evidence(binding(Placement::Main, DUMMY), None)
            },
            P::Refused(Refusal::Foreign("tap5".into())),
            I::None,
        ),
        (
            "main, an interface we plugged stands on another bridge: refused",
            Evidence {
                elsewhere: vec![("vif1".into(), "br-ex".into())],
                ..evidence(binding(Placement::Main, DUMMY), None)
            },
            P::Refused(Refusal::Elsewhere("vif1".into(), "br-ex".into())),
            I::None,
        ),
        (
            "main, no integration bridge: refused",
            Evidence {
                bridge_exists: false,
                ..evidence(binding(Placement::Main, DUMMY), None)
            },
            P::Refused(Refusal::NoBridge),
            I::None,
        ),
        (
            "main, vif-plug-type withdrawn, plugged: unplug",
            evidence(binding(Placement::Main, &[]), plugged()),
            P::Plugged,
            I::Unplug {
                why: UnplugWhy::Withdrawn,
            },
        ),
        (
            "main, vif-plug-type withdrawn, view not current: deferred",
            Evidence {
                doubt: chassis_gone.clone(),
                ..evidence(binding(Placement::Main, &[]), plugged())
            },
            P::Deferred(
                Removal::Unplug(UnplugWhy::Withdrawn),
                Doubt::NoChassis("hv1".into()),
            ),
            I::None,
        ),
        (
            "main, no vif-plug-type, nothing plugged: idle",
            evidence(binding(Placement::Main, &[]), None),
            P::Idle,
            I::None,
        ),
        (
            "main, another provider named: replace",
            evidence(binding(Placement::Main, OTHER), plugged()),
            P::Plugged,
            I::Replace {
                provider: "other".into(),
                why: ReplaceWhy::Provider {
                    from: "dummy".into(),
                },
            },
        ),
        (
            "main, another provider named, old one not loaded: refused",
            evidence(
                binding(Placement::Main, DUMMY),
                Some(ours("gone", OurBridge::Integration)),
            ),
            P::Refused(Refusal::OldProviderNotLoaded("gone".into())),
            I::None,
        ),
        (
            "main, plugged on a former integration bridge: replace (move)",
            evidence(
                binding(Placement::Main, DUMMY),
                Some(ours("dummy", OurBridge::Former("br-old".into()))),
            ),
            P::Plugged,
            I::Replace {
                provider: "dummy".into(),
                why: ReplaceWhy::Bridge {
                    from: "br-old".into(),
                },
            },
        ),
        (
            "main, another provider named, view not current: deferred",
            Evidence {
                doubt: Some(Doubt::Settling),
                ..evidence(binding(Placement::Main, OTHER), plugged())
            },
            P::Deferred(
                Removal::Replace(ReplaceWhy::Provider {
                    from: "dummy".into(),
                }),
                Doubt::Settling,
            ),
            I::None,
        ),
        (
            "main, on a former integration bridge, view not current: deferred",
            Evidence {
                doubt: Some(Doubt::Disconnected),
                ..evidence(
                    binding(Placement::Main, DUMMY),
                    Some(ours("dummy", OurBridge::Former("br-old".into()))),
                )
            },
            P::Deferred(
                Removal::Replace(ReplaceWhy::Bridge {
                    from: "br-old".into(),
                }),
                Doubt::Disconnected,
            ),
            I::None,
        ),
        (
            "main, plugged, view not current: still checked (updates need no proof)",
            Evidence {
                doubt: Some(Doubt::Settling),
                ..evidence(binding(Placement::Main, DUMMY), plugged())
            },
            P::Plugged,
            check(),
        ),
        (
            "main, nothing plugged, view not current: plugged (creating never waits)",
            Evidence {
                doubt: Some(Doubt::NotPopulated),
                ..evidence(binding(Placement::Main, DUMMY), None)
            },
            P::Idle,
            plug(),
        ),
        (
            "main, not a VIF: kept untouched",
            evidence(
                BindingView::Present(Binding {
                    ptype: "virtual".into(),
                    placement: Placement::Main,
                    options: options(DUMMY),
                    macs: Vec::new(),
                }),
                plugged(),
            ),
            P::Kept(Keep::NotVif("virtual".into())),
            I::None,
        ),
        // ---- additional / listed / anywhere: never touched ----
        (
            "additional, plugged: kept untouched",
            evidence(binding(Placement::Additional, DUMMY), plugged()),
            P::Kept(Keep::Placement(Placement::Additional)),
            I::None,
        ),
        (
            "additional, nothing plugged: not plugged",
            evidence(binding(Placement::Additional, DUMMY), None),
            P::Standby(Placement::Additional),
            I::None,
        ),
        (
            "listed (chassis re-created), plugged, options withdrawn: kept",
            evidence(binding(Placement::Listed, &[]), plugged()),
            P::Kept(Keep::Placement(Placement::Listed)),
            I::None,
        ),
        (
            "listed, nothing plugged: not plugged",
            evidence(binding(Placement::Listed, DUMMY), None),
            P::Standby(Placement::Listed),
            I::None,
        ),
        (
            "anywhere, plugged: kept untouched",
            evidence(binding(Placement::Anywhere, DUMMY), plugged()),
            P::Kept(Keep::Placement(Placement::Anywhere)),
            I::None,
        ),
        (
            "anywhere, nothing plugged: not plugged",
            evidence(binding(Placement::Anywhere, DUMMY), None),
            P::Standby(Placement::Anywhere),
            I::None,
        ),
        // ---- not here ----
        (
            "not here, plugged, view current: unplug",
            evidence(binding(Placement::NotHere, DUMMY), plugged()),
            P::Plugged,
            I::Unplug {
                why: UnplugWhy::NotHere,
            },
        ),
        (
            "not here, plugged, chassis row gone: deferred",
            Evidence {
                doubt: chassis_gone.clone(),
                ..evidence(binding(Placement::NotHere, DUMMY), plugged())
            },
            P::Deferred(
                Removal::Unplug(UnplugWhy::NotHere),
                Doubt::NoChassis("hv1".into()),
            ),
            I::None,
        ),
        (
            "not here, plugged, Southbound not populated: deferred",
            Evidence {
                doubt: not_populated.clone(),
                ..evidence(binding(Placement::NotHere, DUMMY), plugged())
            },
            P::Deferred(Removal::Unplug(UnplugWhy::NotHere), Doubt::NotPopulated),
            I::None,
        ),
        (
            "not here, plugged by a provider not loaded: kept",
            evidence(
                binding(Placement::NotHere, DUMMY),
                Some(ours("gone", OurBridge::Integration)),
            ),
            P::Kept(Keep::ProviderNotLoaded("gone".into())),
            I::None,
        ),
        (
            "not here, plugged on a former integration bridge: unplug",
            evidence(
                binding(Placement::NotHere, DUMMY),
                Some(ours("dummy", OurBridge::Former("br-old".into()))),
            ),
            P::Plugged,
            I::Unplug {
                why: UnplugWhy::NotHere,
            },
        ),
        (
            "not here, nothing plugged: idle",
            evidence(binding(Placement::NotHere, DUMMY), None),
            P::Idle,
            I::None,
        ),
        // ---- absent / unknown ----
        (
            "absent (proven), plugged: unplug",
            evidence(BindingView::Absent, plugged()),
            P::Plugged,
            I::Unplug {
                why: UnplugWhy::Deleted,
            },
        ),
        (
            "absent (proven), nothing plugged: idle",
            evidence(BindingView::Absent, None),
            P::Idle,
            I::None,
        ),
        (
            "unknown (Southbound empty, being repopulated), plugged: kept",
            Evidence {
                doubt: not_populated.clone(),
                ..evidence(BindingView::Unknown(Doubt::NotPopulated), plugged())
            },
            P::Kept(Keep::Unknown(Doubt::NotPopulated)),
            I::None,
        ),
        (
            "unknown (lookup not answered yet), plugged: kept",
            evidence(BindingView::Unknown(Doubt::LookupPending), plugged()),
            P::Kept(Keep::Unknown(Doubt::LookupPending)),
            I::None,
        ),
        (
            "unknown (disconnected), plugged: kept",
            evidence(BindingView::Unknown(Doubt::Disconnected), plugged()),
            P::Kept(Keep::Unknown(Doubt::Disconnected)),
            I::None,
        ),
        (
            "unknown, nothing plugged: idle",
            evidence(BindingView::Unknown(Doubt::Loading), None),
            P::Idle,
            I::None,
        ),
    ];
    for (what, ev, phase, intent) in rows {
        let d = step(&fresh, &ev);
        assert_eq!(d, Decision { phase, intent }, "{what}");
    }
}

#[test]
fn what_was_applied_is_not_asked_again_until_an_input_changes() {
    let ev = evidence(binding(Placement::Main, DUMMY), plugged());
    let mut rec = PortRecord {
        applied: Some(Applied::new(
            options(DUMMY).all,
            &IfaceState::default(),
            &["opt".into()],
        )),
        ..PortRecord::default()
    };
    assert_eq!(step(&rec, &ev), Decision::rest(P::Plugged));
    // The CMS changed an option.
    let changed = evidence(
        binding(Placement::Main, &[("vif-plug-type", "dummy"), ("x", "1")]),
        plugged(),
    );
    assert_eq!(step(&rec, &changed).intent, check());
    // The CMS changed the port's MAC (Port_Binding.mac), which providers
    // may act on (ABI 1.1): asked again.
    let mut new_mac = ev.clone();
    if let BindingView::Present(b) = &mut new_mac.binding {
        b.macs = vec!["fa:16:3e:00:00:01".into()];
    }
    assert_eq!(step(&rec, &new_mac).intent, check());
    // Another program added its own keys: nothing to ask.
    let mut foreign = ev.clone();
    if let Some(o) = foreign.ours.as_mut() {
        o.state
            .external_ids
            .insert("ovn-installed".into(), "true".into());
        o.state.options.insert("operator".into(), "x".into());
    }
    assert_eq!(step(&rec, &foreign), Decision::rest(P::Plugged));
    // Someone changed the interface: its type, a managed option, our id.
    for drift in 0..3 {
        let mut drifted = ev.clone();
        if let Some(o) = drifted.ours.as_mut() {
            match drift {
                0 => o.state.iface_type = "system".into(),
                1 => {
                    o.state.options.insert("opt".into(), "changed".into());
                }
                _ => {
                    o.state.external_ids.insert("iface-id".into(), "x".into());
                }
            }
        }
        assert_eq!(step(&rec, &drifted).intent, check(), "drift {drift}");
    }
    // A provider's run reported a change: applied is forgotten.
    rec.applied = None;
    assert_eq!(step(&rec, &ev).intent, check());
}

#[test]
fn a_re_registered_chassis_keeps_every_port_through_each_stage() {
    // The stages of `ovn-sbctl chassis-del hv1` followed by
    // ovn-controller registering it again and ovn-northd re-resolving.
    let rec = PortRecord {
        phase: P::Plugged,
        ..PortRecord::default()
    };
    let stages = [
        // Chassis row deleted: weak reference cleared, row gone.
        Evidence {
            doubt: Some(Doubt::NoChassis("hv1".into())),
            ..evidence(
                binding(Placement::Listed, &[("vif-plug-type", "dummy")]),
                plugged(),
            )
        },
        // Registered again under a new UUID; not resolved yet.
        evidence(binding(Placement::Listed, DUMMY), plugged()),
    ];
    for ev in stages {
        let d = step(&rec, &ev);
        assert_eq!(d.intent, I::None, "{ev:?}");
        assert!(matches!(d.phase, P::Kept(_)), "{d:?}");
    }
    // Resolved: main again, checked against what was applied.
    let d = step(&rec, &evidence(binding(Placement::Main, DUMMY), plugged()));
    assert_ne!(
        d.intent,
        I::Unplug {
            why: UnplugWhy::Deleted
        }
    );
}

#[test]
fn due_phases() {
    let now = Instant::now();
    assert!(P::Idle.is_due(now));
    assert!(!P::InFlight(OpKind::Create).is_due(now));
    assert!(!P::Quarantined {
        until: now + std::time::Duration::from_secs(1)
    }
    .is_due(now));
    assert!(P::Quarantined { until: now }.is_due(now));
}

#[test]
fn a_decline_without_a_word_keeps_the_reason_the_provider_gave() {
    use crate::provider::DECLINED_SILENTLY as SILENT;
    let said = |r: &str| P::Declined {
        provider: "representor".into(),
        reason: r.into(),
    };
    let table: &[(P, &str, &str, P)] = &[
        // (before, provider, reason now, phase after)
        (P::Idle, "representor", SILENT, said(SILENT)),
        (P::Idle, "representor", "no VF 9", said("no VF 9")),
        (said("no VF 9"), "representor", SILENT, said("no VF 9")),
        (said("no VF 9"), "representor", "PF gone", said("PF gone")),
        // Another provider's reason is not this one's.
        (
            said("no VF 9"),
            "dummy",
            SILENT,
            P::Declined {
                provider: "dummy".into(),
                reason: SILENT.into(),
            },
        ),
        (P::Plugged, "representor", SILENT, said(SILENT)),
    ];
    for (before, provider, reason, after) in table {
        assert_eq!(
            &declined(before, provider.to_string(), reason.to_string()),
            after,
            "{before:?} {reason}"
        );
    }
}
