//! AMQP behaviour from byte streams: the handshake, synchronous pairs per channel,
//! messages from content frames, errors, gaps, mid-way starts and garbage.

use proptest::prelude::*;
use reef_reassembly::{Dir, Endpoint, FlowCtx, StreamEvent};
use reef_schema::{Entry, Flags};

use super::frame::{BODY, FRAME_END, HEADER, HEARTBEAT, METHOD};
use crate::{Conn, Limits, Output, Probe};

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

struct Sim {
    conn: Conn,
    ctx: FlowCtx,
    out: Output,
    off: [u64; 2],
    ts: i64,
}

impl Sim {
    fn new() -> Sim {
        Sim::with([false, false], [50000, 5672])
    }

    fn with(midstream: [bool; 2], ports: [u16; 2]) -> Sim {
        Sim {
            conn: Conn::default(),
            ctx: FlowCtx {
                id: 1,
                endpoints: [
                    Endpoint {
                        ip: "10.0.0.1".parse().unwrap(),
                        port: ports[0],
                    },
                    Endpoint {
                        ip: "10.0.0.2".parse().unwrap(),
                        port: ports[1],
                    },
                ],
                opener_known: true,
                midstream,
            },
            out: Output::new(Limits::default(), "t"),
            off: [0, 0],
            ts: 1_000_000_000,
        }
    }

    fn send(&mut self, dir: Dir, data: &[u8]) -> &mut Self {
        self.ts += 1_000_000;
        let i = dir.index();
        let ev = StreamEvent::Data {
            dir,
            offset: self.off[i],
            data,
            ts: self.ts,
            peer_ack: Some(self.off[1 - i]),
        };
        self.off[i] += data.len() as u64;
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self
    }

    fn lose(&mut self, dir: Dir, len: u64) -> &mut Self {
        self.ts += 1_000_000;
        let i = dir.index();
        let ev = StreamEvent::Gap {
            dir,
            offset: self.off[i],
            len,
            ts: self.ts,
        };
        self.off[i] += len;
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self
    }

    fn tick(&mut self, now: i64) -> Vec<Entry> {
        self.conn.tick(&self.ctx, now, &mut self.out);
        self.out.entries.drain().collect()
    }

    fn close(&mut self) -> Vec<Entry> {
        self.ts += 1_000_000;
        for dir in [C, S] {
            let ev = StreamEvent::End {
                dir,
                reason: reef_reassembly::EndReason::Fin,
                ts: self.ts,
            };
            self.conn.on_event(&self.ctx, ev, &mut self.out);
        }
        let stats = reef_reassembly::FlowStats::default();
        let ev = StreamEvent::Closed {
            stats: &stats,
            ts: self.ts,
        };
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self.out.entries.drain().collect()
    }
}

