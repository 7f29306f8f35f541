//! The dump state machine and the event order, on devlink's bytes: dumps
//! never block and have a deadline, an overflow resyncs without being
//! rolled back by older events, other objects' notifications are ignored
//! quietly, and a malformed attribute costs only itself.

mod common;
use common::*;
use std::time::{Duration, Instant};
use vif_plug_devlink::message::{consts::*, DevlinkMessage, PortAttr};
use vif_plug_devlink::view::DevlinkView;

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_dump_answers_over_several_polls_and_lookups_use_the_last_complete_table() {
    let t0 = Instant::now();
    let (channel, script) = scripted();
    let mut view = DevlinkView::new(channel, Duration::from_secs(5), t0);
    view.poll(t0);
    let seq = script.lock().unwrap().seq_of(0);
    // Half a dump: nothing is known yet, and nothing blocks.
    script.lock().unwrap().dump_part(seq, &pf0());
    view.poll(t0);
    assert!(!view.sync().complete() && view.sync().dumping());
    assert!(view.table().is_empty());
    script
        .lock()
        .unwrap()
        .dump_part(seq, &vf0(0, "pf0vf0", None));
    script.lock().unwrap().dump_done(seq);
    assert!(view.poll(t0).changed);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("pf0vf0"));

    // A second dump: until it ends, lookups answer from the first.
    view.resync(t0);
    view.poll(t0);
    let seq = script.lock().unwrap().seq_of(1);
    script.lock().unwrap().dump_part(seq, &pf0());
    script
        .lock()
        .unwrap()
        .dump_part(seq, &vf0(0, "renamed", None));
    view.poll(t0);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("pf0vf0"));
    script.lock().unwrap().dump_done(seq);
    view.poll(t0);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("renamed"));
}

#[test]
fn after_an_overflow_older_queued_events_never_roll_back_the_fresh_dump() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "a", None)], t0);
    {
        let mut s = script.lock().unwrap();
        s.event(&vf0(0, "b", None));
        s.queue.push_back(Queued::Overflow);
        // Still queued behind the overflow, older than the dump to come.
        s.event(&vf0(0, "c", None));
        let mut del = vf0(0, "c", None);
        del.cmd = CMD_PORT_DEL;
        s.event(&del);
    }
    view.poll(t0);
    let seq = {
        let s = script.lock().unwrap();
        assert_eq!(s.sent.len(), 2, "a new dump was sent");
        assert!(s.queue.is_empty(), "the stale events were discarded");
        s.seq_of(1)
    };
    // The dump; an event that follows the request arrives in the middle of
    // it, and is newer than what the dump read.
    {
        let mut s = script.lock().unwrap();
        s.dump_part(seq, &pf0());
        s.event(&vf0(0, "e", None));
        s.dump_part(seq, &vf0(0, "d", None));
        s.dump_done(seq);
    }
    view.poll(t0);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("e"));
    // Nothing older comes back later.
    assert!(!view.poll(t0 + 10 * MS).changed);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("e"));
}

#[test]
fn a_dump_past_its_deadline_is_abandoned_retried_with_back_off_and_its_late_replies_ignored() {
    let t0 = Instant::now();
    let (channel, script) = scripted();
    let mut view = DevlinkView::new(channel, Duration::from_secs(1), t0);
    view.poll(t0);
    let first = script.lock().unwrap().seq_of(0);
    view.poll(t0 + 999 * MS);
    assert!(view.sync().last_error().is_none());
    let t1 = t0 + 1000 * MS;
    view.poll(t1);
    let e = view.sync().last_error().unwrap().to_owned();
    assert!(e.contains("did not end within 1000 ms"), "{e}");
    assert!(!view.sync().dumping());
    view.poll(t1 + 249 * MS);
    assert_eq!(script.lock().unwrap().sent.len(), 1, "back-off: not yet");
    view.poll(t1 + 250 * MS);
    assert_eq!(script.lock().unwrap().sent.len(), 2, "retried after 250 ms");
    // The first dump's answer arrives late: ignored.
    script
        .lock()
        .unwrap()
        .dump_answer(first, &[pf0(), vf0(0, "late", None)]);
    view.poll(t1 + 260 * MS);
    assert!(view.table().is_empty() && !view.sync().complete());
    // The second times out too: the wait doubles.
    let t2 = t1 + 1250 * MS;
    view.poll(t2);
    view.poll(t2 + 499 * MS);
    assert_eq!(script.lock().unwrap().sent.len(), 2);
    view.poll(t2 + 500 * MS);
    assert_eq!(script.lock().unwrap().sent.len(), 3);
    let seq = script.lock().unwrap().seq_of(2);
    script
        .lock()
        .unwrap()
        .dump_answer(seq, &[pf0(), vf0(0, "pf0vf0", None)]);
    view.poll(t2 + 510 * MS);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("pf0vf0"));
    assert!(view.sync().last_error().is_none());
}

#[test]
fn a_refused_dump_says_why() {
    let t0 = Instant::now();
    let (channel, script) = scripted();
    let mut view = DevlinkView::new(channel, Duration::from_secs(5), t0);
    view.poll(t0);
    script.lock().unwrap().ack(0, 1); // EPERM
    view.poll(t0);
    let e = view.sync().last_error().unwrap();
    assert!(
        e.contains("was refused: Operation not permitted (os error 1)"),
        "{e}"
    );
}

