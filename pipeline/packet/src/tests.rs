use super::*;
use etherparse::PacketBuilder;
use proptest::prelude::*;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1000, 64240)
        .ack(77)
        .psh()
        .write(&mut out, payload)
        .unwrap();
    out
}

fn ether(ethertype: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(inner);
    f
}

fn tcp_of(p: &IpPacket<'_>) -> TcpSegment<'static> {
    match decode_transport(p.protocol, p.payload, p.payload_len) {
        Transport::Tcp(t) => TcpSegment {
            payload: Box::leak(t.payload.to_vec().into_boxed_slice()),
            ..t
        },
        other => panic!("not tcp: {other:?}"),
    }
}

#[test]
fn ethernet_ipv4_tcp() {
    let frame = ether(0x0800, &ipv4_tcp(b"GET / HTTP/1.1\r\n\r\n"));
    let p = decode(linktype::ETHERNET, &frame).unwrap();
    assert_eq!(p.src.to_string(), "10.0.0.1");
    assert_eq!(p.dst.to_string(), "10.0.0.2");
    assert_eq!(p.protocol, ip_proto::TCP);
    assert!(p.fragment.is_none());
    let t = tcp_of(&p);
    assert_eq!(
        (t.src_port, t.dst_port, t.seq, t.ack),
        (40000, 80, 1000, 77)
    );
    assert!(t.has(tcp_flags::ACK) && t.has(tcp_flags::PSH) && !t.has(tcp_flags::SYN));
    assert_eq!(t.payload, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(t.missing, 0);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut frame = ether(0x0800, &ipv4_tcp(b""));
    frame.extend_from_slice(&[0u8; 6]); // minimum frame size padding
    let t = tcp_of(&decode(linktype::ETHERNET, &frame).unwrap());
    assert!(t.payload.is_empty());
}

#[test]
fn vlan_and_qinq_tags() {
    let ip = ipv4_tcp(b"x");
    let mut one = vec![0x00, 0x64]; // vlan 100
    one.extend_from_slice(&0x0800u16.to_be_bytes());
    one.extend_from_slice(&ip);
    let f1 = ether(0x8100, &one);
    let p = decode(linktype::ETHERNET, &f1).unwrap();
    assert_eq!(p.vlans, [100, 0]);

    let mut two = vec![0x00, 0x0a]; // outer S-tag 10
    two.extend_from_slice(&0x8100u16.to_be_bytes());
    two.extend_from_slice(&[0x20, 0x14]); // priority 1, vlan 20
    two.extend_from_slice(&0x0800u16.to_be_bytes());
    two.extend_from_slice(&ip);
    let f2 = ether(0x88a8, &two);
    let p = decode(linktype::ETHERNET, &f2).unwrap();
    assert_eq!(p.vlans, [10, 20]);
    assert_eq!(tcp_of(&p).payload, b"x");
}

#[test]
fn linux_cooked_v1_and_v2() {
    let ip = ipv4_tcp(b"hello");
    let mut sll = vec![0, 4, 0, 1, 0, 6];
    sll.extend_from_slice(&MAC_A);
    sll.extend_from_slice(&[0, 0]);
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&ip);
    let p = decode(linktype::LINUX_SLL, &sll).unwrap();
    assert_eq!(p.direction, Some(Direction::Outgoing));
    assert_eq!(tcp_of(&p).payload, b"hello");

    let mut sll2 = Vec::new();
    sll2.extend_from_slice(&0x0800u16.to_be_bytes());
    sll2.extend_from_slice(&[0, 0]);
    sll2.extend_from_slice(&3u32.to_be_bytes());
    sll2.extend_from_slice(&1u16.to_be_bytes());
    sll2.push(0); // to us
    sll2.push(6);
    sll2.extend_from_slice(&MAC_A);
    sll2.extend_from_slice(&[0, 0]);
    sll2.extend_from_slice(&ip);
    let p = decode(linktype::LINUX_SLL2, &sll2).unwrap();
    assert_eq!(p.direction, Some(Direction::Incoming));
    assert_eq!(tcp_of(&p).payload, b"hello");
    assert_eq!(
        decode(linktype::LINUX_SLL2, &sll2[..19]).unwrap_err(),
        DecodeError::TruncatedLink
    );
}

#[test]
fn raw_and_loopback_link_types() {
    let ip = ipv4_tcp(b"raw");
    for lt in [
        linktype::RAW,
        linktype::RAW_12,
        linktype::RAW_14,
        linktype::IPV4,
    ] {
        assert_eq!(tcp_of(&decode(lt, &ip).unwrap()).payload, b"raw");
    }
    let mut null_le = 2u32.to_le_bytes().to_vec();
    null_le.extend_from_slice(&ip);
    assert_eq!(
        tcp_of(&decode(linktype::NULL, &null_le).unwrap()).payload,
        b"raw"
    );
    let mut null_be = 2u32.to_be_bytes().to_vec();
    null_be.extend_from_slice(&ip);
    assert_eq!(
        tcp_of(&decode(linktype::NULL, &null_be).unwrap()).payload,
        b"raw"
    );
    let mut v6 = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .tcp(1, 2, 3, 4)
        .write(&mut v6, b"six")
        .unwrap();
    for family in [10u32, 24, 28, 30] {
        let mut f = family.to_le_bytes().to_vec();
        f.extend_from_slice(&v6);
        assert_eq!(tcp_of(&decode(linktype::NULL, &f).unwrap()).payload, b"six");
    }
    let mut loop_be = 24u32.to_be_bytes().to_vec();
    loop_be.extend_from_slice(&v6);
    assert!(decode(linktype::LOOP, &loop_be).is_ok());
}

#[test]
fn nflog_payload_tlv() {
    let ip = ipv4_tcp(b"nflog");
    let mut f = vec![2, 0, 0, 0]; // AF_INET, version 0, resource id 0
    // A prefix TLV (type 10) padded to 4 bytes, then the payload TLV (type 9).
    f.extend_from_slice(&7u16.to_le_bytes());
    f.extend_from_slice(&10u16.to_le_bytes());
    f.extend_from_slice(b"ab\0\0");
    f.extend_from_slice(&((4 + ip.len()) as u16).to_le_bytes());
    f.extend_from_slice(&9u16.to_le_bytes());
    f.extend_from_slice(&ip);
    assert_eq!(
        tcp_of(&decode(linktype::NFLOG, &f).unwrap()).payload,
        b"nflog"
    );
}

#[test]
fn ppp_with_and_without_protocol_compression() {
    let ip = ipv4_tcp(b"ppp");
    // PPPoE session with a compressed (one-byte) PPP protocol, as a real capture has.
    let mut pppoe = vec![0x11, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x21];
    pppoe.extend_from_slice(&ip);
    let f = ether(0x8864, &pppoe);
    assert_eq!(
        tcp_of(&decode(linktype::ETHERNET, &f).unwrap()).payload,
        b"ppp"
    );
    // LINKTYPE_PPP with the HDLC address/control bytes and a two-byte protocol.
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&ip);
    assert_eq!(
        tcp_of(&decode(linktype::PPP, &ppp).unwrap()).payload,
        b"ppp"
    );
    let lcp = [0xc0, 0x21, 1, 1, 0, 4];
    assert_eq!(decode(linktype::PPP, &lcp).unwrap_err(), DecodeError::NotIp);
}