fn frame(t: u8, ch: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![t];
    b.extend(ch.to_be_bytes());
    b.extend((payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    b.push(FRAME_END);
    b
}

/// Method arguments, written field by field.
#[derive(Default)]
struct A(Vec<u8>);

impl A {
    fn s(mut self, v: &str) -> A {
        self.0.push(v.len() as u8);
        self.0.extend_from_slice(v.as_bytes());
        self
    }
    fn ls(mut self, v: &str) -> A {
        self.0.extend((v.len() as u32).to_be_bytes());
        self.0.extend_from_slice(v.as_bytes());
        self
    }
    fn u8(mut self, v: u8) -> A {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> A {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> A {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> A {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn table(self) -> A {
        self.u32(0)
    }
}

fn method(ch: u16, class: u16, m: u16, args: A) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend(m.to_be_bytes());
    p.extend(args.0);
    frame(METHOD, ch, &p)
}

fn content(ch: u16, body: &[u8], frame_max: usize) -> Vec<u8> {
    let mut h = 60u16.to_be_bytes().to_vec();
    h.extend([0, 0]);
    h.extend((body.len() as u64).to_be_bytes());
    h.extend([0x80, 0x00]);
    h.push(10);
    h.extend_from_slice(b"text/plain");
    let mut b = frame(HEADER, ch, &h);
    for part in body.chunks(frame_max) {
        b.extend(frame(BODY, ch, part));
    }
    b
}

fn handshake(sim: &mut Sim) {
    sim.send(C, b"AMQP\x00\x00\x09\x01")
        .send(
            S,
            &method(
                0,
                10,
                10,
                A::default().u8(0).u8(9).table().ls("PLAIN").ls("en_US"),
            ),
        )
        .send(
            C,
            &method(
                0,
                10,
                11,
                A::default()
                    .table()
                    .s("PLAIN")
                    .ls("\0guest\0guest")
                    .s("en_US"),
            ),
        )
        .send(
            S,
            &method(0, 10, 30, A::default().u16(2047).u32(131072).u16(60)),
        )
        .send(
            C,
            &method(0, 10, 31, A::default().u16(2047).u32(131072).u16(60)),
        )
        .send(C, &method(0, 10, 40, A::default().s("/").s("").u8(0)))
        .send(S, &method(0, 10, 41, A::default().s("")))
        .send(C, &method(1, 20, 10, A::default().s("")))
        .send(S, &method(1, 20, 11, A::default().ls("")));
}

fn key(e: &Entry) -> (Option<&str>, Option<&str>, Option<i32>) {
    (e.method.as_deref(), e.path.as_deref(), e.status_code)
}

#[test]
fn a_session() {
    let mut sim = Sim::new();
    handshake(&mut sim);
    let body = vec![b'm'; 10_000];
    sim.send(
        C,
        &method(1, 50, 10, A::default().u16(0).s("").u8(0b1000).table()),
    )
    .send(
        S,
        &method(1, 50, 11, A::default().s("amq.gen-1").u32(0).u32(0)),
    )
    .send(
        C,
        &method(1, 60, 40, A::default().u16(0).s("").s("amq.gen-1").u8(0)),
    );
    // The content arrives cut at odd places.
    for chunk in content(1, &body, 4096).chunks(1000) {
        sim.send(C, chunk);
    }
    sim.send(C, &frame(HEARTBEAT, 0, &[]))
        .send(
            C,
            &method(
                1,
                60,
                20,
                A::default().u16(0).s("amq.gen-1").s("").u8(0).table(),
            ),
        )
        .send(S, &method(1, 60, 21, A::default().s("ctag-1")));
    let mut deliver = method(
        1,
        60,
        60,
        A::default().s("ctag-1").u64(1).u8(0).s("").s("amq.gen-1"),
    );
    deliver.extend(content(1, b"hi", 4096));
    sim.send(S, &deliver)
        .send(C, &method(1, 60, 80, A::default().u64(1).u8(0)))
        .send(C, &method(1, 60, 70, A::default().u16(0).s("q2").u8(0)));
    let mut get_ok = method(1, 60, 71, A::default().u64(2).u8(0).s("ex").s("rk").u32(0));
    get_ok.extend(content(1, b"got it", 4096));
    sim.send(S, &get_ok)
        .send(C, &method(1, 60, 70, A::default().u16(0).s("q2").u8(0)))
        .send(S, &method(1, 60, 72, A::default().s("")))
        .send(
            C,
            &method(1, 20, 40, A::default().u16(200).s("bye").u16(0).u16(0)),
        )
        .send(S, &method(1, 20, 41, A::default()))
        .send(
            C,
            &method(0, 10, 50, A::default().u16(200).s("bye").u16(0).u16(0)),
        )
        .send(S, &method(0, 10, 51, A::default()));
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("connection.start"), None, None),
            (Some("connection.tune"), None, None),
            (Some("connection.open"), None, None),
            (Some("channel.open"), None, None),
            (Some("queue.declare"), Some("amq.gen-1"), None),
            (Some("basic.publish"), Some("amq.gen-1"), None),
            (Some("basic.consume"), Some("amq.gen-1"), None),
            (Some("basic.deliver"), Some("amq.gen-1"), None),
            (Some("basic.ack"), None, None),
            (Some("basic.get"), Some("q2"), None),
            (Some("basic.get"), Some("q2"), None),
            (Some("channel.close"), None, Some(200)),
            (Some("connection.close"), None, Some(200)),
        ]
    );
    assert!(
        e.iter().all(|x| x.flags.is_empty()),
        "{:?}",
        e.iter()
            .map(|x| (x.method.clone(), x.flags))
            .collect::<Vec<_>>()
    );
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) connection.start 0-9")
    );
    let publish = &e[5];
    assert_eq!(publish.request_body_size, Some(10_000));
    assert_eq!(publish.request_body.as_ref().unwrap().0, body);
    assert_eq!(publish.amqp_exchange.as_deref(), Some(""));
    assert_eq!(publish.amqp_routing_key.as_deref(), Some("amq.gen-1"));
    assert_eq!(publish.amqp_channel, Some(1));
    let wire = method(1, 60, 40, A::default().u16(0).s("").s("amq.gen-1").u8(0)).len()
        + content(1, &body, 4096).len();
    assert_eq!(publish.request_size, Some(wire as u64));
    assert_eq!(publish.elapsed_time, None);
    assert!(
        publish
            .summary
            .as_deref()
            .unwrap()
            .contains("[10000 bytes text/plain: mmm")
    );
    assert_eq!(
        e[4].amqp_queue.as_deref(),
        Some("amq.gen-1"),
        "named by the broker"
    );
    assert_eq!(e[7].request_body.as_ref().unwrap().0, b"hi");
    assert_eq!(e[9].response_body.as_ref().unwrap().0, b"got it");
    assert_eq!(e[9].amqp_routing_key.as_deref(), Some("rk"));
    assert!(
        e[10]
            .summary
            .as_deref()
            .unwrap()
            .ends_with("→ (broker) basic.get-empty")
    );
    assert_eq!(e[5].src_port, Some(50000));
}

