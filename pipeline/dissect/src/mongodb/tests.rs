//! MongoDB from byte streams built from the wire protocol specification: OP_MSG with
//! document sequences, moreToCome and exhaust, legacy OP_QUERY/OP_REPLY, compression,
//! BSON as JSON, loss and garbage.

use proptest::prelude::*;
use reef_schema::{Entry, Flags};

use super::bson::{self, Doc, Json};
use super::wire;
use crate::Probe;
use crate::framing::sim::{C, S, Sim, check};

pub(crate) enum B<'a> {
    S(&'a str),
    I(i32),
    L(i64),
    D(f64),
    Doc(Vec<u8>),
    Arr(Vec<u8>),
    Bool(bool),
    Oid([u8; 12]),
    Date(i64),
    Null,
    Bin(u8, &'a [u8]),
    Dec(u128),
    Ts(u32, u32),
    Re(&'a str, &'a str),
}

pub(crate) fn doc(elems: &[(&str, B<'_>)]) -> Vec<u8> {
    let mut b = vec![0; 4];
    for (k, v) in elems {
        let (t, body): (u8, Vec<u8>) = match v {
            B::S(s) => {
                let mut x = ((s.len() + 1) as i32).to_le_bytes().to_vec();
                x.extend_from_slice(s.as_bytes());
                x.push(0);
                (2, x)
            }
            B::I(i) => (0x10, i.to_le_bytes().to_vec()),
            B::L(i) => (0x12, i.to_le_bytes().to_vec()),
            B::D(d) => (1, d.to_le_bytes().to_vec()),
            B::Doc(d) => (3, d.clone()),
            B::Arr(d) => (4, d.clone()),
            B::Bool(x) => (8, vec![u8::from(*x)]),
            B::Oid(o) => (7, o.to_vec()),
            B::Date(ms) => (9, ms.to_le_bytes().to_vec()),
            B::Null => (0x0A, vec![]),
            B::Bin(sub, data) => {
                let mut x = (data.len() as i32).to_le_bytes().to_vec();
                x.push(*sub);
                x.extend_from_slice(data);
                (5, x)
            }
            B::Dec(v) => (0x13, v.to_le_bytes().to_vec()),
            B::Ts(t, i) => (
                0x11,
                ((u64::from(*t) << 32) | u64::from(*i))
                    .to_le_bytes()
                    .to_vec(),
            ),
            B::Re(p, o) => {
                let mut x = p.as_bytes().to_vec();
                x.push(0);
                x.extend_from_slice(o.as_bytes());
                x.push(0);
                (0x0B, x)
            }
        };
        b.push(t);
        b.extend_from_slice(k.as_bytes());
        b.push(0);
        b.extend(body);
    }
    b.push(0);
    let n = b.len() as i32;
    b[..4].copy_from_slice(&n.to_le_bytes());
    b
}

pub(crate) fn array(items: Vec<Vec<u8>>) -> Vec<u8> {
    let keys: Vec<String> = (0..items.len()).map(|i| i.to_string()).collect();
    let elems: Vec<(&str, B<'_>)> = keys
        .iter()
        .zip(items)
        .map(|(k, d)| (k.as_str(), B::Doc(d)))
        .collect();
    doc(&elems)
}

pub(crate) fn message(id: i32, to: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut v = ((16 + body.len()) as i32).to_le_bytes().to_vec();
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&to.to_le_bytes());
    v.extend_from_slice(&op.to_le_bytes());
    v.extend_from_slice(body);
    v
}

pub(crate) fn op_msg(
    id: i32,
    to: i32,
    flags: u32,
    body: &[u8],
    seq: Option<(&str, Vec<Vec<u8>>)>,
) -> Vec<u8> {
    let mut b = flags.to_le_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(body);
    if let Some((name, docs)) = seq {
        let mut s = name.as_bytes().to_vec();
        s.push(0);
        for d in docs {
            s.extend(d);
        }
        b.push(1);
        b.extend_from_slice(&((s.len() + 4) as i32).to_le_bytes());
        b.extend(s);
    }
    message(id, to, wire::OP_MSG, &b)
}

fn keys(e: &[Entry]) -> Vec<(Option<&str>, Option<&str>, Option<i32>)> {
    e.iter()
        .map(|e| (e.method.as_deref(), e.path.as_deref(), e.status_code))
        .collect()
}

fn body(e: &Entry, response: bool) -> String {
    let b = if response {
        &e.response_body
    } else {
        &e.request_body
    };
    String::from_utf8(b.as_ref().unwrap().0.clone()).unwrap()
}

#[test]
fn find_and_reply_with_a_cursor() {
    let mut sim = Sim::new(27017);
    let find = doc(&[
        ("find", B::S("orders")),
        ("filter", B::Doc(doc(&[("status", B::S("A"))]))),
        ("limit", B::I(2)),
        ("$db", B::S("shop")),
    ]);
    let batch = array(vec![
        doc(&[("_id", B::Oid([1; 12])), ("qty", B::I(5))]),
        doc(&[("_id", B::Oid([2; 12])), ("qty", B::L(7))]),
    ]);
    let reply = doc(&[
        (
            "cursor",
            B::Doc(doc(&[
                ("firstBatch", B::Arr(batch)),
                ("id", B::L(0)),
                ("ns", B::S("shop.orders")),
            ])),
        ),
        ("ok", B::D(1.0)),
    ]);
    sim.send(C, &op_msg(1, 0, 0, &find, None))
        .send(S, &op_msg(9, 1, 0, &reply, None));
    assert_eq!(sim.protocol(), Some("mongodb"));
    let e = sim.close();
    check(&e);
    assert_eq!(keys(&e), [(Some("find"), Some("shop.orders"), Some(0))]);
    assert_eq!(e[0].mongodb_command.as_deref(), Some("find"));
    assert_eq!(e[0].mongodb_database.as_deref(), Some("shop"));
    assert_eq!(e[0].mongodb_collection.as_deref(), Some("orders"));
    assert_eq!(e[0].db_rows, Some(2));
    assert_eq!(
        body(&e[0], false),
        r#"{"find":"orders","filter":{"status":"A"},"limit":2,"$db":"shop"}"#
    );
    assert_eq!(
        body(&e[0], true),
        r#"{"cursor":{"firstBatch":[{"_id":{"$oid":"010101010101010101010101"},"qty":5},{"_id":{"$oid":"020202020202020202020202"},"qty":7}],"id":0,"ns":"shop.orders"},"ok":1.0}"#
    );
    assert_eq!(
        e[0].summary.as_deref(),
        Some("find shop.orders → ok, 2 documents")
    );
}

#[test]
fn insert_with_a_document_sequence_and_a_write_error() {
    let mut sim = Sim::new(27017);
    let cmd = doc(&[
        ("insert", B::S("users")),
        ("ordered", B::Bool(true)),
        ("$db", B::S("app")),
    ]);
    let docs = vec![doc(&[("_id", B::I(1))]), doc(&[("_id", B::I(1))])];
    let werr = array(vec![doc(&[
        ("index", B::I(1)),
        ("code", B::I(11000)),
        (
            "errmsg",
            B::S(
                "E11000 duplicate key error collection: app.users index: _id_ dup key: { _id: 1 }",
            ),
        ),
    ])]);
    let reply = doc(&[
        ("n", B::I(1)),
        ("writeErrors", B::Arr(werr)),
        ("ok", B::D(1.0)),
    ]);
    sim.send(C, &op_msg(5, 0, 0, &cmd, Some(("documents", docs))))
        .send(S, &op_msg(6, 5, 0, &reply, None));
    let e = sim.close();
    check(&e);
    assert_eq!(keys(&e), [(Some("insert"), Some("app.users"), Some(11000))]);
    assert!(
        e[0].db_error
            .as_deref()
            .unwrap()
            .starts_with("11000: E11000 duplicate key")
    );
    assert_eq!(
        body(&e[0], false),
        r#"{"insert":"users","ordered":true,"$db":"app","documents":[{"_id":1},{"_id":1}]}"#
    );
}

#[test]
fn command_error() {
    let mut sim = Sim::new(27017);
    let cmd = doc(&[
        ("aggregate", B::S("c")),
        ("pipeline", B::Arr(doc(&[]))),
        ("$db", B::S("d")),
    ]);
    let reply = doc(&[
        ("ok", B::D(0.0)),
        ("errmsg", B::S("Unrecognized pipeline stage name: '$bogus'")),
        ("code", B::I(40324)),
        ("codeName", B::S("Location40324")),
    ]);
    sim.send(C, &op_msg(1, 0, 0, &cmd, None))
        .send(S, &op_msg(2, 1, 0, &reply, None));
    let e = sim.close();
    assert_eq!(keys(&e), [(Some("aggregate"), Some("d.c"), Some(40324))]);
    assert_eq!(
        e[0].summary.as_deref(),
        Some("aggregate d.c → error 40324 Unrecognized pipeline stage name: '$bogus'")
    );
}

#[test]
fn more_to_come_and_exhaust() {
    let mut sim = Sim::new(27017);
    // A write without acknowledgment: no reply.
    let w = doc(&[
        ("insert", B::S("logs")),
        ("writeConcern", B::Doc(doc(&[("w", B::I(0))]))),
        ("$db", B::S("d")),
    ]);
    sim.send(C, &op_msg(1, 0, wire::MORE_TO_COME, &w, None));
    let e = sim.entries();
    assert_eq!(keys(&e), [(Some("insert"), Some("d.logs"), None)]);
    assert!(!e[0].incomplete);
    // An exhaust getMore: two replies, the second answering the first.
    let gm = doc(&[
        ("getMore", B::L(77)),
        ("collection", B::S("events")),
        ("$db", B::S("d")),
    ]);
    let batch = |n: i32| {
        doc(&[
            (
                "cursor",
                B::Doc(doc(&[
                    ("nextBatch", B::Arr(array(vec![doc(&[("n", B::I(n))])]))),
                    ("id", B::L(77)),
                ])),
            ),
            ("ok", B::D(1.0)),
        ])
    };
    sim.send(C, &op_msg(2, 0, wire::EXHAUST_ALLOWED, &gm, None))
        .send(S, &op_msg(10, 2, wire::MORE_TO_COME, &batch(1), None))
        .send(S, &op_msg(11, 10, 0, &batch(2), None));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("getMore"), Some("d.events"), Some(0)),
            (Some("getMore"), Some("d.events"), Some(0)),
        ]
    );
    assert!(e[0].summary.as_deref().unwrap().ends_with("(more to come)"));
}