#[test]
fn cisco_hdlc() {
    let mut f = vec![0x0f, 0x00, 0x08, 0x00];
    f.extend_from_slice(&ipv4_tcp(b"hdlc"));
    assert_eq!(
        tcp_of(&decode(linktype::C_HDLC, &f).unwrap()).payload,
        b"hdlc"
    );
}

fn wifi_qos_data(protected: bool) -> Vec<u8> {
    // Frame control: data, QoS subtype (0x88), flags: to-DS, maybe protected.
    let mut f = vec![0x88, 0x01 | if protected { 0x40 } else { 0 }, 0, 0];
    f.extend_from_slice(&[0u8; 20]); // three addresses and sequence control
    f.extend_from_slice(&[0, 0]); // QoS control
    f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    f.extend_from_slice(&ipv4_tcp(b"wifi"));
    f
}

#[test]
fn wifi_with_and_without_radiotap() {
    let f = wifi_qos_data(false);
    assert_eq!(
        tcp_of(&decode(linktype::IEEE802_11, &f).unwrap()).payload,
        b"wifi"
    );
    let mut rt = vec![0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // 12-byte radiotap header
    rt.extend_from_slice(&f);
    assert_eq!(
        tcp_of(&decode(linktype::IEEE802_11_RADIOTAP, &rt).unwrap()).payload,
        b"wifi"
    );
    assert_eq!(
        decode(linktype::IEEE802_11, &wifi_qos_data(true)).unwrap_err(),
        DecodeError::NotIp
    );
}

#[test]
fn overlay_tunnels_are_opened() {
    let inner_ip = ipv4_tcp(b"pod to pod");
    let inner_eth = ether(0x0800, &inner_ip);
    let udp = |port: u16, body: &[u8]| {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64)
            .udp(50000, port)
            .write(&mut out, body)
            .unwrap();
        out
    };
    let inner_of = |outer: &[u8]| -> Vec<u8> {
        let p = decode(linktype::RAW, outer).unwrap();
        let (lt, inner) = match decode_transport(p.protocol, p.payload, p.payload_len) {
            Transport::Udp(u) => decapsulate_udp(&u).expect("a tunnel"),
            Transport::Other { protocol, .. } => {
                decapsulate_ip(protocol, p.payload).expect("a tunnel")
            }
            other => panic!("{other:?}"),
        };
        tcp_of(&decode(lt, inner).unwrap()).payload.to_vec()
    };

    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
    vxlan.extend_from_slice(&inner_eth);
    for port in [tunnel_port::VXLAN, tunnel_port::VXLAN_LINUX] {
        assert_eq!(inner_of(&udp(port, &vxlan)), b"pod to pod");
    }
    let mut geneve = vec![0x01, 0, 0x65, 0x58, 0, 0, 0x2a, 0, 1, 2, 3, 4]; // one option word
    geneve.extend_from_slice(&inner_eth);
    assert_eq!(inner_of(&udp(tunnel_port::GENEVE, &geneve)), b"pod to pod");

    // Not a tunnel header on a tunnel port: left alone.
    let junk = udp(tunnel_port::VXLAN, b"\xff\xff\xff\xff\xff\xff\xff\xff");
    let p = decode(linktype::RAW, &junk).unwrap();
    match decode_transport(p.protocol, p.payload, p.payload_len) {
        Transport::Udp(u) => assert!(decapsulate_udp(&u).is_none()),
        other => panic!("{other:?}"),
    }

    let outer_ip = |proto: u8, body: &[u8]| {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 192, 168, 0, 1, 192, 168, 0, 2,
        ];
        let len = (20 + body.len()) as u16;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h.extend_from_slice(body);
        h
    };
    assert_eq!(
        inner_of(&outer_ip(ip_proto::IPIP, &inner_ip)),
        b"pod to pod"
    );
    let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 7]; // with a key
    gre.extend_from_slice(&inner_ip);
    assert_eq!(inner_of(&outer_ip(ip_proto::GRE, &gre)), b"pod to pod");
}

