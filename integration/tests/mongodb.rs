//! MongoDB end to end. No MongoDB server exists on these machines (and none can be
//! installed), and the corpus has no MongoDB capture: the tests are the unit tests
//! built from the wire protocol and BSON specifications
//! (`pipeline/dissect/src/mongodb/tests.rs`) and this one, which writes a capture of
//! such messages (a TCP connection with its handshake, on a port that is not 27017)
//! and reads it through the whole pipeline, as `reef dissect` does.

use etherparse::PacketBuilder;
use reef_integration::dissect_bytes;
use reef_pcap::PcapWriter;
use reef_schema::{Entry, Protocol};

/// Raw IPv4 frames.
const RAW_IP: u16 = 101;
const CLIENT: ([u8; 4], u16) = ([10, 1, 0, 5], 51000);
const SERVER: ([u8; 4], u16) = ([10, 1, 0, 9], 37017);

/// A BSON value for the documents below.
enum V<'a> {
    S(&'a str),
    I(i32),
    D(f64),
    Doc(Vec<u8>),
    Arr(Vec<u8>),
}

fn doc(elems: &[(&str, V<'_>)]) -> Vec<u8> {
    let mut b = vec![0; 4];
    for (k, v) in elems {
        let (t, body) = match v {
            V::S(s) => {
                let mut x = ((s.len() + 1) as i32).to_le_bytes().to_vec();
                x.extend_from_slice(s.as_bytes());
                x.push(0);
                (2u8, x)
            }
            V::I(i) => (0x10, i.to_le_bytes().to_vec()),
            V::D(d) => (1, d.to_le_bytes().to_vec()),
            V::Doc(d) => (3, d.clone()),
            V::Arr(d) => (4, d.clone()),
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

fn op_msg(id: i32, to: i32, body: &[u8], seq: Option<(&str, Vec<Vec<u8>>)>) -> Vec<u8> {
    let mut b = 0u32.to_le_bytes().to_vec();
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
    message(id, to, 2013, &b)
}

fn message(id: i32, to: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut v = ((16 + body.len()) as i32).to_le_bytes().to_vec();
    for x in [id, to, op] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// An OP_COMPRESSED holding `msg` with the noop compressor (zlib and snappy are in
/// the unit tests).
fn compressed(msg: &[u8]) -> Vec<u8> {
    let mut b = 2013i32.to_le_bytes().to_vec();
    b.extend_from_slice(&((msg.len() - 16) as i32).to_le_bytes());
    b.push(0);
    b.extend_from_slice(&msg[16..]);
    let id = i32::from_le_bytes(msg[4..8].try_into().unwrap());
    let to = i32::from_le_bytes(msg[8..12].try_into().unwrap());
    message(id, to, 2012, &b)
}

/// One TCP connection: handshake, the exchanges in order (each message in segments
/// of at most 1448 bytes, acknowledged), then FIN both ways.
fn capture(exchanges: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), RAW_IP, true).unwrap();
    let mut ts = 1_700_000_000_000_000_000i64;
    let (mut cseq, mut sseq) = (1000u32, 9000u32);
    let mut packet =
        |from_client: bool, seq: u32, ack: Option<u32>, flags: &str, data: &[u8], ts: i64| {
            let (a, b) = if from_client {
                (CLIENT, SERVER)
            } else {
                (SERVER, CLIENT)
            };
            let mut p = PacketBuilder::ipv4(a.0, b.0, 64).tcp(a.1, b.1, seq, 65535);
            if let Some(n) = ack {
                p = p.ack(n);
            }
            if flags.contains('S') {
                p = p.syn();
            }
            if flags.contains('F') {
                p = p.fin();
            }
            if flags.contains('P') {
                p = p.psh();
            }
            let mut out = Vec::with_capacity(p.size(data.len()));
            p.write(&mut out, data).unwrap();
            w.write_packet(ts, &out, out.len() as u32).unwrap();
        };
    packet(true, cseq, None, "S", &[], ts);
    packet(false, sseq, Some(cseq + 1), "S", &[], ts + 100_000);
    cseq += 1;
    sseq += 1;
    packet(true, cseq, Some(sseq), "", &[], ts + 200_000);
    for (req, resp) in exchanges {
        ts += 10_000_000;
        for c in req.chunks(1448) {
            packet(true, cseq, Some(sseq), "P", c, ts);
            cseq += c.len() as u32;
            ts += 10_000;
        }
        ts += 2_000_000;
        for c in resp.chunks(1448) {
            packet(false, sseq, Some(cseq), "P", c, ts);
            sseq += c.len() as u32;
            ts += 10_000;
        }
    }
    packet(true, cseq, Some(sseq), "F", &[], ts + 1_000_000);
    packet(false, sseq, Some(cseq + 1), "F", &[], ts + 1_100_000);
    packet(true, cseq + 1, Some(sseq + 1), "", &[], ts + 1_200_000);
    w.into_inner().unwrap()
}

fn key(e: &Entry) -> (&str, Option<&str>, Option<i32>, Option<i64>) {
    (
        e.method.as_deref().unwrap(),
        e.path.as_deref(),
        e.status_code,
        e.db_rows,
    )
}

#[test]
fn a_driver_session_through_the_whole_pipeline() {
    let ok = doc(&[("ok", V::D(1.0))]);
    let hello = doc(&[
        ("hello", V::I(1)),
        (
            "client",
            V::Doc(doc(&[(
                "driver",
                V::Doc(doc(&[("name", V::S("reef-test"))])),
            )])),
        ),
        ("$db", V::S("admin")),
    ]);
    let hello_reply = doc(&[
        ("isWritablePrimary", V::I(1)),
        ("maxWireVersion", V::I(21)),
        ("ok", V::D(1.0)),
    ]);
    let docs: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            doc(&[
                ("_id", V::I(i)),
                ("name", V::S("a name long enough to need segments")),
            ])
        })
        .collect();
    let insert = doc(&[
        ("insert", V::S("users")),
        ("ordered", V::I(1)),
        ("$db", V::S("app")),
    ]);
    let inserted = doc(&[("n", V::I(300)), ("ok", V::D(1.0))]);
    let find = doc(&[
        ("find", V::S("users")),
        ("filter", V::Doc(doc(&[("name", V::S("x"))]))),
        ("$db", V::S("app")),
    ]);
    let batch = doc(&[("0", V::Doc(doc(&[("_id", V::I(7))])))]);
    let found = doc(&[
        (
            "cursor",
            V::Doc(doc(&[("firstBatch", V::Arr(batch)), ("id", V::I(0))])),
        ),
        ("ok", V::D(1.0)),
    ]);
    let bad = doc(&[("drop", V::S("missing")), ("$db", V::S("app"))]);
    let nope = doc(&[
        ("ok", V::D(0.0)),
        ("errmsg", V::S("ns not found")),
        ("code", V::I(26)),
        ("codeName", V::S("NamespaceNotFound")),
    ]);
    let count = doc(&[("count", V::S("users")), ("$db", V::S("app"))]);
    let counted = doc(&[("n", V::I(300)), ("ok", V::D(1.0))]);
    let bytes = capture(&[
        (
            op_msg(1, 0, &hello, None),
            op_msg(100, 1, &hello_reply, None),
        ),
        (
            op_msg(2, 0, &insert, Some(("documents", docs))),
            op_msg(101, 2, &inserted, None),
        ),
        (op_msg(3, 0, &find, None), op_msg(102, 3, &found, None)),
        (op_msg(4, 0, &bad, None), op_msg(103, 4, &nope, None)),
        (
            compressed(&op_msg(5, 0, &count, None)),
            compressed(&op_msg(104, 5, &counted, None)),
        ),
        (
            op_msg(
                6,
                0,
                &doc(&[("ping", V::I(1)), ("$db", V::S("admin"))]),
                None,
            ),
            op_msg(105, 6, &ok, None),
        ),
    ]);
    let (entries, _) = dissect_bytes(&bytes);
    let e: Vec<Entry> = entries
        .into_iter()
        .filter(|x| x.protocol == Protocol::Mongodb)
        .collect();
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("hello", Some("admin"), Some(0), None),
            ("insert", Some("app.users"), Some(0), Some(300)),
            ("find", Some("app.users"), Some(0), Some(1)),
            ("drop", Some("app.missing"), Some(26), None),
            ("count", Some("app.users"), Some(0), Some(300)),
            ("ping", Some("admin"), Some(0), None),
        ]
    );
    assert_eq!(e[3].db_error.as_deref(), Some("26: ns not found"));
    assert_eq!(e[1].mongodb_collection.as_deref(), Some("users"));
    assert_eq!(e[1].src_port, Some(CLIENT.1));
    assert_eq!(e[1].dst_port, Some(SERVER.1));
    // The insert's 300 documents are in its body, cut at the body limit and flagged.
    let body = String::from_utf8(e[1].request_body.as_ref().unwrap().0.clone()).unwrap();
    assert!(
        body.starts_with(r#"{"insert":"users","ordered":1,"$db":"app","documents":[{"_id":0,"#)
    );
    assert!(
        e[1].flags
            .contains(reef_schema::Flags::REQUEST_BODY_TRUNCATED)
            || body.ends_with("]}")
    );
    assert_eq!(
        String::from_utf8(e[2].response_body.as_ref().unwrap().0.clone()).unwrap(),
        r#"{"cursor":{"firstBatch":[{"_id":7}],"id":0},"ok":1.0}"#
    );
    assert!(e.iter().all(|x| !x.incomplete && x.elapsed_time.is_some()));
}
