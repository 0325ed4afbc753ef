//! ICMP from hand-made messages: echo pairing, errors and the flows they quote,
//! timeouts, limits, garbage.

use proptest::prelude::*;
use reef_schema::{Entry, Flags, Protocol, Transport};

use super::*;
use crate::{Limits, Output};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Sim {
    icmp: Icmp,
    out: Output,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            icmp: Icmp::new(),
            out: Output::new(Limits::default(), "t"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn msg(
        &mut self,
        ts: i64,
        src: &str,
        dst: &str,
        v6: bool,
        t: u8,
        code: u8,
        rest: &[u8],
    ) -> &mut Self {
        let m = IcmpMessage {
            ts,
            src: ip(src),
            dst: ip(dst),
            v6,
            icmp_type: t,
            code,
            rest,
        };
        self.icmp.message(m, &mut self.out);
        self
    }

    fn take(&mut self) -> Vec<Entry> {
        self.out.entries.drain().collect()
    }

    fn finish(&mut self) -> Vec<Entry> {
        self.icmp.finish(&mut self.out);
        self.take()
    }
}

fn echo(ident: u16, seq: u16) -> Vec<u8> {
    let mut b = ident.to_be_bytes().to_vec();
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(b"abcdefgh");
    b
}

/// An IPv4 header (no options) and 8 transport bytes, as an error quotes them.
fn quoted_v4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: [u8; 8]) -> Vec<u8> {
    let mut b = vec![0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, proto, 0, 0];
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&l4);
    b
}

fn ports(sp: u16, dp: u16) -> [u8; 8] {
    let mut l4 = [0u8; 8];
    l4[..2].copy_from_slice(&sp.to_be_bytes());
    l4[2..4].copy_from_slice(&dp.to_be_bytes());
    l4
}

#[test]
fn echo_request_and_reply_make_one_entry_with_the_round_trip() {
    let mut s = Sim::new();
    s.msg(
        1_000_000_000,
        "10.0.0.1",
        "10.0.0.2",
        false,
        8,
        0,
        &echo(7, 1),
    );
    s.msg(
        1_001_500_000,
        "10.0.0.2",
        "10.0.0.1",
        false,
        0,
        0,
        &echo(7, 1),
    );
    let e = s.finish();
    assert_eq!(e.len(), 1);
    let e = &e[0];
    assert_eq!(e.protocol, Protocol::Icmp);
    assert_eq!(e.transport, Transport::Icmp);
    assert_eq!((e.src_port, e.dst_port), (None, None));
    assert_eq!(e.src_ip, ip("10.0.0.1"));
    assert_eq!(e.method.as_deref(), Some("EchoRequest"));
    assert_eq!((e.icmp_type, e.icmp_code), (Some(8), Some(0)));
    assert_eq!(e.elapsed_time, Some(1500));
    assert_eq!((e.request_size, e.response_size), (Some(16), Some(16)));
    assert!(e.flags.is_empty());
    assert_eq!(s.icmp.stats.echo_pairs, 1);
}

#[test]
fn pairs_by_identifier_and_sequence_in_any_order_v4_and_v6() {
    let mut s = Sim::new();
    for seq in 1..=3 {
        s.msg(
            seq * 1_000_000,
            "2001:db8::1",
            "2001:db8::2",
            true,
            128,
            0,
            &echo(1, seq as u16),
        );
    }
    s.msg(
        10_000_000,
        "2001:db8::2",
        "2001:db8::1",
        true,
        129,
        0,
        &echo(1, 3),
    );
    s.msg(
        11_000_000,
        "2001:db8::2",
        "2001:db8::1",
        true,
        129,
        0,
        &echo(1, 1),
    );
    // A reply from somewhere else does not answer.
    s.msg(
        12_000_000,
        "2001:db8::9",
        "2001:db8::1",
        true,
        129,
        0,
        &echo(1, 2),
    );
    let e = s.finish();
    let got: Vec<_> = e
        .iter()
        .map(|e| (e.method.clone().unwrap(), e.elapsed_time, e.flags))
        .collect();
    assert_eq!(
        got,
        [
            ("EchoRequest".to_string(), Some(7000), Flags::empty()),
            ("EchoRequest".to_string(), Some(10000), Flags::empty()),
            ("EchoReply".to_string(), None, Flags::NO_REQUEST),
            ("EchoRequest".to_string(), None, Flags::NO_RESPONSE),
        ]
    );
    assert_eq!(e[3].icmp_type, Some(128));
}