#[test]
fn errors_answer_what_waits() {
    let mut sim = Sim::new();
    handshake(&mut sim);
    sim.send(
        C,
        &method(
            1,
            40,
            10,
            A::default().u16(0).s("ex").s("topic").u8(0).table(),
        ),
    )
    .send(
        S,
        &method(
            1,
            20,
            40,
            A::default()
                .u16(406)
                .s("PRECONDITION_FAILED - inequivalent arg")
                .u16(40)
                .u16(10),
        ),
    )
    .send(C, &method(1, 20, 41, A::default()))
    .send(C, &method(2, 20, 10, A::default().s("")))
    .send(
        C,
        &method(2, 50, 10, A::default().u16(0).s("q").u8(0).table()),
    )
    .send(
        S,
        &method(
            0,
            10,
            50,
            A::default().u16(320).s("CONNECTION_FORCED").u16(0).u16(0),
        ),
    );
    let e = sim.close();
    let got: Vec<_> = e[4..].iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("exchange.declare"), Some("ex"), Some(406)),
            (Some("channel.close"), None, Some(406)),
            (Some("channel.open"), None, Some(320)),
            (Some("queue.declare"), Some("q"), Some(320)),
            (Some("connection.close"), None, Some(320)),
        ]
    );
    assert!(
        e[4].summary
            .as_deref()
            .unwrap()
            .contains("→ (broker) channel.close 406 PRECONDITION_FAILED")
    );
    assert!(e[8].flags.contains(Flags::NO_RESPONSE));
    assert!(e[4..8].iter().all(|x| x.flags.is_empty()));
}

#[test]
fn no_wait_and_return() {
    let mut sim = Sim::new();
    handshake(&mut sim);
    let mut ret = method(
        1,
        60,
        50,
        A::default().u16(312).s("NO_ROUTE").s("ex").s("nowhere"),
    );
    ret.extend(content(1, b"", 4096));
    sim.send(
        C,
        &method(1, 50, 10, A::default().u16(0).s("q").u8(0b10000).table()),
    )
    .send(S, &ret)
    .send(C, &method(1, 85, 10, A::default().u8(0)))
    .send(S, &method(1, 85, 11, A::default()))
    .send(S, &method(1, 60, 80, A::default().u64(1).u8(0)));
    let e = sim.close();
    let got: Vec<_> = e[4..].iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("queue.declare"), Some("q"), None),
            (Some("basic.return"), Some("ex"), Some(312)),
            (Some("confirm.select"), None, None),
            (Some("basic.ack"), None, None),
        ]
    );
    assert!(e[4].flags.is_empty() && e[4].response_size.is_none());
    assert!(e[4].summary.as_deref().unwrap().ends_with("no_wait"));
    assert_eq!(e[5].request_body_size, Some(0));
    assert!(
        e[7].summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) basic.ack")
    );
}

