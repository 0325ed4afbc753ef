//! Redis behaviour from byte streams: pairing, pipelining, pub/sub, transactions,
//! gaps, detection and garbage.

use proptest::prelude::*;
use reef_reassembly::{Dir, Endpoint, FlowCtx, StreamEvent};
use reef_schema::{Entry, Flags};

use crate::{Conn, Limits, Output, Probe};

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

/// One connection driven at the stream level, acknowledging what the peer sent.
struct Sim {
    conn: Conn,
    ctx: FlowCtx,
    out: Output,
    off: [u64; 2],
    ts: i64,
}

impl Sim {
    fn new() -> Sim {
        Sim::with([false, false])
    }

    fn with(midstream: [bool; 2]) -> Sim {
        Sim {
            conn: Conn::default(),
            ctx: FlowCtx {
                id: 1,
                endpoints: [
                    Endpoint {
                        ip: "10.0.0.1".parse().unwrap(),
                        port: 40000,
                    },
                    Endpoint {
                        ip: "10.0.0.2".parse().unwrap(),
                        port: 6379,
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

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut b = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        b.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    b
}

fn key(e: &Entry) -> (Option<&str>, Option<&str>, Option<i32>) {
    (e.method.as_deref(), e.path.as_deref(), e.status_code)
}

#[test]
fn command_and_reply() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["SET", "k1", "hello world"]))
        .send(S, b"+OK\r\n")
        .send(C, &cmd(&["GET", "k1"]))
        .send(S, b"$11\r\nhello world\r\n")
        .send(C, &cmd(&["GET", "nokey"]))
        .send(
            S,
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        );
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("SET"), Some("k1"), Some(0)),
            (Some("GET"), Some("k1"), Some(0)),
            (Some("GET"), Some("nokey"), Some(1)),
        ]
    );
    assert_eq!(e[0].summary.as_deref(), Some("SET k1 \"hello world\" → OK"));
    assert_eq!(e[1].response_body.as_ref().unwrap().0, b"hello world");
    assert_eq!(e[1].response_body_size, Some(11));
    assert!(
        e[2].summary
            .as_deref()
            .unwrap()
            .contains("(error) WRONGTYPE Operation")
    );
    assert_eq!(e[0].redis_command.as_deref(), Some("SET"));
    assert_eq!(e[0].redis_key.as_deref(), Some("k1"));
    assert_eq!(
        e[0].request_size,
        Some(cmd(&["SET", "k1", "hello world"]).len() as u64)
    );
    assert_eq!(e[0].response_size, Some(5));
    assert_eq!(e[0].elapsed_time, Some(1000));
    assert!(e.iter().all(|x| x.flags.is_empty() && !x.incomplete));
    assert_eq!(e[0].src_port, Some(40000));
    assert_eq!(e[0].dst_port, Some(6379));
}

#[test]
fn pipelined_commands_pair_in_order() {
    let mut sim = Sim::new();
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(cmd(&["INCR", &format!("c{i}")]));
    }
    sim.send(C, &batch);
    let mut replies = Vec::new();
    for i in 0..50 {
        replies.extend(format!(":{i}\r\n").bytes());
    }
    // Replies cut at odd places.
    for chunk in replies.chunks(7) {
        sim.send(S, chunk);
    }
    let e = sim.close();
    assert_eq!(e.len(), 50);
    for (i, x) in e.iter().enumerate() {
        assert_eq!(x.path.as_deref(), Some(format!("c{i}").as_str()));
        assert_eq!(
            x.summary.as_deref(),
            Some(format!("INCR c{i} → (integer) {i}").as_str())
        );
    }
}

#[test]
fn inline_commands() {
    let mut sim = Sim::new();
    sim.send(C, b"PING\r\nPING\r\nset k \"a b\"\r\n")
        .send(S, b"+PONG\r\n+PONG\r\n+OK\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("PING"), None, Some(0)),
            (Some("PING"), None, Some(0)),
            (Some("SET"), Some("k"), Some(0))
        ]
    );
    assert_eq!(e[2].summary.as_deref(), Some("SET k \"a b\" → OK"));
}

