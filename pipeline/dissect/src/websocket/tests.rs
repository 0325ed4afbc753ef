//! WebSocket messages from byte streams: the upgrade through HTTP/1, masking,
//! fragmentation with control frames between fragments, permessage-deflate with and
//! without context takeover, the payload limit, gaps, garbage and segmentation.

use std::io::Write;

use flate2::{Compress, Compression, FlushCompress};
use proptest::prelude::*;
use reef_reassembly::Dir;
use reef_schema::{Entry, Flags, Protocol};

use super::Deflate;
use super::frame::{self, Parsed};
use crate::Limits;
use crate::framing::sim::Sim;

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

/// The shared test connection, its client on port 50000.
fn new_sim() -> Sim {
    let mut s = Sim::new(80);
    s.ctx.endpoints[0].port = 50000;
    s
}

const REQUEST: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn response(extensions: Option<&str>) -> Vec<u8> {
    let mut r =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            .to_vec();
    if let Some(x) = extensions {
        write!(r, "Sec-WebSocket-Extensions: {x}\r\n").unwrap();
    }
    r.extend_from_slice(b"\r\n");
    r
}

/// A frame: `first` is FIN, RSV and opcode; masked with `key` when given.
fn frame(first: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![first];
    let m = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n < 65536 => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mut p = payload.to_vec();
    if let Some(k) = key {
        f.extend_from_slice(&k);
        frame::unmask(&mut p, k, 0);
    }
    f.extend_from_slice(&p);
    f
}

const KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// A session upgraded to WebSocket; returns the upgrade entry.
fn upgraded(sim: &mut Sim, extensions: Option<&str>) -> Entry {
    sim.send(C, REQUEST).send(S, &response(extensions));
    let e = sim.entries();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::UPGRADE));
    e.into_iter().next().unwrap()
}

