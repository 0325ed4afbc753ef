//! MQTT on the corpus and on a capture of our own, and where Reef and the checker
//! count differently.
//!
//! Reef's MQTT entry model: one entry per exchange (CONNECT → CONNACK, SUBSCRIBE →
//! SUBACK, UNSUBSCRIBE → UNSUBACK, QoS 1 PUBLISH → PUBACK, and a QoS 2 PUBLISH →
//! PUBREC → PUBREL → PUBCOMP as ONE entry), one per QoS 0 PUBLISH (a message is a
//! message, acknowledged or not), and one per packet that says something went wrong
//! (an unanswered PINGREQ, a DISCONNECT with an error reason). Answered pings and
//! normal DISCONNECTs are counted in `DissectStats::mqtt`, not listed.
//!
//! `check_truth.py --proto mqtt` takes from tshark's view only the request/reply
//! exchanges of CONNECT, SUBSCRIBE, UNSUBSCRIBE and acknowledged PUBLISH (QoS 1 and
//! 2); Reef finds all 23. Its precision (23/31) counts as "extra" the 8 QoS 0
//! PUBLISH messages, which tshark itself shows as packets (the truth's
//! `type_counts`) but which have no reply to pair with. The tests below check, per
//! capture, that every packet tshark counted is accounted for exactly once by Reef
//! (inside an entry, or in the counters), and nothing else.
//!
//! Two matched entries differ in time ("time<0.5s" 21/23): a PUBLISH over many
//! segments is timed by Reef from its first byte, by tshark at the frame that
//! completed its reassembly (`big_messages_over_many_segments`).
//!
//! The `running_broker` tests at the end drive real clients against the Mosquitto
//! on this machine and read the capture live.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use reef_dissect::mqtt::MqttStats;
use reef_integration::{case_dir, corpus_file, dissect_file};
use reef_schema::{Entry, Flags, Protocol};

fn mqtt(name: &str) -> (Vec<Entry>, MqttStats) {
    let (e, st) = dissect_file(&corpus_file(name));
    let e = e
        .into_iter()
        .filter(|e| e.protocol == Protocol::Mqtt)
        .collect();
    (e, st.dissect.mqtt)
}

fn key(e: &Entry) -> (&str, Option<&str>, Option<i32>) {
    (
        e.method.as_deref().unwrap_or("-"),
        e.path.as_deref(),
        e.status_code,
    )
}

