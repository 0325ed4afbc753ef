//! TLS handshakes from byte streams: a real ClientHello/ServerHello pair (curl to
//! enabled.tls13.com, from tls_arkime_curl-tls13.pcap), segmentation and record
//! fragmentation, missing answers, HelloRetryRequest, oversized hellos, detection.

use proptest::prelude::*;
use reef_reassembly::Dir;
use reef_schema::{Flags, Protocol};

use super::hello::{self, ClientHello};
use super::{MAX_HELLO_BYTES, probe};
use crate::framing::sim::Sim;
use crate::{Limits, Probe};

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

/// Frame 8 of tls_arkime_curl-tls13.pcap: the TCP payload, one record with the
/// ClientHello.
const CURL_CH: &[&str] = &[
    "1603010200010001fc0303896833458d7827917b0deb0813ebd3ebf3bc731018ee722dc10e502eb72f9fbd20002ec375",
    "729614262a240f08055b7ef2a11799c7f032a7f5838890823f079bfc000813021303130100ff010001ab000000160014",
    "000011656e61626c65642e746c7331332e636f6d000b000403000102000a000c000a001d0017001e0019001833740000",
    "0010000e000c02683208687474702f312e31001600000017000000310000000d001e001c040305030603080708080809",
    "080a080b080408050806040105010601002b0003020304002d00020101003300260024001d0020a3fde1f9062b99be76",
    "17356eda87a4632172eddfb7c44c4aa418e963a0351f05001500fa000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000000000000000000000000000000000000000000000",
];
/// Frame 10 of the same capture: the record with the ServerHello (the frame goes on
/// with ChangeCipherSpec and encrypted records).
const CURL_SH: &[&str] = &[
    "160303007a020000760303b8c9880b726331dc722a062c3c9cfaef3b92519103ee6c82c95c35feafeaea6f20002ec375",
    "729614262a240f08055b7ef2a11799c7f032a7f5838890823f079bfc130200002e00330024001d00207638c3d535c815",
    "2369bd8562a94abcf77c8aadd9017d96529ba6c6aa8cf2810b002b00020304",
];

