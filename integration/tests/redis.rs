//! Redis on the corpus and on a capture of our own, and where Reef and tshark differ.
//!
//! `check_truth.py --proto redis` compares Reef's commands with tshark's RESP
//! transactions that name a command. Reef finds all of them. Where the two differ,
//! tshark 4.0 is wrong, each case pinned down here:
//!
//! - **Inline commands** (`PING\r\n`, as redis-benchmark and `redis-cli --pipe` send
//!   them): tshark's RESP dissector does not read them, so its transaction has no
//!   command and the checker skips it; Reef reads them as Redis does. This is the one
//!   "extra" Reef entry in `redis_tcpdump_benchmark-sll` (precision 23/24) and the
//!   three PINGs of `redis_zeek_pipelining` (a capture whose truth has no command at
//!   all, so the checker leaves it out).
//! - **Replies over several segments**: tshark 4.0 does not reassemble them and counts
//!   each continuation segment as a reply (487 "replies" to 5 commands in
//!   `redis_zeek_large-requests-responses`); Reef reads one reply per command
//!   whatever the segmentation.
//! - **RESP3** (maps, pushes, attributes) is not in tshark 4.0's RESP dissector
//!   (`[fragment]` in its output for `live-redis`).

#![allow(clippy::unwrap_used)]

use reef_integration::{case_dir, corpus_file, dissect_bytes, dissect_file, rewrite};
use reef_schema::{Entry, Flags, Protocol};

fn redis(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| e.protocol == Protocol::Redis)
        .collect()
}

fn key(e: &Entry) -> (&str, Option<&str>, Option<i32>) {
    (
        e.method.as_deref().unwrap_or("-"),
        e.path.as_deref(),
        e.status_code,
    )
}

fn truth(name: &str) -> serde_json::Value {
    let p = corpus_file(name).with_extension("truth.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn error_reply_is_status_1() {
    let e = redis(dissect_file(&corpus_file("redis_deepflow_error")).0);
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), ("GET", Some("abcd"), Some(1)));
    assert_eq!(e[0].redis_key.as_deref(), Some("abcd"));
    assert_eq!(
        e[0].summary.as_deref(),
        Some("GET abcd → (error) NOAUTH Authentication required.")
    );
    assert!(e[0].flags.is_empty());
}

#[test]
fn auth_attempts_with_passwords_redacted() {
    let e = redis(dissect_file(&corpus_file("redis_zeek_auth")).0);
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("AUTH", None, Some(1)),
            ("AUTH", None, Some(0)),
            ("AUTH", None, Some(1))
        ]
    );
    // The passwords sent were notapassword, defaultpassword and password.
    for x in &e {
        let s = x.summary.as_deref().unwrap();
        let (request, _) = s.split_once(" → ").unwrap();
        assert!(
            request.ends_with(" (redacted)") && !request.contains("password"),
            "{s}"
        );
    }
    assert!(e[0].summary.as_deref().unwrap().contains("WRONGPASS"));
}

#[test]
fn benchmark_connections_including_the_inline_ping_tshark_cannot_read() {
    let e = redis(dissect_file(&corpus_file("redis_tcpdump_benchmark-sll")).0);
    let methods: Vec<_> = e.iter().map(|x| x.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "PING", "PING", "SET", "GET", "INCR", "LPUSH", "LPOP", "SADD", "SPOP", "LPUSH",
            "LRANGE", "LRANGE", "LRANGE", "LRANGE", "MSET"
        ]
    );
    assert!(
        e.iter()
            .all(|x| x.status_code == Some(0) && x.flags.is_empty())
    );
    // The first connection's PING is inline (`PING\r\n`): tshark's transaction for it
    // has no command (its RESP dissector reads only arrays), so check_truth skips it.
    let t = truth("redis_tcpdump_benchmark-sll");
    let first = &t["l7"]["redis_resp"]["transactions"][0];
    assert!(first["command"].is_null());
    assert_eq!(first["reply"]["value"], "PONG");
    assert_eq!(e[0].summary.as_deref(), Some("PING → PONG"));
    assert_eq!(e[0].request_size, Some(6));
    // The LRANGE replies are arrays of 100 to 600 elements.
    let sizes: Vec<_> = e[10..14]
        .iter()
        .map(|x| x.summary.clone().unwrap())
        .collect();
    assert!(sizes[3].ends_with("(array of 600)"), "{sizes:?}");
    assert_eq!(e[14].path.as_deref(), Some("key:000000000525"));
}

