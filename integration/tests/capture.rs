//! Live AF_PACKET capture on the loopback device (needs root, as CI has).

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use reef_capture::{CaptureConfig, FilterSpec};

/// Captures on `lo` until `want` packets of `port` arrived or two seconds passed.
fn collect(sources: &mut [reef_capture::Source], port: u16, want: usize) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        for s in sources.iter_mut() {
            s.poll(20, |p| {
                // IPv4 + UDP to `port`.
                if p.protocol == 0x0800 && p.data.len() >= 28 && p.data[9] == 17 {
                    let dport = u16::from_be_bytes([p.data[22], p.data[23]]);
                    if dport == port {
                        got.push(p.data[28..].to_vec());
                    }
                }
            })
            .expect("poll");
        }
    }
    got
}

fn lo(
    threads: usize,
    filter: FilterSpec,
) -> (
    Vec<reef_capture::Source>,
    std::sync::Arc<reef_capture::Control>,
) {
    reef_capture::open(&CaptureConfig {
        interfaces: vec!["lo".into()],
        threads,
        filter,
        ..CaptureConfig::default()
    })
    .expect("capture on lo (run the tests as root)")
}

#[test]
fn loopback_packets_are_seen_once() {
    let (mut sources, control) = lo(1, FilterSpec::default());
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50u32 {
        tx.send_to(format!("reef-{i}").as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let got = collect(&mut sources, port, 50);
    // Wait a little longer: a duplicate would come right after.
    let more = collect(&mut sources, port, 1);
    assert_eq!(got.len(), 50, "each datagram exactly once");
    assert!(more.is_empty(), "no outgoing copies");
    assert_eq!(got[7], b"reef-7");
    let (received, dropped) = control.kernel_counts().unwrap();
    assert!(received >= 50);
    assert_eq!(dropped, 0);
}

#[test]
fn fanout_keeps_each_flow_on_one_thread_and_loses_nothing() {
    let (mut sources, _control) = lo(2, FilterSpec::default());
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let senders: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for round in 0..10 {
        for (i, s) in senders.iter().enumerate() {
            s.send_to(format!("{i}:{round}").as_bytes(), ("127.0.0.1", port))
                .unwrap();
        }
    }
    // Per thread, which senders it saw.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    while seen.iter().map(Vec::len).sum::<usize>() < 80 && Instant::now() < deadline {
        for (t, s) in sources.iter_mut().enumerate() {
            s.poll(20, |p| {
                if p.protocol == 0x0800 && p.data.len() > 28 && p.data[9] == 17 {
                    let dport = u16::from_be_bytes([p.data[22], p.data[23]]);
                    if dport == port {
                        seen[t].push(String::from_utf8_lossy(&p.data[28..]).into_owned());
                    }
                }
            })
            .unwrap();
        }
    }
    assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 80);
    for i in 0..8 {
        let on: Vec<usize> = (0..2)
            .filter(|&t| seen[t].iter().any(|m| m.starts_with(&format!("{i}:"))))
            .collect();
        assert_eq!(on.len(), 1, "sender {i} spread over threads {on:?}");
    }
}

#[test]
fn targets_change_at_runtime() {
    let (mut sources, control) = lo(1, FilterSpec::default());
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx.local_addr().unwrap().port();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Only 10.99.0.1 (not this traffic): nothing of ours comes through.
    control
        .set_targets(vec!["10.99.0.1".parse().unwrap()])
        .unwrap();
    tx.send_to(b"filtered", ("127.0.0.1", port)).unwrap();
    assert!(collect(&mut sources, port, 1).is_empty());
    control
        .set_targets(vec!["127.0.0.1".parse().unwrap()])
        .unwrap();
    tx.send_to(b"kept", ("127.0.0.1", port)).unwrap();
    assert_eq!(collect(&mut sources, port, 1), vec![b"kept".to_vec()]);
    assert_eq!(
        control.targets(),
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn live_capture_helper_gives_http_entries_of_loopback_traffic() {
    use std::io::{Read, Write};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let cap = reef_integration::live::LiveCapture::start("lo");
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"GET /live HTTP/1.1"));
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
    });
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let _ = c.read(&mut buf).unwrap();
    serve.join().unwrap();
    drop(c);
    let (entries, _) = cap.stop(Duration::from_millis(200));
    let e: Vec<_> = entries
        .iter()
        .filter(|e| e.dst_port == Some(port))
        .collect();
    assert_eq!(e.len(), 1, "{entries:?}");
    assert_eq!(e[0].path.as_deref(), Some("/live"));
    assert_eq!(e[0].status_code, Some(204));
    assert_eq!(e[0].capture_source, reef_schema::CaptureSource::AfPacket);
}