#[test]
fn a_reply_over_many_segments_is_one_reply() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["LRANGE", "big", "0", "-1"]));
    let mut reply = b"*1000\r\n".to_vec();
    for i in 0..1000 {
        let v = format!("value-{i:04}-{}", "x".repeat(200));
        reply.extend(format!("${}\r\n{v}\r\n", v.len()).bytes());
    }
    for chunk in reply.chunks(1448) {
        sim.send(S, chunk);
    }
    sim.send(C, &cmd(&["PING"])).send(S, b"+PONG\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].response_size, Some(reply.len() as u64));
    assert_eq!(
        e[0].summary.as_deref(),
        Some("LRANGE big 0 -1 → (array of 1000)")
    );
    assert_eq!(key(&e[1]), (Some("PING"), None, Some(0)));
}

#[test]
fn container_commands_name_their_subcommand() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["CONFIG", "GET", "maxmemory"]))
        .send(S, b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n")
        .send(C, &cmd(&["CLIENT", "SETNAME", "app"]))
        .send(S, b"+OK\r\n");
    let e = sim.close();
    assert_eq!(e[0].method.as_deref(), Some("CONFIG"));
    assert_eq!(e[0].redis_command.as_deref(), Some("CONFIG GET"));
    assert_eq!(e[0].path, None);
    assert_eq!(e[1].redis_command.as_deref(), Some("CLIENT SETNAME"));
}

#[test]
fn auth_passwords_are_redacted() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["AUTH", "default", "s3cret"]))
        .send(S, b"-WRONGPASS invalid username-password pair\r\n");
    let e = sim.close();
    assert_eq!(key(&e[0]), (Some("AUTH"), None, Some(1)));
    let s = e[0].summary.as_deref().unwrap();
    assert!(
        s.starts_with("AUTH default (redacted) → (error) WRONGPASS"),
        "{s}"
    );
    assert!(!s.contains("s3cret"));
}

#[test]
fn pubsub_resp2() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["SUBSCRIBE", "news", "sports"]))
        .send(S, b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n")
        .send(S, b"*3\r\n$9\r\nsubscribe\r\n$6\r\nsports\r\n:2\r\n")
        .send(S, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n")
        .send(C, &cmd(&["PSUBSCRIBE", "n*"]))
        .send(S, b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n")
        .send(
            S,
            b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n",
        )
        .send(C, &cmd(&["PING"]))
        .send(S, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .send(C, &cmd(&["UNSUBSCRIBE"]))
        .send(S, b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:2\r\n")
        .send(S, b"*3\r\n$11\r\nunsubscribe\r\n$6\r\nsports\r\n:1\r\n")
        .send(C, &cmd(&["PUNSUBSCRIBE"]))
        .send(S, b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n")
        .send(C, &cmd(&["LRANGE", "l", "0", "-1"]))
        .send(S, b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n");
    let e = sim.close();
    assert_eq!(sim.out.entries.len(), 0);
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("SUBSCRIBE"), Some("news"), Some(0)),
            (Some("MESSAGE"), Some("news"), Some(0)),
            (Some("PSUBSCRIBE"), Some("n*"), Some(0)),
            (Some("PMESSAGE"), Some("news"), Some(0)),
            (Some("PING"), None, Some(0)),
            (Some("UNSUBSCRIBE"), None, Some(0)),
            (Some("PUNSUBSCRIBE"), None, Some(0)),
            // Not subscribed any more: an array that looks like a message is a reply.
            (Some("LRANGE"), Some("l"), Some(0)),
        ]
    );
    let sub = &e[0];
    assert_eq!(sub.response_size, Some(2 * 33 + 2));
    assert!(
        sub.summary
            .as_deref()
            .unwrap()
            .ends_with("subscribed (2 confirmations)")
    );
    assert_eq!(e[1].request_body.as_ref().unwrap().0, b"hello");
    assert_eq!(e[1].summary.as_deref(), Some("MESSAGE news hello"));
    assert_eq!(e[1].elapsed_time, None);
    assert_eq!(e[3].request_body.as_ref().unwrap().0, b"hi");
    assert!(
        e[5].summary
            .as_deref()
            .unwrap()
            .ends_with("unsubscribed (2 confirmations)")
    );
}

#[test]
fn resp3_push_and_hello() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["HELLO", "3"]))
        .send(
            S,
            b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n",
        )
        .send(C, &cmd(&["SUBSCRIBE", "ch"]))
        .send(S, b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
        .send(C, &cmd(&["GET", "k"]))
        .send(S, b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nmsg\r\n")
        .send(S, b"_\r\n")
        .send(S, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
        .send(C, &cmd(&["ZSCORE", "z", "m"]))
        .send(S, b"|1\r\n+ttl\r\n:3600\r\n,2.5\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("HELLO"), None, Some(0)),
            (Some("SUBSCRIBE"), Some("ch"), Some(0)),
            (Some("MESSAGE"), Some("ch"), Some(0)),
            (Some("GET"), Some("k"), Some(0)),
            (Some("INVALIDATE"), Some("k"), Some(0)),
            (Some("ZSCORE"), Some("z"), Some(0)),
        ]
    );
    assert_eq!(e[0].summary.as_deref(), Some("HELLO 3 → (map of 2)"));
    assert_eq!(e[3].summary.as_deref(), Some("GET k → (nil)"));
    assert_eq!(e[5].summary.as_deref(), Some("ZSCORE z m → (double) 2.5"));
}

#[test]
fn multi_exec() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["MULTI"]))
        .send(S, b"+OK\r\n")
        .send(C, &cmd(&["SET", "a", "1"]))
        .send(S, b"+QUEUED\r\n")
        .send(C, &cmd(&["LPUSH", "a", "x"]))
        .send(S, b"+QUEUED\r\n")
        .send(C, &cmd(&["EXEC"]))
        .send(
            S,
            b"*2\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        );
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("MULTI"), None, Some(0)),
            (Some("SET"), Some("a"), Some(0)),
            (Some("LPUSH"), Some("a"), Some(0)),
            (Some("EXEC"), None, Some(0)),
        ]
    );
    assert_eq!(e[1].summary.as_deref(), Some("SET a 1 → QUEUED"));
    assert_eq!(
        e[3].summary.as_deref(),
        Some("EXEC → (array of 2) with 1 errors for SET, LPUSH")
    );
}

