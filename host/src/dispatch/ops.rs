//! A prepared operation as the agent holds it, wherever the provider runs:
//! in process, the provider's own context ([`PreparedCreate`],
//! [`PreparedRemove`]); through a worker, the validated answer and an id
//! whose settlement (`port_finish`, `port_ctx_destroy`) is queued and sent
//! in one [`ToWorker::Settle`](crate::worker::protocol::ToWorker::Settle)
//! per worker after the iteration.
//!
//! Either way the contract is in the type: `finish` consumes the operation,
//! and dropping it unfinished releases it (`port_ctx_destroy` alone for a
//! CREATE, nothing for a REMOVE).

use crate::provider::{PortOutput, PreparedCreate, PreparedRemove};
use std::cell::RefCell;
use std::rc::Rc;

/// The settlements one worker owes, for its current life only: an
/// operation prepared by a worker that has since died is never settled
/// (its state died with it).
#[derive(Debug, Default)]
pub(crate) struct Settlements {
    /// The worker's life the lists belong to.
    pub generation: u64,
    /// Ids whose transaction committed.
    pub committed: Vec<u64>,
    /// Ids released without a commit.
    pub dropped: Vec<u64>,
}

impl Settlements {
    /// Queues `id` of life `generation` (ignored for an older life).
    pub fn push(&mut self, generation: u64, id: u64, committed: bool) {
        if generation != self.generation {
            return;
        }
        if committed {
            self.committed.push(id);
        } else {
            self.dropped.push(id);
        }
    }

    /// True when something is owed.
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty() && self.dropped.is_empty()
    }
}

/// Where a remote operation's settlement goes.
pub(crate) type SettleQueue = Rc<RefCell<Settlements>>;

/// An operation prepared in a worker.
struct Remote {
    queue: SettleQueue,
    generation: u64,
    id: u64,
    type_name: String,
    settled: bool,
}

impl Remote {
    fn settle(mut self, committed: bool) {
        self.settled = true;
        self.queue
            .borrow_mut()
            .push(self.generation, self.id, committed);
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if !self.settled {
            self.queue
                .borrow_mut()
                .push(self.generation, self.id, false);
        }
    }
}

enum Create {
    Local(PreparedCreate),
    Remote(Remote, PortOutput),
}

/// A prepared CREATE: the provider's validated answer, held until the
/// transaction that applies it commits ([`CreateOp::finish`]) or not
/// (drop).
pub struct CreateOp(Create);

impl CreateOp {
    pub(crate) fn local(op: PreparedCreate) -> CreateOp {
        CreateOp(Create::Local(op))
    }

    pub(crate) fn remote(
        queue: SettleQueue,
        generation: u64,
        id: u64,
        type_name: &str,
        output: PortOutput,
    ) -> CreateOp {
        CreateOp(Create::Remote(
            Remote {
                queue,
                generation,
                id,
                type_name: type_name.to_owned(),
                settled: false,
            },
            output,
        ))
    }

    /// The validated answer.
    pub fn output(&self) -> &PortOutput {
        match &self.0 {
            Create::Local(op) => op.output(),
            Create::Remote(_, out) => out,
        }
    }

    /// The provider type.
    pub fn type_name(&self) -> &str {
        match &self.0 {
            Create::Local(op) => op.type_name(),
            Create::Remote(r, _) => &r.type_name,
        }
    }

    /// The transaction committed: `port_finish`, then `port_ctx_destroy`
    /// (at once in process; in the worker's next settlement otherwise).
    pub fn finish(self) {
        match self.0 {
            Create::Local(op) => op.finish(),
            Create::Remote(r, _) => r.settle(true),
        }
    }
}

enum Remove {
    Local(PreparedRemove),
    Remote(Remote),
}

/// A prepared REMOVE, held until its transaction commits
/// ([`RemoveOp::finish`]) or not (drop: the provider is told nothing).
pub struct RemoveOp(Remove);

impl RemoveOp {
    pub(crate) fn local(op: PreparedRemove) -> RemoveOp {
        RemoveOp(Remove::Local(op))
    }

    pub(crate) fn remote(
        queue: SettleQueue,
        generation: u64,
        id: u64,
        type_name: &str,
    ) -> RemoveOp {
        RemoveOp(Remove::Remote(Remote {
            queue,
            generation,
            id,
            type_name: type_name.to_owned(),
            settled: false,
        }))
    }

    /// The provider type.
    pub fn type_name(&self) -> &str {
        match &self.0 {
            Remove::Local(op) => op.type_name(),
            Remove::Remote(r) => &r.type_name,
        }
    }

    /// The removal committed: `port_finish` with a NULL `ctx_out`.
    pub fn finish(self) {
        match self.0 {
            Remove::Local(op) => op.finish(),
            Remove::Remote(r) => r.settle(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_operations_queue_their_settlement_for_the_current_life_only() {
        let q: SettleQueue = Rc::default();
        let out = PortOutput {
            name: "lsp1".into(),
            iface_type: None,
            options: Default::default(),
        };
        CreateOp::remote(q.clone(), 0, 1, "dummy", out.clone()).finish();
        drop(CreateOp::remote(q.clone(), 0, 2, "dummy", out.clone()));
        RemoveOp::remote(q.clone(), 0, 3, "dummy").finish();
        drop(RemoveOp::remote(q.clone(), 0, 4, "dummy"));
        assert_eq!(q.borrow().committed, [1, 3]);
        assert_eq!(q.borrow().dropped, [2, 4]);
        // The worker died and came back: what its former life prepared is
        // never settled.
        *q.borrow_mut() = Settlements {
            generation: 1,
            ..Settlements::default()
        };
        CreateOp::remote(q.clone(), 0, 5, "dummy", out).finish();
        drop(RemoveOp::remote(q.clone(), 0, 6, "dummy"));
        assert!(q.borrow().is_empty());
    }
}
