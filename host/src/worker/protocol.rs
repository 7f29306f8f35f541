//! What the agent and a provider worker say to each other. The worker
//! speaks first, unasked: [`FromWorker::Loaded`] (or
//! [`FromWorker::LoadFailed`]). Then one request is answered by exactly
//! one reply, in order; before the reply the worker may send any number of
//! [`FromWorker::Entering`] marks (which callback it is about to call) and
//! [`FromWorker::Log`] records (a provider's log lines, passed through
//! with its name and level).
//!
//! One worker serves every class of one library. Calls are batched, as the
//! worker-process design asks: every `port_prepare` of one agent iteration
//! travels in one [`ToWorker::Prepare`], and every `port_finish` /
//! `port_ctx_destroy` after the commit in one [`ToWorker::Settle`].
//! Operations are named by ids the agent chooses, unique for the life of a
//! worker; the worker keeps the provider's `ctx_out` of each prepared
//! CREATE under its id until it is settled.

use serde::{Deserialize, Serialize};

/// The agent's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Call `init` on each named class of the library, in order, with its
    /// `--provider-config` pairs, then read its maintained options.
    /// Classes not named are never initialised (a type another library
    /// registered first). Reply: [`FromWorker::Started`].
    Init {
        /// `(type, configuration pairs)` per class to initialise.
        classes: Vec<(String, Vec<(String, String)>)>,
    },
    /// Call `run` on every initialised class. Reply: [`FromWorker::Ran`].
    Run,
    /// Call `port_prepare` for each operation, in order. Reply:
    /// [`FromWorker::Prepared`], one answer per call, in the same order.
    Prepare(Vec<Call>),
    /// Settle prepared operations after a transaction: `port_finish`
    /// (then `port_ctx_destroy` for a CREATE) for the committed ones,
    /// `port_ctx_destroy` alone for the rest. Reply: [`FromWorker::Done`].
    Settle {
        /// Ids of operations whose transaction committed.
        committed: Vec<u64>,
        /// Ids of operations that did not commit.
        dropped: Vec<u64>,
    },
    /// Call `destroy` on one initialised class (`check` destroys each class
    /// after driving it). Reply: [`FromWorker::Destroyed`].
    DestroyClass(String),
    /// Call `describe` (ABI 1.1) on one initialised class. Reply:
    /// [`FromWorker::Described`].
    Describe(String),
    /// Release what is held, call `destroy` on every initialised class and
    /// exit. Reply: [`FromWorker::Done`].
    Destroy,
}

/// The operation of one `port_prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `VIF_PLUG_OP_CREATE`: create or update.
    Create,
    /// `VIF_PLUG_OP_REMOVE`.
    Remove,
}

/// One `port_prepare` to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The agent's id for the operation.
    pub id: u64,
    /// The class (provider type) to call.
    pub provider: String,
    /// Create or remove.
    pub op: Op,
    /// Logical port name (`vif_plug_port_ctx_in.lport_name`).
    pub lport_name: String,
    /// Logical port options from the Southbound `Port_Binding`.
    pub lport_options: Vec<(String, String)>,
    /// The existing Interface, if any.
    pub iface: Option<Iface>,
    /// Integration bridge name.
    pub bridge: String,
    /// `Bridge.datapath_type`.
    pub datapath_type: String,
    /// `Open_vSwitch.dpdk_initialized`.
    pub dpdk_initialized: bool,
    /// The logical port's MAC addresses (ABI 1.1).
    #[serde(default)]
    pub lport_macs: Vec<String>,
}

/// The Interface that exists for a logical port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iface {
    /// Interface name.
    pub name: String,
    /// Interface type, "" for system.
    pub iface_type: String,
    /// All its options.
    pub options: Vec<(String, String)>,
}

/// A `vif_plug_class` member, named as in the C header, for reports of
/// what a worker was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Callback {
    /// Loading the library (its constructors, the ABI check).
    Load,
    /// `init`.
    Init,
    /// `get_maintained_iface_options`, called right after a successful
    /// `init`.
    MaintainedOptions,
    /// `run`.
    Run,
    /// `port_prepare`.
    PortPrepare,
    /// `port_finish`.
    PortFinish,
    /// `port_ctx_destroy`.
    PortCtxDestroy,
    /// `destroy`.
    Destroy,
    /// `describe` (ABI 1.1).
    Describe,
}

impl std::fmt::Display for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Callback::Load => "loading the library",
            Callback::Init => "init",
            Callback::MaintainedOptions => "get_maintained_iface_options",
            Callback::Run => "run",
            Callback::PortPrepare => "port_prepare",
            Callback::PortFinish => "port_finish",
            Callback::PortCtxDestroy => "port_ctx_destroy",
            Callback::Destroy => "destroy",
            Callback::Describe => "describe",
        })
    }
}

/// What the worker found in its library, sent unasked as its first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    /// The library's ABI major version.
    pub abi_major: u32,
    /// The library's ABI minor version.
    pub abi_minor: u32,
    /// Whether it exported the Rust layout record (a Rust provider).
    pub rust_layout_checked: bool,
    /// Each entry of `vif_plug_provider_classes`, in order: its type, or
    /// the loader's refusal of it (one line naming the file).
    pub classes: Vec<Result<String, String>>,
    /// The types of the refused classes, where they could be read (a class
    /// refused for a NULL callback still names its type).
    #[serde(default)]
    pub refused_types: Vec<String>,
}