#[test]
fn pipelined_inline_pings_are_three_pairs() {
    // Three `PING\r\n` in one segment, three `+PONG` in one segment. tshark: three
    // transactions without a command (inline commands are not read).
    let e = redis(dissect_file(&corpus_file("redis_zeek_pipelining")).0);
    assert_eq!(e.len(), 3);
    for x in &e {
        assert_eq!(x.summary.as_deref(), Some("PING → PONG"));
        assert_eq!((x.request_size, x.response_size), (Some(6), Some(7)));
        assert!(x.flags.is_empty());
    }
    let t = truth("redis_zeek_pipelining");
    let tx = t["l7"]["redis_resp"]["transactions"].as_array().unwrap();
    assert_eq!(tx.len(), 3);
    assert!(tx.iter().all(|x| x["command"].is_null()));
}

#[test]
fn replies_over_many_segments_are_one_reply_each() {
    let (e, _) = dissect_file(&corpus_file("redis_zeek_large-requests-responses"));
    let e = redis(e);
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("COMMAND", None, Some(0)),
            ("SET", Some("FIVE_HUNDRED_X"), Some(0)),
            ("SET", Some("THOUSAND_X"), Some(0)),
            ("GET", Some("FIVE_HUNDRED_X"), Some(0)),
            ("GET", Some("THOUSAND_X"), Some(0)),
        ]
    );
    assert!(
        e.iter().all(|x| x.flags.is_empty()),
        "no reply is cut or left over"
    );
    assert_eq!(e[0].redis_command.as_deref(), Some("COMMAND DOCS"));
    assert!(e[0].summary.as_deref().unwrap().ends_with("(array of 544)"));
    // The COMMAND DOCS reply is far larger than one segment.
    assert!(e[0].response_size.unwrap() > 200_000);
    assert_eq!(e[4].response_body_size, Some(1000));
    assert_eq!(e[4].response_body.as_ref().unwrap().0, vec![b'X'; 1000]);
    // tshark counts each continuation segment as a reply.
    let t = truth("redis_zeek_large-requests-responses");
    assert_eq!(t["l7"]["redis_resp"]["reply_count"], 487);
    assert_eq!(t["l7"]["redis_resp"]["command_count"], 5);
}

#[test]
fn a_lost_segment_inside_a_large_reply_costs_only_that_reply() {
    // Drop one segment from the middle of the COMMAND DOCS reply (NULL link type).
    let path = corpus_file("redis_zeek_large-requests-responses");
    let mut i = 0;
    let bytes = rewrite(&path, 0, |f| {
        i += 1;
        if i == 10 { vec![] } else { vec![f.to_vec()] }
    });
    let e = redis(dissect_bytes(&bytes).0);
    assert_eq!(e.len(), 5);
    assert_eq!(e[0].method.as_deref(), Some("COMMAND"));
    assert!(e[0].flags.contains(Flags::RESPONSE_GAP), "{:?}", e[0].flags);
    assert!(e[0].incomplete);
    for x in &e[1..] {
        assert!(x.flags.is_empty(), "{:?}", x.summary);
        assert_eq!(x.status_code, Some(0));
    }
}

fn live() -> Vec<Entry> {
    redis(dissect_file(&case_dir("live-redis").join("capture.pcap")).0)
}