#[test]
fn legacy_op_query_and_op_reply() {
    let mut sim = Sim::new(27017);
    let mut q = 0i32.to_le_bytes().to_vec();
    q.extend_from_slice(b"admin.$cmd\0");
    q.extend_from_slice(&0i32.to_le_bytes());
    q.extend_from_slice(&(-1i32).to_le_bytes());
    q.extend(doc(&[
        ("isMaster", B::I(1)),
        ("client", B::Doc(doc(&[("driver", B::S("pymongo"))]))),
    ]));
    let mut r = 8i32.to_le_bytes().to_vec();
    r.extend_from_slice(&0i64.to_le_bytes());
    r.extend_from_slice(&0i32.to_le_bytes());
    r.extend_from_slice(&1i32.to_le_bytes());
    r.extend(doc(&[
        ("ismaster", B::Bool(true)),
        ("maxWireVersion", B::I(17)),
        ("ok", B::D(1.0)),
    ]));
    sim.send(C, &message(3, 0, wire::OP_QUERY, &q))
        .send(S, &message(4, 3, wire::OP_REPLY, &r));
    let e = sim.close();
    check(&e);
    assert_eq!(keys(&e), [(Some("isMaster"), Some("admin"), Some(0))]);
    assert_eq!(e[0].db_rows, Some(1));
}

