//! The corpus's hard cases, each with what must hold, independent of the golden files.

use reef_integration::{corpus_file, dissect_bytes, dissect_file, rewrite};
use reef_schema::{Entry, Flags, Protocol};

fn key(e: &Entry) -> (Option<&str>, Option<&str>, Option<i32>) {
    (e.method.as_deref(), e.path.as_deref(), e.status_code)
}

/// Entries without their ids, which number entries and may differ between runs of
/// different captures.
fn comparable(mut entries: Vec<Entry>) -> Vec<Entry> {
    for e in &mut entries {
        e.id.clear();
    }
    entries
}

#[test]
fn gap_in_a_response_is_flagged_and_the_connection_goes_on() {
    let (e, stats) = dissect_file(&corpus_file("http_suricata_gap-simple"));
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        vec![
            (Some("GET"), Some("/1"), Some(200)),
            (Some("GET"), Some("/2"), Some(200)),
            (Some("GET"), Some("/3"), Some(200)),
        ]
    );
    assert!(e[1].flags.contains(Flags::RESPONSE_GAP) && e[1].incomplete);
    assert!(e[0].flags.is_empty() && e[2].flags.is_empty());
    assert!(stats.reassembly.gaps >= 1);
}

#[test]
fn drops_leave_unmatched_messages_honest() {
    // tshark: 7 requests, 8 responses, 7 matched. One response's request was lost.
    let (e, _) = dissect_file(&corpus_file("http_zeek_zero-length-bodies-with-drops"));
    let requests = e.iter().filter(|x| x.method.is_some()).count();
    let orphans: Vec<_> = e
        .iter()
        .filter(|x| x.flags.contains(Flags::NO_REQUEST))
        .collect();
    assert_eq!(requests, 7);
    assert_eq!(orphans.len(), 1);
    let statuses: Vec<_> = e
        .iter()
        .filter(|x| x.method.is_some())
        .map(|x| x.status_code)
        .collect();
    let want = [302, 200, 302, 200, 200, 200, 200].map(Some);
    assert_eq!(statuses, want, "tshark's statuses for the seven requests");
}

#[test]
fn out_of_order_body_before_head_is_reassembled() {
    // The POST body segment arrives before the segment with the head.
    let (e, stats) = dissect_file(&corpus_file("http_arkime_ooo-post-seq-issue"));
    assert_eq!(e.len(), 1);
    let post = &e[0];
    assert_eq!(post.method.as_deref(), Some("POST"));
    let declared: u64 = post
        .request_headers
        .as_ref()
        .and_then(|h| h.get("content-length"))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(post.request_body_size, Some(declared));
    assert!(!post.flags.contains(Flags::REQUEST_GAP));
    assert!(stats.reassembly.out_of_order_bytes > 0);
}

#[test]
fn retransmissions_do_not_duplicate_or_break_messages() {
    let (e, stats) = dissect_file(&corpus_file("tcp_arkime_wireshark-retrans"));
    assert_eq!(e.len(), 4);
    for x in &e {
        assert_eq!(key(x), (Some("POST"), Some("/exhmedmx"), Some(200)));
        assert!(x.flags.is_empty(), "{:?}", x.flags);
    }
    assert!(stats.reassembly.duplicate_bytes > 0);
}

#[test]
fn handshake_seen_in_the_wrong_order_keeps_client_and_server() {
    let (e, _) = dissect_file(&corpus_file("tcp_zeek_handshake-reorder"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].src_port, Some(59856));
    assert_eq!(e[0].dst_port, Some(80));
    assert_eq!(e[0].status_code, Some(200));
}