fn unhex(parts: &[&str]) -> Vec<u8> {
    let s: String = parts.concat();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The shared test connection, its client on port 50000.
fn new_sim() -> Sim {
    let mut s = Sim::new(443);
    s.ctx.endpoints[0].port = 50000;
    s
}

/// A record of `typ` carrying `payload`.
fn record(typ: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![typ, 3, 3];
    r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

/// A handshake message.
fn handshake(typ: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len() as u32;
    let mut m = vec![typ, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    m.extend_from_slice(body);
    m
}

fn ext(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut e = typ.to_be_bytes().to_vec();
    e.extend_from_slice(&(data.len() as u16).to_be_bytes());
    e.extend_from_slice(data);
    e
}

fn sni_ext(name: &str) -> Vec<u8> {
    let mut d = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    d.push(0);
    d.extend_from_slice(&(name.len() as u16).to_be_bytes());
    d.extend_from_slice(name.as_bytes());
    ext(0, &d)
}

/// A ClientHello body: TLS 1.2 legacy version, `ciphers`, then `exts` as given.
fn ch_body(ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.push(0); // session id
    b.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
    for c in ciphers {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]); // compression: null
    let e: Vec<u8> = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend_from_slice(&e);
    b
}

/// A ServerHello body with `random`, `cipher` and `exts`.
fn sh_body(random: [u8; 32], cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&random);
    b.push(0);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    let e: Vec<u8> = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend_from_slice(&e);
    b
}

const CCS: &[u8] = &[20, 3, 3, 0, 1, 1];

fn curl_ch_body() -> Vec<u8> {
    unhex(CURL_CH)[9..].to_vec()
}

#[test]
fn curl_client_hello_fields_and_fingerprints() {
    let h: ClientHello = hello::client_hello(&curl_ch_body());
    assert!(!h.truncated);
    assert_eq!(h.sni.as_deref(), Some("enabled.tls13.com"));
    assert_eq!(h.alpn, ["h2", "http/1.1"]);
    assert_eq!(h.supported_versions, [0x0304]);
    assert_eq!(h.cipher_suites, [0x1302, 0x1303, 0x1301, 0x00ff]);
    // tshark 4.0 (tls.handshake.ja3_full and tls.handshake.ja3) on frame 8.
    assert_eq!(
        hello::ja3_string(&h),
        "771,4866-4867-4865-255,0-11-10-13172-16-22-23-49-13-43-45-51-21,29-23-30-25-24,0-1-2"
    );
    assert_eq!(hello::ja3(&h), "eeadfd2f446a45ded96f804720a0c75b");
    // Computed independently by a short Python script (hashlib) from tshark's fields
    // of frame 8 (cipher suites, extension types, signature algorithms, ALPN,
    // supported versions), following the FoxIO JA4 spec.
    assert_eq!(hello::ja4(&h), "t13d0413h2_16476d049b0b_ffceb19bae65");
}

#[test]
fn ja4_hashes_follow_the_foxio_example() {
    // The FoxIO JA4 README's example ClientHello (Chrome): 15 ciphers and 16
    // extensions besides the GREASE ones, SNI and ALPN h2; its JA4_b is 8daaf6152771
    // and JA4_c e5627efa2ab1.
    let ciphers = [
        0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let sigs: Vec<u8> = [
        0x0403u16, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ]
    .iter()
    .flat_map(|s| s.to_be_bytes())
    .collect();
    let mut sig_ext = ((sigs.len()) as u16).to_be_bytes().to_vec();
    sig_ext.extend_from_slice(&sigs);
    let mut exts = vec![ext(0x1a1a, &[]), sni_ext("example.com")];
    for t in [
        0x0005u16, 0x000a, 0x000b, 0x0012, 0x0015, 0x0017, 0x001b, 0x0023, 0x002d, 0x0033, 0x4469,
        0xff01,
    ] {
        exts.push(ext(t, &[]));
    }
    exts.push(ext(0x000d, &sig_ext));
    exts.push(ext(0x0010, &[0, 3, 2, b'h', b'2']));
    exts.push(ext(0x002b, &[4, 0x3a, 0x3a, 3, 4]));
    let h = hello::client_hello(&ch_body(&ciphers, &exts));
    assert_eq!(hello::ja4(&h), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    // GREASE values are left out of JA3 too.
    assert!(hello::ja3_string(&h).starts_with("771,4865-4866-4867-49195-"));
    assert!(
        hello::ja3_string(&h).contains(",0-5-10-11-18-21-23-27-35-45-51-17513-65281-13-16-43,")
    );
}

#[test]
fn grease_values() {
    assert!(hello::is_grease(0x0a0a));
    assert!(hello::is_grease(0xfafa));
    assert!(!hello::is_grease(0x0a1a));
    assert!(!hello::is_grease(0x1301));
}

#[test]
fn ja4_alpn_that_is_not_alphanumeric_is_shown_in_hex() {
    let h = hello::client_hello(&ch_body(&[0x1301], &[ext(0x0010, &[0, 3, 2, 0xab, 0xcd])]));
    assert!(
        hello::ja4(&h).starts_with("t12i0101ad_"),
        "{}",
        hello::ja4(&h)
    );
    let none = hello::client_hello(&ch_body(&[], &[]));
    assert_eq!(hello::ja4(&none), "t12i000000_000000000000_000000000000");
}

#[test]
fn curl_handshake_is_one_entry() {
    let mut sim = new_sim();
    let ch = unhex(CURL_CH);
    let mut sh = unhex(CURL_SH);
    sh.extend_from_slice(CCS);
    sh.extend_from_slice(&record(23, &[0x55; 300]));
    sim.send(C, &ch);
    assert!(sim.entries().is_empty());
    sim.send(S, &sh);
    let e = sim.entries();
    assert_eq!(e.len(), 1, "{e:?}");
    let e = &e[0];
    assert_eq!(e.protocol, Protocol::Tls);
    assert_eq!(e.method.as_deref(), Some("ClientHello"));
    assert_eq!(e.path.as_deref(), Some("enabled.tls13.com"));
    assert_eq!(e.tls_sni.as_deref(), Some("enabled.tls13.com"));
    assert_eq!(e.tls_version.as_deref(), Some("TLS 1.3"));
    assert_eq!(e.tls_cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(
        e.tls_alpn.as_deref(),
        Some(&["h2".to_string(), "http/1.1".into()][..])
    );
    assert_eq!(
        e.tls_ja3.as_deref(),
        Some("eeadfd2f446a45ded96f804720a0c75b")
    );
    assert_eq!(e.request_size, Some(512));
    assert_eq!(e.response_size, Some(122));
    assert_eq!(e.elapsed_time, Some(1000));
    assert!(e.flags.is_empty(), "{:?}", e.flags);
    // Encrypted traffic afterwards is passed over.
    sim.send(C, CCS).send(C, &record(23, &[1; 100]));
    sim.send(S, &record(23, &[2; 5000]));
    assert!(sim.close().is_empty());
}

#[test]
fn hellos_split_anywhere_and_across_records() {
    let ch = unhex(CURL_CH);
    let sh = unhex(CURL_SH);
    let msg = &ch[5..];
    // The ClientHello in three records, sent one byte at a time.
    let mut three = Vec::new();
    for part in [&msg[..3], &msg[3..200], &msg[200..]] {
        three.extend_from_slice(&record(22, part));
    }
    let mut sim = new_sim();
    for b in three.chunks(1) {
        sim.send(C, b);
    }
    sim.send(S, &sh[..50]).send(S, &sh[50..]);
    let e = sim.entries();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].tls_sni.as_deref(), Some("enabled.tls13.com"));
    assert_eq!(
        e[0].tls_ja4.as_deref(),
        Some("t13d0413h2_16476d049b0b_ffceb19bae65")
    );
    assert_eq!(e[0].tls_version.as_deref(), Some("TLS 1.3"));
}

#[test]
fn hello_without_answer_is_flagged() {
    let mut sim = new_sim();
    sim.send(C, &unhex(CURL_CH));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::NO_RESPONSE));
    assert!(e[0].incomplete);
    assert_eq!(e[0].tls_version, None);
    assert_eq!(e[0].tls_sni.as_deref(), Some("enabled.tls13.com"));
}