#[test]
fn live_redis_cli_commands_are_what_was_sent() {
    let e = live();
    let summaries: Vec<&str> = e.iter().map(|x| x.summary.as_deref().unwrap()).collect();
    let want = [
        "SET reef-test:greeting \"hello world\" → OK",
        "GET reef-test:greeting → \"hello world\"",
        "INCR reef-test:counter → (integer) 1",
        "INCR reef-test:greeting → (error) ERR value is not an integer or out of range",
        "LPUSH reef-test:list a b c → (integer) 3",
        "LRANGE reef-test:list 0 -1 → (array of 3)",
        "HSET reef-test:hash f1 v1 f2 v2 → (integer) 2",
        "HGETALL reef-test:hash → (array of 4)",
        "GET reef-test:missing → (nil)",
        "CONFIG GET maxmemory → (array of 2)",
        "HGETALL reef-test:hash → (map of 2)",
        "MULTI → OK",
        "SET reef-test:tx 1 → QUEUED",
        "INCR reef-test:tx → QUEUED",
        "LPUSH reef-test:tx x → QUEUED",
        "EXEC → (array of 3) with 1 errors for SET, INCR, LPUSH",
        "PING → PONG",
        "ECHO pipelined → \"pipelined\"",
        "GET reef-test:greeting → \"hello world\"",
        "PUBLISH reef-test:news breaking → (integer) 1",
        "MESSAGE reef-test:news breaking",
        "PUBLISH reef-test:news more → (integer) 1",
        "MESSAGE reef-test:news more",
        "DEL reef-test:greeting reef-test:counter reef-test:list reef-test:hash reef-test:tx → (integer) 5",
        "SET reef-test:cached v1 → OK",
        "CLIENT TRACKING on → OK",
        "GET reef-test:cached → \"v1\"",
        "SET reef-test:cached v2 → OK",
        "INVALIDATE reef-test:cached",
        "PING → PONG",
        "PUBLISH reef-test:push hi → (integer) 1",
        "MESSAGE reef-test:push hi",
        "DEL reef-test:cached → (integer) 1",
    ];
    for w in want {
        assert!(summaries.contains(&w), "missing {w:?} in {summaries:#?}");
    }
    assert!(summaries.iter().any(|s| s.starts_with(
        "NOSUCHCOMMAND x → (error) ERR unknown command 'NOSUCHCOMMAND'"
    )));
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("SUBSCRIBE reef-test:news → subscribed"))
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("SUBSCRIBE reef-test:push → subscribed"))
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.starts_with("UNSUBSCRIBE → unsubscribed"))
    );
    assert_eq!(
        summaries
            .iter()
            .filter(|s| s.starts_with("HELLO 3 → (map of 7)"))
            .count(),
        2
    );
    // Every entry is a complete pair or a one-way message (the EVAL reply's body is
    // longer than the body limit).
    let flagged: Vec<_> = e.iter().filter(|x| !x.flags.is_empty()).collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].flags, Flags::RESPONSE_BODY_TRUNCATED);
    let errors: Vec<_> = e.iter().filter(|x| x.status_code == Some(1)).collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(e.len(), 42);
}

#[test]
fn live_eval_reply_in_two_segments_is_one_reply() {
    let e = live();
    let eval = e
        .iter()
        .find(|x| x.method.as_deref() == Some("EVAL"))
        .unwrap();
    assert_eq!(eval.response_body_size, Some(80_000));
    assert_eq!(eval.response_size, Some(80_000 + 10));
    assert_eq!(eval.response_body.as_ref().unwrap().0.len(), 64 * 1024);
    assert!(eval.flags.contains(Flags::RESPONSE_BODY_TRUNCATED));
    assert!(!eval.incomplete);
}

#[test]
fn live_one_way_entries() {
    let e = live();
    let one_way: Vec<_> = e.iter().filter(|x| x.elapsed_time.is_none()).collect();
    let got: Vec<_> = one_way.iter().map(|x| key(x)).collect();
    assert_eq!(
        got,
        [
            ("MESSAGE", Some("reef-test:news"), Some(0)),
            ("MESSAGE", Some("reef-test:news"), Some(0)),
            ("INVALIDATE", Some("reef-test:cached"), Some(0)),
            ("MESSAGE", Some("reef-test:push"), Some(0)),
        ]
    );
    assert_eq!(one_way[0].request_body.as_ref().unwrap().0, b"breaking");
    assert_eq!(one_way[2].redis_key.as_deref(), Some("reef-test:cached"));
}

