//! OVS's unixctl protocol, after `lib/unixctl.c`: a request is a JSON-RPC
//! 1.0 object `{"method": NAME, "params": [STRING...], "id": ID}`; the
//! reply is `{"result": TEXT, "error": null, "id": ID}` or
//! `{"result": null, "error": TEXT, "id": ID}`. `ovs-appctl` prints the
//! result, or the error on standard error with exit status 2.

use serde_json::{json, Value};

/// A command the control socket accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Its name, e.g. `vif-plug/show`.
    pub name: &'static str,
    /// Its arguments, for `list-commands` (e.g. `[--format json]`).
    pub usage: &'static str,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments.
    pub max_args: usize,
    /// What it does, in a sentence, for the manual page.
    pub help: &'static str,
}

const fn cmd(
    name: &'static str,
    usage: &'static str,
    min_args: usize,
    max_args: usize,
    help: &'static str,
) -> Command {
    Command {
        name,
        usage,
        min_args,
        max_args,
        help,
    }
}

/// Every command, in the order `list-commands` shows them.
pub const COMMANDS: &[Command] = &[
    cmd(
        "coverage/show",
        "",
        0,
        0,
        "Counters since start: plugs, unplugs, replacements, updates, declines, transactions and failed ones, provider calls, worker restarts.",
    ),
    cmd(
        "exit",
        "",
        0,
        0,
        "Stops the agent as SIGTERM does; plugged ports stay in place.",
    ),
    cmd("list-commands", "", 0, 0, "Lists these commands."),
    cmd(
        "memory/show",
        "",
        0,
        0,
        "Logical ports known, interfaces plugged, providers, and the agent's resident memory.",
    ),
    cmd("version", "", 0, 0, "The agent's version and provider ABI."),
    cmd(
        "vif-plug/describe",
        "TYPE",
        1,
        1,
        "The provider's inventory, through its describe callback (ABI 1.1); for the devlink provider, its devlink port table.",
    ),
    cmd(
        "vif-plug/list-providers",
        "",
        0,
        0,
        "Each provider: type, file, ABI version, maintained options, worker pid and restarts; and the files that registered none.",
    ),
    cmd(
        "vif-plug/show",
        "[--format text|json]",
        0,
        2,
        "Every logical port requested on this chassis or plugged by this agent, one line each: state, provider, interface, ofport or the Interface error, and why.",
    ),
    cmd(
        "vlog/list",
        "",
        0,
        0,
        "The log level of each module.",
    ),
    cmd(
        "vlog/set",
        "{spec | PATTERN:destination:pattern}",
        0,
        usize::MAX,
        "Sets log levels at run time: MODULE:LEVEL, ANY:LEVEL or LEVEL; modules are log targets (vif_plug_host::agent, provider::TYPE), levels off, emer, err, warn, info, dbg.",
    ),
];

/// A request that passed the table's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request's id, echoed in the reply.
    pub id: Value,
    /// The command.
    pub command: Command,
    /// Its arguments.
    pub args: Vec<String>,
}

/// Why a request is refused: the error text for the reply, and the id if
/// the request had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The request's id, if it had one.
    pub id: Value,
    /// The error text.
    pub error: String,
}

/// Checks one request against [`COMMANDS`], with the messages
/// `lib/unixctl.c` gives for the same faults.
pub fn parse(v: &Value) -> Result<Request, Refusal> {
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let refuse = |error: String| Refusal {
        id: id.clone(),
        error,
    };
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return Err(refuse(
            "request has no method (not a JSON-RPC request)".into(),
        ));
    };
    let params = match v.get("params") {
        Some(Value::Array(p)) => p,
        _ => return Err(refuse(format!("\"{method}\" request has no params array"))),
    };
    let Some(command) = COMMANDS.iter().find(|c| c.name == method) else {
        return Err(refuse(format!(
            "\"{method}\" is not a valid command (use list-commands to see a list of valid commands)"
        )));
    };
    if params.len() < command.min_args {
        return Err(refuse(format!(
            "\"{method}\" command requires at least {} arguments",
            command.min_args
        )));
    }
    if params.len() > command.max_args {
        return Err(refuse(format!(
            "\"{method}\" command takes at most {} arguments",
            command.max_args
        )));
    }
    let args = params
        .iter()
        .map(|p| p.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| refuse(format!("\"{method}\" command has non-string argument")))?;
    Ok(Request {
        id,
        command: *command,
        args,
    })
}

/// A successful reply.
pub fn result(id: &Value, text: &str) -> Value {
    json!({"result": text, "error": null, "id": id})
}

/// An error reply. The text ends with a newline, as OVS daemons' errors
/// do: `ovs-appctl` prints it as it is, before its own line.
pub fn error(id: &Value, text: &str) -> Value {
    let text = if text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    };
    json!({"result": null, "error": text, "id": id})
}

/// The text of `list-commands`.
pub fn list_commands() -> String {
    let mut out = String::from("The available commands are:\n");
    for c in COMMANDS {
        out += &format!("  {:<32}{}\n", c.name, c.usage);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_as_ovs_checks_them() {
        let ok = parse(&json!({"id": 3, "method": "vif-plug/describe", "params": ["representor"]}))
            .unwrap();
        assert_eq!(ok.command.name, "vif-plug/describe");
        assert_eq!(ok.args, ["representor"]);
        assert_eq!(ok.id, json!(3));
        let cases = [
            (json!({"id": 1, "method": "nope", "params": []}), "\"nope\" is not a valid command (use list-commands to see a list of valid commands)"),
            (json!({"id": 1, "method": "vif-plug/describe", "params": []}), "\"vif-plug/describe\" command requires at least 1 arguments"),
            (json!({"id": 1, "method": "exit", "params": ["x"]}), "\"exit\" command takes at most 0 arguments"),
            (json!({"id": 1, "method": "vif-plug/describe", "params": [7]}), "\"vif-plug/describe\" command has non-string argument"),
            (json!({"id": 1, "method": "exit"}), "\"exit\" request has no params array"),
            (json!({"id": 1, "params": []}), "request has no method (not a JSON-RPC request)"),
        ];
        for (req, want) in cases {
            let e = parse(&req).unwrap_err();
            assert_eq!(e.error, want);
            assert_eq!(e.id, json!(1));
        }
    }

    #[test]
    fn replies_have_the_json_rpc_1_0_shape() {
        assert_eq!(
            result(&json!(0), "ok\n"),
            json!({"result": "ok\n", "error": null, "id": 0})
        );
        assert_eq!(
            error(&json!(0), "bad"),
            json!({"result": null, "error": "bad\n", "id": 0})
        );
        assert!(
            list_commands().contains("  vif-plug/show                   [--format text|json]\n")
        );
    }
}
