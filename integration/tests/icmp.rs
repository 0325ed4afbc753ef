//! ICMP and ICMPv6 on the corpus, checked against tshark's `l7.icmp` messages, and on
//! hand-made packets for what the corpus lacks (errors, unanswered echoes).

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use reef_integration::{corpus_file, dissect_bytes, dissect_file};
use reef_pcap::PcapWriter;
use reef_schema::{Entry, Flags, Protocol, Transport};

use crate::dns::{json::J, truth};

fn icmp_entries(name: &str) -> Vec<Entry> {
    let (e, _) = dissect_file(&corpus_file(name));
    e.into_iter()
        .filter(|e| e.protocol == Protocol::Icmp)
        .collect()
}

fn messages(t: &J) -> &[J] {
    t.get("l7").get("icmp").get("messages").arr()
}

/// Every tshark message is in an entry: a request with its reply (`resp_in`) in one,
/// anything else alone, with the same type, code, addresses and times.
fn check_against_truth(name: &str) {
    let t = truth(name);
    let e = icmp_entries(name);
    let msgs = messages(&t);
    let mut used = vec![false; e.len()];
    for m in msgs {
        if m.get("resp_to").int().is_some() {
            continue; // a reply: checked with its request
        }
        let ts = m.get("time").time_ns().unwrap();
        let ty = m.get("type").int().unwrap();
        let i = e
            .iter()
            .enumerate()
            .position(|(i, x)| !used[i] && x.timestamp == ts && x.icmp_type == Some(ty as i32))
            .unwrap_or_else(|| panic!("{name}: no entry for {m:?}"));
        used[i] = true;
        let x = &e[i];
        assert_eq!(x.transport, Transport::Icmp);
        assert_eq!((x.src_port, x.dst_port), (None, None));
        assert_eq!(x.icmp_code, m.get("code").int().map(|c| c as i32));
        let addr = |j: &J| j.str().unwrap().trim_matches(['[', ']']).to_string();
        assert_eq!(x.src_ip.to_string(), addr(m.get("src")));
        assert_eq!(x.dst_ip.to_string(), addr(m.get("dst")));
        match m.get("resp_in").int() {
            Some(frame) => {
                let reply = msgs
                    .iter()
                    .find(|r| r.get("frame").int() == Some(frame))
                    .unwrap();
                let rtt = reply.get("time").time_ns().unwrap() - ts;
                assert_eq!(x.elapsed_time, Some(rtt / 1000), "{name}: round trip");
                assert!(x.flags.is_empty());
                let id = m.get("ident").int().unwrap();
                let seq = m.get("seq").int().unwrap();
                assert!(
                    x.summary
                        .as_deref()
                        .unwrap()
                        .contains(&format!("id={id} seq={seq}"))
                );
            }
            None => assert!(x.elapsed_time.is_none()),
        }
    }
    assert!(
        used.iter().all(|u| *u),
        "{name}: entries tshark has no message for"
    );
}

#[test]
fn corpus_icmp_matches_tshark() {
    for name in [
        "icmp_arkime_dot1ad-qinq",
        "icmp_tcpdump_icmpv6",
        "ipfrag_suricata_ipv4frags",
        "http_arkime_ipv6",
    ] {
        check_against_truth(name);
    }
}

#[test]
fn echo_over_qinq_has_its_round_trip() {
    let e = icmp_entries("icmp_arkime_dot1ad-qinq");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].method.as_deref(), Some("EchoRequest"));
    assert_eq!((e[0].icmp_type, e[0].icmp_code), (Some(8), Some(0)));
    assert_eq!(e[0].elapsed_time, Some(1572));
    assert!(e[0].request_size.is_some() && e[0].response_size.is_some());
}

#[test]
fn icmpv6_router_advertisement_and_mld_reports() {
    let e = icmp_entries("icmp_tcpdump_icmpv6");
    let methods: Vec<_> = e.iter().map(|e| e.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "RouterAdvertisement",
            "MulticastListenerReportV2",
            "MulticastListenerQuery",
            "MulticastListenerReportV2",
            "MulticastListenerReportV2"
        ]
    );
    assert!(e.iter().all(|e| e.flags.is_empty() && !e.incomplete));
    assert_eq!(e[1].path.as_deref(), Some("ff02::db8:1122:3344"));
}

