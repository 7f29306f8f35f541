//! The provider vtable.
#![allow(non_camel_case_types)]

use crate::describe::vif_plug_describe_out;
use crate::host::vif_plug_host;
use crate::port_ctx::{vif_plug_port_ctx_in, vif_plug_port_ctx_out};
use abi_stable::StableAbi;
use std::os::raw::{c_char, c_int};

/// One VIF plug provider class: a type name and the callbacks that implement it.
///
/// A library exports a NULL-terminated array of pointers to these as
/// `vif_plug_provider_classes`. The host copies and checks the struct when it
/// loads the library; the strings and functions it points to must live as
/// long as the library.
///
/// All callbacks are called from one host thread, never concurrently, and
/// must not block: they run in the agent's main loop. No callback is called
/// before `init` returned 0.
///
/// Call order for one port (host side):
///
///   CREATE: port_prepare -> true -> [port_finish, if the transaction
///           committed] -> port_ctx_destroy, always
///           port_prepare -> false -> nothing more
///   REMOVE: port_prepare(ctx_out = NULL) -> true -> [port_finish(ctx_out =
///           NULL), once the removal committed]; never port_ctx_destroy
///           port_prepare(ctx_out = NULL) -> false -> nothing more
///
/// A CREATE for an existing interface (`ctx_in->iface_name` set) whose
/// answer needs no change to the database is finished at once:
/// port_finish, then port_ctx_destroy, as ovn-controller does for an
/// unchanged transaction. This happens when the host adopts ports after a
/// restart, and when `run` reported a change. A CREATE whose answer names
/// another interface than the existing one is not applied as such (only
/// port_ctx_destroy): the host prepares a REMOVE of the old interface and a
/// CREATE without one, and commits both in one transaction.
/// cbindgen:field-names=[type, init, destroy, run, get_maintained_iface_options, port_prepare, port_finish, port_ctx_destroy, describe]
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct vif_plug_class {
    /// The provider type, matched against the logical port option
    /// `vif-plug-type` and written to `external_ids:ovn-plugged`. Non-empty
    /// NUL-terminated UTF-8, unique among loaded providers. Required.
    pub type_: *const c_char,

    /// Called once when the host registers the class, at start-up, before any
    /// other callback. `host` stays valid until `destroy` returns: keep it to
    /// log through and to read configuration from. Returns 0 on success or a
    /// positive errno value; on failure the class is not registered and
    /// nothing else is called (not even `destroy`). Log why before failing.
    /// May be NULL.
    pub init: Option<unsafe extern "C" fn(host: *const vif_plug_host) -> c_int>,

    /// Called once when the host unregisters the class, at exit. Release
    /// everything. Returns 0 or a positive errno value. May be NULL.
    pub destroy: Option<unsafe extern "C" fn() -> c_int>,

    /// Called on every iteration of the host's main loop, and whenever the host
    /// wakes up. Do periodic, non-blocking work here, such as draining event
    /// sockets to keep lookup tables fresh. Return true if anything changed
    /// that could make a previously declined `port_prepare` succeed now; the
    /// host then retries pending ports. May be NULL.
    pub run: Option<unsafe extern "C" fn(cls: *const vif_plug_class) -> bool>,

    /// Returns the Interface option keys this provider maintains, as a
    /// NULL-terminated array of strings. When the provider stops returning
    /// one of these keys in `ctx_out.iface_options`, the host removes it from
    /// the Interface; keys not in this list belong to other programs and are
    /// never removed. Called after `init`; the host may cache the result, so
    /// the array must stay valid and unchanged until `destroy`. May be NULL
    /// (nothing maintained).
    pub get_maintained_iface_options: Option<unsafe extern "C" fn() -> *const *const c_char>,

    /// Prepares a port operation. Required.
    ///
    /// CREATE (`ctx_in->op_type == VIF_PLUG_OP_CREATE`, also used for
    /// updates): look up or set up the resource and fill the zeroed `ctx_out`;
    /// return true to have the host create or update the Port and Interface.
    /// Return false if it cannot be done now (for example, the representor
    /// is not known yet); the host retries when inputs change or `run`
    /// returns true. After false the host calls nothing else for this
    /// operation, so release anything allocated before returning false.
    ///
    /// REMOVE: `ctx_out` is NULL. Return true to let the host delete the
    /// Port and Interface, false to keep them for now.
    ///
    /// Exhaust every non-blocking way to succeed here (including refreshing
    /// lookup tables) before returning false.
    pub port_prepare: Option<
        unsafe extern "C" fn(
            ctx_in: *const vif_plug_port_ctx_in,
            ctx_out: *mut vif_plug_port_ctx_out,
        ) -> bool,
    >,

    /// Tells the provider that the database transaction carrying the operation
    /// prepared earlier has committed, or, for a CREATE on an existing
    /// interface that needed no change, that the interface is as answered.
    /// Never called if it did not commit (the host recomputes and prepares
    /// again). For REMOVE, `ctx_out` is NULL. Required.
    pub port_finish: Option<
        unsafe extern "C" fn(
            ctx_in: *const vif_plug_port_ctx_in,
            ctx_out: *mut vif_plug_port_ctx_out,
        ),
    >,

    /// Releases what `port_prepare` put in `ctx_out`. Called exactly once for
    /// every CREATE whose `port_prepare` returned true, after `port_finish`
    /// if that was called, whether or not the transaction committed. Never
    /// called for REMOVE. Required.
    pub port_ctx_destroy: Option<
        unsafe extern "C" fn(
            ctx_in: *const vif_plug_port_ctx_in,
            ctx_out: *mut vif_plug_port_ctx_out,
        ),
    >,

    /// ABI 1.1: writes the provider's inventory (for a representor
    /// provider, its lookup table), for the operator's commands: one call
    /// of `out->line(out, text)` per line. Called between
    /// `init` and `destroy`, on the thread of every other callback; must
    /// not block. May be NULL (nothing to describe); a library built for
    /// ABI 1.0 has no such member, and the host never reads one from it.
    pub describe:
        Option<unsafe extern "C" fn(cls: *const vif_plug_class, out: *const vif_plug_describe_out)>,
}

impl vif_plug_class {
    /// A class with every member NULL: what a host fills a shorter
    /// (older minor version) vtable into.
    pub const EMPTY: vif_plug_class = vif_plug_class {
        type_: std::ptr::null(),
        init: None,
        destroy: None,
        run: None,
        get_maintained_iface_options: None,
        port_prepare: None,
        port_finish: None,
        port_ctx_destroy: None,
        describe: None,
    };
}

// SAFETY: a class is an immutable table of function pointers and a pointer to
// a string constant; nothing in it is ever written through after it is built,
// so sharing it between threads (as `static` requires) is sound.
unsafe impl Sync for vif_plug_class {}
