//! HTTP/2 on the corpus and on captures of real peers (nghttpd, nghttpx, curl, nghttp,
//! h2load), live against nghttpd and nghttpx (`running_server`), and where Reef and
//! tshark 4.0 differ.
//!
//! `check_truth.py --proto http2` finds every stream tshark reports. Reef has one
//! entry more, where tshark is wrong:
//!
//! - `http2_arkime_nghttp2-h2c`: the client's request on stream 13 is one header
//!   block of ~17 KB (a HEADERS frame of 16 384 bytes and a CONTINUATION, six
//!   `continuation-test-N` fields of 4 KiB each). tshark 4.0 does not reassemble it
//!   ("BoundErrorUnreassembled"), so its truth has stream 13 without a request and
//!   only the pushed stream 2 as a transaction. Reef decodes the block: `GET /` →
//!   200, and the push linked to it (`tshark_4_0_misses_the_17_kb_header_block`).

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use reef_integration::{case_dir, corpus_file, dissect_file};
use reef_schema::{Entry, Flags, Protocol};

fn http2(name: &str) -> Vec<Entry> {
    let (entries, _) = dissect_file(&corpus_file(name));
    entries
        .into_iter()
        .filter(|e| e.http_version.as_deref() == Some("2"))
        .collect()
}

fn key(e: &Entry) -> (&str, &str, i32) {
    (
        e.method.as_deref().unwrap_or("-"),
        e.path.as_deref().unwrap_or("-"),
        e.status_code.unwrap_or(-1),
    )
}

fn header<'a>(h: &'a Option<reef_schema::Headers>, name: &str) -> Option<&'a str> {
    h.as_ref().and_then(|h| h.get(name))
}

#[test]
fn tshark_4_0_misses_the_17_kb_header_block() {
    let e = http2("http2_arkime_nghttp2-h2c");
    assert_eq!(
        e.len(),
        2,
        "the PRIORITY-only anchor streams make no entries"
    );
    let page = &e[0];
    assert_eq!(key(page), ("GET", "/", 200));
    assert_eq!(page.http2_stream_id, Some(13));
    let h = page.request_headers.as_ref().unwrap();
    let big: Vec<_> = h
        .iter()
        .filter(|(n, _)| n.starts_with("continuation-test-"))
        .collect();
    assert_eq!(big.len(), 6);
    assert!(big.iter().all(|(_, v)| v.len() == 4096));
    assert!(page.request_size.unwrap() > 17_000);
    assert_eq!(page.response_body_size, Some(6616));
    assert!(page.flags.is_empty(), "{:?}", page.flags);

    // Server push: the promised stream's entry, linked to the page's.
    let push = &e[1];
    assert_eq!(key(push), ("GET", "/stylesheets/screen.css", 200));
    assert_eq!(push.http2_stream_id, Some(2));
    assert_eq!(push.parent_id.as_deref(), Some(page.id.as_str()));
    assert_eq!(push.response_body_size, Some(39_082));
    assert_eq!(header(&push.response_headers, "x-http2-push"), Some("1"));
    assert!(push.summary.as_deref().unwrap().contains("pushed"));
}

#[test]
fn headers_and_continuation_then_reset_no_error() {
    let e = http2("http2_suricata_continuation");
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), ("GET", "/tata", 200));
    assert_eq!(e[0].http2_stream_id, Some(1));
    assert_eq!(e[0].response_body_size, Some(13));
    // The server answered before the client ended its side, then reset the stream
    // with NO_ERROR: a normal end, said in the summary, not an anomaly.
    assert!(!e[0].incomplete, "{:?}", e[0].flags);
    assert!(e[0].summary.as_deref().unwrap().contains("NO_ERROR"));
}

#[test]
fn six_concurrent_streams_over_ipv6() {
    let e = http2("http2_suricata_keywords");
    let mut got: Vec<(u32, &str, i32, u64)> = e
        .iter()
        .map(|e| {
            (
                e.http2_stream_id.unwrap(),
                e.path.as_deref().unwrap(),
                e.status_code.unwrap(),
                e.response_body_size.unwrap(),
            )
        })
        .collect();
    got.sort();
    // Stream ids, paths, statuses and DATA byte counts as tshark reports them.
    assert_eq!(
        got,
        [
            (1, "/doc/manual/html/index.html", 200, 22_617),
            (3, "/doc/manual/html/_static/css/theme.css", 200, 85_592),
            (5, "/doc/manual/html/_static/jquery.js", 200, 252_879),
            (7, "/doc/manual/html/_static/underscore.js", 200, 41_417),
            (9, "/doc/manual/html/_static/doctools.js", 200, 6_680),
            (11, "/doc/manual/html/_static/js/theme.js", 200, 1_675),
        ]
    );
    // Bodies are kept up to the limit, the size counts all of it.
    let big = e.iter().find(|e| e.http2_stream_id == Some(5)).unwrap();
    assert!(big.flags.contains(Flags::RESPONSE_BODY_TRUNCATED));
    assert_eq!(
        big.response_body.as_ref().unwrap().0.len(),
        reef_dissect::DEFAULT_MAX_BODY_BYTES
    );
    assert!(!big.incomplete);
    assert!(e.iter().all(|e| e.src_ip.is_ipv6()));
}

