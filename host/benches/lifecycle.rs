//! The cost of one CREATE life cycle (prepare + finish + ctx_destroy) on the
//! dummy provider, loaded from its `.so` versus linked into this benchmark.
//!
//!   cargo bench -p vif-plug-host --bench lifecycle
//!
//! Both go through the same host code (`Provider::prepare_create`, which
//! builds the C context, calls the vtable and validates the answer), so the
//! ratio is what the dynamic boundary costs. The raw rows call the vtable
//! directly with a prebuilt context, isolating the calls themselves.
//! Figures are medians of several samples; compare ratios, not absolute
//! times, across machines.
//!
//! The worker rows run the same life cycle through a provider worker
//! process (the agent's default): one CREATE per message pair (prepare,
//! then settle), and batched as the agent sends them (1,000 prepares in
//! one message, their settlements in one more), per CREATE.

use std::hint::black_box;
use std::time::Instant;
use vif_plug_abi::sdk::__private::Exported;
use vif_plug_abi::{
    vif_plug_class, vif_plug_kv, vif_plug_map, vif_plug_port_ctx_in, vif_plug_port_ctx_out,
    VIF_PLUG_OP_CREATE,
};
use vif_plug_host::loader::load_library;
use vif_plug_host::provider::{PortRequest, ProviderClass};
use vif_plug_host::worker::process::{Limits, WorkerProcess};
use vif_plug_host::worker::protocol::{Call, FromWorker, Op, ToWorker};
use vif_plug_host::{ProviderConfig, Registry};

const SAMPLES: usize = 15;
const ITERS: usize = 200_000;

