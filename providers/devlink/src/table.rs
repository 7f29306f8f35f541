//! The lookup table of devlink ports: by identity, by netdev ifindex, by
//! bus/device, and by what logical ports ask for (PF MAC, controller, PF/VF/
//! SF number), each O(1), and kept consistent under updates, renames,
//! deletes and PF MAC changes.

use crate::mac::MacAddr;
use crate::options::{Function, Lookup};
use crate::port::{DevlinkPort, Flavour, PortKey};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A PF of a devlink instance, on a controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PfId {
    bus: String,
    dev: String,
    controller: u32,
    pf: u16,
}

/// The lookup key of a representor: what a logical port's options say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FunctionKey {
    pf_mac: MacAddr,
    controller: u32,
    function: Function,
}

/// All known devlink ports and their indices.
#[derive(Debug, Default)]
pub struct PortTable {
    ports: HashMap<PortKey, DevlinkPort>,
    by_ifindex: HashMap<u32, PortKey>,
    by_device: HashMap<(String, String), HashSet<PortKey>>,
    /// Every port claiming a function (normally one).
    by_function: HashMap<FunctionKey, BTreeSet<PortKey>>,
    /// The same, whatever the controller: for lookups that name none.
    by_function_any: HashMap<(MacAddr, Function), BTreeSet<PortKey>>,
    /// Host MAC of each PF: from its PCI_PF port's function, or a fallback.
    pf_macs: HashMap<PfId, MacAddr>,
    /// MACs learnt from the sysfs fallback, used when devlink has none.
    fallback_macs: HashMap<PfId, MacAddr>,
    /// PF, VF and SF ports of each PF.
    members: HashMap<PfId, HashSet<PortKey>>,
}

fn pf_id(p: &DevlinkPort) -> Option<PfId> {
    Some(PfId {
        bus: p.key.bus.clone(),
        dev: p.key.dev.clone(),
        controller: p.controller,
        pf: p.pf?,
    })
}

fn function_of(p: &DevlinkPort) -> Option<Function> {
    match p.flavour {
        Flavour::PciPf => Some(Function::Pf),
        Flavour::PciVf => p.vf.map(Function::Vf),
        Flavour::PciSf => p.sf.map(Function::Sf),
        _ => None,
    }
}

impl PortTable {
    /// An empty table.
    pub fn new() -> PortTable {
        PortTable::default()
    }

    /// Number of ports.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Adds or replaces a port. Returns true if anything a lookup can see
    /// changed.
    pub fn upsert(&mut self, port: DevlinkPort) -> bool {
        if self.ports.get(&port.key) == Some(&port) {
            return false;
        }
        let key = port.key.clone();
        self.remove(&key);
        if let Some(i) = port.netdev_ifindex {
            self.by_ifindex.insert(i, key.clone());
        }
        self.by_device
            .entry((key.bus.clone(), key.dev.clone()))
            .or_default()
            .insert(key.clone());
        let pf = pf_id(&port);
        let is_pf_with_mac = port.flavour == Flavour::PciPf && port.hw_addr.is_some();
        let hw_addr = port.hw_addr;
        self.ports.insert(key.clone(), port);
        if let Some(pf) = pf {
            self.members
                .entry(pf.clone())
                .or_default()
                .insert(key.clone());
            if is_pf_with_mac {
                self.set_pf_mac(&pf, hw_addr);
            } else {
                self.index_function(&key);
            }
        }
        true
    }

    /// Removes a port. Returns true if it was there.
    pub fn remove(&mut self, key: &PortKey) -> bool {
        let Some(port) = self.ports.get(key).cloned() else {
            return false;
        };
        self.unindex_function(key);
        if let Some(i) = port.netdev_ifindex {
            if self.by_ifindex.get(&i) == Some(key) {
                self.by_ifindex.remove(&i);
            }
        }
        let dev = (key.bus.clone(), key.dev.clone());
        if let Some(set) = self.by_device.get_mut(&dev) {
            set.remove(key);
            if set.is_empty() {
                self.by_device.remove(&dev);
            }
        }
        self.ports.remove(key);
        if let Some(pf) = pf_id(&port) {
            if let Some(m) = self.members.get_mut(&pf) {
                m.remove(key);
                if m.is_empty() {
                    self.members.remove(&pf);
                }
            }
            // The PF's own port leaving takes its MAC with it, unless
            // another port of the PF or a fallback still knows one.
            if port.flavour == Flavour::PciPf && port.hw_addr.is_some() {
                let other = self.devlink_pf_mac(&pf);
                self.set_pf_mac(&pf, other);
            }
        }
        true
    }

