//! The provider requests an intent needs: built here once, so that what
//! the iteration asks ahead ([`foresee`], one batch per worker) and what
//! carrying the intent out asks are the same requests.

use super::port_state::{BindingView, Evidence, Intent, OurIface};
use super::prepare::{binding_inputs, Context, IntegrationBridge};
use crate::provider::{ExistingIface, PortRequest};
use crate::worker::protocol::Op;

/// The request of a CREATE for a new interface on `bridge`.
pub(super) fn create_request(
    cx: &Context<'_>,
    lport: &str,
    ev: &Evidence,
    bridge: &IntegrationBridge,
) -> PortRequest {
    PortRequest {
        lport_name: lport.to_owned(),
        lport_options: binding_inputs(ev).0,
        iface: None,
        bridge: cx.bridge_info(&bridge.name, &bridge.datapath_type),
        lport_macs: binding_macs(ev),
    }
}

/// The request of a CREATE that re-checks our interface.
pub(super) fn check_request(
    cx: &Context<'_>,
    lport: &str,
    ev: &Evidence,
    options: &[(String, String)],
    ours: &OurIface,
) -> PortRequest {
    PortRequest {
        lport_name: lport.to_owned(),
        lport_options: options.to_vec(),
        iface: Some(existing(ours)),
        bridge: cx.bridge_info(&ours.at.bridge_name, &ours.at.datapath_type),
        lport_macs: binding_macs(ev),
    }
}

/// The binding's MAC addresses, for a CREATE (ABI 1.1).
pub(super) fn binding_macs(ev: &Evidence) -> Vec<String> {
    match &ev.binding {
        BindingView::Present(b) => b.macs.clone(),
        _ => Vec::new(),
    }
}

/// The request of a REMOVE of our interface.
pub(super) fn remove_request(cx: &Context<'_>, lport: &str, ours: &OurIface) -> PortRequest {
    PortRequest {
        lport_name: lport.to_owned(),
        lport_options: Vec::new(),
        iface: Some(existing(ours)),
        bridge: cx.bridge_info(&ours.at.bridge_name, &ours.at.datapath_type),
        lport_macs: Vec::new(),
    }
}

/// The provider calls [`super::prepare::carry_out`] will make first for `intent`, so that
/// they can be asked in one batch per worker beforehand: the same
/// requests, built by the same functions. A call decided on an answer (a
/// replacement after a re-check names another interface) is not foreseen
/// and costs a round trip of its own.
pub fn foresee(
    cx: &Context<'_>,
    lport: &str,
    ev: &Evidence,
    intent: &Intent,
) -> Vec<(String, Op, PortRequest)> {
    let options = match &ev.binding {
        BindingView::Present(b) => &b.options.all[..],
        _ => &[],
    };
    let remove = |out: &mut Vec<_>| {
        if let Some(ours) = &ev.ours {
            out.push((
                ours.provider.clone(),
                Op::Remove,
                remove_request(cx, lport, ours),
            ));
        }
    };
    let mut out = Vec::new();
    match intent {
        Intent::None => {}
        Intent::Plug { provider } => {
            if let Some(bridge) = cx.bridge {
                out.push((
                    provider.clone(),
                    Op::Create,
                    create_request(cx, lport, ev, bridge),
                ));
            }
        }
        Intent::Check { provider } => {
            if let Some(ours) = &ev.ours {
                out.push((
                    provider.clone(),
                    Op::Create,
                    check_request(cx, lport, ev, options, ours),
                ));
            }
        }
        Intent::Replace { provider, .. } => {
            remove(&mut out);
            if let Some(bridge) = cx.bridge {
                out.push((
                    provider.clone(),
                    Op::Create,
                    create_request(cx, lport, ev, bridge),
                ));
            }
        }
        Intent::Unplug { .. } => remove(&mut out),
    }
    out
}

pub(super) fn existing(ours: &OurIface) -> ExistingIface {
    ExistingIface {
        name: ours.name.clone(),
        iface_type: ours.state.iface_type.clone(),
        options: ours
            .state
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
