//! Setting a VF's or SF's MAC through devlink, on the kernel's bytes: the
//! `PORT_SET` request byte for byte, then each answer the kernel can give
//! (confirmation by notification or re-read, refusal, unsupported,
//! silence, a change that does not show), replayed.

mod common;
use common::*;
use std::time::{Duration, Instant};
use vif_plug_devlink::channel::{Channel, Request};
use vif_plug_devlink::mac::MacAddr;
use vif_plug_devlink::mac_program::Programming;
use vif_plug_devlink::message::consts::*;
use vif_plug_devlink::port::{DevlinkPort, PortKey};
use vif_plug_devlink::replay::{PortSetAnswer, ReplayChannel};
use vif_plug_devlink::view::DevlinkView;
use vif_plug_devlink::wire;

const MS: Duration = Duration::from_millis(1);
const VM_MAC: &str = "fa:16:3e:00:00:01";

fn key(index: u32) -> PortKey {
    PortKey {
        bus: "pci".into(),
        dev: "0000:03:00.0".into(),
        index,
    }
}

/// The table's VF `vf` of PF 0.
fn vf(view: &DevlinkView, n: u16) -> DevlinkPort {
    view.table().get(&key(10 + u32::from(n))).unwrap().clone()
}

#[test]
fn the_requests_are_byte_exact() {
    // DEVLINK_CMD_PORT_SET, as `devlink port function set
    // pci/0000:03:00.0/10 hw_addr fa:16:3e:00:00:01` sends it.
    let bytes = wire::request(&Request::SetFunctionMac(key(10), mac(VM_MAC)), 0x15, 7);
    let mut attrs = Vec::new();
    attrs.extend(nla(1, b"pci\0")); // DEVLINK_ATTR_BUS_NAME
    attrs.extend(nla(2, b"0000:03:00.0\0")); // DEVLINK_ATTR_DEV_NAME
    attrs.extend(nla(3, &10u32.to_ne_bytes())); // DEVLINK_ATTR_PORT_INDEX
    let hw = nla(1, &[0xfa, 0x16, 0x3e, 0, 0, 1]); // DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR
    attrs.extend(nla(145 | 0x8000, &hw)); // DEVLINK_ATTR_PORT_FUNCTION | NLA_F_NESTED
    let header = |len: usize, flags: u16, cmd: u8| {
        let mut h = Vec::new();
        h.extend_from_slice(&(len as u32).to_ne_bytes()); // nlmsg_len
        h.extend_from_slice(&0x15u16.to_ne_bytes()); // nlmsg_type: the family
        h.extend_from_slice(&flags.to_ne_bytes()); // nlmsg_flags
        h.extend_from_slice(&7u32.to_ne_bytes()); // nlmsg_seq
        h.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
        h.extend_from_slice(&[cmd, 1, 0, 0]); // genlmsghdr: cmd, version 1
        h
    };
    let mut want = header(20 + attrs.len(), 0x1 | 0x4, 6); // NLM_F_REQUEST|NLM_F_ACK, PORT_SET
    want.extend(&attrs);
    assert_eq!(bytes, want);

    // The re-read: DEVLINK_CMD_PORT_GET for that port, acknowledged.
    let mut id = Vec::new();
    id.extend(nla(1, b"pci\0"));
    id.extend(nla(2, b"0000:03:00.0\0"));
    id.extend(nla(3, &10u32.to_ne_bytes()));
    let mut want = header(20 + id.len(), 0x5, 5);
    want.extend(&id);
    assert_eq!(wire::request(&Request::GetPort(key(10)), 0x15, 7), want);

    // The dump: NLM_F_REQUEST|NLM_F_DUMP, no attribute.
    assert_eq!(
        wire::request(&Request::DumpPorts, 0x15, 7),
        header(20, 0x1 | 0x300, 5)
    );
}

#[test]
fn a_mac_confirmed_by_the_kernels_notification_lets_the_port_plug() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", Some("02:00:00:00:00:99"))], t0);
    let e = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0).unwrap_err();
    assert!(e.contains("request sent"), "{e}");
    {
        let mut s = script.lock().unwrap();
        assert_eq!(s.cmd_of(1), CMD_PORT_SET);
        assert_eq!(
            s.sent[1],
            wire::request(
                &Request::SetFunctionMac(key(10), mac(VM_MAC)),
                FAMILY_ID,
                s.seq_of(1)
            )
        );
        s.ack(1, 0);
    }
    // Acknowledged, not yet visible: still waiting.
    assert!(!view.poll(t0 + MS).changed);
    let e = view
        .ensure_mac(&vf(&view, 0), mac(VM_MAC), t0 + MS)
        .unwrap_err();
    assert!(e.contains("acknowledged; waiting to see it"), "{e}");
    // The PORT_NEW the kernel sends after the change.
    script
        .lock()
        .unwrap()
        .event(&vf0(0, "pf0vf0", Some(VM_MAC)));
    assert!(view.poll(t0 + 2 * MS).changed, "the agent asks again");
    assert_eq!(
        view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0 + 2 * MS),
        Ok(())
    );
    assert_eq!(view.programming(&key(10)), None);
    assert_eq!(
        script.lock().unwrap().sent.len(),
        2,
        "one PORT_SET, nothing else"
    );
}