#[test]
fn neighbour_solicitations_name_their_target() {
    let e = icmp_entries("http_arkime_ipv6");
    let ns: Vec<_> = e
        .iter()
        .filter(|e| e.method.as_deref() == Some("NeighborSolicitation"))
        .collect();
    assert_eq!(ns.len(), 34);
    assert!(ns.iter().all(|e| {
        e.path
            .as_deref()
            .is_some_and(|p| p.parse::<std::net::Ipv6Addr>().is_ok())
    }));
}

// ---- hand-made packets (raw IPv4, link type 101) ----

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut b = vec![0x45, 0];
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(payload);
    b
}

fn icmp(t: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut b = vec![t, code, 0, 0];
    b.extend_from_slice(rest);
    b
}

fn echo(id: u16, seq: u16) -> Vec<u8> {
    [
        &id.to_be_bytes()[..],
        &seq.to_be_bytes(),
        b"0123456789abcdef",
    ]
    .concat()
}

fn capture(frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 101, true).unwrap();
    for (ts, f) in frames {
        w.write_packet(*ts, f, f.len() as u32).unwrap();
    }
    w.into_inner().unwrap()
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];
const ROUTER: [u8; 4] = [10, 0, 0, 254];
const SEC: i64 = 1_000_000_000;

#[test]
fn ping_with_loss_times_out_and_answers_pair() {
    let t0 = 1_700_000_000 * SEC;
    let frames = vec![
        (t0, ipv4(A, B, 1, &icmp(8, 0, &echo(0x77, 1)))),
        (t0 + 2_000_000, ipv4(B, A, 1, &icmp(0, 0, &echo(0x77, 1)))),
        // Lost reply for seq 2.
        (t0 + SEC, ipv4(A, B, 1, &icmp(8, 0, &echo(0x77, 2)))),
        (t0 + 2 * SEC, ipv4(A, B, 1, &icmp(8, 0, &echo(0x77, 3)))),
        (
            t0 + 2 * SEC + 3_000_000,
            ipv4(B, A, 1, &icmp(0, 0, &echo(0x77, 3))),
        ),
        // Time passes beyond the response timeout (other traffic).
        (t0 + 70 * SEC, ipv4(A, B, 1, &icmp(8, 0, &echo(0x77, 4)))),
    ];
    let (e, stats) = dissect_bytes(&capture(&frames));
    assert_eq!(stats.icmp_messages, 6);
    let got: Vec<_> = e
        .iter()
        .map(|e| (e.summary.clone().unwrap(), e.elapsed_time, e.flags))
        .collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert_eq!(got[0].1, Some(2000));
    assert_eq!(got[1].1, Some(3000));
    assert_eq!(got[2].2, Flags::NO_RESPONSE | Flags::TIMEOUT);
    assert!(got[2].0.contains("seq=2"));
    assert_eq!(got[3].2, Flags::NO_RESPONSE);
    assert!(got[3].0.contains("seq=4"));
}

#[test]
fn port_unreachable_names_the_dns_query_it_refuses() {
    let t0 = 1_700_000_000 * SEC;
    let mut udp = Vec::new();
    udp.extend_from_slice(&5353u16.to_be_bytes());
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&[0, 37, 0, 0]);
    udp.extend_from_slice(&[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7]);
    udp.extend_from_slice(b"example\x03com\x00\x00\x01\x00\x01");
    let query = ipv4(A, B, 17, &udp);
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&query[..28]);
    let frames = vec![
        (t0, query.clone()),
        (t0 + 1_000_000, ipv4(B, A, 1, &icmp(3, 3, &rest))),
    ];
    let (e, _) = dissect_bytes(&capture(&frames));
    let err = e.iter().find(|e| e.protocol == Protocol::Icmp).unwrap();
    assert_eq!(err.method.as_deref(), Some("DestinationUnreachable"));
    assert_eq!(
        err.path.as_deref(),
        Some("udp 10.0.0.1:5353 -> 10.0.0.2:53")
    );
    assert_eq!((err.icmp_type, err.icmp_code), (Some(3), Some(3)));
    assert!(err.summary.as_deref().unwrap().contains("port unreachable"));
    // The query itself went unanswered.
    let q = e.iter().find(|e| e.protocol == Protocol::Dns).unwrap();
    assert_eq!(q.flags, Flags::NO_RESPONSE);
    assert_eq!(q.path.as_deref(), Some("example.com"));
}