#[test]
fn hello_without_answer_times_out() {
    let mut sim = new_sim();
    sim.send(C, &unhex(CURL_CH));
    let now = sim.ts + Limits::default().response_timeout_ns / 2;
    assert!(sim.tick(now).is_empty());
    let e = sim.tick(sim.ts + Limits::default().response_timeout_ns + 1);
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::NO_RESPONSE | Flags::TIMEOUT));
    assert!(sim.close().is_empty());
}

#[test]
fn server_hello_alone_is_an_entry_without_request() {
    let mut sim = new_sim();
    // Detection sees the server first: the other side is the client.
    sim.send(S, &unhex(CURL_SH));
    let e = sim.entries();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].method.as_deref(), Some("ServerHello"));
    assert!(e[0].flags.contains(Flags::NO_REQUEST));
    assert_eq!(e[0].src_port, Some(50000));
    assert_eq!(e[0].tls_cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
}

#[test]
fn hello_retry_request_makes_two_entries() {
    let hrr_random = [
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
        0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xc4, 0x7b, 0xd2, 0x33, 0x9c, 0xe2, 0xc8, 0xa8, 0x33,
        0x9e, 0x0c,
    ];
    let versions = ext(0x002b, &[3, 4]);
    let ch = record(
        22,
        &handshake(
            1,
            &ch_body(&[0x1301], &[sni_ext("a.example"), ext(0x002b, &[2, 3, 4])]),
        ),
    );
    let mut sim = new_sim();
    sim.send(C, &ch);
    sim.send(
        S,
        &record(
            22,
            &handshake(
                2,
                &sh_body(hrr_random, 0x1301, std::slice::from_ref(&versions)),
            ),
        ),
    );
    sim.send(S, CCS);
    let first = sim.entries();
    assert_eq!(first.len(), 1);
    assert!(
        first[0]
            .summary
            .as_deref()
            .unwrap()
            .contains("HelloRetryRequest")
    );
    assert_eq!(first[0].tls_version, None);
    sim.send(C, CCS);
    // The server side turned encrypted at its ChangeCipherSpec: the final ServerHello
    // of a real retry comes before it; here the second hello stays unanswered.
    sim.send(C, &ch);
    let e = sim.close();
    assert_eq!(
        e.len(),
        0,
        "the client's bytes after its ChangeCipherSpec are encrypted"
    );

    let mut sim = new_sim();
    sim.send(C, &ch);
    sim.send(
        S,
        &record(
            22,
            &handshake(
                2,
                &sh_body(hrr_random, 0x1301, std::slice::from_ref(&versions)),
            ),
        ),
    );
    sim.send(C, &ch);
    sim.send(
        S,
        &record(22, &handshake(2, &sh_body([9; 32], 0x1301, &[versions]))),
    );
    let e = sim.entries();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].tls_version.as_deref(), Some("TLS 1.3"));
    assert!(e.iter().all(|e| e.tls_sni.as_deref() == Some("a.example")));
}