#[test]
fn without_a_notification_the_port_is_re_read() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    script.lock().unwrap().ack(1, 0);
    view.poll(t0);
    view.poll(t0 + 499 * MS);
    assert_eq!(script.lock().unwrap().sent.len(), 2);
    view.poll(t0 + 500 * MS);
    {
        let mut s = script.lock().unwrap();
        assert_eq!(s.sent.len(), 3, "a re-read");
        assert_eq!(
            s.sent[2],
            wire::request(&Request::GetPort(key(10)), FAMILY_ID, s.seq_of(2))
        );
        s.reply(2, &vf0(0, "pf0vf0", Some(VM_MAC)));
        s.ack(2, 0);
    }
    assert!(view.poll(t0 + 501 * MS).changed);
    assert_eq!(
        view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0 + 501 * MS),
        Ok(())
    );
}

#[test]
fn a_change_acknowledged_but_not_seen_is_retried_with_back_off() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    script.lock().unwrap().ack(1, 0);
    view.poll(t0);
    view.poll(t0 + 500 * MS);
    {
        let mut s = script.lock().unwrap();
        s.reply(2, &vf0(0, "pf0vf0", None)); // the firmware did nothing
        s.ack(2, 0);
    }
    let t1 = t0 + 510 * MS;
    view.poll(t1);
    let e = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t1).unwrap_err();
    assert!(
        e.contains("attempt 1 failed (acknowledged, but the function still reports none); trying again in 250 ms"),
        "{e}"
    );
    assert!(!view.poll(t1 + 249 * MS).changed);
    assert!(
        view.poll(t1 + 250 * MS).changed,
        "the retry is due: ask again"
    );
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t1 + 250 * MS);
    let s = script.lock().unwrap();
    assert_eq!(s.sent.len(), 4);
    assert_eq!(s.cmd_of(3), CMD_PORT_SET, "attempt 2");
    assert!(matches!(
        view.programming(&key(10)),
        Some(Programming::Sent { attempt: 2, .. })
    ));
}

#[test]
fn a_refusal_and_silence_are_retried_with_doubling_back_off() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    script.lock().unwrap().ack(1, 16); // EBUSY
    view.poll(t0);
    let e = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0).unwrap_err();
    assert!(
        e.contains("attempt 1 failed (refused: Device or resource busy (os error 16)); trying again in 250 ms"),
        "{e}"
    );
    // Attempt 2 goes unanswered.
    let t1 = t0 + 250 * MS;
    view.poll(t1);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t1);
    view.poll(t1 + 999 * MS);
    assert!(matches!(
        view.programming(&key(10)),
        Some(Programming::Sent { .. })
    ));
    view.poll(t1 + 1000 * MS);
    let e = view
        .ensure_mac(&vf(&view, 0), mac(VM_MAC), t1 + 1000 * MS)
        .unwrap_err();
    assert!(
        e.contains("attempt 2 failed (no answer within 1000 ms); trying again in 500 ms"),
        "{e}"
    );
    // A late answer to the abandoned request changes nothing.
    script.lock().unwrap().ack(2, 0);
    assert!(!view.poll(t1 + 1001 * MS).changed);
}

#[test]
fn a_device_that_cannot_set_macs_is_said_once_and_its_ports_plug() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None), vf0(1, "pf0vf1", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    script.lock().unwrap().ack(1, 95); // EOPNOTSUPP
    assert!(view.poll(t0).changed);
    assert_eq!(view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0), Ok(()));
    // Another function of the same device is not asked again.
    assert_eq!(
        view.ensure_mac(&vf(&view, 1), mac("fa:16:3e:00:00:02"), t0),
        Ok(())
    );
    assert_eq!(script.lock().unwrap().sent.len(), 2);
}

#[test]
fn a_port_that_goes_away_takes_its_programming_with_it() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    let mut del = vf0(0, "pf0vf0", None);
    del.cmd = CMD_PORT_DEL;
    script.lock().unwrap().event(&del);
    view.poll(t0);
    assert_eq!(view.programming(&key(10)), None);
}