#[test]
fn a_ping_to_a_group_pairs_with_every_host_that_answers() {
    let mut s = Sim::new();
    s.msg(0, "fe80::1", "ff02::1", true, 128, 0, &echo(1, 1));
    s.msg(1_000_000, "fe80::2", "fe80::1", true, 129, 0, &echo(1, 1));
    s.msg(2_000_000, "fe80::3", "fe80::1", true, 129, 0, &echo(1, 1));
    let e = s.finish();
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|e| e.flags.is_empty() && e.timestamp == 0));
    assert_eq!(e[1].dst_ip, ip("fe80::3"));
    assert_eq!(e[1].elapsed_time, Some(2000));
    assert!(e[1].summary.as_deref().unwrap().contains("sent to ff02::1"));
    // Nobody answers: one unanswered entry, to the group.
    s.msg(3, "10.0.0.1", "255.255.255.255", false, 8, 0, &echo(2, 2));
    let e = s.finish();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags, Flags::NO_RESPONSE);
    assert_eq!(e[0].dst_ip, ip("255.255.255.255"));
}

#[test]
fn unanswered_requests_time_out() {
    let mut s = Sim::new();
    s.msg(0, "10.0.0.1", "10.0.0.2", false, 8, 0, &echo(1, 1));
    s.icmp.expire(59_000_000_000, &mut s.out);
    assert!(s.take().is_empty());
    s.icmp.expire(61_000_000_000, &mut s.out);
    let e = s.take();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags, Flags::NO_RESPONSE | Flags::TIMEOUT);
    assert!(e[0].incomplete);
    // A reply after that is on its own.
    s.msg(
        62_000_000_000,
        "10.0.0.2",
        "10.0.0.1",
        false,
        0,
        0,
        &echo(1, 1),
    );
    assert_eq!(s.take()[0].flags, Flags::NO_REQUEST);
    assert_eq!(s.icmp.outstanding(), 0);
}

#[test]
fn errors_name_the_flow_they_quote() {
    let mut s = Sim::new();
    let mut rest = vec![0u8; 4];
    rest.extend(quoted_v4(17, [10, 0, 0, 1], [10, 0, 0, 2], ports(5353, 53)));
    s.msg(5, "10.0.0.2", "10.0.0.1", false, 3, 3, &rest);
    let e = s.finish();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].method.as_deref(), Some("DestinationUnreachable"));
    assert_eq!(
        e[0].path.as_deref(),
        Some("udp 10.0.0.1:5353 -> 10.0.0.2:53")
    );
    assert_eq!((e[0].icmp_type, e[0].icmp_code), (Some(3), Some(3)));
    let summary = e[0].summary.as_deref().unwrap();
    assert!(
        summary.contains("port unreachable")
            && summary.contains("udp 10.0.0.1:5353 -> 10.0.0.2:53"),
        "{summary}"
    );

    // ICMPv6 packet too big, quoting TCP over IPv6 with a hop-by-hop header.
    let mut rest = 1280u32.to_be_bytes().to_vec();
    let mut v6 = vec![0x60, 0, 0, 0, 0, 20, 0, 64];
    v6.extend_from_slice(&ip6("2001:db8::1"));
    v6.extend_from_slice(&ip6("2001:db8::2"));
    v6.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
    v6.extend_from_slice(&ports(443, 50000));
    rest.extend(v6);
    s.msg(6, "2001:db8::fe", "2001:db8::2", true, 2, 0, &rest);
    let e = s.finish();
    assert_eq!(
        e[0].path.as_deref(),
        Some("tcp [2001:db8::1]:443 -> [2001:db8::2]:50000")
    );
    assert!(e[0].summary.as_deref().unwrap().contains("MTU 1280"));
}