#[test]
fn non_ip_and_unknown_link_types() {
    assert_eq!(
        decode(linktype::ETHERNET, &ether(0x0806, &[0; 28])).unwrap_err(),
        DecodeError::NotIp
    );
    assert_eq!(
        decode(147, &[0; 40]).unwrap_err(),
        DecodeError::UnsupportedLinkType(147)
    );
    assert_eq!(
        decode(linktype::ETHERNET, &[0; 10]).unwrap_err(),
        DecodeError::TruncatedLink
    );
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    // Hop-by-hop options (8 bytes of padding options) before TCP.
    let mut tcp = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 1)
        .tcp(5555, 80, 9, 100)
        .write(&mut tcp, b"ext")
        .unwrap();
    let tcp = &tcp[20..];
    let mut pkt = vec![0x60, 0, 0, 0];
    pkt.extend_from_slice(&((8 + tcp.len()) as u16).to_be_bytes());
    pkt.push(0); // next header: hop-by-hop
    pkt.push(64);
    pkt.extend_from_slice(&[0xfd; 16]);
    pkt.extend_from_slice(&[0xfe; 16]);
    pkt.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next: TCP, PadN
    pkt.extend_from_slice(tcp);
    let p = decode(linktype::RAW, &pkt).unwrap();
    assert_eq!(p.protocol, ip_proto::TCP);
    let t = tcp_of(&p);
    assert_eq!((t.src_port, t.dst_port), (5555, 80));
    assert_eq!(t.payload, b"ext");
}

