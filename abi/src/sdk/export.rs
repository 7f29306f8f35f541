//! What `export_providers!` expands to: per-class state and the exported
//! symbols.

use super::vtable;
use super::Provider;
use crate::class::vif_plug_class;
use crate::host::vif_plug_host;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A provider's live instance and what the SDK keeps beside it.
pub struct Instance<T> {
    pub(crate) provider: T,
    pub(crate) host: HostPtr,
    pub(crate) maintained: MaintainedList,
}

impl<T> Instance<T> {
    /// The host's ABI minor version, from the context `init` received.
    pub(crate) fn host_minor(&self) -> u32 {
        // SAFETY: the host context stays valid from `init` until `destroy`
        // returns, and the instance lives within that span.
        unsafe { self.host.0.as_ref() }.map_or(0, |h| h.abi_minor)
    }
}

/// Where a class keeps its instance between `init` and `destroy`.
pub struct Slot<T> {
    inner: Mutex<Option<Instance<T>>>,
}

impl<T> Slot<T> {
    /// An empty slot, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Slot {
            inner: Mutex::new(None),
        }
    }

    /// Callbacks keep working after a panic was caught: the provider's state
    /// is whatever the panicking call left, which the provider must tolerate.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Option<Instance<T>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct HostPtr(pub(crate) *const vif_plug_host);
// SAFETY: the host context is read-only and valid until `destroy`; the ABI
// only calls a class from one thread at a time.
unsafe impl Send for HostPtr {}

/// The NULL-terminated list `get_maintained_iface_options` returns, and
/// the C strings it points into: built by `init` from
/// `Provider::MAINTAINED_IFACE_OPTIONS`, kept until `destroy`, as the ABI
/// asks.
pub(crate) struct MaintainedList {
    _keys: Vec<CString>,
    pub(crate) ptrs: Vec<*const c_char>,
}
// SAFETY: the pointers point into `_keys`, owned by the list and never
// changed; moving the list moves no heap buffer.
unsafe impl Send for MaintainedList {}

impl MaintainedList {
    /// The list for `keys`; a key holding a NUL byte (which
    /// `export_providers!` refuses at compile time) is left out.
    pub(crate) fn new(keys: &[&str]) -> Self {
        let keys: Vec<CString> = keys.iter().filter_map(|k| CString::new(*k).ok()).collect();
        let ptrs = keys
            .iter()
            .map(|k| k.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        MaintainedList { _keys: keys, ptrs }
    }
}

/// Implemented by `export_providers!` for each exported provider type.
pub trait Exported: Provider {
    /// The instance storage of this class.
    fn slot() -> &'static Slot<Self>;

    /// `Provider::TYPE` with a NUL, for the vtable; the macro makes it a
    /// constant array, checked while the provider compiles.
    const TYPE_C: &'static CStr;

    /// The C vtable of this class.
    const CLASS: vif_plug_class = vtable::class::<Self>();
}

/// The exported `vif_plug_provider_classes`: same layout as
/// `const struct vif_plug_class *[N]`, the last entry `None` (NULL).
#[repr(transparent)]
pub struct ClassList<const N: usize>(pub [Option<&'static vif_plug_class>; N]);

/// Exports one or more [`Provider`](crate::sdk::Provider) types from a cdylib:
/// generates each class's vtable, the NULL-terminated
/// `vif_plug_provider_classes` array, the `vif_plug_provider_abi` version
/// record and the `abi_stable` layout the host checks. Use it once per
/// library.
///
/// It also checks, while the provider compiles, that each
/// [`Provider::TYPE`](crate::sdk::Provider::TYPE) is a type name the host
/// accepts (non-empty, without whitespace or control characters) and that
/// each key of
/// [`Provider::MAINTAINED_IFACE_OPTIONS`](crate::sdk::Provider::MAINTAINED_IFACE_OPTIONS)
/// is non-empty and holds no control character: a bad one is a compile
/// error that says which rule it breaks.
///
/// ```compile_fail,E0080
/// # use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};
/// struct Mine;
/// impl Provider for Mine {
///     const TYPE: &'static str = "mine";
///     // error: a NUL byte in a key
///     const MAINTAINED_IFACE_OPTIONS: &'static [&'static str] = &["mine-port", "a\0b"];
///     fn init(_host: &Host<'_>) -> Result<Self, InitError> { Ok(Mine) }
///     fn prepare_create(&mut self, _: &PortIn<'_>) -> Option<PortOut> { None }
/// }
/// vif_plug_abi::export_providers!(Mine);
/// ```
#[macro_export]
macro_rules! export_providers {
    ($($provider:ty),+ $(,)?) => {
        const _: () = {
            $(
                impl $crate::sdk::__private::Exported for $provider {
                    fn slot() -> &'static $crate::sdk::__private::Slot<Self> {
                        static SLOT: $crate::sdk::__private::Slot<$provider> =
                            $crate::sdk::__private::Slot::new();
                        &SLOT
                    }

                    const TYPE_C: &'static ::core::ffi::CStr = {
                        const NAME: [u8; <$provider as $crate::sdk::Provider>::TYPE.len() + 1] =
                            $crate::sdk::__private::type_with_nul(
                                <$provider as $crate::sdk::Provider>::TYPE,
                            );
                        $crate::sdk::__private::c_str(&NAME)
                    };
                }

                const _: () = $crate::sdk::__private::check_option_keys(
                    <$provider as $crate::sdk::Provider>::MAINTAINED_IFACE_OPTIONS,
                );
            )+

            const COUNT: usize = [$(stringify!($provider)),+].len();

            #[unsafe(no_mangle)]
            pub static vif_plug_provider_classes: $crate::sdk::__private::ClassList<{ COUNT + 1 }> =
                $crate::sdk::__private::ClassList([
                    $(Some(&<$provider as $crate::sdk::__private::Exported>::CLASS),)+
                    None,
                ]);

            #[unsafe(no_mangle)]
            pub static vif_plug_provider_abi: $crate::vif_plug_abi_info = $crate::VIF_PLUG_ABI_INFO;

            #[unsafe(no_mangle)]
            pub static vif_plug_provider_rust_layout: $crate::vif_plug_rust_layout = $crate::RUST_LAYOUT;
        };
    };
}
