//! WebSocket on the corpus and on a capture of our own (Python `websockets` on
//! loopback, with permessage-deflate).
//!
//! Each corpus capture is compared with tshark's frames (its truth file): a message
//! is a data frame with its continuations, or a control frame; Reef's messages, in
//! order, must have tshark's opcodes, senders and payload lengths.

#![allow(clippy::unwrap_used)]

use reef_integration::{corpus_file, dissect_file};
use reef_schema::{Entry, Flags, Protocol};

/// (opcode name, sent by the client, payload length) per message.
type Message = (String, bool, u64);

fn opcode(n: u64) -> &'static str {
    match n {
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "other",
    }
}

/// tshark's frames folded into messages. The client is the side that sent the
/// upgrade request.
fn truth(name: &str, client: &str) -> Vec<Message> {
    let p = corpus_file(name).with_extension("truth.json");
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let mut out: Vec<Message> = Vec::new();
    let mut open: Option<usize> = None;
    for f in t["l7"]["websocket"]["frames"].as_array().unwrap() {
        let op = f["opcode"].as_u64().unwrap();
        let len = f["payload_length"].as_u64().unwrap();
        let from_client = f["src"].as_str().unwrap() == client;
        match (op, open) {
            (0, Some(i)) => out[i].2 += len,
            _ => out.push((opcode(op).to_string(), from_client, len)),
        }
        if op < 8 {
            open = (!f["fin"].as_bool().unwrap()).then(|| out.len() - 1);
        }
    }
    out
}

/// The upgrade entry and the messages after it.
fn reef(name: &str) -> (Entry, Vec<Entry>) {
    let entries = dissect_file(&corpus_file(name)).0;
    let up = entries
        .iter()
        .find(|e| e.flags.contains(Flags::UPGRADE))
        .unwrap()
        .clone();
    let ws: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.protocol == Protocol::Websocket)
        .collect();
    for m in &ws {
        assert_eq!(m.parent_id.as_deref(), Some(up.id.as_str()));
        assert_eq!(m.path, up.path);
        assert_eq!(m.method, m.ws_opcode);
        assert!(m.timestamp >= up.timestamp);
    }
    (up, ws)
}

fn messages(ws: &[Entry]) -> Vec<Message> {
    ws.iter()
        .map(|m| {
            let from_client = m.request_size.is_some();
            let len = m.request_body_size.or(m.response_body_size).unwrap();
            (m.method.clone().unwrap(), from_client, len)
        })
        .collect()
}

fn endpoint(e: &Entry) -> String {
    match e.src_ip {
        std::net::IpAddr::V4(ip) => format!("{ip}:{}", e.src_port.unwrap()),
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", e.src_port.unwrap()),
    }
}

fn check(name: &str, count: usize) -> Vec<Entry> {
    let (up, ws) = reef(name);
    let want = truth(name, &endpoint(&up));
    assert_eq!(want.len(), count, "{want:?}");
    assert_eq!(messages(&ws), want);
    ws
}

#[test]
fn arkime_text_chat() {
    let ws = check("websocket_arkime_port12345", 5);
    assert_eq!(
        ws[1].request_body.as_ref().unwrap().0,
        b"test message",
        "unmasked"
    );
    assert!(ws.iter().all(|m| m.flags.is_empty()));
}

#[test]
fn suricata_ping_text_pong() {
    let ws = check("websocket_suricata_ping-sll", 3);
    assert_eq!(ws[1].response_body.as_ref().unwrap().0, b"\"who\"");
}

#[test]
fn zeek_basic_with_closes() {
    let ws = check("websocket_zeek_basic", 9);
    assert_eq!(ws[0].path.as_deref(), Some("/echo?.kl=Y"));
    assert_eq!(ws[5].request_body.as_ref().unwrap().0, b"Hello, WebSocket!");
}

#[test]
fn zeek_broker_json_messages() {
    let ws = check("websocket_zeek_broker-websocket", 9);
    assert_eq!(
        ws[0].request_body.as_ref().unwrap().0,
        b"[\"/zeek/event/my_topic\"]"
    );
    assert!(ws[8].summary.as_deref().unwrap().ends_with(": 1000"));
}