#[test]
fn unanswered_commands() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["BLPOP", "q", "0"]));
    assert!(sim.tick(sim.ts + 1_000_000_000).is_empty());
    let e = sim.tick(sim.ts + 61_000_000_000);
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::NO_RESPONSE | Flags::TIMEOUT));
    // The late reply is dropped, and the next pair is right.
    sim.send(S, b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n")
        .send(C, &cmd(&["GET", "x"]))
        .send(S, b"$1\r\n1\r\n")
        .send(C, &cmd(&["GET", "y"]));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(key(&e[0]), (Some("GET"), Some("x"), Some(0)));
    assert!(e[0].flags.is_empty());
    assert_eq!(key(&e[1]), (Some("GET"), Some("y"), None));
    assert!(e[1].flags.contains(Flags::NO_RESPONSE) && e[1].incomplete);
}

#[test]
fn a_reply_without_its_command() {
    let mut sim = Sim::with([true, true]);
    // The capture starts with a reply, then a full exchange.
    sim.send(S, b"$3\r\nabc\r\n:5\r\n")
        .send(C, &cmd(&["GET", "k"]))
        .send(S, b"$1\r\nv\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 3);
    assert!(e[0].flags.contains(Flags::NO_REQUEST) && e[0].method.is_none());
    assert!(e[1].flags.contains(Flags::NO_REQUEST));
    assert_eq!(key(&e[2]), (Some("GET"), Some("k"), Some(0)));
}

#[test]
fn lost_reply_gives_up_its_command_only() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["GET", "a"]))
        .send(S, b"$1\r\n1\r\n")
        .send(C, &cmd(&["GET", "b"]))
        .lose(S, 7)
        .send(C, &cmd(&["GET", "c"]))
        .send(S, b"$1\r\n3\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("GET"), Some("a"), Some(0)),
            (Some("GET"), Some("b"), None),
            (Some("GET"), Some("c"), Some(0)),
        ]
    );
    assert!(
        e[1].flags
            .contains(Flags::NO_RESPONSE | Flags::RESPONSE_GAP)
    );
    assert_eq!(e[2].response_body.as_ref().unwrap().0, b"3");
    assert!(!e[2].flags.contains(Flags::PAIRING_UNCERTAIN));
}

#[test]
fn lost_command_leaves_its_reply_unpaired() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["GET", "a"]))
        .send(S, b"$1\r\n1\r\n")
        .lose(C, 20)
        .send(S, b"$1\r\n2\r\n")
        .send(C, &cmd(&["GET", "c"]))
        .send(S, b"$1\r\n3\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("GET"), Some("a"), Some(0)),
            (None, None, Some(0)),
            (Some("GET"), Some("c"), Some(0)),
        ]
    );
    assert!(e[1].flags.contains(Flags::NO_REQUEST));
}