fn truth(name: &str) -> serde_json::Value {
    let p = corpus_file(name).with_extension("truth.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The packets an entry stands for, read from its summary: the first packet (unless
/// "(X not captured)"), then each "→ TYPE" (not "→ (no TYPE)").
fn packets_of(e: &Entry) -> Vec<String> {
    let summary = e.summary.as_deref().unwrap();
    let mut parts = summary.split(" → ");
    let first = parts.next().unwrap();
    let mut out = Vec::new();
    let missed = first.starts_with('(')
        && !first.starts_with("(broker)")
        && first.ends_with(" not captured)");
    if !missed {
        out.push(e.method.clone().unwrap());
    }
    for p in parts {
        if !p.starts_with('(') {
            out.push(p.split(' ').next().unwrap().to_string());
        }
    }
    out
}

/// Every MQTT packet tshark counted (`type_counts`) is in exactly one Reef entry or
/// in Reef's counters, and Reef has no packet tshark did not count.
fn agrees_with_tshark_packet_counts(name: &str, e: &[Entry], st: &MqttStats) {
    let t = truth(name);
    let tshark: BTreeMap<String, u64> = t["l7"]["mqtt"]["type_counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let mut reef: BTreeMap<String, u64> = BTreeMap::new();
    for x in e {
        for p in packets_of(x) {
            *reef.entry(p).or_default() += 1;
        }
    }
    let mut add = |k: &str, n: u64| {
        if n > 0 {
            *reef.entry(k.to_string()).or_default() += n;
        }
    };
    add("PINGREQ", st.pings);
    add("PINGRESP", st.pings + st.pingresps_without_request);
    add("DISCONNECT", st.disconnects);
    assert_eq!(reef, tshark, "{name}");
    let packets: u64 = tshark.values().sum();
    assert_eq!(st.packets, packets, "{name}: packets read");
}

#[test]
fn big_messages_over_many_segments() {
    let (e, st) = mqtt("mqtt_arkime_big");
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("CONNECT", None, Some(0)),
            ("SUBSCRIBE", Some("test/topic1"), Some(0)),
            ("PUBLISH", Some("test/small"), None),
            ("PUBLISH", Some("test/qos1"), Some(0)),
            // PUBLISH, PUBREC, PUBREL, PUBCOMP.
            ("PUBLISH", Some("test/qos2"), Some(0)),
            ("PUBLISH", Some("test/bigdata"), Some(0)),
            ("PUBLISH", Some("test/afterbig"), None),
            ("PUBLISH", Some("server/bigdata"), Some(0)),
            // The broker's small message arrives while the client's big one is still
            // being sent: it is read whole, and so is the big one.
            ("PUBLISH", Some("server/interrupt"), None),
            ("PUBLISH", Some("test/interleaved"), None),
            ("UNSUBSCRIBE", Some("test/topic1"), Some(0)),
        ]
    );
    assert!(e.iter().all(|x| x.flags.is_empty()));
    assert_eq!((st.pings, st.disconnects), (1, 1));
    let q2 = &e[4];
    assert_eq!(
        q2.summary.as_deref(),
        Some("PUBLISH test/qos2 qos=2 [13 bytes: QoS 2 message] → PUBREC → PUBREL → PUBCOMP")
    );
    // One second between packets: PUBLISH to PUBCOMP is three.
    assert_eq!(q2.elapsed_time, Some(3_000_000));
    let size = |t: &str| {
        e.iter()
            .find(|x| x.path.as_deref() == Some(t))
            .and_then(|x| x.request_body_size)
    };
    assert_eq!(size("test/bigdata"), Some(12_000));
    // A message's time is when its first byte was seen; tshark's is the frame that
    // completed its reassembly (8 and 10 segments later, one second apart here): the
    // two "time>0.5s" of check_truth.
    let t = truth("mqtt_arkime_big");
    let tshark_time = |topic: &str| -> f64 {
        t["l7"]["mqtt"]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["topic"] == topic)
            .unwrap()["time"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let reef_time = |topic: &str| {
        e.iter()
            .find(|x| x.path.as_deref() == Some(topic))
            .unwrap()
            .timestamp as f64
            / 1e9
    };
    assert_eq!(tshark_time("test/bigdata") - reef_time("test/bigdata"), 8.0);
    assert_eq!(
        tshark_time("server/bigdata") - reef_time("server/bigdata"),
        10.0
    );
    assert_eq!(size("server/bigdata"), Some(15_000));
    assert_eq!(size("test/interleaved"), Some(11_000));
    assert_eq!(e[5].mqtt_qos, Some(1));
    assert_eq!(e[4].mqtt_packet_id, Some(3));
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("client_id=\"test-client-123\"")
    );
    assert!(
        e[7].summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) PUBLISH server/bigdata")
    );
    agrees_with_tshark_packet_counts("mqtt_arkime_big", &e, &st);
}

#[test]
fn ten_publishes_in_one_segment_mid_connection() {
    let (e, st) = mqtt("mqtt_deepflow_one-packet-multi-publish");
    assert_eq!(e.len(), 10);
    for (i, x) in e.iter().enumerate() {
        assert_eq!(
            key(x),
            (
                "PUBLISH",
                Some(format!("hello/{i}/world").as_str()),
                Some(0)
            )
        );
        assert_eq!(x.mqtt_packet_id, Some(i as u32 + 2));
        assert_eq!(x.request_body_size, Some(i as u64));
        // Joined mid-way, publishes only: the broker's well-known port tells the sides.
        assert_eq!(x.src_port, Some(64358));
        assert_eq!(x.dst_port, Some(1883));
        assert!(x.flags.is_empty());
    }
    agrees_with_tshark_packet_counts("mqtt_deepflow_one-packet-multi-publish", &e, &st);
}