#[test]
fn zeek_two_binary_fragments_are_one_message() {
    // Seven frames: the binary message of two fragments is one entry.
    let ws = check("websocket_zeek_two-binary-fragments", 6);
    assert!(
        ws[3].summary.as_deref().unwrap().contains("in 2 frames"),
        "{:?}",
        ws[3].summary
    );
}

mod running_server {
    use std::net::TcpListener;
    use std::process::Command;
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{SETTLE, python_with, run, unique};

    /// An echo server and a client in one asyncio program: text, binary, a
    /// fragmented message, a ping, and text again (compressed against the first).
    const SCRIPT: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
from websockets.asyncio.client import connect

async def echo(ws):
    async for m in ws:
        await ws.send(m)

async def main(port, path):
    async with serve(echo, "127.0.0.1", port):
        async with connect(f"ws://127.0.0.1:{port}{path}") as ws:
            await ws.send("hello reef " * 20)
            assert await ws.recv() == "hello reef " * 20
            await ws.send(bytes(range(256)))
            assert await ws.recv() == bytes(range(256))
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            await (await ws.ping(b"hi"))
            await ws.send("hello reef " * 20)
            assert await ws.recv() == "hello reef " * 20

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"#;

    #[test]
    fn live_python_websockets_echo() {
        let py = python_with("websockets", "pip install websockets");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = format!("/{}", unique("ws"));
        let cap = LiveCapture::start("lo");
        run(
            Command::new(py).args(["-c", SCRIPT, &port.to_string(), &path]),
            Duration::from_secs(20),
        );
        let (entries, _) = cap.stop(SETTLE);
        let mine: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.dst_port == Some(port))
            .collect();
        let up = mine
            .iter()
            .find(|e| e.protocol == Protocol::Http)
            .expect("the upgrade request");
        assert_eq!(up.status_code, Some(101));
        let ws: Vec<&Entry> = mine
            .iter()
            .filter(|e| e.protocol == Protocol::Websocket)
            .collect();
        let got: Vec<(&str, bool, Vec<u8>)> = ws
            .iter()
            .map(|m| {
                assert_eq!(m.parent_id.as_deref(), Some(up.id.as_str()));
                assert_eq!(m.path.as_deref(), Some(path.as_str()));
                assert!(m.flags.is_empty(), "{:?} {:?}", m.flags, m.summary);
                let from_client = m.request_size.is_some();
                let body = if from_client {
                    &m.request_body
                } else {
                    &m.response_body
                };
                (
                    m.method.as_deref().unwrap(),
                    from_client,
                    body.as_ref().unwrap().0.clone(),
                )
            })
            .collect();
        let text = "hello reef ".repeat(20).into_bytes();
        let bytes: Vec<u8> = (0..=255).collect();
        let close = 1000u16.to_be_bytes().to_vec();
        assert_eq!(
            got,
            [
                ("text", true, text.clone()),
                ("text", false, text.clone()),
                ("binary", true, bytes.clone()),
                ("binary", false, bytes),
                ("text", true, b"fragmented".to_vec()),
                ("text", false, b"fragmented".to_vec()),
                ("ping", true, b"hi".to_vec()),
                ("pong", false, b"hi".to_vec()),
                ("text", true, text.clone()),
                ("text", false, text),
                ("close", true, close.clone()),
                ("close", false, close),
            ]
        );
        // websockets negotiates permessage-deflate: the text went compressed, the
        // second time smaller than the first (the context carries over).
        let compressed = |m: &Entry| m.summary.as_deref().unwrap().contains("compressed");
        assert!(compressed(ws[0]) && compressed(ws[8]));
        assert!(ws[8].request_body_size < ws[0].request_body_size);
        // websockets sends each fragment of an iterable, then an empty final frame.
        let frag = ws[4].summary.as_deref().unwrap();
        assert!(frag.contains("in 3 frames, compressed"), "{frag}");
    }
}
