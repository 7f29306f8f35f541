//! Parsing and indexing a devlink port dump of 10,000 ports (the
//! subfunction density case), and looking representors up by PF MAC + VF
//! and + SF; each against a reference in the same run.
//!
//!   cargo bench -p vif-plug-devlink --bench table

use netlink_packet_core::{DefaultNla, NlasIterator, Parseable};
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::GenlHeader;
use std::hint::black_box;
use std::time::Instant;
use vif_plug_devlink::mac::MacAddr;
use vif_plug_devlink::message::{consts::*, DevlinkMessage, FunctionAttr, PortAttr};
use vif_plug_devlink::options::{Function, Lookup};
use vif_plug_devlink::port::DevlinkPort;
use vif_plug_devlink::table::PortTable;

const PORTS: u32 = 10_000;
const VFS_PER_PF: u32 = 64;

fn mac(pf: u32) -> MacAddr {
    MacAddr([0x0c, 0x42, 0xa1, 0, pf as u8, 0])
}

/// Attribute bytes (what follows the genl header) of each port message.
fn dump() -> Vec<Vec<u8>> {
    (0..PORTS)
        .map(|i| {
            let pf = i % 2;
            let mut attrs = vec![
                PortAttr::BusName("pci".into()),
                PortAttr::DevName("0000:03:00.0".into()),
                PortAttr::PortIndex(i),
                PortAttr::PortType(2),
                PortAttr::NetdevIfindex(1000 + i),
                PortAttr::PfNumber(pf as u16),
            ];
            match i / 2 {
                0 => {
                    attrs.push(PortAttr::Flavour(FLAVOUR_PCI_PF));
                    attrs.push(PortAttr::NetdevName(format!("pf{pf}hpf")));
                    attrs.push(PortAttr::Function(vec![FunctionAttr::HwAddr(
                        mac(pf).0.to_vec(),
                    )]));
                }
                n if n <= VFS_PER_PF => {
                    attrs.push(PortAttr::Flavour(FLAVOUR_PCI_VF));
                    attrs.push(PortAttr::VfNumber((n - 1) as u16));
                    attrs.push(PortAttr::NetdevName(format!("pf{pf}vf{}", n - 1)));
                }
                n => {
                    attrs.push(PortAttr::Flavour(FLAVOUR_PCI_SF));
                    attrs.push(PortAttr::SfNumber(n));
                    attrs.push(PortAttr::NetdevName(format!("pf{pf}sf{n}")));
                }
            }
            let msg = DevlinkMessage {
                cmd: CMD_PORT_NEW,
                attrs,
            };
            let mut buf = vec![0; msg.buffer_len()];
            msg.emit(&mut buf);
            buf
        })
        .collect()
}

fn median(mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..9).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v[4]
}

fn main() {
    let bytes = dump();
    let header = GenlHeader {
        cmd: CMD_PORT_NEW,
        version: 1,
    };
    let total: usize = bytes.iter().map(Vec::len).sum();

    // Typed parse + port model + table index.
    let index = median(|| {
        let t = Instant::now();
        let mut table = PortTable::new();
        for b in &bytes {
            let msg = DevlinkMessage::parse_with_param(b, header).unwrap();
            table.upsert(DevlinkPort::from_attrs(&msg.attrs).unwrap());
        }
        black_box(&table);
        t.elapsed().as_secs_f64()
    });
    // Reference: the least any parser does, walking the attributes untyped.
    let untyped = median(|| {
        let t = Instant::now();
        for b in &bytes {
            let nlas: Vec<DefaultNla> = NlasIterator::new(b.as_slice())
                .map(|n| DefaultNla::parse(&n.unwrap()).unwrap())
                .collect();
            black_box(nlas);
        }
        t.elapsed().as_secs_f64()
    });

    let mut table = PortTable::new();
    let mut ports = Vec::new();
    for b in &bytes {
        let p =
            DevlinkPort::from_attrs(&DevlinkMessage::parse_with_param(b, header).unwrap().attrs)
                .unwrap();
        ports.push(p.clone());
        table.upsert(p);
    }
    let lookups: Vec<Lookup> = (0..1000u32)
        .map(|i| Lookup {
            pf_mac: mac(i % 2),
            // A third VFs, two thirds SFs spread over the whole dump.
            function: if i % 3 == 0 {
                Function::Vf((i % VFS_PER_PF) as u16)
            } else {
                Function::Sf(VFS_PER_PF + 1 + (i * 5) % (PORTS / 2 - VFS_PER_PF - 1))
            },
            controller: Some(0),
        })
        .collect();
    let rounds = 1000;
    let indexed = median(|| {
        let t = Instant::now();
        for _ in 0..rounds {
            for l in &lookups {
                let _ = black_box(table.lookup(black_box(l)));
            }
        }
        t.elapsed().as_secs_f64() / (rounds * lookups.len()) as f64
    });
    // Reference: a linear scan of the same ports (PF MAC from the PF port).
    let pf_mac_of = |pf: u16| {
        ports
            .iter()
            .find(|p| p.pf == Some(pf) && p.hw_addr.is_some())
            .and_then(|p| p.hw_addr)
    };
    let scan = median(|| {
        let t = Instant::now();
        for l in &lookups {
            let found = ports.iter().find(|p| {
                let f = match l.function {
                    Function::Vf(v) => p.vf == Some(v),
                    Function::Sf(s) => p.sf == Some(s),
                    Function::Pf => p.vf.is_none() && p.sf.is_none(),
                };
                f && Some(p.controller) == l.controller
                    && p.pf.and_then(pf_mac_of) == Some(l.pf_mac)
            });
            black_box(found);
        }
        t.elapsed().as_secs_f64() / lookups.len() as f64
    });

    println!(
        "dump of {PORTS} ports ({} KiB), median of 9 runs:\n",
        total / 1024
    );
    println!("| what | time | reference | time | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| parse + index the dump | {:.2} ms ({:.0} ns/port) | untyped attribute walk | {:.2} ms | {:.2} |",
        index * 1e3,
        index * 1e9 / PORTS as f64,
        untyped * 1e3,
        index / untyped
    );
    println!(
        "| lookup by PF MAC + VF/SF | {:.0} ns | linear scan | {:.0} ns | {:.5} |",
        indexed * 1e9,
        scan * 1e9,
        indexed / scan
    );
}