/// A generic netlink message of command `cmd` with raw attribute bytes.
fn raw(cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&((20 + attrs.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&FAMILY_ID.to_ne_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&[cmd, 1, 0, 0]);
    msg.extend_from_slice(attrs);
    msg
}

#[test]
fn notifications_of_other_devlink_objects_are_ignored_quietly() {
    use vif_plug_devlink::wire::Source;
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let mut dev = nla(1, b"pci\0");
    dev.extend(nla(2, b"0000:03:00.0\0"));
    // Values per linux/devlink.h; several reuse port attribute numbers
    // with other sizes, which must not matter.
    let mut rate = dev.clone();
    rate.extend(nla(3, &[0; 8])); // PORT_INDEX-numbered, 8 bytes
    rate.extend(nla(165, &1u16.to_ne_bytes())); // DEVLINK_ATTR_RATE_TYPE
    let mut param = dev.clone();
    param.extend(nla(80 | 0x8000, &nla(81, b"max_macs\0"))); // DEVLINK_ATTR_PARAM
    let mut health = dev.clone();
    health.extend(nla(114 | 0x8000, &nla(115, b"fw\0"))); // HEALTH_REPORTER
    for (cmd, attrs) in [
        (3u8, dev.clone()), // DEVLINK_CMD_NEW
        (40, param),        // DEVLINK_CMD_PARAM_NEW
        (52, health),       // DEVLINK_CMD_HEALTH_REPORTER_GET
        (76, rate),         // DEVLINK_CMD_RATE_NEW
        (80, dev.clone()),  // DEVLINK_CMD_LINECARD_NEW
    ] {
        script
            .lock()
            .unwrap()
            .queue
            .push_back(Queued::Bytes(Source::Events, raw(cmd, &attrs)));
    }
    let polled = view.poll(t0);
    assert!(!polled.changed, "nothing a lookup sees");
    assert_eq!(script.lock().unwrap().sent.len(), 1, "no resync");
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("pf0vf0"));
}

#[test]
fn a_malformed_attribute_in_an_event_costs_only_itself_and_broken_framing_resyncs() {
    use vif_plug_devlink::wire::Source;
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0()], t0);
    // A new VF whose PORT_TYPE has 4 bytes instead of 2.
    let mut attrs = Vec::new();
    for (kind, value) in [
        (1u16, &b"pci\0"[..]),
        (2, b"0000:03:00.0\0"),
        (3, &11u32.to_ne_bytes()),
        (4, &[2, 0, 0, 0]),
        (7, b"pf0vf1\0"),
        (77, &FLAVOUR_PCI_VF.to_ne_bytes()),
        (127, &0u16.to_ne_bytes()),
        (128, &1u16.to_ne_bytes()),
    ] {
        attrs.extend(nla(kind, value));
    }
    script
        .lock()
        .unwrap()
        .queue
        .push_back(Queued::Bytes(Source::Events, raw(CMD_PORT_NEW, &attrs)));
    assert!(view.poll(t0).changed);
    assert_eq!(netdev_of_vf(&view, 1).as_deref(), Some("pf0vf1"));
    assert_eq!(script.lock().unwrap().sent.len(), 1, "no resync");

    // An attribute running past its message: the event is lost, so the
    // table is dumped again.
    let mut broken = raw(CMD_PORT_NEW, &attrs);
    broken[20] = 0xf0;
    script
        .lock()
        .unwrap()
        .queue
        .push_back(Queued::Bytes(Source::Events, broken));
    view.poll(t0);
    let s = script.lock().unwrap();
    assert_eq!(s.sent.len(), 2);
    assert_eq!(s.cmd_of(1), CMD_PORT_GET);
}

#[test]
fn a_port_message_without_its_identity_is_skipped_alone() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0()], t0);
    script.lock().unwrap().event(&DevlinkMessage {
        cmd: CMD_PORT_NEW,
        attrs: vec![PortAttr::BusName("pci".into())],
    });
    script.lock().unwrap().event(&vf0(2, "pf0vf2", None));
    view.poll(t0);
    assert_eq!(netdev_of_vf(&view, 2).as_deref(), Some("pf0vf2"));
}

#[test]
fn a_dump_refused_as_busy_is_sent_again_shortly_without_an_error() {
    let t0 = Instant::now();
    let (channel, script) = scripted();
    let mut view = DevlinkView::new(channel, Duration::from_secs(5), t0);
    view.poll(t0);
    script.lock().unwrap().ack(0, 16); // EBUSY: an abandoned dump still runs
    view.poll(t0);
    assert!(view.sync().last_error().is_none());
    view.poll(t0 + 19 * MS);
    assert_eq!(script.lock().unwrap().sent.len(), 1);
    view.poll(t0 + 20 * MS);
    assert_eq!(
        script.lock().unwrap().sent.len(),
        2,
        "sent again after 20 ms"
    );
}

#[test]
fn replies_to_a_dump_that_ended_are_not_taken_for_fresh_news() {
    let t0 = Instant::now();
    let (mut view, script) = ready(&[pf0(), vf0(0, "pf0vf0", None)], t0);
    let first = script.lock().unwrap().seq_of(0);
    script
        .lock()
        .unwrap()
        .dump_part(first, &vf0(0, "stale", None));
    view.poll(t0);
    assert_eq!(netdev_of_vf(&view, 0).as_deref(), Some("pf0vf0"));
}