fn messages(e: &[Entry]) -> Vec<(&str, bool, Vec<u8>)> {
    e.iter()
        .map(|e| {
            assert_eq!(e.protocol, Protocol::Websocket);
            assert_eq!(e.method, e.ws_opcode);
            let from_client = e.request_size.is_some();
            let body = if from_client {
                &e.request_body
            } else {
                &e.response_body
            };
            (
                e.method.as_deref().unwrap(),
                from_client,
                body.as_ref().map(|b| b.0.clone()).unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn text_messages_both_ways_belong_to_the_upgrade() {
    let mut sim = new_sim();
    let up = upgraded(&mut sim, None);
    sim.send(C, &frame(0x81, b"Hello", KEY));
    sim.send(S, &frame(0x81, b"Hello", None));
    let e = sim.entries();
    assert_eq!(
        messages(&e),
        [
            ("text", true, b"Hello".to_vec()),
            ("text", false, b"Hello".to_vec())
        ]
    );
    for m in &e {
        assert_eq!(m.parent_id.as_deref(), Some(up.id.as_str()));
        assert_eq!(m.path.as_deref(), Some("/chat?room=1"));
        assert_eq!(m.src_port, Some(50000));
        assert!(m.flags.is_empty());
    }
    assert_eq!(e[0].request_size, Some(2 + 4 + 5));
    assert_eq!(e[0].request_body_size, Some(5));
    assert_eq!(e[1].response_size, Some(2 + 5));
    assert_eq!(
        e[0].summary.as_deref(),
        Some("text (client → server), 5 bytes: Hello")
    );
    assert!(sim.close().is_empty());
}

#[test]
fn frames_in_the_same_segment_as_the_101() {
    let mut sim = new_sim();
    sim.send(C, REQUEST);
    let mut r = response(None);
    r.extend_from_slice(&frame(0x82, &[1, 2, 3], None));
    r.extend_from_slice(&frame(0x89, b"", None));
    sim.send(S, &r);
    let e = sim.entries();
    assert_eq!(e.len(), 3);
    assert_eq!(
        messages(&e[1..]),
        [("binary", false, vec![1, 2, 3]), ("ping", false, vec![])]
    );
    assert_eq!(e[1].parent_id, Some(e[0].id.clone()));
}

#[test]
fn fragments_make_one_message_with_control_frames_between() {
    let mut sim = new_sim();
    upgraded(&mut sim, None);
    sim.send(C, &frame(0x01, b"Hel", KEY));
    sim.send(C, &frame(0x89, b"are you there", KEY));
    sim.send(C, &frame(0x00, b"lo, ", KEY));
    sim.send(S, &frame(0x8a, b"are you there", None));
    sim.send(C, &frame(0x80, b"world", KEY));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    sim.send(C, &frame(0x88, &close, KEY));
    sim.send(S, &frame(0x88, &close, None));
    let e = sim.close();
    assert_eq!(
        messages(&e),
        [
            ("ping", true, b"are you there".to_vec()),
            ("pong", false, b"are you there".to_vec()),
            ("text", true, b"Hello, world".to_vec()),
            ("close", true, close.clone()),
            ("close", false, close.clone()),
        ]
    );
    assert_eq!(e[2].request_size, Some(3 * 6 + 12));
    assert!(e[2].summary.as_deref().unwrap().contains("in 3 frames"));
    assert!(e[3].summary.as_deref().unwrap().ends_with(": 1000 bye"));
    assert!(e.iter().all(|e| e.flags.is_empty()));
}

/// permessage-deflate as a sender does it: raw deflate, sync flush, the 4-byte
/// tail removed (RFC 7692 §7.2.1).
fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn permessage_deflate_with_context_takeover() {
    let mut sim = new_sim();
    upgraded(
        &mut sim,
        Some("permessage-deflate; client_max_window_bits=15"),
    );
    let text = b"the same words again and again and again".as_slice();
    let mut client = Compress::new(Compression::default(), false);
    let mut server = Compress::new(Compression::default(), false);
    let first = deflate(&mut client, text);
    // The second message refers back to the first one's bytes.
    let second = deflate(&mut client, text);
    assert!(second.len() < first.len());
    sim.send(C, &frame(0xc1, &first, KEY));
    sim.send(C, &frame(0xc1, &second, KEY));
    // Compressed, then fragmented: RSV1 on the first frame only.
    let z = deflate(&mut server, text);
    sim.send(S, &frame(0x41, &z[..5], None));
    sim.send(S, &frame(0x80, &z[5..], None));
    // Control frames are never compressed.
    sim.send(S, &frame(0x89, b"p", None));
    let e = sim.entries();
    assert_eq!(
        messages(&e),
        [
            ("text", true, text.to_vec()),
            ("text", true, text.to_vec()),
            ("text", false, text.to_vec()),
            ("ping", false, b"p".to_vec()),
        ]
    );
    assert!(e.iter().all(|e| e.flags.is_empty()), "{e:#?}");
    assert_eq!(e[1].request_body_size, Some(second.len() as u64));
    assert!(e[0].summary.as_deref().unwrap().contains("compressed"));
}

#[test]
fn permessage_deflate_without_context_takeover() {
    let mut sim = new_sim();
    upgraded(
        &mut sim,
        Some("permessage-deflate; server_no_context_takeover"),
    );
    let mut server = Compress::new(Compression::default(), false);
    for word in [b"first".as_slice(), b"second", b"first"] {
        let z = deflate(&mut server, word);
        server.reset();
        sim.send(S, &frame(0xc2, &z, None));
    }
    let e = sim.entries();
    let bodies: Vec<_> = messages(&e).into_iter().map(|m| m.2).collect();
    assert_eq!(
        bodies,
        [b"first".to_vec(), b"second".to_vec(), b"first".to_vec()]
    );
    assert!(e.iter().all(|e| e.flags.is_empty()));
}

#[test]
fn corrupt_compressed_data_is_stored_as_sent() {
    let mut sim = new_sim();
    upgraded(&mut sim, Some("permessage-deflate"));
    sim.send(S, &frame(0xc1, &[0xff; 8], None));
    sim.send(S, &frame(0xc1, b"later", None));
    let e = sim.entries();
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|e| e.flags.contains(Flags::BODY_DECODE_ERROR)));
    assert_eq!(e[1].response_body.as_ref().unwrap().0, b"later");
}

#[test]
fn rsv1_without_negotiation_is_malformed() {
    assert_eq!(Deflate::negotiated("x-webkit-deflate-frame"), None);
    assert_eq!(
        Deflate::negotiated("foo, permessage-deflate; client_no_context_takeover"),
        Some(Deflate {
            client_no_context_takeover: true,
            server_no_context_takeover: false
        })
    );
    let mut sim = new_sim();
    upgraded(&mut sim, None);
    sim.send(S, &frame(0xc1, b"abc", None));
    let e = sim.entries();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::MALFORMED));
    assert_eq!(e[0].response_body.as_ref().unwrap().0, b"abc");
}

#[test]
fn long_payloads_are_cut_at_the_body_limit() {
    let mut sim = new_sim();
    upgraded(&mut sim, None);
    let big = vec![b'x'; Limits::default().max_body_bytes + 1000];
    let f = frame(0x82, &big, KEY);
    for part in f.chunks(1400) {
        sim.send(C, part);
    }
    let e = sim.entries();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::REQUEST_BODY_TRUNCATED));
    assert_eq!(e[0].request_body_size, Some(big.len() as u64));
    assert_eq!(e[0].request_size, Some(f.len() as u64));
    let kept = &e[0].request_body.as_ref().unwrap().0;
    assert_eq!(kept.len(), Limits::default().max_body_bytes);
    assert!(kept.iter().all(|&b| b == b'x'), "unmasked across segments");
}