    /// The MAC a PCI_PF port of `pf` reports through devlink, if any.
    fn devlink_pf_mac(&self, pf: &PfId) -> Option<MacAddr> {
        self.members
            .get(pf)
            .into_iter()
            .flatten()
            .filter_map(|k| self.ports.get(k))
            .find(|p| p.flavour == Flavour::PciPf)
            .and_then(|p| p.hw_addr)
    }

    /// Sets the MAC a PF is known by, re-indexing all its functions.
    fn set_pf_mac(&mut self, pf: &PfId, mac: Option<MacAddr>) {
        let members: Vec<PortKey> = self
            .members
            .get(pf)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for m in &members {
            self.unindex_function(m);
        }
        match mac.or_else(|| self.fallback_macs.get(pf).copied()) {
            Some(m) => {
                self.pf_macs.insert(pf.clone(), m);
            }
            None => {
                self.pf_macs.remove(pf);
            }
        }
        for m in &members {
            self.index_function(m);
        }
    }

    /// Whether a PF's functions sit on an external controller (a host):
    /// true if any of its ports says so, or if none reports it at all (a
    /// kernel before 5.10, which has no such attribute).
    fn pf_external(&self, pf: &PfId) -> bool {
        let mut reported = self
            .members
            .get(pf)
            .into_iter()
            .flatten()
            .filter_map(|k| self.ports.get(k)?.external)
            .peekable();
        reported.peek().is_none() || reported.any(|e| e)
    }

    /// Records the host MAC of PF `pf` of a devlink instance learnt
    /// elsewhere (the sysfs fallback), for every external controller that
    /// has ports of that PF; used where devlink reports none. The sysfs
    /// file describes the host's PF, so a DPU-local PF never takes it.
    /// Returns true if a lookup changed.
    pub fn set_fallback_pf_mac(&mut self, bus: &str, dev: &str, pf: u16, mac: MacAddr) -> bool {
        let ids: Vec<PfId> = self
            .members
            .keys()
            .filter(|id| id.bus == bus && id.dev == dev && id.pf == pf)
            .filter(|id| self.pf_external(id))
            .cloned()
            .collect();
        let mut changed = false;
        for id in ids {
            if self.fallback_macs.get(&id) == Some(&mac) {
                continue;
            }
            self.fallback_macs.insert(id.clone(), mac);
            if self.devlink_pf_mac(&id).is_none() {
                self.set_pf_mac(&id, Some(mac));
                changed = true;
            }
        }
        changed
    }

    fn function_key(&self, p: &DevlinkPort) -> Option<FunctionKey> {
        let pf = pf_id(p)?;
        Some(FunctionKey {
            pf_mac: *self.pf_macs.get(&pf)?,
            controller: p.controller,
            function: function_of(p)?,
        })
    }

    fn index_function(&mut self, key: &PortKey) {
        if let Some(fk) = self.ports.get(key).and_then(|p| self.function_key(p)) {
            self.by_function.entry(fk).or_default().insert(key.clone());
            self.by_function_any
                .entry((fk.pf_mac, fk.function))
                .or_default()
                .insert(key.clone());
        }
    }

    fn unindex_function(&mut self, key: &PortKey) {
        let Some(fk) = self.ports.get(key).and_then(|p| self.function_key(p)) else {
            return;
        };
        if let Some(set) = self.by_function.get_mut(&fk) {
            set.remove(key);
            if set.is_empty() {
                self.by_function.remove(&fk);
            }
        }
        let any = (fk.pf_mac, fk.function);
        if let Some(set) = self.by_function_any.get_mut(&any) {
            set.remove(key);
            if set.is_empty() {
                self.by_function_any.remove(&any);
            }
        }
    }

