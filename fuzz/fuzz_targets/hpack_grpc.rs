//! The pure parsers under HTTP/2 and gRPC on fuzzer-chosen bytes: HPACK blocks through
//! one decoder (known or unknown state, any table limit), Huffman strings, frame
//! boundary search, gRPC message framing and the schema-less protobuf walk. Must never
//! panic; limits must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::grpc::{Framer, protobuf};
use reef_dissect::http2::{frame, hpack};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut d = if mode & 1 == 0 { hpack::Decoder::new() } else { hpack::Decoder::unknown() };
    d.set_limit(usize::from(mode >> 1) * 64);
    // Blocks: a length byte, then that many bytes.
    let mut p = rest;
    while let Some((&n, tail)) = p.split_first() {
        let n = usize::from(n).min(tail.len());
        let block = &tail[..n];
        let b = d.decode(block, 300);
        assert!(b.fields.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() <= 300);
        let _ = hpack::first_field_sender(block);
        let mut s = Vec::new();
        let _ = hpack::huffman::decode(block, &mut s);
        assert!(s.len() <= block.len() * 8 / 5 + 1);
        p = &tail[n..];
    }
    let _ = frame::find_frame_start(rest, 0, frame::DEFAULT_MAX_FRAME);
    let mut f = Framer::default();
    for piece in rest.chunks(7) {
        f.push(piece);
        if piece.first() == Some(&0) {
            f.gap(u64::from(piece.len() as u8));
        }
    }
    let mut out = String::new();
    protobuf::render(rest, &mut out);
});
