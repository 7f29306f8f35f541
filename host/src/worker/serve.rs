//! The worker's side of the socketpair: one provider class, whose callbacks
//! run on the calling thread, one at a time, in the order the agent's
//! messages ask for them (the ABI's threading promise holds inside the
//! worker exactly as it does in process).
//!
//! The call-order contract is kept by the same types as in process: a
//! prepared CREATE is held as a [`PreparedCreate`] under the agent's id
//! until a [`ToWorker::Settle`] finishes or drops it, so `port_ctx_destroy`
//! happens exactly once; when the agent goes away, what is still held is
//! destroyed and `destroy` is called before the worker returns.

use super::frame::{read_frame, write_frame};
use super::protocol::{Answer, Call, FromWorker, Op, ToWorker};
use crate::provider::{
    BridgeInfo, ExistingIface, InitFailure, PortRequest, PrepareError, PreparedCreate,
    PreparedRemove, Provider, ProviderClass,
};
use std::collections::HashMap;
use std::io::{self, Read, Write};

const EINVAL: i32 = 22;

/// Serves the agent on `stream` until it sends [`ToWorker::Destroy`] or
/// closes the stream; then releases every operation still held and calls
/// `destroy` if `init` succeeded.
///
/// # Errors
/// A broken or garbled stream (see [`read_frame`]); the provider is
/// destroyed first all the same.
pub fn serve<S: Read + Write>(class: ProviderClass, stream: &mut S) -> io::Result<()> {
    let mut state = Worker {
        class: Some(class),
        provider: None,
        creates: HashMap::new(),
        removes: HashMap::new(),
    };
    let result = state.serve(stream);
    state.shut_down();
    result
}

struct Worker {
    /// The class until `init` is asked for.
    class: Option<ProviderClass>,
    provider: Option<Provider>,
    creates: HashMap<u64, PreparedCreate>,
    removes: HashMap<u64, PreparedRemove>,
}

impl Worker {
    fn serve<S: Read + Write>(&mut self, stream: &mut S) -> io::Result<()> {
        while let Some(msg) = read_frame::<_, ToWorker>(stream)? {
            let last = msg == ToWorker::Destroy;
            let reply = self.handle(msg);
            write_frame(stream, &reply)?;
            if last {
                break;
            }
        }
        Ok(())
    }

    fn handle(&mut self, msg: ToWorker) -> FromWorker {
        match msg {
            ToWorker::Init { config } => match self.class.take() {
                Some(class) => match Provider::init(class, &config) {
                    Ok(p) => {
                        let maintained = p.maintained_options().to_vec();
                        self.provider = Some(p);
                        FromWorker::Started { maintained }
                    }
                    Err(InitFailure::Errno(errno)) => FromWorker::InitFailed { errno, why: None },
                    Err(InitFailure::BadConfig(why)) => FromWorker::InitFailed {
                        errno: EINVAL,
                        why: Some(why),
                    },
                },
                None => FromWorker::InitFailed {
                    errno: EINVAL,
                    why: Some("init was asked for twice".into()),
                },
            },
            ToWorker::Run => FromWorker::Ran {
                changed: self.provider.as_ref().is_some_and(Provider::run),
            },
            ToWorker::Prepare(calls) => {
                FromWorker::Prepared(calls.into_iter().map(|c| self.prepare(c)).collect())
            }
            ToWorker::Settle { committed, dropped } => {
                for id in committed {
                    if let Some(op) = self.creates.remove(&id) {
                        op.finish();
                    } else if let Some(op) = self.removes.remove(&id) {
                        op.finish();
                    }
                }
                for id in dropped {
                    // Dropping a CREATE calls ctx_destroy; a REMOVE that did
                    // not commit is told nothing, as the ABI says.
                    self.creates.remove(&id);
                    self.removes.remove(&id);
                }
                FromWorker::Done
            }
            ToWorker::Destroy => {
                self.shut_down();
                FromWorker::Done
            }
        }
    }

    fn prepare(&mut self, call: Call) -> Answer {
        let Some(provider) = &self.provider else {
            return Answer::Declined;
        };
        let req = PortRequest {
            lport_name: call.lport_name,
            lport_options: call.lport_options,
            iface: call.iface.map(|i| ExistingIface {
                name: i.name,
                iface_type: i.iface_type,
                options: i.options,
            }),
            bridge: BridgeInfo {
                name: call.bridge,
                datapath_type: call.datapath_type,
                dpdk_initialized: call.dpdk_initialized,
            },
        };
        let failed = |e: PrepareError| match e {
            PrepareError::Declined => Answer::Declined,
            PrepareError::BadRequest(e) => Answer::BadRequest(e.to_string()),
            PrepareError::BadOutput(problems) => Answer::BadOutput(problems),
        };
        match call.op {
            Op::Create => match provider.prepare_create(&req) {
                Ok(op) => {
                    let out = op.output();
                    let answer = Answer::Create {
                        name: out.name.clone(),
                        iface_type: out.iface_type.clone(),
                        options: out.options.to_vec(),
                    };
                    // An id used twice: the older operation is released,
                    // so nothing is held without a way to settle it.
                    self.creates.insert(call.id, op);
                    answer
                }
                Err(e) => failed(e),
            },
            Op::Remove => match provider.prepare_remove(&req) {
                Ok(op) => {
                    self.removes.insert(call.id, op);
                    Answer::Remove
                }
                Err(e) => failed(e),
            },
        }
    }

    /// Releases what is held, then `destroy` (once).
    fn shut_down(&mut self) {
        self.creates.clear();
        self.removes.clear();
        if let Some(p) = self.provider.take() {
            if let Err(rc) = p.destroy() {
                log::warn!("provider {}: destroy returned {rc}", p.type_name());
            }
        }
    }
}