    /// The representor a logical port asks for: `Ok(None)` if none is
    /// known, `Err` with the candidates (see [`DevlinkPort::describe`]) if
    /// several match, since picking one could plug the wrong port.
    ///
    /// Without a controller in the lookup, a function on an external
    /// controller (the host) is preferred to a DPU-local one with the same
    /// PF MAC and number: logical ports name host functions. Two external
    /// ones (or two local ones) stay ambiguous.
    pub fn lookup(&self, l: &Lookup) -> Result<Option<&DevlinkPort>, Vec<String>> {
        let set = match l.controller {
            Some(controller) => self.by_function.get(&FunctionKey {
                pf_mac: l.pf_mac,
                controller,
                function: l.function,
            }),
            None => self.by_function_any.get(&(l.pf_mac, l.function)),
        };
        let Some(set) = set else { return Ok(None) };
        let candidates: Vec<&DevlinkPort> = set.iter().filter_map(|k| self.ports.get(k)).collect();
        let external: Vec<&DevlinkPort> = candidates
            .iter()
            .copied()
            .filter(|p| p.external == Some(true))
            .collect();
        // Only ports known to be local give way; one whose side the kernel
        // does not say keeps the lookup ambiguous.
        let others_local = candidates.iter().all(|p| p.external.is_some());
        match (candidates.as_slice(), external.as_slice()) {
            ([one], _) => Ok(Some(one)),
            (_, [one]) if l.controller.is_none() && others_local => Ok(Some(one)),
            _ => Err(candidates.iter().map(|p| p.describe()).collect()),
        }
    }

    /// The host MAC of the PF `p` belongs to, if known.
    pub fn pf_mac_of(&self, p: &DevlinkPort) -> Option<MacAddr> {
        self.pf_macs.get(&pf_id(p)?).copied()
    }

    /// The port with identity `key`.
    pub fn get(&self, key: &PortKey) -> Option<&DevlinkPort> {
        self.ports.get(key)
    }

    /// Why a lookup found nothing, for the decline: no PF/VF/SF port at
    /// all, PFs whose host MAC is unknown (a switchdev NIC on the host
    /// itself has no PCI_PF port, so nothing reports one), or simply no
    /// such function among the PF MACs known.
    pub fn why_not_found(&self, l: &Lookup) -> String {
        let functions = self
            .ports
            .values()
            .filter(|p| function_of(p).is_some())
            .count();
        if functions == 0 {
            return "devlink reports no PCI PF, VF or SF port (no NIC in switchdev mode with representors, yet)".into();
        }
        let mut unknown: Vec<String> = self
            .members
            .keys()
            .filter(|pf| !self.pf_macs.contains_key(*pf))
            .map(|pf| {
                format!(
                    "{}/{} PF {} controller {}",
                    pf.bus, pf.dev, pf.pf, pf.controller
                )
            })
            .collect();
        unknown.sort();
        let known: BTreeSet<String> = self.pf_macs.values().map(|m| m.to_string()).collect();
        let mut why = match l.function {
            Function::Pf => format!("no representor known for the PF with MAC {}", l.pf_mac),
            f => format!(
                "no representor known for {f} of the PF with MAC {}",
                l.pf_mac
            ),
        };
        if let Some(c) = l.controller {
            why += &format!(" on controller {c}");
        }
        // PFs of unknown MAC may be the one asked for only if its MAC is
        // not among those known.
        let mac_known = known.contains(&l.pf_mac.to_string());
        if !unknown.is_empty() && !mac_known {
            why += &format!(
                "; the host MAC of {} is unknown: devlink reports no PCI_PF port for it (as on a switchdev NIC in the hypervisor itself, where this provider cannot match PF MACs) and no sysfs fallback gave one",
                unknown.join(", ")
            );
        }
        if !known.is_empty() {
            let list: Vec<String> = known.into_iter().take(8).collect();
            why += &format!("; PF MACs known: {}", list.join(", "));
        }
        why
    }

    /// The port whose netdev has `ifindex`.
    pub fn by_ifindex(&self, ifindex: u32) -> Option<&DevlinkPort> {
        self.ports.get(self.by_ifindex.get(&ifindex)?)
    }

    /// The ports of one devlink instance.
    pub fn by_device<'a>(
        &'a self,
        bus: &str,
        dev: &str,
    ) -> impl Iterator<Item = &'a DevlinkPort> + 'a {
        self.by_device
            .get(&(bus.to_owned(), dev.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|k| self.ports.get(k))
    }

    /// A netdev was renamed (rtnetlink): the port that has it follows.
    /// Returns true if a port changed.
    pub fn rename(&mut self, ifindex: u32, name: &str) -> bool {
        let Some(key) = self.by_ifindex.get(&ifindex) else {
            return false;
        };
        match self.ports.get_mut(key) {
            Some(p) if p.netdev_name.as_deref() != Some(name) => {
                p.netdev_name = Some(name.to_owned());
                true
            }
            _ => false,
        }
    }

    /// Every port.
    pub fn ports(&self) -> impl Iterator<Item = &DevlinkPort> {
        self.ports.values()
    }
}