#[test]
fn gap_inside_a_value_keeps_the_pairs() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["GET", "big"]))
        .send(S, b"$1000\r\n")
        .send(S, &[b'x'; 300])
        .lose(S, 400)
        .send(S, &[b'x'; 300])
        .send(S, b"\r\n")
        .send(C, &cmd(&["GET", "small"]))
        .send(S, b"$1\r\ns\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert!(e[0].flags.contains(Flags::RESPONSE_GAP));
    assert!(e[0].flags.contains(Flags::RESPONSE_BODY_TRUNCATED));
    assert_eq!(e[0].response_body_size, Some(1000));
    assert_eq!(e[0].response_size, Some(1009));
    assert_eq!(key(&e[1]), (Some("GET"), Some("small"), Some(0)));
    assert!(e[1].flags.is_empty());
}

#[test]
fn monitor_lines_are_one_way() {
    let mut sim = Sim::new();
    sim.send(C, &cmd(&["MONITOR"])).send(S, b"+OK\r\n").send(
        S,
        b"+1700000000.123456 [0 127.0.0.1:5000] \"GET\" \"k\"\r\n",
    );
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(key(&e[1]), (Some("MONITOR"), None, Some(0)));
    assert!(e[1].summary.as_deref().unwrap().contains("\"GET\" \"k\""));
}