#[test]
fn unanswered_and_orphans() {
    let mut sim = Sim::new();
    handshake(&mut sim);
    sim.send(
        C,
        &method(1, 50, 10, A::default().u16(0).s("slow").u8(0).table()),
    )
    .send(S, &method(1, 60, 21, A::default().s("ctag")));
    let e = sim.tick(sim.ts + 61_000_000_000);
    let got: Vec<_> = e[4..].iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("basic.consume-ok"), None, None),
            (Some("queue.declare"), Some("slow"), None),
        ]
    );
    assert!(e[4].flags.contains(Flags::NO_REQUEST));
    assert!(e[5].flags.contains(Flags::NO_RESPONSE | Flags::TIMEOUT));
    // The late answer is dropped.
    sim.send(S, &method(1, 50, 11, A::default().s("slow").u32(0).u32(0)));
    // A message got by a basic.get the capture missed.
    let mut get_ok = method(1, 60, 71, A::default().u64(2).u8(0).s("ex").s("rk").u32(0));
    get_ok.extend(content(1, b"orphan", 4096));
    sim.send(S, &get_ok);
    sim.send(C, &method(1, 90, 10, A::default()));
    let e = sim.close();
    assert_eq!(
        e.iter().map(key).collect::<Vec<_>>(),
        [
            (Some("basic.get-ok"), Some("ex"), None),
            (Some("tx.select"), None, None)
        ]
    );
    assert!(e[0].flags.contains(Flags::NO_REQUEST) && e[0].request_size.is_none());
    assert_eq!(e[0].response_body.as_ref().unwrap().0, b"orphan");
    assert_eq!(e[0].response_size, Some(get_ok.len() as u64));
    assert!(e[1].flags.contains(Flags::NO_RESPONSE));
}

#[test]
fn lost_bytes() {
    let mut sim = Sim::new();
    handshake(&mut sim);
    let mut publish = method(1, 60, 40, A::default().u16(0).s("ex").s("a").u8(0));
    publish.extend(content(1, &[b'x'; 3000], 4096));
    // A hole inside the body frame: the message keeps its frames.
    sim.send(C, &publish[..200])
        .lose(C, 1000)
        .send(C, &publish[1200..]);
    // A hole across frames: the message is cut, the next one read.
    let mut second = method(1, 60, 40, A::default().u16(0).s("ex").s("b").u8(0));
    second.extend(content(1, &[b'y'; 100], 4096));
    sim.send(C, &second[..60])
        .lose(C, (second.len() - 60) as u64);
    let mut third = method(1, 60, 40, A::default().u16(0).s("ex").s("c").u8(0));
    third.extend(content(1, b"z", 4096));
    sim.send(C, &third);
    let e = sim.close();
    let got: Vec<_> = e[4..]
        .iter()
        .map(|x| x.amqp_routing_key.as_deref())
        .collect();
    assert_eq!(got, [Some("a"), Some("b"), Some("c")]);
    assert!(
        e[4].flags
            .contains(Flags::REQUEST_GAP | Flags::REQUEST_BODY_TRUNCATED)
    );
    assert_eq!(e[4].request_body_size, Some(3000));
    assert_eq!(e[4].request_size, Some(publish.len() as u64));
    assert!(e[5].flags.contains(Flags::REQUEST_GAP) && e[5].incomplete);
    assert!(e[6].flags.is_empty());
    assert_eq!(e[6].request_body.as_ref().unwrap().0, b"z");
}

#[test]
fn midstream() {
    let mut sim = Sim::with([true, true], [40000, 5672]);
    // The broker's side, joined inside a body frame.
    let mut deliver = method(
        3,
        60,
        60,
        A::default().s("ctag").u64(9).u8(0).s("ex").s("rk"),
    );
    deliver.extend(content(3, b"payload", 4096));
    let mut data = b"ody bytes\xce".to_vec();
    data.extend(&deliver);
    sim.send(S, &data)
        .send(C, &method(3, 60, 80, A::default().u64(9).u8(0)));
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("basic.deliver"), Some("ex"), None),
            (Some("basic.ack"), None, None)
        ]
    );
    assert_eq!(e[0].src_port, Some(40000), "the broker is dst");
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) basic.deliver")
    );
}

#[test]
fn probes() {
    let fresh = Sim::new().ctx;
    let mid = Sim::with([true, true], [40000, 9999]).ctx;
    let p = |ctx: &FlowCtx, b: &[u8]| super::probe(ctx, C, b);
    assert_eq!(p(&fresh, b"AMQP\x00\x00\x09\x01"), Probe::Client(C));
    assert_eq!(p(&fresh, b"AMQ"), Probe::NotYet);
    assert_eq!(p(&fresh, b"AMQP\x00\x01\x00\x00"), Probe::No, "AMQP 1.0");
    assert_eq!(p(&fresh, b"GET / HTTP/1.1\r\n"), Probe::No);
    let publish = method(1, 60, 40, A::default().u16(0).s("ex").s("a").u8(0));
    assert_eq!(
        p(&fresh, &publish),
        Probe::No,
        "frames only on a connection joined mid-way"
    );
    assert_eq!(p(&mid, &publish), Probe::Client(C));
    let deliver = method(1, 60, 60, A::default().s("t").u64(1).u8(0).s("").s("q"));
    assert_eq!(p(&mid, &deliver), Probe::Client(S));
    assert_eq!(p(&mid, &deliver[..10]), Probe::NotYet);
    let mut bad = publish.clone();
    let n = bad.len();
    bad[n - 1] = 0;
    // Not a frame at the start, maybe one further on.
    assert_eq!(p(&mid, &bad), Probe::NotYet);
    assert_eq!(p(&mid, &frame(METHOD, 1, &[0, 99, 0, 1])), Probe::NotYet);
    assert_eq!(p(&mid, &[b'x'; 3000]), Probe::No);
    let mut late = vec![b'x'; 100];
    late.extend(&deliver);
    assert_eq!(p(&mid, &late), Probe::Client(S));
}