#[test]
fn mqtt5_jpeg_payload() {
    let (e, st) = mqtt("mqtt_suricata_5-pub-jpeg");
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("CONNECT", None, Some(0)),
            ("PUBLISH", Some("topicX"), None)
        ]
    );
    assert_eq!(st.disconnects, 1);
    let p = &e[1];
    assert_eq!(p.request_body_size, Some(35_758));
    assert!(
        p.request_body
            .as_ref()
            .unwrap()
            .0
            .starts_with(&[0xff, 0xd8, 0xff])
    );
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("CONNECT MQTT 5")
    );
    agrees_with_tshark_packet_counts("mqtt_suricata_5-pub-jpeg", &e, &st);
}

#[test]
fn mqtt5_properties_and_will() {
    let (e, st) = mqtt("mqtt_suricata_5-sub-props");
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("CONNECT", None, Some(0)),
            ("SUBSCRIBE", Some("topicX"), Some(0)),
        ]
    );
    // Reason 4, "disconnect with will message", is a normal end: counted.
    assert_eq!(st.disconnects, 1);
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("will=\"willtopic\"")
    );
    assert!(
        e[1].summary
            .as_deref()
            .unwrap()
            .contains("topicX (qos 0), topicY (qos 0)")
    );
    agrees_with_tshark_packet_counts("mqtt_suricata_5-sub-props", &e, &st);
}

#[test]
fn mqtt31_with_pings_and_a_connection_joined_at_its_connect() {
    let (e, st) = mqtt("mqtt_zeek_paho");
    let methods: Vec<_> = e.iter().map(|x| x.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "CONNECT",
            "SUBSCRIBE",
            "PUBLISH",
            "PUBLISH",
            "CONNECT",
            "PUBLISH"
        ]
    );
    // Five PINGREQs, all answered; one DISCONNECT.
    assert_eq!((st.pings, st.disconnects), (5, 1));
    // The second connection sends PUBLISH and DISCONNECT in one segment before its
    // CONNACK arrives: the CONNECT's entry is emitted when the CONNACK comes.
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("CONNECT MQIsdp 3.1")
    );
    assert!(
        e[2].summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) PUBLISH SampleTopic qos=0 retain")
    );
    assert!(e.iter().all(|x| x.flags.is_empty()));
    agrees_with_tshark_packet_counts("mqtt_zeek_paho", &e, &st);
}

fn live() -> (Vec<Entry>, MqttStats) {
    let (e, st) = dissect_file(&case_dir("live-mosquitto").join("capture.pcap"));
    let e = e
        .into_iter()
        .filter(|e| e.protocol == Protocol::Mqtt)
        .collect();
    (e, st.dissect.mqtt)
}