fn snappy_literal(data: &[u8]) -> Vec<u8> {
    // Preamble (length), then one literal of all of it.
    let mut v = Vec::new();
    let mut n = data.len();
    loop {
        let x = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            v.push(x);
            break;
        }
        v.push(x | 0x80);
    }
    let l = data.len() - 1;
    if l < 60 {
        v.push((l as u8) << 2);
    } else {
        v.push(61 << 2);
        v.extend_from_slice(&(l as u16).to_le_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn compressed(id: i32, to: i32, inner: &[u8], compressor: u8) -> Vec<u8> {
    let original = &inner[16..];
    let packed = match compressor {
        1 => snappy_literal(original),
        2 => {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(original).unwrap();
            z.finish().unwrap()
        }
        _ => original.to_vec(),
    };
    let mut b = wire::OP_MSG.to_le_bytes().to_vec();
    b.extend_from_slice(&(original.len() as i32).to_le_bytes());
    b.push(compressor);
    b.extend(packed);
    message(id, to, wire::OP_COMPRESSED, &b)
}

#[test]
fn compressed_messages() {
    for compressor in [0u8, 1, 2] {
        let mut sim = Sim::new(27017);
        let cmd = doc(&[("count", B::S("things")), ("$db", B::S("d"))]);
        let reply = doc(&[("n", B::I(42)), ("ok", B::D(1.0))]);
        sim.send(
            C,
            &compressed(1, 0, &op_msg(1, 0, 0, &cmd, None), compressor),
        )
        .send(
            S,
            &compressed(2, 1, &op_msg(2, 1, 0, &reply, None), compressor),
        );
        let e = sim.close();
        check(&e);
        assert_eq!(
            keys(&e),
            [(Some("count"), Some("d.things"), Some(0))],
            "compressor {compressor}"
        );
        assert_eq!(e[0].db_rows, Some(42));
    }
    // zstd is not read, and says so.
    let mut sim = Sim::new(27017);
    let mut b = wire::OP_MSG.to_le_bytes().to_vec();
    b.extend_from_slice(&100i32.to_le_bytes());
    b.push(3);
    b.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]);
    sim.send(C, &message(1, 0, wire::OP_COMPRESSED, &b));
    let e = sim.close();
    assert!(e[0].method.as_deref().unwrap().contains("zstd, not read"));
}

