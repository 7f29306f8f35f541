//! The `extern "C"` functions the SDK puts in a Rust provider's vtable. This is
//! where C calls into Rust: pointers are checked, the instance is found, the
//! log scope is set, and panics are caught.

use super::errno::{EBUSY, EINVAL, ENOTRECOVERABLE};
use super::export::{Exported, HostPtr, Instance, MaintainedList};
use super::host::Host;
use super::logging::{self, Scope};
use super::out::OutStorage;
use super::port::{Op, PortIn};
use crate::class::vif_plug_class;
use crate::host::vif_plug_host;
use crate::port_ctx::{vif_plug_port_ctx_in, vif_plug_port_ctx_out};
use std::any::Any;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The vtable of provider `T`.
pub(crate) const fn class<T: Exported>() -> vif_plug_class {
    vif_plug_class {
        type_: T::TYPE_C.as_ptr(),
        init: Some(init::<T>),
        destroy: Some(destroy::<T>),
        run: Some(run::<T>),
        get_maintained_iface_options: Some(maintained::<T>),
        port_prepare: Some(port_prepare::<T>),
        port_finish: Some(port_finish::<T>),
        port_ctx_destroy: Some(port_ctx_destroy),
        describe: Some(describe::<T>),
    }
}

/// Logs a caught panic as one line (which callback, where, and why), then
/// disposes of the payload without letting its destructor unwind further.
fn report_panic(what: &str, payload: Box<dyn Any + Send>) {
    log::error!(
        "{}{what} panicked{}: {}; reported to the host as a failure",
        crate::CAUGHT_PANIC_TAG,
        logging::take_panic_location(),
        logging::payload_text(&*payload)
    );
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Runs `f` on `T`'s live instance with the log scope set, turning a panic or
/// a missing instance into `on_fail`.
fn call<T: Exported, R>(what: &str, on_fail: R, f: impl FnOnce(&mut Instance<T>) -> R) -> R {
    let mut slot = T::slot().lock();
    let Some(instance) = slot.as_mut() else {
        log::error!(
            "{what} called on provider {:?} before init or after destroy",
            T::TYPE
        );
        return on_fail;
    };
    let _scope = Scope::enter(instance.host.0);
    match catch_unwind(AssertUnwindSafe(|| f(instance))) {
        Ok(r) => r,
        Err(payload) => {
            report_panic(what, payload);
            on_fail
        }
    }
}

unsafe extern "C" fn init<T: Exported>(host: *const vif_plug_host) -> c_int {
    // SAFETY: the host passes its context, valid until `destroy` returns.
    let Some(host_ref) = (unsafe { host.as_ref() }) else {
        return EINVAL;
    };
    logging::install(host_ref);
    let _scope = Scope::enter(host);
    let mut slot = T::slot().lock();
    if slot.is_some() {
        log::error!("init called twice without destroy");
        return EBUSY;
    }
    let built = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the ABI keeps the context valid until `destroy`.
        let view = unsafe { Host::new(host_ref) }.map_err(|e| super::InitError::new(EINVAL, e))?;
        T::init(&view)
    }));
    let error = match built {
        Ok(Ok(provider)) => {
            *slot = Some(Instance {
                provider,
                host: HostPtr(host),
                maintained: MaintainedList::new(T::MAINTAINED_IFACE_OPTIONS),
            });
            logging::add_live(host);
            return 0;
        }
        Ok(Err(e)) => {
            log::error!("{}", e.message());
            e.errno()
        }
        Err(payload) => {
            report_panic("init", payload);
            ENOTRECOVERABLE
        }
    };
    error
}

unsafe extern "C" fn destroy<T: Exported>() -> c_int {
    let Some(instance) = T::slot().lock().take() else {
        return 0;
    };
    let host = instance.host.0;
    let result = {
        let _scope = Scope::enter(host);
        catch_unwind(AssertUnwindSafe(move || drop(instance)))
            .map_err(|payload| report_panic("destroy", payload))
    };
    logging::remove_live(host);
    result.map_or(ENOTRECOVERABLE, |()| 0)
}

unsafe extern "C" fn run<T: Exported>(_class: *const vif_plug_class) -> bool {
    call::<T, _>("run", false, |i| i.provider.run())
}

unsafe extern "C" fn maintained<T: Exported>() -> *const *const c_char {
    call::<T, _>("get_maintained_iface_options", std::ptr::null(), |i| {
        i.maintained.ptrs.as_ptr()
    })
}

