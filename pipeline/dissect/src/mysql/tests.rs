//! MySQL/MariaDB from byte streams: login, queries, result sets in both EOF modes,
//! prepared statements, compression, TLS, loss and garbage.

use std::io::Write;

use proptest::prelude::*;
use reef_schema::{Entry, Flags};

use super::packet::{self, *};
use crate::Probe;
use crate::framing::sim::{C, S, Sim, check};

pub(crate) fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

pub(crate) const CAPS: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_PROTOCOL_41
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PLUGIN_AUTH_LENENC;

pub(crate) fn greeting(version: &str, caps: u32) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(version.as_bytes());
    p.push(0);
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"mysql_native_password\0");
    pkt(0, &p)
}

pub(crate) fn login(caps: u32, user: &str, db: Option<&str>) -> Vec<u8> {
    let caps = caps
        | if db.is_some() {
            CLIENT_CONNECT_WITH_DB
        } else {
            0
        };
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(20);
    p.extend_from_slice(&[7; 20]);
    if let Some(d) = db {
        p.extend_from_slice(d.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(b"mysql_native_password\0");
    pkt(1, &p)
}

pub(crate) fn ok(seq: u8, affected: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0, affected, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

pub(crate) fn err(seq: u8, code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    pkt(seq, &p)
}

fn eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    pkt(seq, &p)
}

fn ok_eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

fn coldef(seq: u8, name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for s in ["def", "test", "t", "t", name, name] {
        p.push(s.len() as u8);
        p.extend_from_slice(s.as_bytes());
    }
    p.extend_from_slice(&[0x0c, 0x21, 0, 0, 1, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
    pkt(seq, &p)
}

fn text_row(seq: u8, v: &str) -> Vec<u8> {
    let mut p = vec![v.len() as u8];
    p.extend_from_slice(v.as_bytes());
    pkt(seq, &p)
}

pub(crate) fn query(q: &str) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(q.as_bytes());
    pkt(0, &p)
}

/// A result set: column count, definitions, rows, in the given EOF mode.
pub(crate) fn result_set(cols: usize, rows: usize, deprecate_eof: bool) -> Vec<u8> {
    let mut v = pkt(1, &[cols as u8]);
    let mut seq = 2;
    for i in 0..cols {
        v.extend(coldef(seq, &format!("c{i}")));
        seq += 1;
    }
    if !deprecate_eof {
        v.extend(eof(seq, 2));
        seq += 1;
    }
    for i in 0..rows {
        v.extend(text_row(seq, &i.to_string()));
        seq = seq.wrapping_add(1);
    }
    if deprecate_eof {
        v.extend(ok_eof(seq, 2));
    } else {
        v.extend(eof(seq, 2));
    }
    v
}

fn keys(e: &[Entry]) -> Vec<(Option<&str>, Option<&str>, Option<i32>)> {
    e.iter()
        .map(|e| (e.method.as_deref(), e.path.as_deref(), e.status_code))
        .collect()
}

fn logged_in(caps: u32) -> Sim {
    let mut sim = Sim::new(3306);
    sim.send(S, &greeting("10.11.6-MariaDB", caps | CLIENT_DEPRECATE_EOF))
        .send(C, &login(caps, "root", Some("test")))
        .send(S, &ok(2, 0, 2));
    sim
}

#[test]
fn login_and_queries_in_both_eof_modes() {
    for deprecate in [false, true] {
        let caps = CAPS | if deprecate { CLIENT_DEPRECATE_EOF } else { 0 };
        let mut sim = logged_in(caps);
        sim.send(C, &query("SELECT a, b FROM t"))
            .send(S, &result_set(2, 3, deprecate))
            .send(C, &query("UPDATE t SET a = 1"))
            .send(S, &ok(1, 3, 2))
            .send(C, &query("SELECT nosuch"))
            .send(
                S,
                &err(1, 1054, "42S22", "Unknown column 'nosuch' in 'field list'"),
            )
            .send(C, &pkt(0, &[0x01]));
        assert_eq!(sim.protocol(), Some("mysql"));
        let e = sim.close();
        check(&e);
        assert_eq!(
            keys(&e),
            [
                (Some("Login"), None, Some(0)),
                (Some("Query"), Some("SELECT a, b FROM t"), Some(0)),
                (Some("Query"), Some("UPDATE t SET a = 1"), Some(0)),
                (Some("Query"), Some("SELECT nosuch"), Some(1054)),
            ],
            "deprecate_eof={deprecate}"
        );
        assert_eq!(
            e[0].summary.as_deref(),
            Some(
                "Login user=root db=test auth=mysql_native_password (server 10.11.6-MariaDB) → OK"
            )
        );
        assert_eq!(e[1].db_rows, Some(3));
        assert_eq!(
            e[1].summary.as_deref(),
            Some("Query SELECT a, b FROM t → 3 rows, 2 columns")
        );
        assert_eq!(e[2].db_rows, Some(3));
        assert_eq!(
            e[3].db_error.as_deref(),
            Some("1054 (42S22): Unknown column 'nosuch' in 'field list'")
        );
        assert_eq!(e[1].mysql_query.as_deref(), Some("SELECT a, b FROM t"));
    }
}

#[test]
fn access_denied_login() {
    let mut sim = Sim::new(3306);
    sim.send(S, &greeting("8.0.36", CAPS))
        .send(C, &login(CAPS, "root", None))
        .send(
            S,
            &err(
                2,
                1045,
                "28000",
                "Access denied for user 'root'@'localhost'",
            ),
        );
    let e = sim.close();
    assert_eq!(keys(&e), [(Some("Login"), None, Some(1045))]);
}

#[test]
fn auth_switch_then_ok() {
    let mut sim = Sim::new(3306);
    sim.send(S, &greeting("8.0.36", CAPS))
        .send(C, &login(CAPS, "app", None))
        .send(
            S,
            &pkt(2, b"\xfecaching_sha2_password\0abcdefghijklmnopqrst\0"),
        )
        .send(C, &pkt(3, &[1; 32]))
        .send(S, &pkt(4, &[0x01, 0x03]))
        .send(S, &ok(5, 0, 2))
        .send(C, &query("SELECT 1"))
        .send(S, &result_set(1, 1, false));
    let e = sim.close();
    check(&e);
    assert_eq!(keys(&e)[1], (Some("Query"), Some("SELECT 1"), Some(0)));
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("auth switch to caching_sha2_password")
    );
    assert_eq!(
        e[0].request_size,
        Some(login(CAPS, "app", None).len() as u64 + 36)
    );
}

#[test]
fn prepared_statement_executions_carry_its_text() {
    let mut sim = logged_in(CAPS);
    let mut prep = vec![0x16];
    prep.extend_from_slice(b"SELECT * FROM t WHERE id = ?");
    let mut resp = vec![0x00];
    resp.extend_from_slice(&5u32.to_le_bytes());
    resp.extend_from_slice(&1u16.to_le_bytes());
    resp.extend_from_slice(&1u16.to_le_bytes());
    resp.extend_from_slice(&[0, 0, 0]);
    sim.send(C, &pkt(0, &prep)).send(
        S,
        &[
            pkt(1, &resp),
            coldef(2, "?"),
            eof(3, 2),
            coldef(4, "id"),
            eof(5, 2),
        ]
        .concat(),
    );
    let mut exec = vec![0x17];
    exec.extend_from_slice(&5u32.to_le_bytes());
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 3, 0, 42, 0, 0, 0]);
    // Binary rows start with 0x00.
    let mut rs = pkt(1, &[1]);
    rs.extend(coldef(2, "id"));
    rs.extend(eof(3, 2));
    rs.extend(pkt(4, &[0, 0, 42, 0, 0, 0]));
    rs.extend(eof(5, 2));
    sim.send(C, &pkt(0, &exec)).send(S, &rs);
    let mut close = vec![0x19];
    close.extend_from_slice(&5u32.to_le_bytes());
    sim.send(C, &pkt(0, &close));
    let e = sim.close();
    check(&e);
    let text = Some("SELECT * FROM t WHERE id = ?");
    assert_eq!(
        keys(&e)[1..],
        [
            (Some("StmtPrepare"), text, Some(0)),
            (Some("StmtExecute"), text, Some(0)),
            (Some("StmtClose"), None, None),
        ]
    );
    assert_eq!(e[2].db_rows, Some(1));
    assert_eq!(
        e[3].summary.as_deref(),
        Some("StmtClose statement 5: SELECT * FROM t WHERE id = ? → (no reply expected)")
    );
    assert!(!e[3].incomplete);
}