#[test]
fn bson_types_as_extended_json() {
    let d = doc(&[
        ("d", B::D(1.5)),
        ("nan", B::D(f64::NAN)),
        ("s", B::S("a\"b\n")),
        ("bin", B::Bin(4, &[0xfb, 0xff, 0x01])),
        ("t", B::Bool(false)),
        ("date", B::Date(1_700_000_000_123)),
        ("old", B::Date(-1)),
        ("null", B::Null),
        ("re", B::Re("^a.*", "i")),
        ("ts", B::Ts(1700000000, 3)),
        ("dec", B::Dec(0x3040_0000_0000_0000_0000_0000_0000_3039)),
        ("arr", B::Arr(doc(&[("0", B::I(1)), ("1", B::S("x"))]))),
    ]);
    let (d, _) = Doc::parse(&d).unwrap();
    assert!(d.well_formed());
    let mut j = Json::new(4096);
    j.doc(&d, &[]);
    assert!(!j.cut);
    assert_eq!(
        j.out,
        concat!(
            r#"{"d":1.5,"nan":{"$numberDouble":"NaN"},"s":"a\"b\n","#,
            r#""bin":{"$binary":{"base64":"+/8B","subType":"04"}},"t":false,"#,
            r#""date":{"$date":"2023-11-14T22:13:20.123Z"},"old":{"$date":{"$numberLong":"-1"}},"null":null,"#,
            r#""re":{"$regularExpression":{"pattern":"^a.*","options":"i"}},"#,
            r#""ts":{"$timestamp":{"t":1700000000,"i":3}},"dec":{"$numberDecimal":"12345"},"arr":[1,"x"]}"#
        )
    );
}