#[test]
fn live_benchmark_pipelined_sixteen_at_a_time() {
    let e = redis(dissect_file(&case_dir("live-redis").join("benchmark.pcap")).0);
    assert_eq!(e.len(), 1602);
    for m in ["SET", "GET", "INCR", "LPUSH"] {
        assert_eq!(
            e.iter().filter(|x| x.method.as_deref() == Some(m)).count(),
            400,
            "{m}"
        );
    }
    assert!(
        e.iter()
            .all(|x| x.flags.is_empty() && x.status_code == Some(0))
    );
    // INCR replies count up across the pipelined batches, in order per connection.
    let mut last = std::collections::BTreeMap::new();
    for x in e.iter().filter(|x| x.method.as_deref() == Some("INCR")) {
        let n: i64 = x
            .summary
            .as_deref()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let prev = last.insert(x.src_port, n);
        assert!(prev.is_none_or(|p| p < n), "{prev:?} then {n}");
    }
    // Sixteen commands share a segment, so sixteen entries share a start time.
    let mut per_ts = std::collections::BTreeMap::new();
    for x in &e {
        *per_ts.entry((x.src_port, x.timestamp)).or_insert(0) += 1;
    }
    assert_eq!(per_ts.values().max(), Some(&16));
}

/// Live: redis-cli and redis-benchmark against the Redis at 127.0.0.1:6379, captured
/// on `lo` while they run (not a recording). Keys are unique to this run and deleted
/// afterwards.
mod running_server {
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{SETTLE, run, server, tool, unique, wait};

    const PORT: u16 = 6379;

