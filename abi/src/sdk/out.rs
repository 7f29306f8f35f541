//! The allocation behind a filled `vif_plug_port_ctx_out`.

use super::port::PortOut;
use crate::owned_map::{c_string, OwnedMap};
use crate::port_ctx::vif_plug_port_ctx_out;
use std::ffi::CString;

/// Owns the C strings and pairs that `ctx_out` points into, plus the
/// provider's `PortOut` so `finish_create` can see it again. Boxed and parked
/// in `ctx_out.provider_data` until `port_ctx_destroy`.
pub(crate) struct OutStorage {
    pub(crate) out: PortOut,
    name: CString,
    iface_type: Option<CString>,
    options: OwnedMap,
}

impl OutStorage {
    pub(crate) fn new(out: PortOut) -> Result<Box<OutStorage>, String> {
        let name = c_string("interface name", &out.name)?;
        let iface_type = match &out.iface_type {
            Some(t) => Some(c_string("interface type", t)?),
            None => None,
        };
        let options = OwnedMap::new(out.options.iter().map(|(k, v)| (k, v)))
            .map_err(|e| format!("interface option {e}"))?;
        Ok(Box::new(OutStorage {
            out,
            name,
            iface_type,
            options,
        }))
    }

    /// Points `raw` into this storage and hands the box over to it.
    pub(crate) fn fill(self: Box<Self>, raw: &mut vif_plug_port_ctx_out) {
        raw.name = self.name.as_ptr();
        raw.type_ = self
            .iface_type
            .as_ref()
            .map_or(std::ptr::null(), |t| t.as_ptr());
        raw.iface_options = self.options.as_map();
        raw.provider_data = Box::into_raw(self).cast();
    }

    /// The storage `fill` parked in `raw`, if any.
    ///
    /// # Safety
    /// `raw.provider_data` must be NULL or come from `fill` and not yet taken.
    pub(crate) unsafe fn peek(raw: &vif_plug_port_ctx_out) -> Option<&OutStorage> {
        // SAFETY: per the caller's contract it points to a live OutStorage.
        unsafe { raw.provider_data.cast::<OutStorage>().as_ref() }
    }

    /// Takes the storage back out of `raw` and clears `raw`.
    ///
    /// # Safety
    /// As for [`OutStorage::peek`].
    pub(crate) unsafe fn take(raw: &mut vif_plug_port_ctx_out) -> Option<Box<OutStorage>> {
        let p = raw.provider_data.cast::<OutStorage>();
        *raw = vif_plug_port_ctx_out::ZEROED;
        if p.is_null() {
            None
        } else {
            // SAFETY: per the caller's contract, `p` came from Box::into_raw.
            Some(unsafe { Box::from_raw(p) })
        }
    }
}