#[test]
fn decimal128_strings() {
    let d = |exp: i64, coef: u128, neg: bool| {
        let mut v = (((exp + 6176) as u128) << 113) | coef;
        if neg {
            v |= 1 << 127;
        }
        bson::decimal128(v)
    };
    assert_eq!(d(0, 0, false), "0");
    assert_eq!(d(-2, 12345, false), "123.45");
    assert_eq!(d(-7, 1, true), "-1E-7");
    assert_eq!(d(-6, 1, false), "0.000001");
    assert_eq!(d(3, 15, false), "1.5E+4");
    assert_eq!(
        bson::decimal128(0x7C00_0000_0000_0000_0000_0000_0000_0000),
        "NaN"
    );
    assert_eq!(
        bson::decimal128(0xF800_0000_0000_0000_0000_0000_0000_0000),
        "-Infinity"
    );
}

#[test]
fn json_is_capped_and_stays_valid() {
    let big: Vec<Vec<u8>> = (0..200)
        .map(|i| doc(&[("i", B::I(i)), ("pad", B::S("xxxxxxxxxxxxxxxxxxxx"))]))
        .collect();
    let d = doc(&[("insert", B::S("c")), ("documents", B::Arr(array(big)))]);
    let (d, _) = Doc::parse(&d).unwrap();
    let mut j = Json::new(300);
    j.doc(&d, &[]);
    assert!(j.cut);
    assert!(j.out.len() < 400);
    // Brackets balance.
    let opens = j.out.matches(['{', '[']).count();
    let closes = j.out.matches(['}', ']']).count();
    assert_eq!(opens, closes, "{}", j.out);
    // Deep nesting is cut at the depth limit.
    let mut deep = doc(&[("x", B::I(1))]);
    for _ in 0..100 {
        deep = doc(&[("a", B::Doc(deep))]);
    }
    let (d, _) = Doc::parse(&deep).unwrap();
    let mut j = Json::new(1 << 20);
    j.doc(&d, &[]);
    assert!(j.cut && j.out.contains("nested too deep"));
}

#[test]
fn cut_message_keeps_what_it_has() {
    let limits = crate::Limits {
        max_body_bytes: 64,
        ..crate::Limits::default()
    };
    let mut sim = Sim::with(27017, [false, false], limits);
    let filler = "y".repeat(5000);
    let cmd = doc(&[
        ("insert", B::S("c")),
        ("$db", B::S("d")),
        ("note", B::S(&filler)),
    ]);
    let m = op_msg(1, 0, 0, &cmd, None);
    sim.send_in(C, &m, 1000).send(
        S,
        &op_msg(2, 1, 0, &doc(&[("n", B::I(1)), ("ok", B::D(1.0))]), None),
    );
    let e = sim.close();
    assert_eq!(keys(&e), [(Some("insert"), Some("d.c"), Some(0))]);
    assert!(e[0].flags.contains(Flags::REQUEST_BODY_TRUNCATED));
    assert!(e[0].request_body.as_ref().unwrap().0.len() <= 64 + 16);
}