/// Why `init` of one class failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitError {
    /// The errno `init` returned (EINVAL when it could not be called).
    pub errno: i32,
    /// Why, when the worker knows more than the errno.
    pub why: Option<String>,
}

/// The worker's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The library loaded (first message, unasked).
    Loaded(Loaded),
    /// The library could not be loaded (first message, unasked); the worker
    /// exits after it.
    LoadFailed(String),
    /// The result of [`ToWorker::Init`], per class in its order: the
    /// maintained interface option keys, or why `init` failed.
    Started(Vec<(String, Result<Vec<String>, InitError>)>),
    /// `run` returned for every class: the types that report a change.
    Ran(Vec<String>),
    /// The answers to a [`ToWorker::Prepare`], in its order.
    Prepared(Vec<Answer>),
    /// A [`ToWorker::Settle`] or [`ToWorker::Destroy`] is done.
    Done,
    /// The result of [`ToWorker::DestroyClass`]: the errno `destroy`
    /// returned, if not 0, or why it was not called.
    Destroyed(Result<(), InitError>),
    /// The lines `describe` wrote; `None` when the class has none.
    Described(Option<Vec<String>>),
    /// The worker is about to call `callback` of class `provider` (for the
    /// operation `id`, if it concerns one). Not a reply: it tells the
    /// agent, at the cost of a small write and no round trip, which call a
    /// crash or a hang happened in, and how long each call took.
    Entering {
        /// The class.
        provider: String,
        /// The member about to be called.
        callback: Callback,
        /// The operation, for port callbacks.
        id: Option<u64>,
    },
    /// A log record from a provider (through the host's log callback or
    /// the Rust SDK), re-logged by the agent under the same target.
    Log {
        /// 1 (error) to 5 (trace), as the ABI's levels.
        level: u8,
        /// The provider's log target (`provider::TYPE`).
        target: String,
        /// The text.
        text: String,
    },
}

/// The worker's answer to one [`Call`], already validated as the
/// in-process host validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// `port_prepare` returned false; what the provider logged during the
    /// call, if anything (see `provider::host_ctx::capture_said`).
    Declined(Option<String>),
    /// A CREATE was prepared; the worker keeps its `ctx_out` until settled.
    Create {
        /// Interface name.
        name: String,
        /// Interface type; `None` for a system interface.
        iface_type: Option<String>,
        /// Interface options.
        options: Vec<(String, String)>,
    },
    /// A REMOVE was prepared.
    Remove,
    /// The answer was unusable (every problem listed); the worker has
    /// already called `port_ctx_destroy`.
    BadOutput(Vec<String>),
    /// The request could not be passed to C (a NUL byte), or named a class
    /// the worker does not serve.
    BadRequest(String),
}

#[cfg(test)]
mod tests {
    use super::super::frame::{read_frame, write_frame};
    use super::*;

    #[test]
    fn a_batch_and_its_answers_survive_the_socketpair() {
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let calls: Vec<Call> = (0..3)
            .map(|i| Call {
                id: i,
                provider: "dummy".into(),
                op: if i == 2 { Op::Remove } else { Op::Create },
                lport_name: format!("lsp{i}"),
                lport_options: vec![("vif-plug-type".into(), "dummy".into())],
                iface: (i == 1).then(|| Iface {
                    name: "vif1".into(),
                    iface_type: "internal".into(),
                    options: vec![],
                }),
                bridge: "br-int".into(),
                datapath_type: "netdev".into(),
                dpdk_initialized: false,
                lport_macs: vec![],
            })
            .collect();
        write_frame(&mut a, &ToWorker::Prepare(calls.clone())).unwrap();
        let got: ToWorker = read_frame(&mut b).unwrap().unwrap();
        assert_eq!(got, ToWorker::Prepare(calls));
        let answers = vec![
            Answer::Create {
                name: "vif0".into(),
                iface_type: Some("internal".into()),
                options: vec![("k".into(), "v".into())],
            },
            Answer::Declined(None),
            Answer::Remove,
        ];
        write_frame(
            &mut b,
            &FromWorker::Log {
                level: 3,
                target: "provider::dummy".into(),
                text: "prepare: lsp0".into(),
            },
        )
        .unwrap();
        write_frame(&mut b, &FromWorker::Prepared(answers.clone())).unwrap();
        drop(b);
        assert!(matches!(
            read_frame::<_, FromWorker>(&mut a).unwrap(),
            Some(FromWorker::Log { level: 3, .. })
        ));
        assert_eq!(
            read_frame::<_, FromWorker>(&mut a).unwrap(),
            Some(FromWorker::Prepared(answers))
        );
        // The worker gone between messages: a clean end, which the agent
        // treats as a crash when a reply is still owed.
        assert_eq!(read_frame::<_, FromWorker>(&mut a).unwrap(), None);
    }
}