/// Found by the capture fuzzer: etherparse's extension iterator read past the slice
/// when lax parsing had stopped at a hop-by-hop header that was not first.
#[test]
fn misplaced_hop_by_hop_header_is_not_read_past() {
    let mut pkt = vec![0x60, 0, 0, 0, 0, 8, 0, 64];
    pkt.extend_from_slice(&[0xfd; 16]);
    pkt.extend_from_slice(&[0xfe; 16]);
    pkt.extend_from_slice(&[0, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, next: hop-by-hop again
    let p = decode(linktype::RAW, &pkt).unwrap();
    assert!(p.fragment.is_none());
}

#[test]
fn snaplen_cut_is_reported_as_missing() {
    let ip = ipv4_tcp(&[b'a'; 100]);
    let cut = &ip[..ip.len() - 30];
    let p = decode(linktype::RAW, cut).unwrap();
    let t = tcp_of(&p);
    assert_eq!(t.payload.len(), 70);
    assert_eq!(t.missing, 30);
}

/// Splits an IPv4 UDP datagram into fragments of `size` bytes (multiple of 8).
fn fragments_v4(payload: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    let mut udp = Vec::new();
    PacketBuilder::ipv4([10, 1, 1, 1], [10, 1, 1, 2], 64)
        .udp(5353, 53)
        .write(&mut udp, payload)
        .unwrap();
    let body = &udp[20..];
    body.chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let off = (i * size / 8) as u16;
            let more = (i + 1) * size < body.len();
            let mut h = udp[..20].to_vec();
            h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&id.to_be_bytes());
            let flags_off = off | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&flags_off.to_be_bytes());
            h.extend_from_slice(chunk);
            h
        })
        .collect()
}

fn defrag_all(d: &mut Defragmenter, frags: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut out = None;
    for (i, f) in frags.iter().enumerate() {
        let p = decode(linktype::RAW, f).unwrap();
        let frag = p.fragment.expect("is a fragment");
        if let Some(done) = d.push(i as i64, p.src, p.dst, p.protocol, frag, p.payload) {
            assert!(out.is_none(), "completed twice");
            out = Some(done);
        }
    }
    out
}

#[test]
fn ipv4_fragments_in_any_order_and_with_duplicates() {
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let frags = fragments_v4(&payload, 1000, 7);
    assert_eq!(frags.len(), 4);
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]] {
        let mut d = Defragmenter::new();
        let mut shuffled: Vec<Vec<u8>> = order.iter().map(|&i| frags[i].clone()).collect();
        shuffled.insert(1, shuffled[0].clone()); // a duplicate
        let whole = defrag_all(&mut d, &shuffled).expect("reassembled");
        match decode_transport(ip_proto::UDP, &whole, whole.len()) {
            Transport::Udp(u) => {
                assert_eq!(u.dst_port, 53);
                assert_eq!(u.payload, payload.as_slice());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.pending(), 0);
        assert_eq!(d.pending_bytes(), 0);
        assert_eq!(d.stats.reassembled, 1);
    }
}

#[test]
fn overlapping_fragment_does_not_rewrite_data() {
    let mut d = Defragmenter::new();
    let (s, t) = ("1.1.1.1".parse().unwrap(), "2.2.2.2".parse().unwrap());
    let f = |offset, more| Fragment {
        id: 1,
        offset,
        more,
    };
    assert!(d.push(0, s, t, 17, f(0, true), &[1; 16]).is_none());
    assert!(d.push(0, s, t, 17, f(8, true), &[2; 16]).is_none());
    let whole = d.push(0, s, t, 17, f(24, false), &[3; 8]).unwrap();
    assert_eq!(&whole[..16], &[1; 16]);
    assert_eq!(&whole[16..24], &[2; 8]);
    assert_eq!(&whole[24..], &[3; 8]);
}

