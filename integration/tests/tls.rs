//! TLS handshakes on the corpus and on a capture of our own (openssl on loopback).
//!
//! `check_truth.py --proto tls` compares Reef's ClientHello entries (keyed by SNI)
//! with tshark's client_hello handshakes. Reef finds every one on connections that
//! are TLS from their first byte. Where the two differ:
//!
//! - **PostgreSQL and MySQL after an accepted SSLRequest** (`pgsql_zeek_aws-ssl-require`,
//!   `mysql_zeek_tls13-amazon-rds`): tshark reads the TLS that follows; Reef's
//!   database dissectors report the switch to TLS and pass over the rest, so these two
//!   hellos are not entries (recall 8/10 over the whole corpus).
//! - **Time of a hello over several segments** (`tls_ndpi_huge-client-hello`, an 11 KB
//!   ClientHello): tshark dates it by the segment that completed it, Reef by its first
//!   byte, as every entry's `timestamp` is the request's start.
//!
//! The JA3 values expected here are tshark 4.0's (`tls.handshake.ja3`); tshark 4.0 has
//! no JA4, so those were computed from tshark's fields of each ClientHello by a short
//! Python script following the FoxIO spec (see pipeline/dissect/src/tls/tests.rs).

#![allow(clippy::unwrap_used)]

use reef_integration::{corpus_file, dissect_file};
use reef_schema::{Entry, Flags, Protocol};

fn tls(name: &str) -> Vec<Entry> {
    dissect_file(&corpus_file(name))
        .0
        .into_iter()
        .filter(|e| e.protocol == Protocol::Tls)
        .collect()
}

/// (SNI, version, cipher, ALPN offered, JA3, JA4) of an entry.
type Seen<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<Vec<&'a str>>,
    Option<&'a str>,
    Option<&'a str>,
);

fn seen(e: &Entry) -> Seen<'_> {
    assert_eq!(e.method.as_deref(), Some("ClientHello"));
    assert_eq!(e.path, e.tls_sni);
    assert!(e.flags.is_empty(), "{:?}", e.flags);
    (
        e.tls_sni.as_deref(),
        e.tls_version.as_deref(),
        e.tls_cipher.as_deref(),
        e.tls_alpn
            .as_ref()
            .map(|a| a.iter().map(String::as_str).collect()),
        e.tls_ja3.as_deref(),
        e.tls_ja4.as_deref(),
    )
}

