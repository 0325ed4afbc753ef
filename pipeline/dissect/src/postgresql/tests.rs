//! PostgreSQL from byte streams: startup, simple and extended queries, statements
//! carried to later executions, errors, encryption requests, loss and garbage.

use proptest::prelude::*;
use reef_schema::{Entry, Flags, Protocol};

use super::msg;
use crate::Probe;
use crate::framing::sim::{C, S, Sim, check};

pub(crate) fn m(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

pub(crate) fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = msg::PROTOCOL_3_0.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = (body.len() as u32 + 4).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

pub(crate) fn query(q: &str) -> Vec<u8> {
    m(b'Q', &cstr(q))
}

fn parse(name: &str, q: &str) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(q));
    b.extend_from_slice(&0i16.to_be_bytes());
    m(b'P', &b)
}

fn bind(portal: &str, stmt: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    m(b'B', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend_from_slice(&0i32.to_be_bytes());
    m(b'E', &b)
}

fn describe(what: u8, name: &str) -> Vec<u8> {
    let mut b = vec![what];
    b.extend(cstr(name));
    m(b'D', &b)
}

fn sync() -> Vec<u8> {
    m(b'S', &[])
}

pub(crate) fn ready() -> Vec<u8> {
    m(b'Z', b"I")
}

pub(crate) fn complete(tag: &str) -> Vec<u8> {
    m(b'C', &cstr(tag))
}

fn row() -> Vec<u8> {
    m(b'D', &[0, 1, 0, 0, 0, 1, b'1'])
}

fn row_description() -> Vec<u8> {
    let mut b = 1i16.to_be_bytes().to_vec();
    b.extend(cstr("x"));
    b.extend_from_slice(&[0; 18]);
    m(b'T', &b)
}

fn error(code: &str, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (f, v) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', text)] {
        b.push(f);
        b.extend(cstr(v));
    }
    b.push(0);
    m(b'E', &b)
}

fn auth(code: i32, extra: &[u8]) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(extra);
    m(b'R', &b)
}

pub(crate) fn login() -> Vec<u8> {
    let mut v = auth(0, &[]);
    v.extend(m(b'S', b"server_version\x0016.4\x00"));
    v.extend(m(b'K', &[0, 0, 0x30, 0x39, 1, 2, 3, 4]));
    v.extend(ready());
    v
}

fn keys(e: &[Entry]) -> Vec<(Option<&str>, Option<&str>, Option<i32>)> {
    e.iter()
        .map(|e| (e.method.as_deref(), e.path.as_deref(), e.status_code))
        .collect()
}

#[test]
fn startup_and_simple_queries() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "alice"), ("database", "shop")]))
        .send(S, &auth(10, b"SCRAM-SHA-256\0\0"))
        .send(C, &m(b'p', b"SCRAM-SHA-256\0\0\0\0\x04n,,n"))
        .send(S, &auth(11, b"r=abc"))
        .send(C, &m(b'p', b"c=biws"))
        .send(S, &auth(12, b"v=xyz"))
        .send(S, &login())
        .send(C, &query("SELECT * FROM t"));
    let mut resp = row_description();
    resp.extend(row());
    resp.extend(row());
    resp.extend(complete("SELECT 2"));
    resp.extend(ready());
    sim.send(S, &resp);
    sim.send(C, &query("DELETE FROM t WHERE false"))
        .send(S, &[complete("DELETE 0"), ready()].concat())
        .send(C, &m(b'X', &[]));
    assert_eq!(sim.protocol(), Some("postgresql"));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("Startup"), None, Some(0)),
            (Some("Query"), Some("SELECT * FROM t"), Some(0)),
            (Some("Query"), Some("DELETE FROM t WHERE false"), Some(0)),
        ]
    );
    assert_eq!(
        e[0].summary.as_deref(),
        Some("Startup user=alice database=shop → ready (authentication: SASL SCRAM-SHA-256)")
    );
    assert_eq!(e[1].db_rows, Some(2));
    assert_eq!(e[1].postgresql_query.as_deref(), Some("SELECT * FROM t"));
    assert_eq!(
        e[1].summary.as_deref(),
        Some("Query SELECT * FROM t → SELECT 2")
    );
    assert_eq!(e[2].db_rows, Some(0));
    let auth_msgs = m(b'p', b"SCRAM-SHA-256\0\0\0\0\x04n,,n").len() + m(b'p', b"c=biws").len();
    let start = startup(&[("user", "alice"), ("database", "shop")]).len();
    assert_eq!(e[0].request_size, Some((start + auth_msgs) as u64));
}