/// The replayed kernel answers as a driver would, and writes what it was
/// asked to its capture file.
#[test]
fn the_replayed_kernel_applies_notifies_and_captures() {
    let dir = std::env::temp_dir().join(format!("devlink-capture-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let cases: Vec<(PortSetAnswer, bool)> = vec![
        (PortSetAnswer::Apply, true),
        (PortSetAnswer::ApplyQuietly, true),
        (PortSetAnswer::AckOnly, false),
        (PortSetAnswer::Refuse(95), false),
    ];
    for (answer, plugs_with_mac) in cases {
        let t0 = Instant::now();
        let channel =
            ReplayChannel::new(&[pf0(), vf0(0, "pf0vf0", None)], Some(&dir), answer).unwrap();
        let mut view = DevlinkView::new(
            Box::new(channel) as Box<dyn Channel>,
            Duration::from_secs(5),
            t0,
        );
        view.poll(t0); // sends the dump
        view.poll(t0); // takes its answer
        assert!(view.sync().complete());
        let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
        view.poll(t0);
        view.poll(t0 + 500 * MS); // a re-read if no notification came
        view.poll(t0 + 501 * MS);
        let seen: Option<MacAddr> = vf(&view, 0).hw_addr;
        assert_eq!(seen == Some(mac(VM_MAC)), plugs_with_mac, "{answer:?}");
    }
    let capture = std::fs::read_to_string(&dir).unwrap();
    let _ = std::fs::remove_file(&dir);
    let set = wire::request(
        &Request::SetFunctionMac(key(10), mac(VM_MAC)),
        vif_plug_devlink::replay::REPLAY_FAMILY_ID,
        2,
    );
    assert!(
        capture
            .lines()
            .any(|l| l == vif_plug_devlink::replay::encode_line(&set)),
        "{capture}"
    );
    assert!(
        capture.contains("# PORT_SET pci/0000:03:00.0/10 hw_addr fa:16:3e:00:00:01\n"),
        "{capture}"
    );
}

#[test]
fn a_re_read_acknowledged_during_a_dump_waits_for_the_dump() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    script.lock().unwrap().ack(1, 0);
    view.poll(t0);
    view.poll(t0 + 500 * MS); // re-read sent (request 2)
    view.resync(t0 + 500 * MS);
    view.poll(t0 + 500 * MS); // dump sent (request 3)
    {
        let mut s = script.lock().unwrap();
        assert_eq!((s.cmd_of(2), s.cmd_of(3)), (CMD_PORT_GET, CMD_PORT_GET));
        s.reply(2, &vf0(0, "pf0vf0", Some(VM_MAC)));
        s.ack(2, 0);
    }
    view.poll(t0 + 501 * MS);
    assert!(
        !matches!(view.programming(&key(10)), Some(Programming::Failed { .. })),
        "{:?}",
        view.programming(&key(10))
    );
    let seq = script.lock().unwrap().seq_of(3);
    script
        .lock()
        .unwrap()
        .dump_answer(seq, &[pf0(), vf0(0, "pf0vf0", None)]);
    assert!(view.poll(t0 + 502 * MS).changed);
    assert_eq!(
        view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0 + 502 * MS),
        Ok(())
    );
}

#[test]
fn a_mac_already_there_is_set_again_while_another_request_is_in_flight() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", Some(VM_MAC))], t0);
    let other = mac("fa:16:3e:00:00:0b");
    let _ = view.ensure_mac(&vf(&view, 0), other, t0); // in flight, unanswered
                                                       // Back to the MAC the function has: not ready until ours is set after it.
    assert!(view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0).is_err());
    let s = script.lock().unwrap();
    assert_eq!(s.sent.len(), 3);
    assert_eq!(
        s.sent[2],
        wire::request(
            &Request::SetFunctionMac(key(10), mac(VM_MAC)),
            FAMILY_ID,
            s.seq_of(2)
        )
    );
}

#[test]
fn a_device_that_could_not_is_asked_again_after_its_ports_come_back() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let _ = view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0);
    script.lock().unwrap().ack(1, 95);
    view.poll(t0);
    // The driver reloads: every port goes, then comes back.
    view.resync(t0);
    view.poll(t0);
    let seq = script.lock().unwrap().seq_of(2);
    script.lock().unwrap().dump_answer(seq, &[]);
    view.poll(t0);
    view.resync(t0);
    view.poll(t0);
    let seq = script.lock().unwrap().seq_of(3);
    script
        .lock()
        .unwrap()
        .dump_answer(seq, &[pf0(), vf0(0, "pf0vf0", None)]);
    view.poll(t0);
    assert!(
        view.ensure_mac(&vf(&view, 0), mac(VM_MAC), t0).is_err(),
        "asked again"
    );
    assert_eq!(script.lock().unwrap().cmd_of(4), CMD_PORT_SET);
}