#[test]
fn multiple_result_sets() {
    let mut sim = logged_in(CAPS);
    sim.send(C, &query("CALL p()"));
    let mut v = pkt(1, &[1]);
    v.extend(coldef(2, "a"));
    v.extend(eof(3, 2));
    v.extend(text_row(4, "1"));
    v.extend(eof(5, 2 | SERVER_MORE_RESULTS_EXISTS));
    v.extend(pkt(6, &[1]));
    v.extend(coldef(7, "b"));
    v.extend(eof(8, 2));
    v.extend(text_row(9, "2"));
    v.extend(text_row(10, "3"));
    v.extend(eof(11, 2 | SERVER_MORE_RESULTS_EXISTS));
    v.extend(ok(12, 0, 2));
    sim.send(C, &[])
        .send(S, &v)
        .send(C, &query("SELECT 1"))
        .send(S, &result_set(1, 1, false));
    let e = sim.close();
    assert_eq!(e[1].db_rows, Some(3));
    assert_eq!(
        e[1].summary.as_deref(),
        Some("Query CALL p() → 3 rows in 2 result sets")
    );
    assert_eq!(keys(&e)[2], (Some("Query"), Some("SELECT 1"), Some(0)));
}

fn compress(seq: u8, inner: &[u8], zlib: bool) -> Vec<u8> {
    let (payload, ulen) = if zlib {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(inner).unwrap();
        (z.finish().unwrap(), inner.len())
    } else {
        (inner.to_vec(), 0)
    };
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(&[ulen as u8, (ulen >> 8) as u8, (ulen >> 16) as u8]);
    v.extend_from_slice(&payload);
    v
}