#[test]
fn nghttpd_with_prior_knowledge_curl_nghttp_and_h2load() {
    let (e, stats) = dissect_file(&case_dir("h2c-nghttpd").join("capture.pcap"));
    assert_eq!(stats.dissect.connections.get("http2"), Some(&6));
    assert_eq!(e.len(), 27);
    assert!(e.iter().all(|e| e.http_version.as_deref() == Some("2")
        && e.protocol == Protocol::Http
        && !e.incomplete));
    let find = |p: &'static str| e.iter().filter(move |e| e.path.as_deref() == Some(p));
    // curl, then nghttp's three requests on one connection.
    assert_eq!(find("/small.txt").count(), 1 + 1 + 1 + 20);
    let data = find("/data.json").next().unwrap();
    assert_eq!(data.response_body_size, Some(15_793));
    assert!(
        std::str::from_utf8(&data.response_body.as_ref().unwrap().0)
            .unwrap()
            .starts_with("{\"items\"")
    );
    assert_eq!(find("/missing").next().unwrap().status_code, Some(404));
    // nghttpd pushes the stylesheet with the page.
    let page = find("/index.html").next().unwrap();
    let css = find("/css/site.css").next().unwrap();
    assert_eq!(css.parent_id.as_deref(), Some(page.id.as_str()));
    assert_eq!(css.http2_stream_id.map(|s| s % 2), Some(0));
    // nghttp's POST with its body.
    let post = e
        .iter()
        .find(|e| e.method.as_deref() == Some("POST"))
        .unwrap();
    assert_eq!(post.request_body.as_ref().unwrap().0, b"hello over h2c\n");
    // h2load: 20 requests on 2 connections, several streams in flight at once.
    let mut ids: Vec<u32> = e
        .iter()
        .filter(|e| {
            header(&e.request_headers, "user-agent").is_some_and(|u| u.starts_with("h2load"))
        })
        .map(|e| e.http2_stream_id.unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 20);
    assert_eq!(ids[..2], [1, 1]);
    assert_eq!(ids[18..], [19, 19]);
}

#[test]
fn h2c_upgrade_from_curl_and_nghttp() {
    let (e, stats) = dissect_file(&case_dir("h2c-upgrade").join("capture.pcap"));
    assert_eq!(stats.dissect.upgrades, 2);
    assert_eq!(e.len(), 5);
    // Each upgrade request is an HTTP/1.1 entry (101, `upgrade`), and its real
    // response comes on HTTP/2 stream 1, linked to it.
    for path in ["/index.html", "/data.json"] {
        let h1 = e
            .iter()
            .find(|e| e.path.as_deref() == Some(path) && e.http_version.as_deref() == Some("1.1"))
            .unwrap();
        assert_eq!(h1.status_code, Some(101));
        assert!(h1.flags.contains(Flags::UPGRADE));
        let h2 = e
            .iter()
            .find(|e| e.path.as_deref() == Some(path) && e.http_version.as_deref() == Some("2"))
            .unwrap();
        assert_eq!(key(h2), ("GET", path, 200));
        assert_eq!(h2.http2_stream_id, Some(1));
        assert_eq!(h2.parent_id.as_deref(), Some(h1.id.as_str()));
        assert!(!h2.incomplete, "{:?}", h2.flags);
    }
    let index = e.iter().find(|e| e.http2_stream_id == Some(1)).unwrap();
    assert_eq!(index.response_body_size, Some(9589));
    // nghttp's second request, on the upgraded connection (stream 13: nghttp opens
    // streams 3 to 11 as PRIORITY anchors first).
    let next = e
        .iter()
        .find(|e| e.path.as_deref() == Some("/small.txt"))
        .unwrap();
    assert_eq!(key(next), ("GET", "/small.txt", 200));
    assert_eq!(next.http2_stream_id, Some(13));
}