#[test]
fn a_gap_inside_a_payload_keeps_the_frames_in_step() {
    let mut sim = new_sim();
    upgraded(&mut sim, None);
    let f = frame(0x82, &[7; 1000], None);
    sim.send(S, &f[..100]).lose(S, 500).send(S, &f[600..]);
    sim.send(S, &frame(0x81, b"next", None));
    let e = sim.entries();
    assert_eq!(e.len(), 2);
    assert!(e[0].flags.contains(Flags::RESPONSE_GAP));
    assert!(e[0].incomplete);
    assert_eq!(e[0].response_body_size, Some(1000));
    assert_eq!(messages(&e[1..]), [("text", false, b"next".to_vec())]);
    assert!(e[1].flags.is_empty());
    // A gap across frame boundaries loses them: the message in progress ends there.
    sim.send(S, &f[..10]).lose(S, 5000);
    sim.send(S, &frame(0x81, b"unseen", None));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::RESPONSE_GAP));
}

#[test]
fn invalid_frames_stop_the_direction() {
    let mut sim = new_sim();
    upgraded(&mut sim, None);
    sim.send(C, &frame(0x01, b"part", KEY));
    sim.send(C, &[0x83, 0x00]); // reserved opcode
    sim.send(C, &frame(0x81, b"after", KEY));
    sim.send(S, &frame(0x81, b"server", None));
    let e = sim.close();
    assert_eq!(
        messages(&e),
        [
            ("text", true, b"part".to_vec()),
            ("text", false, b"server".to_vec())
        ]
    );
    assert!(e[0].flags.contains(Flags::MALFORMED));
    assert_eq!(frame::header(&[0x83, 0]), Parsed::Invalid);
}

#[test]
fn a_message_cut_by_the_end_is_truncated() {
    let mut sim = new_sim();
    upgraded(&mut sim, None);
    let f = frame(0x81, b"hello there", None);
    sim.send(S, &f[..6]);
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::TRUNCATED));
    assert!(e[0].incomplete);
}

#[test]
fn header_lengths() {
    let h = |b: &[u8]| match frame::header(b) {
        Parsed::Header(h) => (h.payload_len, h.len, h.mask.is_some()),
        other => panic!("{other:?}"),
    };
    assert_eq!(h(&[0x81, 0x05]), (5, 2, false));
    assert_eq!(h(&[0x81, 0xfe, 0x01, 0x00, 1, 2, 3, 4]), (256, 8, true));
    assert_eq!(h(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]), (65536, 10, false));
    assert_eq!(frame::header(&[0x82, 0x7f, 0, 0]), Parsed::NeedMore);
    assert_eq!(frame::header(&[0x82, 0xfe, 0, 1, 9]), Parsed::NeedMore);
    assert_eq!(
        frame::header(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        Parsed::Invalid
    );
}

proptest! {
    #[test]
    fn any_segmentation_gives_the_same_messages(cuts in proptest::collection::vec(1usize..40, 0..12)) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&frame(0x01, b"Hel", KEY));
        bytes.extend_from_slice(&frame(0x89, b"ping?", KEY));
        bytes.extend_from_slice(&frame(0x80, b"lo", KEY));
        bytes.extend_from_slice(&frame(0x82, &[9; 300], KEY));
        let mut sim = new_sim();
        upgraded(&mut sim, None);
        let mut at = 0;
        for c in cuts {
            let end = (at + c).min(bytes.len());
            sim.send(C, &bytes[at..end]);
            at = end;
        }
        sim.send(C, &bytes[at..]);
        let e = sim.close();
        prop_assert_eq!(
            messages(&e),
            vec![
                ("ping", true, b"ping?".to_vec()),
                ("text", true, b"Hello".to_vec()),
                ("binary", true, vec![9; 300]),
            ]
        );
    }

    #[test]
    fn arbitrary_bytes_do_not_panic(
        a in proptest::collection::vec(any::<u8>(), 0..300),
        b in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut sim = new_sim();
        upgraded(&mut sim, Some("permessage-deflate"));
        sim.send(C, &a).send(S, &b).lose(C, 3).send(C, &b);
        let e = sim.close();
        for x in &e {
            prop_assert_eq!(x.incomplete, x.flags.intersects(Flags::INCOMPLETE));
        }
    }
}