#[test]
fn error_carries_sqlstate_and_message() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")]))
        .send(S, &login())
        .send(C, &query("SELECT 1/0"))
        .send(S, &[error("22012", "division by zero"), ready()].concat());
    let e = sim.close();
    assert_eq!(e[1].status_code, Some(1));
    assert_eq!(e[1].db_error.as_deref(), Some("22012: division by zero"));
    assert_eq!(
        e[1].summary.as_deref(),
        Some("Query SELECT 1/0 → ERROR 22012 division by zero")
    );
}

#[test]
fn failed_login_is_an_error_entry() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "mallory")]))
        .send(S, &auth(5, &[1, 2, 3, 4]))
        .send(C, &m(b'p', b"md5xxxx\0"));
    let mut fatal = Vec::new();
    for (f, v) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28P01"),
        (b'M', "password authentication failed for user \"mallory\""),
    ] {
        fatal.push(f);
        fatal.extend(cstr(v));
    }
    fatal.push(0);
    sim.send(S, &m(b'E', &fatal));
    let e = sim.entries();
    assert_eq!(e.len(), 1, "emitted at the FATAL error, not at the close");
    assert_eq!(e[0].method.as_deref(), Some("Startup"));
    assert_eq!(e[0].status_code, Some(1));
    assert!(
        e[0].db_error
            .as_deref()
            .unwrap()
            .starts_with("28P01: password authentication failed")
    );
    assert!(e[0].summary.as_deref().unwrap().contains("MD5"));
    assert!(sim.close().is_empty());
}

#[test]
fn extended_query_carries_a_named_statement_to_later_executions() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    // Prepare once (Parse, Describe, Sync), then execute twice in later requests.
    sim.send(
        C,
        &[
            parse("s1", "SELECT $1::int + 1"),
            describe(b'S', "s1"),
            sync(),
        ]
        .concat(),
    )
    .send(
        S,
        &[
            m(b'1', &[]),
            m(b't', &[0, 1, 0, 0, 0, 23]),
            row_description(),
            ready(),
        ]
        .concat(),
    );
    for _ in 0..2 {
        sim.send(C, &[bind("", "s1"), execute(""), sync()].concat())
            .send(
                S,
                &[m(b'2', &[]), row(), complete("SELECT 1"), ready()].concat(),
            );
    }
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("Startup"), None, Some(0)),
            (Some("Parse"), Some("SELECT $1::int + 1"), Some(0)),
            (Some("Execute"), Some("SELECT $1::int + 1"), Some(0)),
            (Some("Execute"), Some("SELECT $1::int + 1"), Some(0)),
        ]
    );
    assert_eq!(e[2].db_rows, Some(1));
    assert_eq!(e[3].postgresql_query.as_deref(), Some("SELECT $1::int + 1"));
}

#[test]
fn pipelined_executions_get_an_entry_each_and_an_error_skips_the_rest() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    let req = [
        parse("", "INSERT INTO t VALUES ($1)"),
        bind("", ""),
        execute(""),
        bind("", ""),
        execute(""),
        bind("", ""),
        execute(""),
        sync(),
    ]
    .concat();
    sim.send(C, &req).send(
        S,
        &[
            m(b'1', &[]),
            m(b'2', &[]),
            complete("INSERT 0 1"),
            m(b'2', &[]),
            error(
                "23505",
                "duplicate key value violates unique constraint \"t_pkey\"",
            ),
            ready(),
        ]
        .concat(),
    );
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e)[1..],
        [
            (Some("Execute"), Some("INSERT INTO t VALUES ($1)"), Some(0)),
            (Some("Execute"), Some("INSERT INTO t VALUES ($1)"), Some(1)),
        ]
    );
    assert_eq!(e[1].db_rows, Some(1));
    assert!(e[2].db_error.as_deref().unwrap().starts_with("23505"));
    assert!(
        e[2].summary
            .as_deref()
            .unwrap()
            .contains("1 Execute skipped")
    );
    // Every byte counted once.
    let req_total: u64 = e[1..].iter().map(|x| x.request_size.unwrap()).sum();
    assert_eq!(req_total, req.len() as u64);
}

#[test]
fn parse_error_names_the_parse() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    sim.send(
        C,
        &[parse("", "SELEC 1"), bind("", ""), execute(""), sync()].concat(),
    )
    .send(
        S,
        &[error("42601", "syntax error at or near \"SELEC\""), ready()].concat(),
    );
    let e = sim.close();
    assert_eq!(keys(&e)[1], (Some("Parse"), Some("SELEC 1"), Some(1)));
}