#[test]
fn joined_mid_connection_real_hpack_state_is_not_invented() {
    // The h2load part of h2c-nghttpd from its 69th frame on: both connections are
    // joined after their first header blocks, so the dynamic tables that later
    // requests and responses refer to (nghttp2 indexes :path, :authority, user-agent,
    // date...) are unknown.
    let path = case_dir("h2c-nghttpd").join("capture.pcap");
    let mut n = 0;
    let cut = reef_integration::rewrite(&path, 1, |frame| {
        n += 1;
        if n >= 69 {
            vec![frame.to_vec()]
        } else {
            vec![]
        }
    });
    let (e, stats) = reef_integration::dissect_bytes(&cut);
    assert_eq!(stats.dissect.connections.get("http2"), Some(&2));
    assert_eq!(e.len(), 12, "streams 9 to 19 of both connections");
    for x in &e {
        assert_eq!(x.http_version.as_deref(), Some("2"));
        assert_eq!(x.method.as_deref(), Some("GET"), "a static-table field");
        assert!(x.flags.contains(Flags::MALFORMED), "{:?}", x.flags);
        let s = x.summary.as_deref().unwrap();
        assert!(s.contains("not decodable: HPACK state unknown"), "{s}");
        // What is shown was really sent: nothing is made up from a guessed table.
        if let Some(p) = &x.path {
            assert_eq!(p, "/small.txt");
        }
        if let Some(s) = x.status_code {
            assert_eq!(s, 200);
        }
        assert_eq!(
            x.response_body.as_ref().map(|b| b.0.as_slice()),
            Some(&b"hello over h2c\n"[..])
        );
    }
}

mod running_server {
    use std::net::{TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Flags, Protocol};

    use super::{header, key};
    use crate::live_tools::{Daemon, SETTLE, run, tool, unique};

    /// The site nghttpd serves, removed on drop.
    struct Site(PathBuf);