#[test]
fn loss_and_replies_without_requests() {
    let mut sim = Sim::midstream(27017);
    let ping = doc(&[("ping", B::I(1)), ("$db", B::S("admin"))]);
    let ok = doc(&[("ok", B::D(1.0))]);
    // A reply to a request before the capture, then a pair.
    sim.send(S, &op_msg(50, 49, 0, &ok, None))
        .send(C, &op_msg(51, 0, 0, &ping, None))
        .send(S, &op_msg(52, 51, 0, &ok, None));
    // A request whose reply is lost.
    let m = op_msg(53, 0, 0, &ping, None);
    sim.send(C, &m).lose(S, 40);
    sim.send(C, &op_msg(55, 0, 0, &ping, None))
        .send(S, &op_msg(56, 55, 0, &ok, None));
    let e = sim.close();
    check(&e);
    assert!(e[0].flags.contains(Flags::NO_REQUEST));
    assert_eq!(keys(&e)[1], (Some("ping"), Some("admin"), Some(0)));
    assert_eq!(keys(&e)[2], (Some("ping"), Some("admin"), Some(0)));
    assert!(e[3].flags.contains(Flags::NO_RESPONSE));
}

#[test]
fn probe() {
    let ctx = Sim::new(27017).ctx;
    let mid = Sim::midstream(27017).ctx;
    let hello = op_msg(
        1,
        0,
        0,
        &doc(&[("hello", B::I(1)), ("$db", B::S("admin"))]),
        None,
    );
    assert_eq!(super::probe(&ctx, C, &hello), Probe::Client(C));
    assert_eq!(super::probe(&ctx, C, &hello[..10]), Probe::NotYet);
    assert_eq!(super::probe(&ctx, C, b"GET / HTTP/1.1\r\n\r\n"), Probe::No);
    let reply = op_msg(2, 1, 0, &doc(&[("ok", B::D(1.0))]), None);
    assert_eq!(super::probe(&ctx, S, &reply), Probe::No);
    assert_eq!(super::probe(&mid, S, &reply), Probe::Client(C));
}

/// Brackets outside strings balance, and strings are closed.
fn balanced(json: &str) -> bool {
    let mut stack = Vec::new();
    let (mut in_str, mut esc) = (false, false);
    for c in json.chars() {
        match (in_str, esc, c) {
            (true, true, _) => esc = false,
            (true, false, '\\') => esc = true,
            (true, false, '"') | (false, _, '"') => in_str = !in_str,
            (false, _, '{' | '[') => stack.push(c),
            (false, _, '}') if stack.pop() != Some('{') => return false,
            (false, _, ']') if stack.pop() != Some('[') => return false,
            _ => {}
        }
    }
    stack.is_empty() && !in_str
}

#[test]
fn doubles_stay_short() {
    // Found by the mongodb fuzzer: a subnormal double was written with all its
    // digits (`-0.000…0004345847379897`, 330 bytes), past the body limit.
    let d = doc(&[
        ("tiny", B::D(-4.345847379897e-311)),
        ("huge", B::D(1e300)),
        ("small", B::D(0.000123)),
        ("big", B::D(123456789012345680.0)),
        ("int", B::D(3.0)),
    ]);
    let (d, _) = Doc::parse(&d).unwrap();
    let mut j = Json::new(4096);
    j.doc(&d, &[]);
    assert_eq!(
        j.out,
        r#"{"tiny":-4.345847379897e-311,"huge":1e300,"small":0.000123,"big":123456789012345680,"int":3.0}"#
    );
}

