//! Carrying out a port's [`Intent`]: the provider calls, the checks on
//! their answers, and the [`Plan`] they become. The decision of what to do
//! was made by `port_state::step`; this module only asks the providers and
//! reports what they said.
//!
//! Provider contract, as the reference's `controller/vif-plug.c` keeps it:
//! an operation that is not applied is dropped (`port_ctx_destroy` for a
//! CREATE, nothing for a REMOVE) without `port_finish`; a re-check that
//! changes nothing is finished at once (`port_finish`, then
//! `port_ctx_destroy`), as ovn-controller finishes the operations of an
//! unchanged transaction.

use super::iface_diff::{self, Desired};
use super::local_view::LocalView;
use super::lport_options::MtuRequest;
use super::plan::{Action, Creation, NameRow, Plan, Removal as RemoveOp};
use super::port_state::{
    Applied, BindingView, Doubt, Evidence, Intent, OurIface, Removal, ReplaceWhy,
};
use super::requests::{binding_macs, check_request, create_request, remove_request};
use crate::dispatch::Providers;
use crate::ovsdb::Uuid;
use crate::provider::{BridgeInfo, PrepareError};
use std::collections::HashSet;

/// The integration bridge, looked up once per iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationBridge {
    /// Its row.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Its `datapath_type`.
    pub datapath_type: String,
}

/// What carrying out the intents of one iteration reads.
pub struct Context<'a> {
    /// Providers.
    pub providers: &'a Providers,
    /// The local database.
    pub local: &'a LocalView,
    /// The integration bridge, if it exists.
    pub bridge: Option<&'a IntegrationBridge>,
    /// `Open_vSwitch.dpdk_initialized`.
    pub dpdk_initialized: bool,
}

/// What came of an intent.
pub enum Outcome {
    /// A change to commit.
    Plan(Box<Plan>),
    /// The provider's answer matches the interface: nothing to write
    /// (already finished).
    Unchanged(Box<Applied>),
    /// The provider could not be asked: its worker is down or died during
    /// the call. Nothing changes; the port is decided again when the
    /// worker is back.
    Postponed {
        /// The provider.
        provider: String,
        /// Why.
        reason: String,
    },
    /// A provider declined, or its answer was unusable.
    Declined {
        /// The provider.
        provider: String,
        /// Why.
        reason: String,
    },
    /// The interface name the provider gave is taken.
    NameTaken {
        /// The name.
        name: String,
        /// What holds it.
        holder: String,
    },
    /// The plan needs a name that rows of other ports hold; it can go in
    /// this transaction only if those rows are removed in it too (see
    /// [`unblock`]).
    Blocked(Box<Blocked>),
    /// The provider now names another interface, but the Southbound cannot
    /// prove the request is current: the interface stays as it is.
    Deferred(Removal, Doubt),
}

/// A plan waiting for rows that hold its interface name to go.
pub struct Blocked {
    /// The plan.
    pub plan: Plan,
    /// The interface name it creates.
    pub name: String,
    /// The rows holding that name.
    pub holders: Vec<NameRow>,
    /// What holds it, for the log.
    pub holder: String,
    /// The logical ports whose interfaces hold it.
    pub holder_lports: Vec<String>,
}