fn ip6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

#[test]
fn an_error_quoting_a_waiting_echo_settles_it() {
    let mut s = Sim::new();
    s.msg(0, "10.0.0.1", "8.8.8.8", false, 8, 0, &echo(9, 4));
    let mut l4 = [8u8, 0, 0, 0, 0, 9, 0, 4];
    l4[4..6].copy_from_slice(&9u16.to_be_bytes());
    let mut rest = vec![0u8; 4];
    rest.extend(quoted_v4(1, [10, 0, 0, 1], [8, 8, 8, 8], l4));
    s.msg(2_000_000, "10.0.0.254", "10.0.0.1", false, 11, 0, &rest);
    let e = s.take();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].method.as_deref(), Some("EchoRequest"));
    assert_eq!(e[0].flags, Flags::NO_RESPONSE);
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("TimeExceeded (TTL exceeded in transit) from 10.0.0.254")
    );
    assert_eq!(e[1].method.as_deref(), Some("TimeExceeded"));
    assert_eq!(
        e[1].path.as_deref(),
        Some("icmp 10.0.0.1 -> 8.8.8.8 id=9 seq=4")
    );
    assert!(s.finish().is_empty());
}

#[test]
fn neighbour_discovery_and_mld_are_one_way_entries() {
    let mut s = Sim::new();
    let mut ns = vec![0u8; 4];
    ns.extend_from_slice(&ip6("2001:db8::5"));
    s.msg(1, "fe80::1", "ff02::1:ff00:5", true, 135, 0, &ns);
    let e = s.finish();
    assert_eq!(e[0].method.as_deref(), Some("NeighborSolicitation"));
    assert_eq!(e[0].path.as_deref(), Some("2001:db8::5"));
    assert!(e[0].flags.is_empty());
    assert_eq!(type_name(true, 250), "Type250");
    assert_eq!(type_name(false, 8), "EchoRequest");
}

#[test]
fn the_table_of_waiting_echoes_is_bounded() {
    let mut s = Sim::new();
    for i in 0..(MAX_OUTSTANDING_ECHOES as u32 + 5) {
        s.msg(
            i64::from(i),
            "10.0.0.1",
            "10.0.0.2",
            false,
            8,
            0,
            &echo((i >> 16) as u16, i as u16),
        );
    }
    let early = s.take();
    assert_eq!(early.len(), 5);
    assert!(early.iter().all(|e| e.flags == Flags::NO_RESPONSE));
    assert_eq!(s.icmp.stats.evicted, 5);
    assert_eq!(s.icmp.outstanding(), MAX_OUTSTANDING_ECHOES);
    assert_eq!(s.finish().len(), MAX_OUTSTANDING_ECHOES);
}

#[test]
fn errors_with_unreadable_quotes_are_flagged() {
    let mut s = Sim::new();
    s.msg(1, "10.0.0.2", "10.0.0.1", false, 3, 1, &[0, 0, 0, 0, 0x99]);
    s.msg(2, "10.0.0.2", "10.0.0.1", false, 8, 0, &[1]);
    let e = s.finish();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].flags, Flags::MALFORMED);
    // An echo too short for its identifier is still an entry.
    assert_eq!(e[1].method.as_deref(), Some("EchoRequest"));
}

proptest! {
    #[test]
    fn random_messages_never_panic(t in any::<u8>(), code in any::<u8>(), v6 in any::<bool>(),
                                   rest in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut s = Sim::new();
        let (src, dst) = if v6 { ("2001:db8::1", "2001:db8::2") } else { ("10.0.0.1", "10.0.0.2") };
        s.msg(1, src, dst, v6, t, code, &rest);
        s.msg(2, dst, src, v6, t, code, &rest);
        let _ = Quoted::parse(&rest);
        s.icmp.expire(i64::MAX / 2, &mut s.out);
        s.finish();
    }
}
