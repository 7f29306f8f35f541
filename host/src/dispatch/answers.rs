//! What travels to and from a worker for one call, on the agent's side:
//! a request as a [`Call`], a worker's answer checked again as the
//! in-process host checks a `ctx_out`, and the slow calls of a reply said
//! in one line per provider and callback.

use crate::provider::{
    check_iface_type, check_ifname, check_option_sizes, Options, PortOutput, PortRequest,
};
use crate::worker::process::SlowCall;
use crate::worker::protocol::{Call, Iface, Op};
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) fn to_call(id: u64, provider: &str, op: Op, req: &PortRequest) -> Call {
    Call {
        id,
        provider: provider.to_owned(),
        op,
        lport_name: req.lport_name.clone(),
        lport_options: req.lport_options.clone(),
        iface: req.iface.as_ref().map(|i| Iface {
            name: i.name.clone(),
            iface_type: i.iface_type.clone(),
            options: i.options.clone(),
        }),
        bridge: req.bridge.name.clone(),
        datapath_type: req.bridge.datapath_type.clone(),
        dpdk_initialized: req.bridge.dpdk_initialized,
        lport_macs: req.lport_macs.clone(),
    }
}

/// Checks a worker's answer to a CREATE as the in-process host checks a
/// `ctx_out`: the worker is a process that may have been corrupted, so
/// its word is not taken.
pub fn validate(
    name: String,
    iface_type: Option<String>,
    options: Vec<(String, String)>,
) -> Result<PortOutput, Vec<String>> {
    let mut problems = Vec::new();
    if let Err(e) = check_ifname(&name) {
        problems.push(e);
    }
    if let Some(Err(e)) = iface_type.as_deref().map(check_iface_type) {
        problems.push(e);
    }
    let mut seen = Options::new();
    for (k, v) in options {
        if k.is_empty() {
            problems.push("an option has an empty key".into());
        } else if k.contains('\0') || v.contains('\0') {
            problems.push(format!("option {k:?} holds a NUL byte"));
        } else if seen.iter().any(|(s, _)| *s == k) {
            problems.push(format!("option {k:?} appears twice"));
        } else {
            seen.push((k, v));
        }
    }
    problems.extend(check_option_sizes(
        seen.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    if problems.is_empty() {
        Ok(PortOutput {
            name,
            iface_type,
            options: seen,
        })
    } else {
        Err(problems)
    }
}

/// Logs the slow calls of one reply: one line per provider and callback.
pub(crate) fn log_slow(
    slow: &[SlowCall],
    lport_of: &dyn Fn(u64) -> Option<String>,
    threshold: Duration,
) {
    let mut groups: BTreeMap<(String, String), Vec<&SlowCall>> = BTreeMap::new();
    for s in slow {
        groups
            .entry((s.mark.provider.clone(), s.mark.callback.to_string()))
            .or_default()
            .push(s);
    }
    for ((provider, callback), calls) in groups {
        let worst = calls
            .iter()
            .max_by_key(|c| c.took)
            .expect("a group is never empty");
        let port = worst
            .mark
            .id
            .and_then(lport_of)
            .map(|l| format!(" for logical port {l}"))
            .unwrap_or_default();
        if calls.len() == 1 {
            log::warn!(
                "provider {provider}: {callback}{port} took {} ms (more than {} ms; the agent waits for every call)",
                worst.took.as_millis(),
                threshold.as_millis()
            );
        } else {
            log::warn!(
                "provider {provider}: {} {callback} calls took more than {} ms (slowest {} ms{port}; the agent waits for every call)",
                calls.len(),
                threshold.as_millis(),
                worst.took.as_millis()
            );
        }
    }
}