#[test]
fn connection_joined_without_its_syn() {
    // Stream 88 of this capture starts mid-connection with a 1942-byte request whose
    // request line spans three segments.
    let (e, _) = dissect_file(&corpus_file("mixed_ndpi_1kxun-mobile-http-dns"));
    let s88: Vec<_> = e.iter().filter(|x| x.src_port == Some(37100)).collect();
    let got: Vec<(String, Option<i32>)> = s88
        .iter()
        .map(|x| {
            let p = x.path.as_deref().unwrap_or("");
            (
                p[..p.find('?').unwrap_or(p.len())].to_string(),
                x.status_code,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("/track".to_string(), Some(204)),
            ("/impression".to_string(), Some(204)),
            ("/click".to_string(), Some(204)),
            ("/click".to_string(), Some(200)),
        ]
    );
}

#[test]
fn vlan_sll2_and_nflog_link_layers() {
    for (name, path, status) in [
        ("http_zeek_vlan", "/download/CHANGES.bro-aux.txt", 200),
        ("http_suricata_sll2-linktype", "/testing", 200),
        ("http_zeek_nflog-linktype", "/", 200),
    ] {
        let (e, stats) = dissect_file(&corpus_file(name));
        assert_eq!(e.len(), 1, "{name}");
        assert_eq!(
            key(&e[0]),
            (Some("GET"), Some(path), Some(status)),
            "{name}"
        );
        assert!(stats.undecoded.is_empty(), "{name}: {:?}", stats.undecoded);
    }
    // The SLL2 capture is a 2.4 MB download: every byte of it was counted.
    let (e, _) = dissect_file(&corpus_file("http_suricata_sll2-linktype"));
    let declared: u64 = e[0]
        .response_headers
        .as_ref()
        .and_then(|h| h.get("content-length"))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(e[0].response_body_size, Some(declared));
    assert!(!e[0].incomplete);
}

/// 802.1ad + 802.1Q around every frame of a real capture: the same entries.
#[test]
fn qinq_tagged_frames() {
    let path = corpus_file("http_zeek_get-gzip");
    let (plain, _) = dissect_file(&path);
    let tagged = rewrite(&path, 1, |f| {
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x00, 0x14]);
        t.extend_from_slice(&f[12..]);
        vec![t]
    });
    let (e, stats) = dissect_bytes(&tagged);
    assert!(!plain.is_empty());
    assert_eq!(comparable(e), comparable(plain));
    assert!(stats.undecoded.is_empty());
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Splits an Ethernet/IPv4 frame into IP fragments of at most `size` payload bytes,
/// last fragment first.
fn fragment_v4(frame: &[u8], size: usize) -> Vec<Vec<u8>> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return vec![frame.to_vec()];
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let payload = &frame[14 + ihl..14 + total];
    if payload.len() <= size {
        return vec![frame.to_vec()];
    }
    let mut out: Vec<Vec<u8>> = payload
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = frame[..14 + ihl].to_vec();
            let off = (i * size / 8) as u16;
            let more = (i + 1) * size < payload.len();
            f[16..18].copy_from_slice(&((ihl + chunk.len()) as u16).to_be_bytes());
            f[20..22].copy_from_slice(&(off | if more { 0x2000 } else { 0 }).to_be_bytes());
            f[24..26].copy_from_slice(&[0, 0]);
            let c = ipv4_checksum(&f[14..14 + ihl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(chunk);
            f
        })
        .collect();
    out.reverse();
    out
}

/// Splits an Ethernet/IPv6 frame (no extension headers) with a fragment header.
fn fragment_v6(frame: &[u8], size: usize, id: u32) -> Vec<Vec<u8>> {
    if frame.len() < 54 || frame[12..14] != [0x86, 0xdd] {
        return vec![frame.to_vec()];
    }
    let next = frame[20];
    let payload = &frame[54..];
    if payload.len() <= size {
        return vec![frame.to_vec()];
    }
    let mut out: Vec<Vec<u8>> = payload
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = frame[..54].to_vec();
            f[18..20].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
            f[20] = 44;
            let more = (i + 1) * size < payload.len();
            let off = ((i * size / 8) as u16) << 3 | u16::from(more);
            f.extend_from_slice(&[next, 0]);
            f.extend_from_slice(&off.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(chunk);
            f
        })
        .collect();
    out.swap(0, 1);
    out
}

#[test]
fn ipv4_fragments_reassemble_into_the_same_entries() {
    let path = corpus_file("http_zeek_pipelined-requests");
    let (plain, _) = dissect_file(&path);
    let fragmented = rewrite(&path, 1, |f| fragment_v4(f, 400));
    let (e, stats) = dissect_bytes(&fragmented);
    assert_eq!(plain.len(), 5);
    assert_eq!(comparable(e), comparable(plain));
    assert!(stats.fragments.reassembled > 20, "{:?}", stats.fragments);
    assert_eq!(stats.fragments.dropped, [0; 5]);
}

#[test]
fn ipv6_fragments_reassemble_into_the_same_entries() {
    let path = corpus_file("http_arkime_ipv6");
    let (plain, _) = dissect_file(&path);
    let mut id = 0;
    let fragmented = rewrite(&path, 1, |f| {
        id += 1;
        fragment_v6(f, 256, id)
    });
    let (e, stats) = dissect_bytes(&fragmented);
    let http = |v: Vec<Entry>| -> Vec<Entry> {
        v.into_iter()
            .filter(|e| e.protocol == Protocol::Http)
            .collect()
    };
    // The ICMPv6 around it (neighbour discovery) comes through fragmented too.
    assert_eq!(e.len(), plain.len());
    let (e, plain) = (http(e), http(plain));
    assert_eq!(plain.len(), 1);
    assert_eq!(comparable(e), comparable(plain));
    assert!(stats.fragments.reassembled > 0);
}