#[test]
fn probes() {
    let ctx = Sim::new().ctx;
    let mid = Sim::with([true, true]).ctx;
    let p = |ctx: &FlowCtx, b: &[u8]| super::probe(ctx, C, b);
    assert_eq!(p(&ctx, b"*1\r\n$4\r\nPING\r\n"), Probe::Client(C));
    assert_eq!(p(&ctx, b"*3\r\n$3\r\nset\r\n"), Probe::Client(C));
    assert_eq!(p(&ctx, b"*3\r\n$3"), Probe::NotYet);
    assert_eq!(p(&ctx, b"*3\r\n$3\r\nSE"), Probe::NotYet);
    // Any command name at the start of a connection, only known ones mid-way.
    assert_eq!(p(&ctx, b"*3\r\n$8\r\nJSON.SET\r\n"), Probe::Client(C));
    assert_eq!(p(&ctx, b"*3\r\n$3\r\n\x00YZ\r\n"), Probe::No);
    assert_eq!(p(&mid, b"*3\r\n$3\r\nXYZ\r\n"), Probe::NotYet);
    assert_eq!(p(&mid, b"*2\r\n$3\r\nGET\r\n"), Probe::Client(C));
    assert_eq!(p(&ctx, b"PING\r\n"), Probe::Client(C));
    assert_eq!(p(&ctx, b"PIN"), Probe::NotYet);
    assert_eq!(p(&ctx, b"ping extra\r\n"), Probe::Client(C));
    // Commands memcached shares are not enough inline.
    assert_eq!(p(&ctx, b"get key\r\n"), Probe::No);
    assert_eq!(p(&ctx, b"KEYS *\r\n"), Probe::Client(C));
    assert_eq!(p(&ctx, b"GET /x HTTP/1.1\r\n"), Probe::No);
    assert_eq!(p(&ctx, b"HELO mail\r\n"), Probe::No);
    assert_eq!(p(&ctx, b"+OK\r\n"), Probe::No);
    assert_eq!(p(&ctx, b"\x16\x03\x01"), Probe::No);
    // Joined mid-way.
    assert_eq!(p(&mid, b"+OK\r\n"), Probe::Client(S));
    assert_eq!(p(&mid, b"$3\r\nabc\r\n*1\r\n$1\r\nx\r\n"), Probe::Client(S));
    assert_eq!(
        p(&mid, b"lue\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        Probe::Client(C)
    );
    assert_eq!(p(&mid, b"- item one\r\n- item two\r\n"), Probe::NotYet);
}

fn exchange() -> (Vec<u8>, Vec<u8>) {
    let mut c = Vec::new();
    let mut s = Vec::new();
    for i in 0..10 {
        c.extend(cmd(&["SET", &format!("k{i}"), &"v".repeat(i * 37)]));
        s.extend_from_slice(b"+OK\r\n");
        c.extend(cmd(&["GET", &format!("k{i}")]));
        s.extend(format!("${}\r\n{}\r\n", i * 37, "v".repeat(i * 37)).bytes());
    }
    (c, s)
}

fn comparable(mut e: Vec<Entry>) -> Vec<Entry> {
    for x in &mut e {
        x.id.clear();
        x.timestamp = 0;
        x.elapsed_time = None;
    }
    e
}

proptest! {
    /// However the bytes are cut into segments, the entries are the same.
    #[test]
    fn segmentation_does_not_matter(cuts_c in proptest::collection::vec(1usize..40, 1..30),
                                    cuts_s in proptest::collection::vec(1usize..40, 1..30)) {
        let (req, resp) = exchange();
        let whole = {
            let mut sim = Sim::new();
            sim.send(C, &req).send(S, &resp);
            comparable(sim.close())
        };
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

    /// Random bytes, gaps and mid-way starts never panic.
    #[test]
    fn garbage_is_survived(c in proptest::collection::vec(any::<u8>(), 0..600),
                           s in proptest::collection::vec(any::<u8>(), 0..600),
                           gap in 0u64..50, mid in any::<bool>()) {
        let mut sim = Sim::with([mid, mid]);
        let mut start = cmd(&["GET", "k"]);
        start.extend_from_slice(&c);
        sim.send(C, &start).send(S, &s).lose(S, gap).send(S, &s).send(C, &c);
        sim.tick(sim.ts + 100_000_000_000);
        let _ = sim.close();
    }

    /// RESP-shaped garbage: valid type bytes and numbers in random order.
    #[test]
    fn resp_shaped_garbage(parts in proptest::collection::vec(
        prop_oneof![Just(&b"*2\r\n"[..]), Just(&b"$3\r\n"[..]), Just(&b"abc\r\n"[..]),
                    Just(&b"|1\r\n"[..]), Just(&b"$?\r\n"[..]), Just(&b";2\r\n"[..]),
                    Just(&b";0\r\n"[..]), Just(&b".\r\n"[..]), Just(&b"*?\r\n"[..]),
                    Just(&b"%1\r\n"[..]), Just(&b"+OK\r\n"[..]), Just(&b":-1\r\n"[..]),
                    Just(&b"\r\n"[..]), Just(&b">1\r\n"[..])], 0..60)) {
        let mut sim = Sim::new();
        sim.send(C, &cmd(&["GET", "k"]));
        for p in &parts {
            sim.send(S, p);
            sim.send(C, p);
        }
        let _ = sim.close();
    }
}

#[test]
fn over_the_pending_limit_the_oldest_are_given_up_and_pairs_stay_in_step() {
    let n = super::MAX_PENDING_COMMANDS + 2;
    let mut sim = Sim::new();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(cmd(&["GET", &format!("k{i}")]));
    }
    sim.send(C, &batch);
    let mut replies = Vec::new();
    for i in 0..n {
        replies.extend(format!("$1\r\n{}\r\n", i % 10).bytes());
    }
    sim.send(S, &replies);
    let e = sim.close();
    assert_eq!(e.len(), n);
    assert!(e[..2].iter().all(|x| x.flags.contains(Flags::NO_RESPONSE)));
    for (i, x) in e.iter().enumerate().skip(2) {
        assert_eq!(x.path.as_deref(), Some(format!("k{i}").as_str()));
        assert_eq!(
            x.response_body.as_ref().unwrap().0,
            format!("{}", i % 10).as_bytes()
        );
    }
}

#[test]
fn unsubscribe_from_all_when_the_subscriptions_were_not_seen() {
    // Joined mid-way: how many channels the client had is unknown; confirmations are
    // taken until the count reaches zero or another reply comes.
    let mut sim = Sim::with([true, true]);
    sim.send(C, &cmd(&["UNSUBSCRIBE"]))
        .send(S, b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n")
        .send(S, b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n")
        .send(C, &cmd(&["PING"]))
        .send(S, b"+PONG\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            (Some("UNSUBSCRIBE"), None, Some(0)),
            (Some("PING"), None, Some(0))
        ]
    );
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .ends_with("unsubscribed (2 confirmations)")
    );
    assert_eq!(e[0].response_size, Some(2 * 33));
}
