//! DNS on fuzzer-chosen bytes: the message parser and detection on the raw input, the
//! UDP dissector on datagrams cut from it, and the TCP dissector (behind detection) on
//! segments, gaps and ends, as reassembly would deliver them. Must never panic; every
//! entry must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::datagram::{Datagram, DatagramDissector, UdpCtx};
use reef_dissect::dns::{self, wire};
use reef_dissect::{Conn, Limits, Output};
use reef_reassembly::{Dir, Endpoint, EndReason, FlowCtx, FlowStats, StreamEvent};
use reef_schema::{Flags, Protocol};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    if let Some(m) = wire::parse(data) {
        assert!(m.end <= data.len());
        assert!(m.answers.len() <= wire::MAX_ANSWERS_KEPT);
        assert!(m.questions.len() <= wire::MAX_QUESTIONS_KEPT);
        for a in &m.answers {
            assert!(a.data.chars().count() <= wire::MAX_RDATA_TEXT + 1);
        }
    }
    let _ = wire::looks_like_dns(data, data.len());
    let _ = wire::looks_like_dns(data, usize::from(data[0]) << 8 | usize::from(data[1]));

    let endpoints = [
        Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 40000 },
        Endpoint {
            ip: if data[0] & 8 != 0 { "224.0.0.251" } else { "10.0.0.2" }.parse().unwrap(),
            port: [53, 5353, 5355, 9999][usize::from(data[0] >> 4) & 3],
        },
    ];
    let limits = Limits { response_timeout_ns: 1_000_000, ..Limits::default() };
    let mut out = Output::new(limits, "fuzz");

    // UDP: each piece is a control byte (direction, length) then a datagram.
    let uctx = UdpCtx { id: 1, endpoints };
    let mut udp = dns::DnsUdp::new(&uctx);
    let mut ts = 0i64;
    let mut rest = &data[1..];
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 1 == 0 { Dir::Forward } else { Dir::Reverse };
        let n = (usize::from(ctl >> 1) * 4).min(tail.len());
        ts += 100_000;
        udp.datagram(&uctx, Datagram { dir, payload: &tail[..n], ts }, &mut out);
        udp.tick(&uctx, ts, &mut out);
        rest = &tail[n..];
    }
    udp.closed(&uctx, ts, &mut out);

    // TCP, through detection.
    let ctx = FlowCtx {
        id: 2,
        endpoints,
        opener_known: data[0] & 1 == 0,
        midstream: [data[0] & 2 != 0, data[0] & 4 != 0],
    };
    let mut conn = Conn::default();
    let mut off = [0u64; 2];
    let mut rest = &data[1..];
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 1 == 0 { Dir::Forward } else { Dir::Reverse };
        let i = dir.index();
        let len = usize::from(ctl >> 2) + 1;
        ts += 1_000;
        if ctl & 2 != 0 {
            let ev = StreamEvent::Gap { dir, offset: off[i], len: len as u64, ts };
            off[i] += len as u64;
            conn.on_event(&ctx, ev, &mut out);
            rest = tail;
            continue;
        }
        let n = len.min(tail.len());
        let ev = StreamEvent::Data { dir, offset: off[i], data: &tail[..n], ts, peer_ack: None };
        off[i] += n as u64;
        conn.on_event(&ctx, ev, &mut out);
        conn.tick(&ctx, ts * 1000, &mut out);
        rest = &tail[n..];
    }
    for dir in [Dir::Forward, Dir::Reverse] {
        conn.on_event(&ctx, StreamEvent::End { dir, reason: EndReason::Fin, ts }, &mut out);
    }
    let stats = FlowStats::default();
    conn.on_event(&ctx, StreamEvent::Closed { stats: &stats, ts }, &mut out);

    for e in out.entries.iter() {
        assert_eq!(e.incomplete, e.flags.intersects(Flags::INCOMPLETE));
        assert!(e.request_size.is_some() || e.response_size.is_some());
        assert!(!(e.flags.contains(Flags::NO_RESPONSE) && e.response_size.is_some()));
        // Detection may pick any protocol for the TCP bytes. Of those, MQTT has an
        // exchange whose first packet was missed that still has request bytes: a QoS 2
        // handshake joined after its PUBLISH, whose PUBREL the client sends (the mqtt
        // target allows the same).
        assert!(
            !(e.flags.contains(Flags::NO_REQUEST) && e.request_size.is_some())
                || (e.protocol == Protocol::Mqtt && e.mqtt_qos == Some(2))
        );
        assert!(e.elapsed_time.is_none_or(|t| t >= 0));
        assert!(e.dns_answers.as_ref().is_none_or(|a| a.len() <= wire::MAX_ANSWERS_KEPT));
    }
});