/// The option keys the agent manages on an interface: the provider's
/// answer, and the keys it maintains.
fn option_keys(answer: &[(String, String)], maintained: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = answer
        .iter()
        .map(|(k, _)| k.clone())
        .chain(maintained.iter().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn declined(provider: &str, e: PrepareError) -> Outcome {
    match e {
        PrepareError::Unavailable(reason) => Outcome::Postponed {
            provider: provider.to_owned(),
            reason,
        },
        e => Outcome::Declined {
            provider: {
                crate::coverage::inc(crate::coverage::Counter::Decline);
                provider.to_owned()
            },
            reason: e.to_string(),
        },
    }
}

impl Context<'_> {
    pub(super) fn bridge_info(&self, name: &str, datapath_type: &str) -> BridgeInfo {
        BridgeInfo {
            name: name.to_owned(),
            datapath_type: datapath_type.to_owned(),
            dpdk_initialized: self.dpdk_initialized,
        }
    }

    /// The rows holding port or interface name `name`, and a description
    /// of them for the log.
    fn holders_of(&self, name: &str) -> (Vec<NameRow>, String, Vec<String>) {
        let mut rows = Vec::new();
        let mut what = Vec::new();
        if let Some(p) = self.local.port_named(name) {
            rows.push(NameRow::Port(p));
            what.push(format!("port {name:?}"));
        }
        if let Some(i) = self.local.iface_named(name) {
            rows.push(NameRow::Iface(i));
            what.push(format!("interface {name:?}"));
        }
        let lports: Vec<String> = rows
            .iter()
            .filter_map(|r| match r {
                NameRow::Iface(i) => self.local.iface(*i).and_then(|i| i.iface_id()),
                NameRow::Port(_) => None,
            })
            .map(str::to_owned)
            .collect();
        let mut holder = what.join(" and ");
        match lports.first() {
            Some(l) => holder.push_str(&format!(" (logical port {l})")),
            None if !rows.is_empty() => holder.push_str(" (no logical port)"),
            None => {}
        }
        (rows, holder, lports)
    }
}

/// Carries out `intent` for `lport`. `claimed` holds the interface names
/// created earlier in the same transaction; a name given twice waits.
/// Returns `None` for [`Intent::None`].
pub fn carry_out(
    cx: &Context<'_>,
    claimed: &mut HashSet<String>,
    lport: &str,
    ev: &Evidence,
    intent: Intent,
) -> Option<Outcome> {
    let options = match &ev.binding {
        BindingView::Present(b) => &b.options.all[..],
        _ => &[],
    };
    Some(match intent {
        Intent::None => return None,
        Intent::Plug { provider } => create(cx, claimed, lport, ev, &provider, None, None),
        Intent::Check { provider } => check(cx, claimed, lport, ev, &provider, options),
        Intent::Replace { provider, why } => replace(cx, claimed, lport, ev, &provider, why),
        Intent::Unplug { why } => match ev.ours.as_ref().map(|o| remove(cx, lport, o)) {
            Some(Ok(removal)) => Outcome::Plan(Box::new(Plan {
                lport: lport.to_owned(),
                lport_options: Vec::new(),
                lport_macs: Vec::new(),
                why: Some(why.to_string()),
                option_keys: Vec::new(),
                action: Action::Remove(removal),
            })),
            Some(Err(o)) => o,
            None => return None,
        },
    })
}

/// The binding's options as a provider request, and what the interface
/// should carry besides the provider's answer.
pub(super) fn binding_inputs(ev: &Evidence) -> (Vec<(String, String)>, MtuRequest, Option<String>) {
    match &ev.binding {
        BindingView::Present(b) => (
            b.options.all.clone(),
            b.options.mtu_request,
            b.options.iface_id_ver.clone(),
        ),
        _ => (Vec::new(), MtuRequest::Unset, None),
    }
}

/// CREATE without an interface: a new one on the integration bridge,
/// replacing `old` (removed in the same transaction) if given.
fn create(
    cx: &Context<'_>,
    claimed: &mut HashSet<String>,
    lport: &str,
    ev: &Evidence,
    ptype: &str,
    old: Option<(RemoveOp, &OurIface)>,
    why: Option<String>,
) -> Outcome {
    let (true, Some(bridge)) = (cx.providers.is_loaded(ptype), cx.bridge) else {
        return Outcome::Declined {
            provider: ptype.to_owned(),
            reason: "the provider or the integration bridge is gone".into(),
        };
    };
    let (lport_options, mtu_request, iface_id_ver) = binding_inputs(ev);
    let req = create_request(cx, lport, ev, bridge);
    let op = match cx.providers.prepare_create(ptype, &req) {
        Ok(op) => op,
        // Dropping `old` drops its REMOVE unfinished: it was not applied.
        Err(e) => return declined(ptype, e),
    };
    let name = op.output().name.clone();
    let frees = old.as_ref().map(|(r, _)| r.frees()).unwrap_or_default();
    let (holders, holder, holder_lports) = cx.holders_of(&name);
    let holders: Vec<NameRow> = holders.into_iter().filter(|h| !frees.contains(h)).collect();
    if holders.is_empty() && !claimed.insert(name.clone()) {
        return Outcome::NameTaken {
            name,
            holder: "another logical port in the same transaction".into(),
        };
    }
    let option_keys = option_keys(&op.output().options, cx.providers.maintained(ptype));
    let creation = Creation {
        bridge: bridge.uuid,
        op,
        mtu_request: mtu_request.for_new_interface(),
        iface_id_ver,
        bridge_name: bridge.name.clone(),
    };
    let action = match old {
        Some((removal, _)) => Action::Replace(removal, creation),
        None => Action::Create(creation),
    };
    let plan = Plan {
        lport: lport.to_owned(),
        lport_options,
        lport_macs: binding_macs(ev),
        why,
        option_keys,
        action,
    };
    if holders.is_empty() {
        Outcome::Plan(Box::new(plan))
    } else {
        Outcome::Blocked(Box::new(Blocked {
            plan,
            name,
            holders,
            holder,
            holder_lports,
        }))
    }
}

/// CREATE with our interface: update it, leave it, or replace it when the
/// provider now names another interface.
fn check(
    cx: &Context<'_>,
    claimed: &mut HashSet<String>,
    lport: &str,
    ev: &Evidence,
    ptype: &str,
    options: &[(String, String)],
) -> Outcome {
    let (true, Some(ours)) = (cx.providers.is_loaded(ptype), ev.ours.as_ref()) else {
        return Outcome::Declined {
            provider: ptype.to_owned(),
            reason: "the provider or the interface is gone".into(),
        };
    };
    let (_, mtu_request, iface_id_ver) = binding_inputs(ev);
    let req = check_request(cx, lport, ev, options, ours);
    let op = match cx.providers.prepare_create(ptype, &req) {
        Ok(op) => op,
        Err(e) => return declined(ptype, e),
    };
    let answer = op.output();
    if answer.name != ours.name {
        let why = ReplaceWhy::Name {
            from: ours.name.clone(),
            to: answer.name.clone(),
        };
        // Not applied as such: ctx_destroy without finish. The replacement
        // asks again, for a new interface, if the view can justify removing
        // this one.
        drop(op);
        if let Some(d) = &ev.doubt {
            return Outcome::Deferred(Removal::Replace(why), d.clone());
        }
        return replace(cx, claimed, lport, ev, ptype, why);
    }
    let desired = Desired {
        iface_type: answer.iface_type.as_deref().unwrap_or(""),
        options: &answer.options,
        maintained: cx.providers.maintained(ptype),
        lport,
        provider_type: ptype,
        bridge: &ours.at.bridge_name,
        mtu_request,
        iface_id_ver: iface_id_ver.as_deref(),
    };
    let update = iface_diff::diff(&ours.state, &desired);
    let option_keys = option_keys(&answer.options, cx.providers.maintained(ptype));
    if update.is_empty() {
        op.finish();
        return Outcome::Unchanged(Box::new(
            Applied::new(options.to_vec(), &ours.state, &option_keys).with_macs(binding_macs(ev)),
        ));
    }
    let expected = Box::new(iface_diff::apply(&ours.state, &update));
    Outcome::Plan(Box::new(Plan {
        lport: lport.to_owned(),
        lport_options: options.to_vec(),
        lport_macs: binding_macs(ev),
        why: None,
        option_keys,
        action: Action::Update {
            iface: ours.uuid,
            iface_name: ours.name.clone(),
            op,
            update: Box::new(update),
            expected,
        },
    }))
}

/// REMOVE of our interface, then CREATE of its replacement through
/// `ptype`, for one transaction.
fn replace(
    cx: &Context<'_>,
    claimed: &mut HashSet<String>,
    lport: &str,
    ev: &Evidence,
    ptype: &str,
    why: ReplaceWhy,
) -> Outcome {
    let Some(ours) = ev.ours.as_ref() else {
        return Outcome::Declined {
            provider: ptype.to_owned(),
            reason: "the interface to replace is gone".into(),
        };
    };
    let removal = match remove(cx, lport, ours) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let why = Some(why.to_string());
    create(cx, claimed, lport, ev, ptype, Some((removal, ours)), why)
}

/// REMOVE of our interface through the provider that plugged it.
fn remove(cx: &Context<'_>, lport: &str, ours: &OurIface) -> Result<RemoveOp, Outcome> {
    if !cx.providers.is_loaded(&ours.provider) {
        return Err(Outcome::Declined {
            provider: ours.provider.clone(),
            reason: "the provider that plugged it is not loaded".into(),
        });
    }
    let req = remove_request(cx, lport, ours);
    match cx.providers.prepare_remove(&ours.provider, &req) {
        Ok(op) => Ok(RemoveOp {
            bridge: ours.at.bridge,
            port: ours.at.port,
            iface: ours.uuid,
            whole_port: ours.at.port_ifaces <= 1,
            iface_name: ours.name.clone(),
            op,
        }),
        Err(PrepareError::Declined(said)) => Err(Outcome::Declined {
            provider: ours.provider.clone(),
            reason: match said {
                Some(said) => format!("declined to unplug interface {}, saying: {said}", ours.name),
                None => format!("declined to unplug interface {}", ours.name),
            },
        }),
        Err(e) => Err(declined(&ours.provider, e)),
    }
}

/// Decides which blocked plans can join `plans` in one transaction: those
/// whose name holders are all removed by `plans` or by other plans so
/// joined (a chain, or a swap of two names, commits as one transaction:
/// ovsdb-server collects the removed rows before it checks the name
/// indexes), each name created once. The others are returned; `claimed`
/// gains the names joined.
pub fn unblock(
    plans: &mut Vec<Plan>,
    blocked: Vec<Blocked>,
    claimed: &mut HashSet<String>,
) -> Vec<Blocked> {
    let (mut candidates, mut stuck): (Vec<Blocked>, Vec<Blocked>) = blocked
        .into_iter()
        .partition(|b| !claimed.contains(&b.name));
    let freed: HashSet<NameRow> = plans.iter().flat_map(Plan::frees).collect();
    let shape: Vec<Candidate> = candidates
        .iter()
        .map(|b| Candidate {
            name: b.name.clone(),
            lport: b.plan.lport.clone(),
            holders: b.holders.clone(),
            frees: b.plan.frees(),
        })
        .collect();
    let chosen = choose(&freed, &shape);
    for (b, ok) in candidates.drain(..).zip(chosen) {
        if ok {
            claimed.insert(b.name.clone());
            plans.push(b.plan);
        } else {
            stuck.push(b);
        }
    }
    stuck
}

/// A blocked plan, as [`choose`] sees it.
#[derive(Debug, Clone)]
struct Candidate {
    /// The interface name it creates.
    name: String,
    /// Its logical port (ties are broken by it, so the choice is stable).
    lport: String,
    /// The rows holding that name.
    holders: Vec<NameRow>,
    /// The rows whose names it frees.
    frees: Vec<NameRow>,
}

/// Which candidates join: the largest set in which every member's holders
/// are freed by `freed` or by another member, and no two members create
/// the same name. Of two that want one name, the one whose removal no
/// other member needs gives way (a plain plug yields to a swap).
fn choose(freed: &HashSet<NameRow>, candidates: &[Candidate]) -> Vec<bool> {
    let mut allowed = vec![true; candidates.len()];
    loop {
        let member = joinable(freed, candidates, &allowed);
        let needed = |i: usize| {
            candidates.iter().enumerate().any(|(j, c)| {
                j != i && member[j] && c.holders.iter().any(|h| candidates[i].frees.contains(h))
            })
        };
        let mut by_name: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, c) in candidates.iter().enumerate().filter(|(i, _)| member[*i]) {
            by_name.entry(&c.name).or_default().push(i);
        }
        let Some(rivals) = by_name.into_values().find(|v| v.len() > 1) else {
            return member;
        };
        let loser = rivals
            .iter()
            .copied()
            .max_by_key(|&i| (!needed(i), &candidates[i].lport))
            .expect("two rivals at least");
        allowed[loser] = false;
    }
}