#[test]
fn tls12_with_alpn_h2() {
    let e = tls("tls_arkime_alpn-h2");
    assert_eq!(e.len(), 1);
    assert_eq!(
        seen(&e[0]),
        (
            Some("www.cloudflare.com"),
            Some("TLS 1.2"),
            Some("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            Some(vec!["h2", "http/1.1"]),
            Some("3faa4ad39f690c4ef1c3160caa375465"),
            Some("t12d4605h2_85626a9a5f7f_aaf95bb78ec9"),
        )
    );
    // The server's choice is in the summary.
    assert!(e[0].summary.as_deref().unwrap().ends_with("[h2]"));
}

#[test]
fn tls13_from_curl() {
    let e = tls("tls_arkime_curl-tls13");
    assert_eq!(e.len(), 1);
    assert_eq!(
        seen(&e[0]),
        (
            Some("enabled.tls13.com"),
            Some("TLS 1.3"),
            Some("TLS_AES_256_GCM_SHA384"),
            Some(vec!["h2", "http/1.1"]),
            Some("eeadfd2f446a45ded96f804720a0c75b"),
            Some("t13d0413h2_16476d049b0b_ffceb19bae65"),
        )
    );
    assert_eq!(e[0].dst_port, Some(443));
}

#[test]
fn huge_client_hello_over_many_segments() {
    let e = tls("tls_ndpi_huge-client-hello");
    assert_eq!(e.len(), 1);
    assert_eq!(
        seen(&e[0]),
        (
            None,
            Some("TLS 1.3"),
            Some("TLS_CHACHA20_POLY1305_SHA256"),
            Some(vec!["h2", "http/1.1"]),
            Some("66d6080b942b0b593896bf729f3fd326"),
            Some("t13i1811h2_f71e3e15ae0d_5c3a8cf9b2bc"),
        )
    );
    assert_eq!(e[0].request_size, Some(11414 + 4));
    // tshark's time is the frame that completed the hello (frame 27); Reef's is the
    // hello's first byte, earlier.
    let truth = 1_722_705_812_759_372_102_i64;
    assert!(e[0].timestamp < truth - 500_000_000, "{}", e[0].timestamp);
}

#[test]
fn tls12_without_sni_or_alpn() {
    let e = tls("tls_zeek_tls12");
    assert_eq!(e.len(), 1);
    assert_eq!(
        seen(&e[0]),
        (
            None,
            Some("TLS 1.2"),
            Some("TLS_RSA_WITH_RC4_128_MD5"),
            None,
            Some("bd9c99b3a0f752c3ab8b052a79e9de3e"),
            Some("t12i800500_15c493246000_3eafcbe19126"),
        )
    );
}

#[test]
fn four_handshakes_among_other_traffic() {
    let e = tls("mixed_ndpi_1kxun-mobile-http-dns");
    let ja3: Vec<_> = e.iter().map(|e| seen(e).4.unwrap()).collect();
    assert_eq!(
        ja3,
        [
            "799135475da362592a4be9199d258726",
            "618ee2509ef52bf0b8216e1564eea909",
            "799135475da362592a4be9199d258726",
            "618ee2509ef52bf0b8216e1564eea909",
        ]
    );
    // An IP address sent as SNI is kept as sent.
    assert!(
        e.iter()
            .all(|e| e.tls_sni.as_deref() == Some("192.168.115.75"))
    );
    assert!(!e.iter().any(|e| e.flags.contains(Flags::NO_RESPONSE)));
}

mod running_server {
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{Daemon, SETTLE, run, tool, unique};

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn client(openssl: &Path, port: u16, name: &str, version: &str) {
        run(
            Command::new(openssl).args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                name,
                "-alpn",
                "h2,http/1.1",
                version,
            ]),
            Duration::from_secs(10),
        );
    }

    #[test]
    fn live_openssl_handshakes() {
        let openssl = tool("openssl", "openssl");
        let dir = std::env::temp_dir().join(unique("tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        run(
            Command::new(&openssl)
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
                .args(["-subj", "/CN=reef.test", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert),
            Duration::from_secs(10),
        );
        let port = free_port();
        let _server = Daemon(
            Command::new(&openssl)
                .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
                .args(["-alpn", "h2", "-www", "-quiet", "-key"])
                .arg(&key)
                .arg("-cert")
                .arg(&cert)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }

        let cap = LiveCapture::start("lo");
        let (n13, n12) = (unique("tls13") + ".test", unique("tls12") + ".test");
        client(&openssl, port, &n13, "-tls1_3");
        client(&openssl, port, &n12, "-tls1_2");
        let (entries, _) = cap.stop(SETTLE);
        let _ = std::fs::remove_dir_all(&dir);
        let e: Vec<Entry> = entries
            .into_iter()
            .filter(|x| x.protocol == Protocol::Tls && x.dst_port == Some(port))
            .collect();
        assert_eq!(e.len(), 2, "{e:#?}");
        for (e, name, version) in [(&e[0], &n13, "TLS 1.3"), (&e[1], &n12, "TLS 1.2")] {
            assert_eq!(e.method.as_deref(), Some("ClientHello"));
            assert_eq!(e.path.as_deref(), Some(name.as_str()));
            assert_eq!(e.tls_sni.as_deref(), Some(name.as_str()));
            assert_eq!(
                e.tls_alpn.as_deref(),
                Some(&["h2".to_string(), "http/1.1".to_string()][..])
            );
            assert_eq!(e.tls_version.as_deref(), Some(version));
            assert!(e.tls_cipher.is_some());
            let ja4 = e.tls_ja4.as_deref().unwrap();
            assert!(ja4.starts_with(if version == "TLS 1.3" { "t13d" } else { "t12d" }));
            assert!(ja4.contains("h2_"), "{ja4}");
            assert_eq!(e.tls_ja3.as_deref().map(str::len), Some(32));
            // TLS 1.3 sends the server's ALPN choice encrypted (EncryptedExtensions).
            let chosen = e.summary.as_deref().unwrap().ends_with("[h2]");
            assert_eq!(chosen, version == "TLS 1.2", "{:?}", e.summary);
            assert!(e.flags.is_empty(), "{:?}", e.flags);
        }
    }
}