    /// Deletes the run's keys, even when the test fails.
    struct Cleanup(Vec<String>);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let cli = tool("redis-cli", "redis-tools");
            let _ = Command::new(cli)
                .args(["-h", "127.0.0.1", "-p", "6379", "DEL"])
                .args(&self.0)
                .output();
        }
    }

    fn of_key<'a>(e: &'a [Entry], k: &str) -> Vec<&'a Entry> {
        e.iter()
            .filter(|x| x.redis_key.as_deref() == Some(k))
            .collect()
    }

    #[test]
    fn live_redis_cli_and_pipelined_benchmark() {
        let cli = tool("redis-cli", "redis-tools");
        let bench = tool("redis-benchmark", "redis-tools");
        server("127.0.0.1:6379", "Redis (redis-server)");
        let p = unique("redis");
        let (greeting, list, missing, set, ctr) = (
            format!("{p}:greeting"),
            format!("{p}:list"),
            format!("{p}:missing"),
            format!("{p}:bench"),
            format!("{p}:ctr"),
        );
        let _cleanup = Cleanup(vec![
            greeting.clone(),
            list.clone(),
            set.clone(),
            ctr.clone(),
        ]);

        let cap = LiveCapture::start("lo");
        // One redis-cli connection, commands read from its input one by one.
        let script = format!(
            "SET {greeting} \"hello world\"\nGET {greeting}\nINCR {greeting}\n\
             LPUSH {list} a b c\nLRANGE {list} 0 -1\nGET {missing}\nNOSUCHCOMMAND {p}\n"
        );
        let mut child = Command::new(&cli)
            .args(["-h", "127.0.0.1", "-p", "6379"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = wait(child, Duration::from_secs(5), "redis-cli");
        assert!(String::from_utf8_lossy(&out.stdout).contains("hello world"));
        // Pipelined: 16 and 50 commands in flight per connection, two connections.
        let limit = Duration::from_secs(8);
        run(
            Command::new(&bench).args([
                "-h",
                "127.0.0.1",
                "-p",
                "6379",
                "-q",
                "-c",
                "2",
                "-n",
                "400",
                "-P",
                "16",
                "SET",
                &set,
                "value",
            ]),
            limit,
        );
        run(
            Command::new(&bench).args([
                "-h",
                "127.0.0.1",
                "-p",
                "6379",
                "-q",
                "-c",
                "2",
                "-n",
                "500",
                "-P",
                "50",
                "INCR",
                &ctr,
            ]),
            limit,
        );
        let (entries, _) = cap.stop(SETTLE);
        let e: Vec<Entry> = entries
            .into_iter()
            .filter(|x| x.protocol == Protocol::Redis && x.dst_port == Some(PORT))
            .collect();

        // redis-cli: the connection that set the greeting, every command in order.
        let port = of_key(&e, &greeting)[0].src_port;
        let session: Vec<_> = e
            .iter()
            .filter(|x| x.src_port == port && x.method.as_deref() != Some("COMMAND"))
            .map(|x| {
                (
                    x.method.as_deref().unwrap(),
                    x.redis_key.as_deref(),
                    x.status_code,
                )
            })
            .collect();
        assert_eq!(
            session,
            [
                ("SET", Some(greeting.as_str()), Some(0)),
                ("GET", Some(greeting.as_str()), Some(0)),
                // Not an integer: an error reply.
                ("INCR", Some(greeting.as_str()), Some(1)),
                ("LPUSH", Some(list.as_str()), Some(0)),
                ("LRANGE", Some(list.as_str()), Some(0)),
                ("GET", Some(missing.as_str()), Some(0)),
                ("NOSUCHCOMMAND", None, Some(1)),
            ]
        );
        let s = |i: usize| {
            e.iter()
                .filter(|x| x.src_port == port && x.method.as_deref() != Some("COMMAND"))
                .nth(i)
                .unwrap()
                .summary
                .clone()
                .unwrap()
        };
        assert!(s(1).ends_with("→ \"hello world\""), "{}", s(1));
        assert!(
            s(2).contains("(error) ERR value is not an integer"),
            "{}",
            s(2)
        );
        assert!(s(3).ends_with("→ (integer) 3"), "{}", s(3));
        assert!(s(4).ends_with("→ (array of 3)"), "{}", s(4));
        assert!(s(5).ends_with("→ (nil)"), "{}", s(5));
        assert!(s(6).contains("(error) ERR unknown command"), "{}", s(6));

        // Pipelined SETs: every one sent is one entry, answered.
        let sets = of_key(&e, &set);
        assert_eq!(sets.len(), 400);
        assert!(sets.iter().all(|x| x.method.as_deref() == Some("SET")
            && x.status_code == Some(0)
            && x.flags.is_empty()
            && x.summary.as_deref().unwrap().ends_with("→ OK")));
        let conns: BTreeSet<_> = sets.iter().map(|x| x.src_port).collect();
        assert_eq!(conns.len(), 2, "two benchmark connections");
        // Pipelined INCRs: each reply paired with its own command, so the replies are
        // exactly 1..=500, each once, increasing on each connection.
        let incrs = of_key(&e, &ctr);
        assert_eq!(incrs.len(), 500);
        let value = |x: &Entry| -> i64 {
            let s = x.summary.as_deref().unwrap();
            s.rsplit("(integer) ").next().unwrap().parse().unwrap()
        };
        let mut all: Vec<i64> = incrs.iter().map(|x| value(x)).collect();
        for c in incrs.iter().map(|x| x.src_port).collect::<BTreeSet<_>>() {
            let mine: Vec<i64> = incrs
                .iter()
                .filter(|x| x.src_port == c)
                .map(|x| value(x))
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        }
        all.sort();
        assert_eq!(all, (1..=500).collect::<Vec<_>>());
        assert!(
            incrs
                .iter()
                .all(|x| x.flags.is_empty() && x.elapsed_time.is_some())
        );
    }
}