#[test]
fn traceroute_hop_settles_the_probe() {
    let t0 = 1_700_000_000 * SEC;
    let probe = ipv4(A, [8, 8, 8, 8], 1, &icmp(8, 0, &echo(3, 9)));
    let mut rest = vec![0u8; 4];
    rest.extend_from_slice(&probe[..28]);
    let frames = vec![
        (t0, probe.clone()),
        (t0 + 4_000_000, ipv4(ROUTER, A, 1, &icmp(11, 0, &rest))),
    ];
    let (e, _) = dissect_bytes(&capture(&frames));
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].method.as_deref(), Some("EchoRequest"));
    assert_eq!(e[0].flags, Flags::NO_RESPONSE);
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("TimeExceeded (TTL exceeded in transit) from 10.0.0.254 after 4.0 ms")
    );
    assert_eq!(
        e[1].path.as_deref(),
        Some("icmp 10.0.0.1 -> 8.8.8.8 id=3 seq=9")
    );
}

/// Live: `ping` and a UDP datagram to a closed port, to the far end of a veth pair in
/// a network namespace of this test, captured on the near end while they run.
mod running_stack {
    use std::net::UdpSocket;
    use std::process::Command;
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{NetNs, SETTLE, run, tool};

    #[test]
    fn live_ping_pairs_and_port_unreachable_names_its_flow() {
        let ping = tool("ping", "iputils-ping");
        let ns = NetNs::new(1);
        let (host, peer) = (ns.host_ip, ns.peer_ip);

        let cap = LiveCapture::start(&ns.host_if);
        run(
            Command::new(&ping).args(["-c", "3", "-i", "0.2", "-W", "2", &peer.to_string()]),
            Duration::from_secs(5),
        );
        // Nothing listens on port 9 over there: the peer's stack answers port
        // unreachable, quoting this datagram.
        let udp = UdpSocket::bind((host, 0)).unwrap();
        let sport = udp.local_addr().unwrap().port();
        udp.send_to(b"anyone?", (peer, 9)).unwrap();
        let (entries, stats) = cap.stop(SETTLE);

        let e: Vec<&Entry> = entries
            .iter()
            .filter(|x| {
                x.protocol == Protocol::Icmp && x.icmp_type.is_some_and(|t| t == 8 || t == 3)
            })
            .collect();
        let echoes: Vec<_> = e.iter().filter(|x| x.icmp_type == Some(8)).collect();
        assert_eq!(echoes.len(), 3, "{e:#?}");
        for (i, x) in echoes.iter().enumerate() {
            assert_eq!((x.src_ip, x.dst_ip), (host.into(), peer.into()));
            assert_eq!(x.method.as_deref(), Some("EchoRequest"));
            let s = x.summary.as_deref().unwrap();
            assert!(
                s.contains(&format!("seq={} EchoRequest → EchoReply after", i + 1)),
                "{s}"
            );
            assert!(x.elapsed_time.is_some_and(|t| t > 0), "{x:#?}");
            assert_eq!(x.request_size, x.response_size);
            assert!(x.flags.is_empty());
        }
        assert_eq!(stats.icmp.echo_pairs, 3);
        let unreachable: Vec<_> = e.iter().filter(|x| x.icmp_type == Some(3)).collect();
        assert_eq!(unreachable.len(), 1, "{e:#?}");
        let u = unreachable[0];
        assert_eq!((u.src_ip, u.dst_ip), (peer.into(), host.into()));
        assert_eq!(u.method.as_deref(), Some("DestinationUnreachable"));
        assert_eq!(u.icmp_code, Some(3));
        assert_eq!(
            u.path.as_deref(),
            Some(format!("udp {host}:{sport} -> {peer}:9").as_str())
        );
        assert!(u.summary.as_deref().unwrap().contains("port unreachable"));
    }
}