/// Median nanoseconds per call of `f` over `SAMPLES` runs of `ITERS` calls.
fn measure(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERS / 10 {
        f();
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            t.elapsed().as_nanos() as f64 / ITERS as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

fn request() -> PortRequest {
    PortRequest::new("lsp-benchmark-1", "br-int")
        .with_option("vif-plug-type", "dummy")
        .with_option("requested-chassis", "chassis-1")
        .with_datapath_type("netdev")
}

/// One life cycle through the host API.
fn host_cycle(registry: &Registry, req: &PortRequest) {
    let op = registry.get("dummy").unwrap().prepare_create(req).unwrap();
    black_box(op.output());
    op.finish();
}

/// One life cycle calling the vtable directly.
fn raw_cycle(class: &vif_plug_class, ctx_in: &vif_plug_port_ctx_in) {
    let mut out = vif_plug_port_ctx_out::ZEROED;
    // SAFETY: a valid class and context, and the ABI's call order.
    unsafe {
        assert!((class.port_prepare.unwrap())(ctx_in, &mut out));
        black_box(out.name);
        (class.port_finish.unwrap())(ctx_in, &mut out);
        (class.port_ctx_destroy.unwrap())(ctx_in, &mut out);
    }
}

/// Nanoseconds per CREATE life cycle through a worker, `batch` at a time,
/// median of `SAMPLES` runs of `cycles` life cycles.
fn through_worker(so: &std::path::Path, batch: usize, cycles: usize) -> f64 {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_vif-plug-host"));
    let (mut w, _) = WorkerProcess::spawn(exe, so, &vif_plug_host::worker::process::LOAD_LIMITS)
        .unwrap_or_else(|_| panic!("worker for {}", so.display()));
    let limits = Limits {
        per_call: std::time::Duration::from_secs(5),
        slow: std::time::Duration::from_secs(5),
        interrupted: None,
    };
    let started = w
        .call(
            &ToWorker::Init {
                classes: vec![("dummy".into(), vec![])],
            },
            &limits,
        )
        .unwrap();
    assert!(matches!(started.msg, FromWorker::Started(_)));
    let mut id = 0u64;
    let mut round = |w: &mut WorkerProcess| {
        let calls: Vec<Call> = (0..batch)
            .map(|_| {
                id += 1;
                Call {
                    id,
                    provider: "dummy".into(),
                    op: Op::Create,
                    lport_name: "lsp-benchmark-1".into(),
                    lport_options: vec![
                        ("vif-plug-type".into(), "dummy".into()),
                        ("requested-chassis".into(), "chassis-1".into()),
                    ],
                    iface: None,
                    bridge: "br-int".into(),
                    datapath_type: "netdev".into(),
                    dpdk_initialized: false,
                    lport_macs: vec![],
                }
            })
            .collect();
        let committed: Vec<u64> = calls.iter().map(|c| c.id).collect();
        let reply = w.call(&ToWorker::Prepare(calls), &limits).unwrap();
        black_box(&reply.msg);
        let reply = w
            .call(
                &ToWorker::Settle {
                    committed,
                    dropped: vec![],
                },
                &limits,
            )
            .unwrap();
        assert_eq!(reply.msg, FromWorker::Done);
    };
    for _ in 0..cycles / batch / 10 + 1 {
        round(&mut w);
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..cycles / batch {
                round(&mut w);
            }
            t.elapsed().as_nanos() as f64 / (cycles / batch * batch) as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[SAMPLES / 2]
}

fn main() {
    let dir = testkit::private_dir();
    let so = testkit::cargo_cdylib_in("vif-plug-dummy", "vif_plug_dummy", dir.path(), true);
    let req = request();
    let config = ProviderConfig::default();

    // Loaded: the release .so through the loader.
    let mut loaded = Registry::new();
    for class in load_library(&so).unwrap().classes {
        loaded.register(class.unwrap(), &config).unwrap();
    }
    let dynamic = measure(|| host_cycle(&loaded, &req));
    drop(loaded);

    // Linked: the same crate as an rlib in this binary.
    let linked_class: &'static vif_plug_class = &<vif_plug_dummy::Dummy as Exported>::CLASS;
    let mut linked = Registry::new();
    // SAFETY: the dummy's own SDK-generated vtable.
    let class = unsafe { ProviderClass::from_static(linked_class, "linked into the benchmark") };
    linked.register(class.unwrap(), &config).unwrap();
    let statik = measure(|| host_cycle(&linked, &req));

    // Raw vtable calls, linked and loaded.
    let lname = c"lsp-benchmark-1";
    let pairs = [vif_plug_kv {
        key: c"vif-plug-type".as_ptr(),
        value: c"dummy".as_ptr(),
    }];
    let ctx_in = vif_plug_port_ctx_in {
        op_type: VIF_PLUG_OP_CREATE,
        lport_name: lname.as_ptr(),
        lport_options: vif_plug_map {
            entries: pairs.as_ptr(),
            n_entries: pairs.len(),
        },
        iface_name: std::ptr::null(),
        iface_type: std::ptr::null(),
        iface_options: vif_plug_map::EMPTY,
        bridge_name: c"br-int".as_ptr(),
        bridge_datapath_type: c"netdev".as_ptr(),
        dpdk_initialized: false,
        lport_macs: std::ptr::null(),
        n_lport_macs: 0,
    };
    let raw_static = measure(|| raw_cycle(linked_class, &ctx_in));
    drop(linked);

    let mut loaded = Registry::new();
    for class in load_library(&so).unwrap().classes {
        loaded.register(class.unwrap(), &config).unwrap();
    }
    // SAFETY: the library stays loaded while `loaded` holds its class; the
    // symbol is the NULL-terminated class array.
    let lib = unsafe { libloading::Library::new(&so) }.unwrap();
    let loaded_class: &vif_plug_class = unsafe {
        let list = lib
            .get::<*const *const vif_plug_class>(b"vif_plug_provider_classes\0")
            .unwrap();
        &**(*list)
    };
    let raw_dynamic = measure(|| raw_cycle(loaded_class, &ctx_in));
    drop(loaded);

    println!("one CREATE life cycle (prepare + finish + ctx_destroy), dummy provider,");
    println!("median of {SAMPLES} samples x {ITERS} cycles:\n");
    println!("| path | linked into the benchmark | loaded from the .so | loaded / linked |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| host API (`Provider::prepare_create` ... `finish`) | {statik:.0} ns | {dynamic:.0} ns | {:.2} |",
        dynamic / statik
    );
    println!(
        "| raw vtable calls | {raw_static:.0} ns | {raw_dynamic:.0} ns | {:.2} |",
        raw_dynamic / raw_static
    );

    let one = through_worker(&so, 1, 2_000);
    let batched = through_worker(&so, 1_000, 100_000);
    println!("\nthe same life cycle through a provider worker process (the agent's default):\n");
    println!("| path | per CREATE | / in process (loaded) | / linked |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| worker, one CREATE per prepare + settle message pair | {one:.0} ns | {:.1} | {:.1} |",
        one / dynamic,
        one / statik
    );
    println!(
        "| worker, 1,000 CREATEs per message pair (as the agent batches) | {batched:.0} ns | {:.1} | {:.1} |",
        batched / dynamic,
        batched / statik
    );
}
