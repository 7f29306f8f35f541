//! Mapping a provider library and reading its exported symbols.

use super::abi_check;
use super::LoadError;
use crate::provider::{ClassError, ProviderClass};
use abi_stable::library::AbiHeader;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use std::path::Path;
use std::rc::Rc;
use vif_plug_abi::{vif_plug_abi_info, vif_plug_class, vif_plug_rust_layout};

/// More classes than this in one library is taken as a missing terminator.
const MAX_CLASSES: usize = 256;

/// What a library yielded: its ABI record and its classes, each usable or
/// refused with a reason.
pub struct LoadedLibrary {
    /// The ABI record the library exports.
    pub abi: vif_plug_abi_info,
    /// Whether it exported an `abi_stable` layout that was checked.
    pub rust_layout_checked: bool,
    /// Its classes, in array order.
    pub classes: Vec<Result<ProviderClass, (usize, ClassError)>>,
}

/// Maps `real` (already checked) and reads its symbols.
pub(crate) fn open(path: &Path, real: &Path) -> Result<LoadedLibrary, LoadError> {
    // RTLD_NOW: an unresolved symbol fails here, with the loader's message,
    // instead of crashing on first call. RTLD_LOCAL: providers' symbols
    // cannot interpose on each other.
    // SAFETY: mapping runs the library's initialisers; that is what loading
    // a provider means, and the file passed the ownership checks.
    let keep = if super::keeps_loaded() {
        libc::RTLD_NODELETE
    } else {
        0
    };
    // SAFETY: as above.
    let lib = unsafe { Library::open(Some(real), RTLD_NOW | RTLD_LOCAL | keep) }
        .map_err(|e| LoadError::Dlopen(path.to_owned(), e.to_string()))?;
    let lib = Rc::new(lib);
    let missing = |symbol: &'static str| {
        if super::symbols::defined_but_not_exported(real, symbol) {
            LoadError::NotExported(path.to_owned(), symbol)
        } else {
            LoadError::MissingSymbol(path.to_owned(), symbol)
        }
    };

    // SAFETY: the symbol, if present, is a `const struct vif_plug_abi_info`.
    let abi_ptr = unsafe { lib.get::<*const vif_plug_abi_info>(b"vif_plug_provider_abi\0") }
        .map_err(|_| missing("vif_plug_provider_abi"))?;
    // SAFETY: a non-NULL address of a plain-data struct in a mapped library.
    let abi = unsafe { (*abi_ptr).as_ref() }
        .copied()
        .ok_or_else(|| missing("vif_plug_provider_abi"))?;
    abi_check::check_version(&abi).map_err(|why| LoadError::Incompatible(path.to_owned(), why))?;

    // SAFETY: the symbol, if present, is a `vif_plug_rust_layout` (only Rust
    // providers built with the SDK export it).
    let layout =
        unsafe { lib.get::<*const vif_plug_rust_layout>(b"vif_plug_provider_rust_layout\0") };
    let rust_layout_checked = match layout {
        // The layout of an older minor's types differs from ours by the
        // members appended since: its sizes were checked above instead.
        Ok(_) if abi.minor != vif_plug_abi::VIF_PLUG_ABI_MINOR => false,
        Ok(p) => {
            let record: *const vif_plug_rust_layout = *p;
            // SAFETY: the record starts with abi_stable's AbiHeader, whose
            // layout is the same in every abi_stable version: read only it
            // until it says the rest is laid out as this host expects.
            let header: AbiHeader = unsafe { std::ptr::addr_of!((*record).abi_stable).read() };
            if !header.is_valid() {
                return Err(LoadError::Incompatible(
                    path.to_owned(),
                    format!(
                        "built with abi_stable ABI {}.{}, incompatible with this host's {}.{}",
                        header.abi_major,
                        header.abi_minor,
                        AbiHeader::VALUE.abi_major,
                        AbiHeader::VALUE.abi_minor
                    ),
                ));
            }
            // SAFETY: compatible abi_stable, so the record and the layout it
            // points to are what this host's abi_stable expects; the library
            // stays mapped while its classes are in use.
            let layout = unsafe { (*record).class_layout };
            abi_check::check_rust_layout(layout)
                .map_err(|why| LoadError::Incompatible(path.to_owned(), why))?;
            true
        }
        Err(_) => false,
    };

    // SAFETY: the symbol is a NULL-terminated `const struct vif_plug_class *[]`.
    let list = unsafe { lib.get::<*const *const vif_plug_class>(b"vif_plug_provider_classes\0") }
        .map_err(|_| missing("vif_plug_provider_classes"))?;
    let list: *const *const vif_plug_class = *list;
    let mut classes = Vec::new();
    for i in 0..=MAX_CLASSES {
        if i == MAX_CLASSES {
            return Err(LoadError::Incompatible(
                path.to_owned(),
                format!(
                    "vif_plug_provider_classes has no NULL terminator within {MAX_CLASSES} entries"
                ),
            ));
        }
        // SAFETY: within the array, which is NULL-terminated per the ABI.
        let class = unsafe { *list.add(i) };
        if class.is_null() {
            break;
        }
        // SAFETY: a class of this library, `abi.class_size` bytes long (the
        // size of its minor version, checked above), valid while `lib` is
        // held.
        let class = unsafe {
            ProviderClass::from_library(
                class,
                abi.class_size as usize,
                abi.minor,
                path,
                Rc::clone(&lib),
            )
        };
        classes.push(class.map_err(|e| (i, e)));
    }
    Ok(LoadedLibrary {
        abi,
        rust_layout_checked,
        classes,
    })
}