#[test]
fn huge_client_hello_is_read_up_to_the_limit() {
    let padding = vec![0u8; MAX_HELLO_BYTES + 5000];
    let body = ch_body(
        &[0x1301, 0x1302],
        &[sni_ext("big.example"), ext(0x0015, &padding)],
    );
    let msg = handshake(1, &body);
    let mut sim = new_sim();
    for part in msg.chunks(16_000) {
        sim.send(C, &record(22, part));
    }
    sim.send(S, &unhex(CURL_SH));
    let e = sim.entries();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].tls_sni.as_deref(), Some("big.example"));
    assert!(e[0].flags.contains(Flags::HEAD_TOO_LARGE));
    assert_eq!(e[0].request_size, Some(msg.len() as u64));
    assert_eq!(e[0].tls_version.as_deref(), Some("TLS 1.3"));
}

#[test]
fn a_gap_in_the_client_hello_reads_what_came() {
    let ch = unhex(CURL_CH);
    let mut sim = new_sim();
    sim.send(C, &ch[..100]).lose(C, (ch.len() - 100) as u64);
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::REQUEST_GAP | Flags::NO_RESPONSE));
    assert_eq!(e[0].tls_sni, None, "the SNI was in the lost bytes");
}

#[test]
fn detection() {
    let ctx = new_sim().ctx;
    let ch = unhex(CURL_CH);
    assert_eq!(probe(&ctx, C, &ch), Probe::Client(C));
    assert_eq!(probe(&ctx, S, &unhex(CURL_SH)), Probe::Client(C));
    for n in 0..10 {
        assert_eq!(probe(&ctx, C, &ch[..n]), Probe::NotYet, "{n} bytes");
    }
    assert_eq!(probe(&ctx, C, b"GET / HTTP/1.1\r\n"), Probe::No);
    assert_eq!(probe(&ctx, C, &record(23, &[0; 40])), Probe::No);
    assert_eq!(
        probe(&ctx, C, &record(22, &handshake(11, &[0; 40]))),
        Probe::No
    );
}

#[test]
fn garbage_after_the_hello_is_flagged_not_fatal() {
    let mut sim = new_sim();
    let mut ch = unhex(CURL_CH);
    ch.extend_from_slice(b"\xff\xff\xff\xff\xff garbage");
    sim.send(C, &ch);
    sim.send(S, &unhex(CURL_SH));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].tls_version.as_deref(), Some("TLS 1.3"));
}

proptest! {
    #[test]
    fn any_segmentation_gives_the_same_entry(cuts in proptest::collection::vec(1usize..600, 0..6)) {
        let ch = unhex(CURL_CH);
        let mut sim = new_sim();
        let mut at = 0;
        for c in cuts {
            let end = (at + c).min(ch.len());
            sim.send(C, &ch[at..end]);
            at = end;
        }
        sim.send(C, &ch[at..]);
        sim.send(S, &unhex(CURL_SH));
        let e = sim.close();
        prop_assert_eq!(e.len(), 1);
        prop_assert_eq!(e[0].tls_ja4.as_deref(), Some("t13d0413h2_16476d049b0b_ffceb19bae65"));
        prop_assert!(e[0].flags.is_empty());
    }

    #[test]
    fn arbitrary_hello_bodies_do_not_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let h = hello::client_hello(&body);
        let _ = (hello::ja3(&h), hello::ja4(&h));
        let s = hello::server_hello(&body);
        let _ = hello::cipher_name(s.cipher_suite);
        let mut sim = new_sim();
        sim.send(C, &record(22, &handshake(1, &body)));
        sim.send(S, &record(22, &handshake(2, &body)));
        sim.send(S, &body);
        let e = sim.close();
        prop_assert!(e.len() <= 2);
    }
}