#[test]
fn compressed_protocol_after_login() {
    let caps = CAPS | CLIENT_COMPRESS;
    let mut sim = logged_in(caps);
    let rs = result_set(3, 40, false);
    sim.send(C, &compress(0, &query("SELECT * FROM big"), false))
        // A reply split over two compressed packets, the second in two segments.
        .send(S, &compress(1, &rs[..100], true));
    let second = compress(2, &rs[100..], true);
    sim.send(S, &second[..10]).send(S, &second[10..]);
    sim.send(C, &compress(0, &query("SELECT 2"), true))
        .send(S, &compress(1, &result_set(1, 1, false), false));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e)[1..],
        [
            (Some("Query"), Some("SELECT * FROM big"), Some(0)),
            (Some("Query"), Some("SELECT 2"), Some(0)),
        ]
    );
    assert_eq!(e[1].db_rows, Some(40));
    // Sizes are wire bytes: the compressed packets', shared among what they hold.
    let wire = (compress(1, &rs[..100], true).len() + second.len()) as u64;
    let got = e[1].response_size.unwrap();
    assert!(got.abs_diff(wire) <= 2, "{got} vs {wire}");
    assert_eq!(
        e[2].response_size,
        Some(compress(1, &result_set(1, 1, false), false).len() as u64)
    );
}

#[test]
fn compressed_connection_joined_midway() {
    let mut sim = Sim::midstream(30130);
    sim.send(C, &compress(0, &query("SELECT * FROM `az`"), false))
        .send(S, &compress(1, &result_set(5, 5, false), true));
    let e = sim.close();
    assert_eq!(
        keys(&e),
        [(Some("Query"), Some("SELECT * FROM `az`"), Some(0))]
    );
    assert_eq!(e[0].db_rows, Some(5));
}

#[test]
fn ssl_request_means_encrypted() {
    let mut sim = Sim::new(3306);
    sim.send(S, &greeting("8.0.28", CAPS | CLIENT_SSL));
    let mut p = (CAPS | CLIENT_SSL).to_le_bytes().to_vec();
    p.extend_from_slice(&(1u32 << 24).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    sim.send(C, &pkt(1, &p))
        .send(C, &[0x16, 3, 1, 0, 2, 1, 0])
        .send(S, &[0x16, 3, 3, 0, 2, 2, 0]);
    let e = sim.close();
    assert_eq!(keys(&e), [(Some("SSLRequest"), None, Some(0))]);
    assert!(e[0].summary.as_deref().unwrap().contains("(server 8.0.28)"));
}

#[test]
fn server_refuses_before_login() {
    let mut sim = Sim::new(3306);
    sim.send(S, &err(0, 1040, "08004", "Too many connections"));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].status_code, Some(1040));
    assert!(e[0].flags.contains(Flags::NO_REQUEST));
}

#[test]
fn lost_reply_end_is_found_by_the_next_reply() {
    let mut sim = logged_in(CAPS);
    let rs = result_set(1, 10, false);
    sim.send(C, &query("SELECT a FROM t"))
        .send(S, &rs[..40])
        .lose(S, (rs.len() - 40) as u64)
        .send(C, &query("SELECT 2"))
        .send(S, &result_set(1, 1, false));
    let e = sim.close();
    check(&e);
    assert_eq!(keys(&e)[1].1, Some("SELECT a FROM t"));
    assert!(e[1].flags.contains(Flags::RESPONSE_GAP));
    assert_eq!(keys(&e)[2], (Some("Query"), Some("SELECT 2"), Some(0)));
    assert!(!e[2].incomplete);
}