    impl Drop for Site {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Waits until something accepts connections on `port`.
    fn listening(port: u16, what: &str) {
        let t0 = Instant::now();
        let addr = ([127, 0, 0, 1], port).into();
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{what} did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn nghttp(bin: &Path, args: &[&str]) -> String {
        let out = run(Command::new(bin).args(args), Duration::from_secs(30));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn live_nghttpd_with_nghttp_upgrade_and_h2load() {
        let nghttpd = tool("nghttpd", "nghttp2-server");
        let nghttpx = tool("nghttpx", "nghttp2-proxy");
        let nghttp_bin = tool("nghttp", "nghttp2-client");
        let h2load = tool("h2load", "nghttp2-client");

        let site = Site(std::env::temp_dir().join(unique("h2c-site")));
        std::fs::create_dir_all(&site.0).unwrap();
        std::fs::write(site.0.join("small.txt"), "hello over h2c\n").unwrap();
        let json = format!("{{\"items\": [{}]}}", vec!["1"; 3000].join(", "));
        std::fs::write(site.0.join("data.json"), &json).unwrap();

        // nghttpd in cleartext (prior knowledge only), and nghttpx in front of it for
        // clients that start in HTTP/1.1 and upgrade with `Upgrade: h2c` (nghttpd
        // does not accept the upgrade).
        let port = free_port();
        let proxy_port = free_port();
        let _server = Daemon(
            Command::new(&nghttpd)
                .args(["--no-tls", "-a", "127.0.0.1", "-d"])
                .arg(&site.0)
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let _proxy = Daemon(
            Command::new(&nghttpx)
                .arg(format!("--frontend=127.0.0.1,{proxy_port};no-tls"))
                .arg(format!("--backend=127.0.0.1,{port};;proto=h2"))
                .args([
                    "--single-process",
                    "--workers=1",
                    "--conf=/dev/null",
                    "--no-ocsp",
                    "--log-level=ERROR",
                    "--errorlog-file=/dev/null",
                    "--accesslog-file=/dev/null",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        listening(port, "nghttpd");
        listening(proxy_port, "nghttpx");

        let base = format!("http://127.0.0.1:{port}");
        let proxied = format!("http://127.0.0.1:{proxy_port}");
        let cap = LiveCapture::start("lo");
        // Prior knowledge: three requests on one connection, one a 404.
        nghttp(
            &nghttp_bin,
            &[
                "-n",
                &format!("{base}/small.txt"),
                &format!("{base}/data.json"),
                &format!("{base}/missing"),
            ],
        );
        // Upgrade: the first request in HTTP/1.1, answered on stream 1 after the
        // 101; the second on the upgraded connection.
        nghttp(
            &nghttp_bin,
            &[
                "-n",
                "-u",
                &format!("{proxied}/data.json"),
                &format!("{proxied}/missing"),
            ],
        );
        // 200 requests on 4 connections, 10 streams in flight on each.
        let load = run(
            Command::new(&h2load).args([
                "-n",
                "200",
                "-c",
                "4",
                "-m",
                "10",
                &format!("{base}/small.txt"),
            ]),
            Duration::from_secs(60),
        );
        let (entries, stats) = cap.stop(SETTLE);
        let said = String::from_utf8_lossy(&load.stdout);
        assert!(
            said.contains("200 total, 200 started, 200 done, 200 succeeded"),
            "{said}"
        );

        let direct: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.dst_port == Some(port))
            .collect();
        let front: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.dst_port == Some(proxy_port))
            .collect();
        let h2 = |e: &Entry| e.http_version.as_deref() == Some("2");
        assert!(
            direct.iter().all(|e| h2(e)
                && e.protocol == Protocol::Http
                && !e.incomplete
                && !e.flags.contains(Flags::MALFORMED)),
            "{direct:#?} {stats:?}"
        );
        let ua = |e: &Entry| {
            header(&e.request_headers, "user-agent")
                .unwrap_or("")
                .to_string()
        };
        let via = |e: &Entry| header(&e.request_headers, "via").is_some();

        // nghttp's connection (its PRIORITY-only anchor streams make no entries).
        let mine: Vec<_> = direct
            .iter()
            .filter(|e| ua(e).starts_with("nghttp2/") && !via(e))
            .map(|e| key(e))
            .collect();
        assert_eq!(
            mine,
            [
                ("GET", "/small.txt", 200),
                ("GET", "/data.json", 200),
                ("GET", "/missing", 404)
            ],
            "{direct:#?}"
        );
        let data = direct
            .iter()
            .find(|e| e.path.as_deref() == Some("/data.json") && !via(e))
            .unwrap();
        assert_eq!(data.response_body_size, Some(json.len() as u64));
        let small = direct
            .iter()
            .find(|e| e.path.as_deref() == Some("/small.txt") && !via(e))
            .unwrap();
        assert_eq!(small.response_body.as_ref().unwrap().0, b"hello over h2c\n");

        // h2load: every request seen, none missing, all answered.
        let load: Vec<&&Entry> = direct
            .iter()
            .filter(|e| ua(e).starts_with("h2load"))
            .collect();
        assert_eq!(load.len(), 200, "{stats:?}");
        assert!(
            load.iter().all(|e| key(e) == ("GET", "/small.txt", 200)
                && e.response_body_size == Some(15)
                && e.flags.is_empty()),
            "{load:#?}"
        );
        let mut conns: Vec<u16> = load.iter().map(|e| e.src_port.unwrap()).collect();
        conns.sort();
        conns.dedup();
        assert_eq!(conns.len(), 4);

        // The upgrade, on nghttpx's side: the HTTP/1.1 request (101), its response on
        // stream 1 linked to it, then the second request on the same connection.
        let up = front
            .iter()
            .find(|e| e.http_version.as_deref() == Some("1.1"))
            .expect("the upgrade request");
        assert_eq!(key(up), ("GET", "/data.json", 101));
        assert!(up.flags.contains(Flags::UPGRADE), "{:?}", up.flags);
        let upgraded: Vec<&&Entry> = front.iter().filter(|e| h2(e)).collect();
        assert_eq!(upgraded.len(), 2, "{front:#?}");
        assert_eq!(key(upgraded[0]), ("GET", "/data.json", 200));
        assert_eq!(upgraded[0].http2_stream_id, Some(1));
        assert_eq!(upgraded[0].parent_id.as_deref(), Some(up.id.as_str()));
        assert_eq!(upgraded[0].response_body_size, Some(json.len() as u64));
        assert_eq!(key(upgraded[1]), ("GET", "/missing", 404));
        assert!(upgraded[1].http2_stream_id.unwrap() > 1);
        assert!(upgraded.iter().all(|e| !e.incomplete), "{upgraded:#?}");
        assert!(front.iter().all(|e| e.src_port == up.src_port));
        // nghttpx passed both on to nghttpd over HTTP/2 (with its `via`).
        let mut hop: Vec<_> = direct.iter().filter(|e| via(e)).map(|e| key(e)).collect();
        hop.sort();
        assert_eq!(hop, [("GET", "/data.json", 200), ("GET", "/missing", 404)]);
        assert_eq!(direct.len(), 3 + 200 + 2);
    }
}