#[test]
fn real_fragmented_datagrams_are_reassembled() {
    for (name, datagrams) in [
        ("ipfrag_deepflow_udp-fragments", 6),
        ("ipfrag_suricata_ipv4frags", 1),
        ("dns_ndpi_fragmented", 7),
    ] {
        let (_, stats) = dissect_file(&corpus_file(name));
        assert_eq!(stats.fragments.reassembled, datagrams, "{name}");
    }
    // Fragments that contradict each other (zeek's fragmented-1) are counted, not glued.
    let (_, stats) = dissect_file(&corpus_file("ipfrag_zeek_fragmented-1"));
    assert_eq!(stats.fragments.reassembled, 0);
    assert_eq!(stats.fragments.dropped.iter().sum::<u64>(), 1);
}

#[test]
fn pipelined_requests_pair_in_order() {
    let (e, _) = dissect_file(&corpus_file("http_zeek_pipelined-requests"));
    let paths: Vec<_> = e.iter().map(|x| x.path.as_deref().unwrap_or("")).collect();
    assert_eq!(
        paths,
        vec![
            "/style/enhanced.css",
            "/script/urchin.js",
            "/images/template/screen/bullet_utility.png",
            "/images/template/screen/key-point-top.png",
            "/projects/calendar/images/header-sunbird.png",
        ]
    );
    assert!(
        e.iter()
            .all(|x| x.status_code == Some(200) && x.flags.is_empty())
    );
    // The gzip bodies were decoded: CSS text, not gzip magic.
    let css = e[0].response_body.as_ref().unwrap();
    assert!(
        css.0.starts_with(b"/*") || css.0.is_ascii(),
        "{:?}",
        &css.0[..8]
    );
}

#[test]
fn expect_100_continue_is_one_transaction() {
    let (e, _) = dissect_file(&corpus_file("http_zeek_100-continue"));
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), (Some("POST"), Some("/"), Some(200)));
    assert!(e[0].flags.contains(Flags::INTERIM_RESPONSE));
    assert!(!e[0].incomplete);
}

#[test]
fn brotli_and_stacked_encodings_are_decoded() {
    let (e, _) = dissect_file(&corpus_file("http_suricata_brotli"));
    assert_eq!(e.len(), 3);
    for x in &e {
        assert!(!x.flags.contains(Flags::BODY_DECODE_ERROR), "{:?}", x.flags);
    }
    let (e, _) = dissect_file(&corpus_file("http_suricata_keepalive-mixed-gzip"));
    assert!(
        e.iter()
            .all(|x| !x.flags.contains(Flags::BODY_DECODE_ERROR))
    );
}

/// Where Reef and tshark 4.0 disagree on purpose.
///
/// tshark reports a response only once its whole body has been reassembled. When the
/// capture ends inside a response body, or bytes of it are missing, tshark shows the
/// request as unanswered even though the status line is in the capture. Reef reports
/// the status it saw and flags the entry `truncated` or `response_gap`, so that
/// `status_code >= 500` finds a 500 whose body was cut. These ten responses are why
/// Reef's HTTP recall against tshark's truth is 277/287 on the corpus.
#[test]
fn cut_responses_keep_their_status_where_tshark_drops_it() {
    let cases: &[(&str, &str, i32, Flags)] = &[
        (
            "http_arkime_ooo-post-seq-issue",
            "/xxxxxxxxx/",
            200,
            Flags::TRUNCATED,
        ),
        ("http_suricata_gap-simple", "/2", 200, Flags::RESPONSE_GAP),
        (
            "http_zeek_bro-org-browse",
            "/js/jquery.cycle.all.min.js",
            200,
            Flags::RESPONSE_GAP,
        ),
    ];
    for (name, path, status, flag) in cases {
        let (e, _) = dissect_file(&corpus_file(name));
        let x = e
            .iter()
            .find(|x| x.path.as_deref().is_some_and(|p| p.starts_with(path)))
            .unwrap_or_else(|| panic!("{name}: no entry for {path}"));
        assert_eq!(x.status_code, Some(*status), "{name}");
        assert!(
            x.flags.contains(*flag) && x.incomplete,
            "{name}: {:?}",
            x.flags
        );
    }
    let (e, _) = dissect_file(&corpus_file("mixed_ndpi_1kxun-mobile-http-dns"));
    let cut = e
        .iter()
        .filter(|x| {
            x.status_code.is_some() && x.flags.intersects(Flags::TRUNCATED | Flags::RESPONSE_GAP)
        })
        .count();
    assert_eq!(
        cut, 7,
        "capture ends during seven downloads of the mixed capture"
    );
}