#[test]
fn live_mosquitto_session() {
    let (e, st) = live();
    let count = |m: &str| e.iter().filter(|x| x.method.as_deref() == Some(m)).count();
    // 10 clients: 2 subscribers, 6 publishers, 1 idle subscriber, 1 refused.
    assert_eq!(count("CONNECT"), 10);
    assert_eq!(count("SUBSCRIBE"), 3);
    // 6 published, 5 forwarded by the broker; the three QoS 2 ones (two from
    // clients, one forwarded) carry their PUBREC, PUBREL and PUBCOMP.
    assert_eq!(count("PUBLISH"), 11);
    assert_eq!(e.len(), 24);
    assert!(e.iter().all(|x| x.flags.is_empty() && !x.incomplete));
    // The idle subscriber's two pings, and every client's normal DISCONNECT.
    assert_eq!((st.pings, st.disconnects), (2, 9));
    let handshakes = e
        .iter()
        .filter(|x| {
            x.summary
                .as_deref()
                .unwrap()
                .ends_with("→ PUBREC → PUBREL → PUBCOMP")
        })
        .count();
    assert_eq!(handshakes, 3);

    let find = |s: &str| {
        e.iter()
            .find(|x| x.summary.as_deref().unwrap().starts_with(s))
            .unwrap_or_else(|| panic!("no entry {s}"))
    };
    let refused = find("CONNECT MQTT level 9 client_id=\"reef-bad-level\"");
    assert_eq!(refused.status_code, Some(1));
    let lonely = find("PUBLISH reef-nobody/z qos=1");
    assert_eq!(lonely.status_code, Some(16));
    let json = find("PUBLISH reef-test/v5/x qos=1 content_type=\"application/json\"");
    assert_eq!(json.request_body.as_ref().unwrap().0, br#"{"t":21.5}"#);
    let q2 = find("PUBLISH reef-test/c qos=2 [7 bytes: qos two] → PUBREC → PUBREL → PUBCOMP");
    assert_eq!(q2.mqtt_qos, Some(2));
    assert_eq!(q2.status_code, Some(0));
    assert!(q2.elapsed_time.is_some());
    let big = find("PUBLISH reef-test/v5/y qos=2 [3000 bytes");
    assert_eq!(big.request_body_size, Some(3000));
    // The broker forwards QoS 2 to the 3.1.1 subscriber, downgrades to QoS 1 for the
    // MQTT 5 one.
    find("(broker) PUBLISH reef-test/c qos=2");
    find("(broker) PUBLISH reef-test/v5/y qos=1");
    let zero: Vec<_> = e
        .iter()
        .filter(|x| x.path.as_deref() == Some("reef-test/a"))
        .collect();
    assert_eq!(zero.len(), 2);
    assert!(
        zero.iter()
            .all(|x| x.mqtt_qos == Some(0) && x.status_code.is_none())
    );
    let sub5 = find("SUBSCRIBE reef-test/v5/+ (qos 1)");
    assert_eq!(sub5.status_code, Some(0));
    find("SUBSCRIBE reef-test/# (qos 2) → SUBACK qos 2");
}

#[test]
fn damaged_packets_are_flagged_not_glued() {
    // Drop the segment carrying the client's 3000-byte QoS 2 PUBLISH.
    let path = case_dir("live-mosquitto").join("capture.pcap");
    let mut dropped = false;
    let bytes = reef_integration::rewrite(&path, 1, |f| {
        let is_it = f.len() > 3000 && f.windows(14).any(|w| w == b"reef-test/v5/y");
        if is_it && !dropped {
            dropped = true;
            vec![]
        } else {
            vec![f.to_vec()]
        }
    });
    assert!(dropped);
    let e: Vec<_> = reef_integration::dissect_bytes(&bytes)
        .0
        .into_iter()
        .filter(|x| x.protocol == Protocol::Mqtt)
        .collect();
    let gaps: Vec<_> = e
        .iter()
        .filter(|x| !x.flags.is_empty())
        .map(|x| (x.method.clone().unwrap(), x.flags))
        .collect();
    // The whole PUBLISH was in the lost segment: its PUBREC opens the entry, which
    // the PUBREL and PUBCOMP that follow complete.
    assert_eq!(gaps, [("PUBREC".to_string(), Flags::NO_REQUEST)]);
    let rest = e
        .iter()
        .find(|x| x.method.as_deref() == Some("PUBREC"))
        .unwrap();
    assert_eq!(
        rest.summary.as_deref(),
        Some("(PUBLISH not captured) → PUBREC → PUBREL → PUBCOMP")
    );
    assert_eq!(rest.status_code, Some(0));
    assert_eq!(rest.mqtt_qos, Some(2));
    assert_eq!(
        e.iter()
            .filter(|x| x.method.as_deref() == Some("CONNECT"))
            .count(),
        10
    );
}

/// Live: mosquitto_pub / mosquitto_sub at QoS 0, 1 and 2 (MQTT 3.1.1 and 5) and a raw
/// client of our own against the Mosquitto at 127.0.0.1:1883, captured on `lo` while
/// they run. Topics and client ids are unique to this run; nothing is retained.
mod running_broker {
    use std::collections::BTreeSet;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{SETTLE, run, server, tool, unique, wait};

    const BROKER: &str = "127.0.0.1:1883";

    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![first, body.len() as u8];
        p.extend_from_slice(body);
        p
    }

    fn connect(level: u8, client_id: &str) -> Vec<u8> {
        let mut b = vec![0, 4];
        b.extend_from_slice(b"MQTT");
        b.extend_from_slice(&[level, 0x02, 0, 60]);
        b.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
        b.extend_from_slice(client_id.as_bytes());
        packet(0x10, &b)
    }

    /// CONNECT, PINGREQ, DISCONNECT; then a CONNECT of a protocol level that does not
    /// exist, which the broker refuses.
    fn raw_client(id: &str) {
        let mut s = TcpStream::connect(BROKER).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 4];
        s.write_all(&connect(4, &format!("{id}-ping"))).unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [0x20, 2, 0, 0]);
        s.write_all(b"\xc0\x00").unwrap();
        s.read_exact(&mut buf[..2]).unwrap();
        assert_eq!(buf[..2], [0xd0, 0]);
        s.write_all(b"\xe0\x00").unwrap();
        drop(s);
        let mut s = TcpStream::connect(BROKER).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(&connect(9, &format!("{id}-bad"))).unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [0x20, 2, 0, 1], "unacceptable protocol version");
    }

    #[test]
    fn live_mosquitto_qos_0_1_2_and_mqtt5() {
        let publ = tool("mosquitto_pub", "mosquitto-clients");
        let sub = tool("mosquitto_sub", "mosquitto-clients");
        server(BROKER, "MQTT broker (mosquitto)");
        let u = unique("mqtt");
        let big = "p".repeat(3000);

        let cap = LiveCapture::start("lo");
        // A subscriber at QoS 2 for four messages; -d says when its SUBACK came (line
        // by line: stdout is a pipe).
        let mut subscriber = Command::new(tool("stdbuf", "coreutils"))
            .arg("-oL")
            .arg(&sub)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                "1883",
                "-d",
                "-q",
                "2",
                "-C",
                "4",
                "-W",
                "8",
            ])
            .args(["-i", &format!("{u}-sub"), "-t", &format!("{u}/#")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(subscriber.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("received SUBACK") {
                break;
            }
        }
        let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
        let limit = Duration::from_secs(5);
        let pub_ = |args: &[&str]| {
            run(
                Command::new(&publ)
                    .args(["-h", "127.0.0.1", "-p", "1883"])
                    .args(args),
                limit,
            );
        };
        let t = |s: &str| format!("{u}/{s}");
        pub_(&[
            "-i",
            &format!("{u}-q0"),
            "-q",
            "0",
            "-t",
            &t("a"),
            "-m",
            "qos zero",
        ]);
        pub_(&[
            "-i",
            &format!("{u}-q1"),
            "-q",
            "1",
            "-t",
            &t("b"),
            "-m",
            "qos one",
        ]);
        pub_(&[
            "-i",
            &format!("{u}-q2"),
            "-q",
            "2",
            "-t",
            &t("c"),
            "-m",
            &big,
        ]);
        pub_(&[
            "-i",
            &format!("{u}-v5"),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            &t("v5"),
            "-m",
            r#"{"t":21.5}"#,
            "-D",
            "publish",
            "content-type",
            "application/json",
        ]);
        // MQTT 5: a topic nobody subscribed to gets PUBACK reason 16.
        let nobody = format!("{u}-nobody/z");
        pub_(&[
            "-i",
            &format!("{u}-v5n"),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            &nobody,
            "-m",
            "lonely",
        ]);
        raw_client(&u);
        let out = wait(subscriber, Duration::from_secs(8), "mosquitto_sub");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let received = reader.join().unwrap();
        assert_eq!(
            received
                .iter()
                .filter(|l| l.contains("received PUBLISH"))
                .count(),
            4
        );
        let (entries, stats) = cap.stop(SETTLE);

        let all: Vec<Entry> = entries
            .into_iter()
            .filter(|x| x.protocol == Protocol::Mqtt && x.dst_port == Some(1883))
            .collect();
        // This run's connections: those whose CONNECT carries one of its client ids.
        let ours: BTreeSet<_> = all
            .iter()
            .filter(|x| {
                x.method.as_deref() == Some("CONNECT")
                    && x.summary
                        .as_deref()
                        .unwrap()
                        .contains(&format!("client_id=\"{u}-"))
            })
            .map(|x| x.src_port)
            .collect();
        assert_eq!(ours.len(), 8, "sub, five publishers, two raw connections");
        let e: Vec<&Entry> = all.iter().filter(|x| ours.contains(&x.src_port)).collect();
        let find = |s: &str| {
            *e.iter()
                .find(|x| x.summary.as_deref().unwrap().starts_with(s))
                .unwrap_or_else(|| panic!("no entry starting {s:?} in {e:#?}"))
        };
        let count = |m: &str| e.iter().filter(|x| x.method.as_deref() == Some(m)).count();
        assert_eq!(count("CONNECT"), 8);
        assert_eq!(count("SUBSCRIBE"), 1);
        // Five published, four delivered to the subscriber.
        assert_eq!(count("PUBLISH"), 9);
        // Answered pings and normal DISCONNECTs are counted, not listed; the QoS 2
        // acknowledgments are inside their PUBLISH.
        assert_eq!(e.len(), 18, "{e:#?}");
        assert!(stats.dissect.mqtt.pings >= 1);
        assert!(stats.dissect.mqtt.disconnects >= 7);

        let sub_e = find(&format!("SUBSCRIBE {u}/# (qos 2) → SUBACK qos 2"));
        assert_eq!(sub_e.status_code, Some(0));
        let q0 = find(&format!("PUBLISH {u}/a qos=0 [8 bytes: qos zero]"));
        assert_eq!((q0.mqtt_qos, q0.status_code), (Some(0), None));
        let q1 = find(&format!("PUBLISH {u}/b qos=1 [7 bytes: qos one] → PUBACK"));
        assert_eq!((q1.mqtt_qos, q1.status_code), (Some(1), Some(0)));
        let q2 = find(&format!("PUBLISH {u}/c qos=2 [3000 bytes"));
        assert!(
            q2.summary
                .as_deref()
                .unwrap()
                .ends_with("→ PUBREC → PUBREL → PUBCOMP")
        );
        assert_eq!((q2.mqtt_qos, q2.status_code), (Some(2), Some(0)));
        assert_eq!(q2.request_body_size, Some(3000));
        assert!(q2.elapsed_time.is_some());
        let v5 = find(&format!(
            "PUBLISH {u}/v5 qos=1 content_type=\"application/json\" [10 bytes: {{\"t\":21.5}}] → PUBACK"
        ));
        assert_eq!(v5.status_code, Some(0));
        let lonely = find(&format!("PUBLISH {nobody} qos=1"));
        assert_eq!(lonely.status_code, Some(16));
        assert!(
            lonely
                .summary
                .as_deref()
                .unwrap()
                .ends_with("→ PUBACK 16 no matching subscribers")
        );
        // Delivered at the lower of the two QoS levels, QoS 2 with its handshake.
        find(&format!("(broker) PUBLISH {u}/a qos=0"));
        find(&format!(
            "(broker) PUBLISH {u}/b qos=1 [7 bytes: qos one] → PUBACK"
        ));
        let fwd2 = find(&format!("(broker) PUBLISH {u}/c qos=2 [3000 bytes"));
        assert!(
            fwd2.summary
                .as_deref()
                .unwrap()
                .ends_with("→ PUBREC → PUBREL → PUBCOMP")
        );
        find(&format!("(broker) PUBLISH {u}/v5 qos=1"));
        let refused = find(&format!("CONNECT MQTT level 9 client_id=\"{u}-bad\""));
        assert_eq!(refused.status_code, Some(1));
        let pinger = find(&format!("CONNECT MQTT 3.1.1 client_id=\"{u}-ping\""));
        assert!(
            e.iter()
                .filter(|x| x.src_port == pinger.src_port)
                .all(|x| x.method.as_deref() == Some("CONNECT")),
            "the answered ping and the DISCONNECT are not entries"
        );
        assert!(e.iter().all(|x| x.flags.is_empty()), "{e:#?}");
    }
}