#[test]
fn fragment_limits_are_counted() {
    let (s, t) = ("1.1.1.1".parse().unwrap(), "2.2.2.2".parse().unwrap());
    let mut d = Defragmenter::new();
    let big = Fragment {
        id: 1,
        offset: 65_528,
        more: false,
    };
    assert!(d.push(0, s, t, 17, big, &[0; 16]).is_none());
    assert_eq!(d.stats.dropped[3], 1, "too large");

    for id in 0..MAX_PENDING_DATAGRAMS as u32 + 5 {
        let f = Fragment {
            id,
            offset: 0,
            more: true,
        };
        d.push(0, s, t, 17, f, &[0; 8]);
    }
    assert_eq!(d.pending(), MAX_PENDING_DATAGRAMS);
    assert_eq!(d.stats.dropped[1], 5, "too many datagrams");

    d.expire(FRAGMENT_TIMEOUT_NS + 1);
    assert_eq!(d.pending(), 0);
    assert_eq!(d.pending_bytes(), 0);
    assert_eq!(d.stats.dropped[0], MAX_PENDING_DATAGRAMS as u64, "timeouts");

    let last = |end: u32| Fragment {
        id: 9,
        offset: end - 8,
        more: false,
    };
    d.push(0, s, t, 17, last(64), &[0; 8]);
    d.push(0, s, t, 17, last(128), &[0; 8]);
    assert_eq!(d.stats.dropped[4], 1, "two different ends");
}

#[test]
fn ipv6_fragments() {
    let payload: Vec<u8> = (0..2000u32).map(|i| (i % 13) as u8).collect();
    let mut udp = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .udp(1000, 53)
        .write(&mut udp, &payload)
        .unwrap();
    let body = &udp[40..];
    let mut d = Defragmenter::new();
    let mut result = None;
    for (i, chunk) in body
        .chunks(1232)
        .enumerate()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let more = (i + 1) * 1232 < body.len();
        let mut pkt = udp[..40].to_vec();
        pkt[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
        pkt[6] = 44; // fragment header
        let off = ((i * 1232 / 8) as u16) << 3 | u16::from(more);
        pkt.extend_from_slice(&[17, 0]);
        pkt.extend_from_slice(&off.to_be_bytes());
        pkt.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        pkt.extend_from_slice(chunk);
        let p = decode(linktype::RAW, &pkt).unwrap();
        assert_eq!(p.protocol, ip_proto::UDP);
        let frag = p.fragment.expect("fragment");
        assert_eq!(frag.id, 0xdead_beef);
        if let Some(w) = d.push(0, p.src, p.dst, p.protocol, frag, p.payload) {
            result = Some(w);
        }
    }
    let whole = result.expect("reassembled");
    match decode_transport(ip_proto::UDP, &whole, whole.len()) {
        Transport::Udp(u) => assert_eq!(u.payload, payload.as_slice()),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn garbage_never_panics(lt in prop_oneof![Just(0u16), Just(1), Just(101), Just(113), Just(239), Just(276), any::<u16>()],
                            data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = decode(lt, &data) {
            let _ = decode_transport(p.protocol, p.payload, p.payload_len);
        }
    }

    #[test]
    fn random_fragments_never_exceed_limits(frags in proptest::collection::vec((0u32..4, 0u32..9000, any::<bool>(), 0usize..1600), 0..60)) {
        let mut d = Defragmenter::new();
        let (s, t) = ("1.1.1.1".parse().unwrap(), "2.2.2.2".parse().unwrap());
        for (i, (id, off, more, len)) in frags.into_iter().enumerate() {
            let f = Fragment { id, offset: off * 8, more };
            if let Some(w) = d.push(i as i64, s, t, 17, f, &vec![7u8; len]) {
                prop_assert!(w.len() <= MAX_DATAGRAM_BYTES);
            }
            prop_assert!(d.pending_bytes() <= MAX_PENDING_BYTES);
        }
        d.finish();
        prop_assert_eq!(d.pending_bytes(), 0);
    }
}