#[test]
fn json_never_passes_its_limit() {
    // Found by the mongodb fuzzer: a double was one way for a single value to take
    // the body past its limit (`doubles_stay_short`); none may, whatever its kind,
    // depth or escaping.
    let long = "k".repeat(300);
    let ctl = "\u{1}".repeat(100);
    let mut deep = doc(&[("s", B::S(&long)), ("d", B::D(5e-324))]);
    for _ in 0..8 {
        deep = doc(&[("a", B::I(1)), ("n", B::Doc(deep))]);
    }
    let d = doc(&[
        ("find", B::S("c")),
        (&long[..100], B::I(1)),
        ("ctl", B::S(&ctl)),
        ("re", B::Re(&long, "imsx")),
        ("bin", B::Bin(0, long.as_bytes())),
        ("deep", B::Doc(deep)),
        ("date", B::Date(1_700_000_000_123)),
        ("dec", B::Dec(0x3040_0000_0000_0000_0000_0000_0000_3039)),
    ]);
    let (d, _) = Doc::parse(&d).unwrap();
    let seq = [doc(&[("x", B::S(&long))]), doc(&[("y", B::I(2))])];
    let seq: Vec<Doc<'_>> = seq.iter().map(|b| Doc::parse(b).unwrap().0).collect();
    let extra = [(&b"documents"[..], seq)];
    let mut whole = Json::new(1 << 20);
    whole.doc(&d, &extra);
    assert!(!whole.cut && balanced(&whole.out), "{}", whole.out);
    for max in 0..whole.out.len() + 8 {
        let mut j = Json::new(max);
        j.doc(&d, &extra);
        assert!(j.out.len() <= max.max(2), "{max}: {}", j.out);
        assert!(balanced(&j.out), "{max}: {}", j.out);
        assert_eq!(j.cut, max < whole.out.len(), "{max}: {}", j.out);
    }
    // A long string still shows its start.
    let mut j = Json::new(40);
    j.doc(&d, &extra);
    assert_eq!(j.out, r#"{"find":"c","kkkkkkkkkkkkkkkkkkkk…":1}"#);
    // And a long key leaves its value room.
    let d = doc(&[(&long, B::I(1))]);
    let (d, _) = Doc::parse(&d).unwrap();
    let mut j = Json::new(1 << 20);
    j.doc(&d, &[]);
    assert!(
        j.cut && j.out.ends_with("kk…\":1}") && j.out.len() < 140,
        "{}",
        j.out
    );
}

#[test]
fn op_msg_sequence_size_in_the_checksum() {
    // Found by the mongodb fuzzer: with checksumPresent, a kind-1 section whose size
    // field lies in the trailing CRC-32C was read from it, and the section was then
    // sliced from after its size field to the checksum (start past end).
    let body = [0x43, 0x43, 0x43, 0x43, 1, 0, 0, 4, 0x43];
    let m = wire::op_msg(&body);
    assert!(m.broken);
    assert!(m.body.is_none() && m.sequences.is_empty());

    // A whole message with a checksum: the sections end before it.
    let cmd = doc(&[("insert", B::S("c")), ("$db", B::S("d"))]);
    let docs = vec![doc(&[("x", B::I(1))]), doc(&[("x", B::I(2))])];
    let mut b = op_msg(
        1,
        0,
        wire::CHECKSUM_PRESENT,
        &cmd,
        Some(("documents", docs)),
    );
    b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let m = wire::op_msg(&b[16..]);
    assert!(!m.broken);
    assert_eq!(m.sequences.len(), 1);
    assert_eq!(m.sequences[0].0, b"documents");
    assert_eq!(m.sequences[0].1.len(), 2);
}

proptest! {
    #[test]
    fn random_documents_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400), max in 1usize..2000) {
        if let Some((d, _)) = Doc::parse(&b) {
            let mut j = Json::new(max);
            j.doc(&d, &[]);
            let _ = d.well_formed();
        }
        let _ = wire::op_msg(&b);
        let _ = wire::snappy(&b, 4096);
        let _ = wire::op_compressed(&b);
    }

    #[test]
    fn random_streams_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600),
                                  b in proptest::collection::vec(any::<u8>(), 0..600),
                                  cut in 1usize..64) {
        let mut sim = Sim::new(27017);
        sim.send(C, &op_msg(1, 0, 0, &doc(&[("ping", B::I(1))]), None));
        sim.send_in(C, &a, cut).send_in(S, &b, cut).lose(S, 9).send(S, &b).lose(C, 3).send(C, &a);
        check(&sim.close());
    }
}
