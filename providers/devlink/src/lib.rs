//! The devlink representor provider, type `representor`.
//!
//! On a smartNIC or DPU, each PCI function the host sees (PF, VF,
//! subfunction) has a representor netdev on the NIC's own CPU. Logical
//! ports name the function they want by the host-side MAC of its PF and a
//! VF or SF number (`vif-plug:representor:*` options); this provider finds
//! the representor through the kernel's devlink port table and has the
//! host plug it as a system interface.

pub mod channel;
pub mod links;
pub mod mac;
pub mod mac_program;
pub mod message;
pub mod options;
pub mod port;
mod provider;
pub mod renames;
pub mod replay;
pub mod socket;
pub mod sync;
pub mod sysfs;
pub mod table;
pub mod view;
pub mod wire;

pub use provider::{config, Representor};

vif_plug_abi::export_providers!(Representor);