#[test]
fn midstream_reply_without_its_command() {
    let mut sim = Sim::midstream(3306);
    // The tail of a reply, then a command and its reply.
    let rs = result_set(1, 3, false);
    sim.send(C, &query("SELECT 9"));
    let ack = Some(0);
    sim.send_acking(S, &rs[rs.len() - 18..], ack)
        .send(S, &result_set(1, 1, false));
    let e = sim.close();
    check(&e);
    assert!(e[0].flags.contains(Flags::NO_REQUEST));
    assert_eq!(keys(&e)[1], (Some("Query"), Some("SELECT 9"), Some(0)));
}

#[test]
fn query_attributes_are_not_part_of_the_text() {
    assert_eq!(query_text(b"\x00\x01SELECT 1", None), b"SELECT 1");
    assert_eq!(query_text(b"\x00\x01SELECT 1", Some(true)), b"SELECT 1");
    assert_eq!(query_text(b"SELECT 1", None), b"SELECT 1");
}

#[test]
fn probe() {
    let ctx = Sim::new(3306).ctx;
    let mid = Sim::midstream(3306).ctx;
    let g = greeting("5.7.44-log", CAPS);
    assert_eq!(super::probe(&ctx, S, &g), Probe::Client(C));
    assert_eq!(super::probe(&ctx, S, &g[..9]), Probe::NotYet);
    assert_eq!(super::probe(&ctx, C, &query("SELECT 1")), Probe::No);
    assert_eq!(super::probe(&mid, C, &query("SELECT 1")), Probe::Client(C));
    assert_eq!(
        super::probe(&mid, S, &result_set(1, 2, false)),
        Probe::Client(C)
    );
    assert_eq!(super::probe(&mid, C, b"GET / HTTP/1.1\r\n\r\n"), Probe::No);
    // An HTTP/2 SETTINGS frame, a Kafka request: not MySQL.
    assert_eq!(
        super::probe(&mid, S, &[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]),
        Probe::No
    );
}

#[test]
fn packet_parsers() {
    let g = parse_greeting(&greeting("8.0.21", CAPS)[4..]).unwrap();
    assert_eq!(g.version, "8.0.21");
    assert_eq!(g.auth_plugin.as_deref(), Some("mysql_native_password"));
    let l = parse_login(&login(CAPS, "bob", Some("shop"))[4..]);
    assert_eq!(
        (l.user.as_deref(), l.database.as_deref()),
        (Some("bob"), Some("shop"))
    );
    let e = parse_err(&err(1, 1064, "42000", "You have an error")[4..]);
    assert_eq!(e.text(), "1064 (42000): You have an error");
    let mut r = packet::Reader::new(&[0xFC, 0x10, 0x27, 0xFB]);
    assert_eq!(r.lenenc(), Some(10000));
    assert_eq!(r.lenenc(), None);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600),
                                b in proptest::collection::vec(any::<u8>(), 0..600),
                                cut in 1usize..64, compressed in any::<bool>()) {
        let caps = CAPS | if compressed { CLIENT_COMPRESS } else { 0 };
        let mut sim = logged_in(caps);
        sim.send_in(C, &a, cut).send_in(S, &b, cut).lose(S, 5).send(S, &b).lose(C, 2).send(C, &a);
        let e = sim.close();
        check(&e);
    }

    #[test]
    fn midstream_garbage_never_panics(a in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut sim = Sim::midstream(3306);
        let mut c = query("SELECT 1");
        c.extend_from_slice(&a);
        sim.send(C, &c).send(S, &a).send(S, &compress(1, &a, true));
        check(&sim.close());
    }

    #[test]
    fn segments_cut_anywhere_give_the_same_entries(cut in 1usize..50) {
        let caps = CAPS | CLIENT_DEPRECATE_EOF;
        let client = [login(caps, "u", None), query("SELECT x FROM y"), query("DO 1")].concat();
        let server = [greeting("8.0.36", caps), ok(2, 0, 2), result_set(2, 7, true), ok(1, 0, 2)].concat();
        let mut sim = Sim::new(3306);
        // The greeting first, then each side in pieces, in turn.
        let g = greeting("8.0.36", caps).len();
        sim.send(S, &server[..g]);
        let l = login(caps, "u", None).len();
        sim.send_in(C, &client[..l], cut).send_in(S, &server[g..g + 11], cut);
        let q = query("SELECT x FROM y").len();
        sim.send_in(C, &client[l..l + q], cut);
        let rs = result_set(2, 7, true).len();
        sim.send_in(S, &server[g + 11..g + 11 + rs], cut);
        sim.send_in(C, &client[l + q..], cut).send_in(S, &server[g + 11 + rs..], cut);
        let e = sim.close();
        prop_assert_eq!(e.len(), 3);
        prop_assert_eq!(e[1].db_rows, Some(7));
        prop_assert_eq!(keys(&e)[2], (Some("Query"), Some("DO 1"), Some(0)));
    }
}