/// One keep-alive connection, 1000 requests, the response to request 500 removed from
/// the capture (see cases/keepalive-1000/README.md): 999 pairs exactly as recorded and
/// one request without a response, not 500 pairs shifted by one.
#[test]
fn keep_alive_with_one_dropped_response() {
    let dir = reef_integration::case_dir("keepalive-1000");
    let (e, stats) = dissect_file(&dir.join("capture.pcap"));
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let want: Vec<(String, Option<i32>)> = expected
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[2].to_string(), f[3].parse().ok())
        })
        .collect();
    assert_eq!(want.len(), 1000);
    let got: Vec<(String, Option<i32>)> = e
        .iter()
        .map(|x| (x.path.clone().unwrap_or_default(), x.status_code))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|(p, _)| p[6..].parse::<u32>().unwrap_or(0));
    assert_eq!(got_sorted, want);
    let lost: Vec<_> = e.iter().filter(|x| x.status_code.is_none()).collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].path.as_deref(), Some("/item/500"));
    assert!(
        lost[0]
            .flags
            .contains(Flags::NO_RESPONSE | Flags::RESPONSE_GAP)
    );
    assert_eq!(e.iter().filter(|x| x.flags.is_empty()).count(), 999);
    assert_eq!(stats.dissect.http.matched, 999);
    assert_eq!(stats.reassembly.gaps, 1);
}

/// An outer Ethernet + IPv4 header around `body` with IP protocol `proto`.
fn outer_ipv4(proto: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8, 0x08, 0x00];
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 192, 168, 7, 1, 192, 168, 7, 2,
    ];
    ip[2..4].copy_from_slice(&((20 + body.len()) as u16).to_be_bytes());
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(body);
    f
}

/// Pod traffic as node NICs see it under overlay networks: the same real capture inside
/// VXLAN (flannel, Calico, Cilium), Geneve, GRE and IP-in-IP (Calico's IPIP mode) gives
/// the same entries, with the pods' addresses.
#[test]
fn overlay_tunnels_carry_the_same_entries() {
    let path = corpus_file("http_zeek_pipelined-requests");
    let (plain, _) = dissect_file(&path);
    type Wrap = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let wrappers: Vec<(&str, Wrap)> = vec![
        (
            "vxlan",
            Box::new(|f: &[u8]| {
                let mut udp = vec![0xc3, 0x50, 0x12, 0xb5, 0, 0, 0, 0]; // 50000 -> 4789
                udp[4..6].copy_from_slice(&((16 + f.len()) as u16).to_be_bytes());
                udp.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 1, 0]);
                udp.extend_from_slice(f);
                outer_ipv4(17, &udp)
            }),
        ),
        (
            "geneve",
            Box::new(|f: &[u8]| {
                let mut udp = vec![0xc3, 0x50, 0x17, 0xc1, 0, 0, 0, 0]; // 50000 -> 6081
                udp[4..6].copy_from_slice(&((16 + f.len()) as u16).to_be_bytes());
                udp.extend_from_slice(&[0x00, 0, 0x65, 0x58, 0, 0, 1, 0]);
                udp.extend_from_slice(f);
                outer_ipv4(17, &udp)
            }),
        ),
        (
            "gre",
            Box::new(|f: &[u8]| {
                let mut gre = vec![0x00, 0x00, 0x08, 0x00];
                gre.extend_from_slice(&f[14..]);
                outer_ipv4(47, &gre)
            }),
        ),
        ("ipip", Box::new(|f: &[u8]| outer_ipv4(4, &f[14..]))),
    ];
    for (name, wrap) in wrappers {
        let wrapped = rewrite(&path, 1, |f| vec![wrap(f)]);
        let (e, stats) = dissect_bytes(&wrapped);
        assert_eq!(comparable(e), comparable(plain.clone()), "{name}");
        assert_eq!(stats.tunnelled, stats.packets, "{name}");
    }
}

/// Every TCP connection closes into one flow record with its counters.
#[test]
fn flow_records_count_what_the_connection_carried() {
    let flows = reef_integration::flows_of(&corpus_file("tcp_zeek_handshake-reorder"));
    assert_eq!(flows.len(), 1);
    let f = &flows[0];
    assert_eq!((f.src_port, f.dst_port), (Some(59856), Some(80)));
    assert_eq!(f.protocol.as_deref(), Some("http1"));
    // The client's last ACK comes after both FINs closed the connection: not counted.
    assert_eq!(f.src_packets, Some(6));
    assert_eq!(f.dst_packets, Some(7));
    assert_eq!(f.src_bytes, Some(136));
    assert_eq!(f.dst_bytes, Some(1448 * 3 + 663));
    assert_eq!(f.end_reason.as_deref(), Some("fin"));
    assert_eq!(f.gap_bytes, Some(0));
    assert!(f.handshake_rtt.is_some_and(|us| us > 0));
    assert!(f.end > f.start);

    // A capture with loss reports its missing bytes.
    let flows = reef_integration::flows_of(&corpus_file("http_suricata_gap-simple"));
    assert!(flows.iter().map(|f| f.gap_bytes.unwrap_or(0)).sum::<u64>() > 0);
}