/// Validates `ctx_in`, logging why it is unusable.
///
/// # Safety
/// `ctx_in` must be NULL or a context as the ABI describes it.
unsafe fn port_in<'a>(
    what: &str,
    ctx_in: *const vif_plug_port_ctx_in,
    host_minor: u32,
) -> Option<PortIn<'a>> {
    // SAFETY: per the caller's contract.
    let Some(raw) = (unsafe { ctx_in.as_ref() }) else {
        log::error!("{what}: ctx_in is NULL");
        return None;
    };
    // SAFETY: per the caller's contract.
    match unsafe { PortIn::new(raw, host_minor) } {
        Ok(port) => Some(port),
        Err(e) => {
            log::error!("{what}: unusable ctx_in: {e}");
            None
        }
    }
}

unsafe extern "C" fn port_prepare<T: Exported>(
    ctx_in: *const vif_plug_port_ctx_in,
    ctx_out: *mut vif_plug_port_ctx_out,
) -> bool {
    call::<T, _>("port_prepare", false, |instance| {
        // SAFETY: the host passes a valid context or NULL, laid out for its
        // own ABI minor version.
        let Some(port) = (unsafe { port_in("port_prepare", ctx_in, instance.host_minor()) }) else {
            return false;
        };
        match port.op() {
            Op::Remove => instance.provider.prepare_remove(&port),
            Op::Create => {
                // SAFETY: the host passes a valid, zeroed ctx_out for CREATE.
                let Some(raw_out) = (unsafe { ctx_out.as_mut() }) else {
                    log::error!(
                        "port_prepare: CREATE of {} without ctx_out",
                        port.lport_name()
                    );
                    return false;
                };
                let Some(out) = instance.provider.prepare_create(&port) else {
                    return false;
                };
                match OutStorage::new(out) {
                    Ok(storage) => {
                        storage.fill(raw_out);
                        true
                    }
                    Err(e) => {
                        log::error!(
                            "{}port_prepare of {}: {e}",
                            crate::BAD_ANSWER_TAG,
                            port.lport_name()
                        );
                        false
                    }
                }
            }
        }
    })
}

unsafe extern "C" fn port_finish<T: Exported>(
    ctx_in: *const vif_plug_port_ctx_in,
    ctx_out: *mut vif_plug_port_ctx_out,
) {
    call::<T, _>("port_finish", (), |instance| {
        // SAFETY: the host passes the context it gave port_prepare.
        let Some(port) = (unsafe { port_in("port_finish", ctx_in, instance.host_minor()) }) else {
            return;
        };
        match port.op() {
            Op::Remove => instance.provider.finish_remove(&port),
            Op::Create => {
                // SAFETY: ctx_out is the one port_prepare filled.
                match unsafe { ctx_out.as_ref().and_then(|raw| OutStorage::peek(raw)) } {
                    Some(storage) => instance.provider.finish_create(&port, &storage.out),
                    None => log::error!(
                        "port_finish of {}: ctx_out was not filled by port_prepare",
                        port.lport_name()
                    ),
                }
            }
        }
    })
}

/// ABI 1.1: the provider's inventory, one host call per line (a line
/// holding a NUL byte is cut there).
unsafe extern "C" fn describe<T: Exported>(
    _cls: *const crate::vif_plug_class,
    out: *const crate::vif_plug_describe_out,
) {
    call::<T, _>("describe", (), |instance| {
        // SAFETY: the host passes a valid writer for the call, or NULL.
        let Some(out_ref) = (unsafe { out.as_ref() }) else {
            log::error!("describe: out is NULL");
            return;
        };
        let Some(line) = out_ref.line else {
            log::error!("describe: out->line is NULL");
            return;
        };
        for text in instance.provider.describe() {
            let text = text.split('\0').next().unwrap_or_default();
            if let Ok(c) = std::ffi::CString::new(text) {
                // SAFETY: the host's writer, called with its own struct and
                // a C string valid during the call, as the ABI says.
                unsafe { line(out, c.as_ptr()) };
            }
        }
    })
}

/// The same for every class: it only frees the SDK's own allocation.
unsafe extern "C" fn port_ctx_destroy(
    _ctx_in: *const vif_plug_port_ctx_in,
    ctx_out: *mut vif_plug_port_ctx_out,
) {
    // Freed even if the class is gone already, so nothing leaks; dropping a
    // PortOut cannot reasonably panic, but the boundary must hold regardless.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: ctx_out is NULL or the one port_prepare filled.
        if let Some(raw) = unsafe { ctx_out.as_mut() } {
            // SAFETY: provider_data was set by OutStorage::fill.
            drop(unsafe { OutStorage::take(raw) });
        }
    }));
}