#[test]
fn execution_of_a_statement_prepared_before_the_capture() {
    let mut sim = Sim::midstream(8000);
    sim.send(C, &[bind("", "S_18"), execute(""), sync()].concat())
        .send(
            S,
            &[m(b'2', &[]), row(), complete("SELECT 1"), ready()].concat(),
        );
    let e = sim.close();
    assert_eq!(keys(&e), [(Some("Execute"), None, Some(0))]);
    assert_eq!(
        e[0].summary.as_deref(),
        Some("Execute (statement \"S_18\", text not captured) → SELECT 1")
    );
}

#[test]
fn ssl_accepted_hands_the_connection_to_tls() {
    let mut sim = Sim::new(5432);
    let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    sim.send(C, &ssl)
        .send(S, b"S")
        .send(C, &[0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5])
        .send(S, &[0x16, 3, 3, 0, 2, 9, 9]);
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].method.as_deref(), Some("SSLRequest"));
    assert_eq!(e[0].status_code, Some(0));
    assert!(e[0].summary.as_deref().unwrap().contains("encrypted (TLS)"));
    // What follows is read as TLS, nothing else: here a hello too short to be one.
    assert_eq!(e[1].protocol, Protocol::Tls);
    assert_eq!(e[1].method.as_deref(), Some("ClientHello"));
    assert!(e[1].flags.contains(Flags::MALFORMED));
}

#[test]
fn ssl_refused_is_told_with_the_startup() {
    let mut sim = Sim::new(5432);
    sim.send(C, &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .send(S, b"N")
        .send(C, &startup(&[("user", "u")]))
        .send(S, &login());
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("SSLRequest refused; Startup user=u")
    );
    assert_eq!(
        e[0].request_size,
        Some(8 + startup(&[("user", "u")]).len() as u64)
    );
}

#[test]
fn cancel_request_is_one_way() {
    let mut sim = Sim::new(5432);
    let mut c = vec![0, 0, 0, 16];
    c.extend_from_slice(&msg::CANCEL_REQUEST.to_be_bytes());
    c.extend_from_slice(&28954u32.to_be_bytes());
    c.extend_from_slice(&[1, 2, 3, 4]);
    sim.send(C, &c);
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].method.as_deref(), Some("CancelRequest"));
    assert!(!e[0].incomplete);
    assert_eq!(
        e[0].summary.as_deref(),
        Some("CancelRequest for backend 28954")
    );
}

#[test]
fn notification_is_one_way() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    sim.send(S, &m(b'A', b"\0\0\x30\x39jobs\0{\"id\":1}\0"));
    let e = sim.close();
    assert_eq!(
        keys(&e)[1],
        (Some("NotificationResponse"), Some("jobs"), Some(0))
    );
}

#[test]
fn copy_from_stdin_counts_the_data_with_its_query() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    sim.send(C, &query("COPY t FROM STDIN"))
        .send(S, &m(b'G', &[0, 0, 0]))
        .send(C, &[m(b'd', b"1\n2\n"), m(b'c', &[])].concat())
        .send(S, &[complete("COPY 2"), ready()].concat());
    let e = sim.close();
    assert_eq!(
        keys(&e)[1],
        (Some("Query"), Some("COPY t FROM STDIN"), Some(0))
    );
    assert_eq!(e[1].db_rows, Some(2));
    assert_eq!(
        e[1].request_size,
        Some((query("COPY t FROM STDIN").len() + 9 + 5) as u64)
    );
}

#[test]
fn query_split_across_segments_and_many_rows() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    let long = format!("SELECT '{}'", "x".repeat(3000));
    sim.send_in(C, &query(&long), 7);
    let mut resp = row_description();
    for _ in 0..500 {
        resp.extend(row());
    }
    resp.extend(complete("SELECT 500"));
    resp.extend(ready());
    sim.send_in(S, &resp, 1000);
    let e = sim.close();
    assert_eq!(e[1].path.as_deref(), Some(long.as_str()));
    assert_eq!(e[1].db_rows, Some(500));
    assert_eq!(e[1].response_size, Some(resp.len() as u64));
}

#[test]
fn lost_response_is_flagged_and_the_next_pair_stays_right() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    sim.send(C, &query("SELECT 1"));
    // Its whole response is lost.
    let lost = [row_description(), row(), complete("SELECT 1"), ready()].concat();
    sim.lose(S, lost.len() as u64);
    sim.send(C, &query("SELECT 2")).send(
        S,
        &[row_description(), row(), complete("SELECT 1"), ready()].concat(),
    );
    let e = sim.close();
    check(&e);
    assert_eq!(e[1].path.as_deref(), Some("SELECT 1"));
    assert!(
        e[1].flags
            .contains(Flags::NO_RESPONSE | Flags::RESPONSE_GAP)
    );
    assert_eq!(e[2].path.as_deref(), Some("SELECT 2"));
    assert!(!e[2].incomplete);
}