fn exchange() -> (Vec<u8>, Vec<u8>) {
    let mut c = b"AMQP\x00\x00\x09\x01".to_vec();
    let mut s = Vec::new();
    for i in 1..=10u16 {
        c.extend(method(i, 20, 10, A::default().s("")));
        s.extend(method(i, 20, 11, A::default().ls("")));
        c.extend(method(
            i,
            60,
            40,
            A::default().u16(0).s("ex").s(&format!("k{i}")).u8(0),
        ));
        c.extend(content(i, &vec![b'b'; usize::from(i) * 300], 1000));
        let mut d = method(
            i,
            60,
            60,
            A::default().s("t").u64(u64::from(i)).u8(0).s("ex").s("r"),
        );
        d.extend(content(i, &vec![b'd'; usize::from(i) * 100], 512));
        s.extend(d);
    }
    (c, s)
}

fn comparable(mut e: Vec<Entry>) -> Vec<Entry> {
    for x in &mut e {
        x.id.clear();
        x.timestamp = 0;
        x.elapsed_time = None;
    }
    e.sort_by(|a, b| a.summary.cmp(&b.summary));
    e
}

proptest! {
    #[test]
    fn segmentation_does_not_matter(cuts_c in proptest::collection::vec(1usize..60, 1..30),
                                    cuts_s in proptest::collection::vec(1usize..60, 1..30)) {
        let (req, resp) = exchange();
        let whole = {
            let mut sim = Sim::new();
            sim.send(C, &req).send(S, &resp);
            comparable(sim.close())
        };
        prop_assert_eq!(whole.len(), 30);
        let mut sim = Sim::new();
        for (data, cuts, dir) in [(&req, &cuts_c, C), (&resp, &cuts_s, S)] {
            let mut at = 0;
            let mut i = 0;
            while at < data.len() {
                let n = cuts[i % cuts.len()].min(data.len() - at);
                sim.send(dir, &data[at..at + n]);
                at += n;
                i += 1;
            }
        }
        prop_assert_eq!(comparable(sim.close()), whole);
    }

    #[test]
    fn garbage_is_survived(c in proptest::collection::vec(any::<u8>(), 0..600),
                           s in proptest::collection::vec(any::<u8>(), 0..600),
                           gap in 0u64..50, mid in any::<bool>()) {
        let mut sim = Sim::with([mid, mid], [50000, 5672]);
        let mut start = b"AMQP\x00\x00\x09\x01".to_vec();
        start.extend_from_slice(&c);
        sim.send(C, &start).send(S, &s).lose(S, gap).send(S, &s).lose(C, gap).send(C, &c);
        sim.tick(sim.ts + 100_000_000_000);
        let _ = sim.close();
    }

    /// Frame-shaped garbage: valid frame headers around random payloads.
    #[test]
    fn frame_shaped_garbage(parts in proptest::collection::vec(
        (prop_oneof![Just(METHOD), Just(HEADER), Just(BODY), Just(HEARTBEAT)], 0u16..3,
         proptest::collection::vec(any::<u8>(), 0..40)), 0..40)) {
        let mut sim = Sim::new();
        sim.send(C, b"AMQP\x00\x00\x09\x01");
        for (t, ch, payload) in &parts {
            let mut p = payload.clone();
            if *t == METHOD && p.len() >= 4 {
                p[0] = 0;
                p[1] = 60;
                p[2] = 0;
                p[3] = [40u8, 60, 70, 71][p[3] as usize % 4];
            }
            let f = frame(*t, *ch, &p);
            sim.send(C, &f).send(S, &f);
        }
        let _ = sim.close();
    }
}