/// The largest subset of the `allowed` candidates in which every member's
/// holders are freed by `freed` or by another member.
fn joinable(freed: &HashSet<NameRow>, candidates: &[Candidate], allowed: &[bool]) -> Vec<bool> {
    let mut member = allowed.to_vec();
    loop {
        let all: HashSet<NameRow> = freed
            .iter()
            .copied()
            .chain(
                candidates
                    .iter()
                    .zip(&member)
                    .filter(|(_, m)| **m)
                    .flat_map(|(c, _)| c.frees.iter().copied()),
            )
            .collect();
        let mut changed = false;
        for (i, c) in candidates.iter().enumerate() {
            if member[i] && !c.holders.iter().all(|h| all.contains(h)) {
                member[i] = false;
                changed = true;
            }
        }
        if !changed {
            return member;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(n: u128) -> NameRow {
        NameRow::Port(Uuid(n))
    }

    fn iface(n: u128) -> NameRow {
        NameRow::Iface(Uuid(n))
    }

    fn cand(lport: &str, name: &str, holders: Vec<NameRow>, frees: Vec<NameRow>) -> Candidate {
        Candidate {
            name: name.into(),
            lport: lport.into(),
            holders,
            frees,
        }
    }

    #[test]
    fn swaps_and_chains_join_and_foreign_holders_block() {
        let none = HashSet::new();
        // Two ports swapping names: each needs what the other frees.
        let swap = [
            cand(
                "a",
                "n2",
                vec![port(2), iface(20)],
                vec![port(1), iface(10)],
            ),
            cand(
                "b",
                "n1",
                vec![port(1), iface(10)],
                vec![port(2), iface(20)],
            ),
        ];
        assert_eq!(choose(&none, &swap), [true, true]);
        // A chain a <- b <- c, where c's holder goes in an accepted plan.
        let accepted: HashSet<NameRow> = [port(9), iface(90)].into();
        let chain = [
            cand("a", "x", vec![port(2)], vec![port(1)]),
            cand("b", "y", vec![port(3)], vec![port(2)]),
            cand("c", "z", vec![port(9), iface(90)], vec![port(3)]),
        ];
        assert_eq!(choose(&accepted, &chain), [true, true, true]);
        assert_eq!(choose(&none, &chain), [false, false, false]);
        // A name held by a row nobody removes (another program's port):
        // that plan waits, and so does the one that needed its removal.
        let foreign = [
            cand("a", "x", vec![port(7)], vec![port(1)]),
            cand("b", "y", vec![port(1)], vec![port(2)]),
            cand("c", "z", vec![], vec![port(3)]),
        ];
        assert_eq!(choose(&none, &foreign), [false, false, true]);
        // A shared port keeps its name: only the interface's is freed.
        let shared = [
            cand("a", "s", vec![port(5), iface(50)], vec![]),
            cand("b", "t", vec![], vec![iface(50)]),
        ];
        assert_eq!(choose(&none, &shared), [false, true]);
    }

    #[test]
    fn a_plain_plug_wanting_a_swapped_name_gives_way_to_the_swap() {
        let none = HashSet::new();
        // x and y swap n1 and n2; z, a new port, also wants n1. Whatever
        // the order, the swap goes through and z waits.
        let x = cand(
            "x",
            "n2",
            vec![port(2), iface(20)],
            vec![port(1), iface(10)],
        );
        let y = cand(
            "y",
            "n1",
            vec![port(1), iface(10)],
            vec![port(2), iface(20)],
        );
        let z = cand("z", "n1", vec![port(1), iface(10)], vec![]);
        for order in [
            vec![x.clone(), y.clone(), z.clone()],
            vec![z.clone(), y.clone(), x.clone()],
            vec![y.clone(), z.clone(), x.clone()],
        ] {
            let chosen = choose(&none, &order);
            let joined: Vec<&str> = order
                .iter()
                .zip(&chosen)
                .filter(|(_, ok)| **ok)
                .map(|(c, _)| c.lport.as_str())
                .collect();
            let mut joined = joined;
            joined.sort();
            assert_eq!(joined, ["x", "y"], "{order:?}");
        }
        // Two new ports wanting one free name: one of them, the same one
        // every time.
        let p = cand("p", "n9", vec![], vec![]);
        let q = cand("q", "n9", vec![], vec![]);
        assert_eq!(choose(&none, &[p.clone(), q.clone()]), [true, false]);
        assert_eq!(choose(&none, &[q, p]), [false, true]);
    }
}