#[test]
fn response_to_a_request_the_capture_missed() {
    let mut sim = Sim::new(5432);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    // The client's query was lost; then it sends another.
    sim.lose(C, 20);
    let q2 = query("SELECT 2");
    sim.send(C, &q2);
    // The response to the lost query was sent before the server had the second.
    let ack_before = Some(sim.off[0] - q2.len() as u64);
    sim.send_acking(S, &[complete("SELECT 0"), ready()].concat(), ack_before)
        .send(S, &[complete("SELECT 7"), ready()].concat());
    let e = sim.close();
    check(&e);
    assert!(e[1].flags.contains(Flags::NO_REQUEST));
    assert_eq!(
        e[1].summary.as_deref(),
        Some("(request not captured) → SELECT 0")
    );
    assert_eq!(e[2].path.as_deref(), Some("SELECT 2"));
    assert_eq!(e[2].db_rows, Some(7));
}

#[test]
fn response_timeout_then_late_response_is_dropped() {
    let limits = crate::Limits {
        response_timeout_ns: 1_000_000_000,
        ..crate::Limits::default()
    };
    let mut sim = Sim::with(5432, [false, false], limits);
    sim.send(C, &startup(&[("user", "u")])).send(S, &login());
    sim.send(C, &query("SELECT pg_sleep(5)"));
    let t = sim.tick(sim.ts + 2_000_000_000);
    assert_eq!(t.len(), 2);
    assert!(t[1].flags.contains(Flags::NO_RESPONSE | Flags::TIMEOUT));
    sim.send(S, &[complete("SELECT 1"), ready()].concat())
        .send(C, &query("SELECT 3"))
        .send(S, &[complete("SELECT 3"), ready()].concat());
    let e = sim.close();
    assert_eq!(keys(&e), [(Some("Query"), Some("SELECT 3"), Some(0))]);
}

#[test]
fn probe_recognises_startup_and_midstream_messages() {
    let ctx = Sim::new(5432).ctx;
    let mid = Sim::midstream(5432).ctx;
    let s = startup(&[("user", "u")]);
    assert_eq!(super::probe(&ctx, C, &s), Probe::Client(C));
    assert_eq!(super::probe(&ctx, C, &s[..5]), Probe::NotYet);
    assert_eq!(super::probe(&ctx, C, b"GET / HTTP/1.1\r\n"), Probe::No);
    assert_eq!(super::probe(&ctx, C, &query("SELECT 1")), Probe::No);
    assert_eq!(super::probe(&mid, C, &query("SELECT 1")), Probe::Client(C));
    assert_eq!(
        super::probe(&mid, S, &[complete("SELECT 1"), ready()].concat()),
        Probe::Client(S.flip())
    );
    assert_eq!(
        super::probe(&mid, C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        Probe::No
    );
}

#[test]
fn parsers() {
    assert_eq!(
        msg::parse_tag(b"INSERT 0 5\0"),
        ("INSERT 0 5".into(), Some(5))
    );
    assert_eq!(
        msg::parse_tag(b"CREATE TABLE\0"),
        ("CREATE TABLE".into(), None)
    );
    let e = msg::parse_error(b"SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0\0");
    assert_eq!(e.code, "42P01");
    assert_eq!(e.text(), "42P01: relation \"x\" does not exist");
    assert_eq!(msg::lossy("ab€".as_bytes(), 3), "ab");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600),
                                b in proptest::collection::vec(any::<u8>(), 0..600),
                                cut in 1usize..64, mid in any::<bool>()) {
        let mut sim = if mid { Sim::midstream(5432) } else { Sim::new(5432) };
        sim.send(C, &startup(&[("user", "u")]));
        sim.send_in(C, &a, cut).send_in(S, &b, cut).lose(S, 3).send(S, &b);
        let e = sim.close();
        check(&e);
    }

    #[test]
    fn real_messages_cut_anywhere_give_the_same_entries(cut in 1usize..40) {
        let mut whole = Sim::new(5432);
        let mut pieces = Sim::new(5432);
        let req = [startup(&[("user", "u")]), query("SELECT 1"), parse("a", "SELECT 2"), bind("", "a"), execute(""), sync()].concat();
        let resp = [login(), row_description(), row(), complete("SELECT 1"), ready(), m(b'1', &[]), m(b'2', &[]), complete("SELECT 0"), ready()].concat();
        whole.send(C, &req[..req.len()]).send(S, &resp);
        pieces.send_in(C, &req, cut).send_in(S, &resp, cut);
        let a = whole.close();
        let b = pieces.close();
        prop_assert_eq!(keys(&a), keys(&b));
        prop_assert_eq!(a.len(), 3);
    }
}
