//! AMQP 0-9-1 on the corpus and on a capture of our own.
//!
//! `check_truth.py --proto amqp` compares Reef's entries with tshark's AMQP methods
//! other than `-Ok` answers, protocol headers and content frames: they agree on all 68.
//! The tests below also check, per capture, that Reef's methods are exactly tshark's,
//! that every `-Ok` tshark saw is inside its request's entry, and the hard cases of
//! MANIFEST.md: channel and connection errors, connections joined mid-way, content
//! frames assembled into messages.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use reef_integration::{case_dir, corpus_file, dissect_bytes, dissect_file, rewrite};
use reef_schema::{Entry, Flags, Protocol};

fn amqp_entries(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| e.protocol == Protocol::Amqp)
        .collect()
}

fn amqp(name: &str) -> Vec<Entry> {
    amqp_entries(dissect_file(&corpus_file(name)).0)
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

/// Reef's methods are tshark's, and each `-Ok` tshark saw answers one of Reef's entries.
fn agrees_with_tshark_methods(name: &str, e: &[Entry]) {
    let t = truth(name);
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    let mut oks: BTreeMap<String, u64> = BTreeMap::new();
    for (m, n) in t["l7"]["amqp"]["method_counts"].as_object().unwrap() {
        let n = n.as_u64().unwrap();
        let m = m.to_lowercase();
        if m.ends_with("-ok") || m == "basic.get-empty" {
            *oks.entry(m).or_default() += n;
        } else if m.contains('.') {
            *want.entry(m).or_default() += n;
        }
    }
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    for x in e {
        *got.entry(x.method.clone().unwrap()).or_default() += 1;
        if let Some(a) = x.summary.as_deref().unwrap().split(" → ").nth(1) {
            let a = a.trim_start_matches("(broker) ");
            let a = a.split([' ', '[']).next().unwrap().to_string();
            if a.ends_with("-ok") || a == "basic.get-empty" {
                *answered.entry(a).or_default() += 1;
            }
        }
    }
    assert_eq!(got, want, "{name}: methods");
    assert_eq!(answered, oks, "{name}: answers");
}

#[test]
fn handshake_publish_and_a_delivery_mid_connection() {
    let e = amqp("amqp_deepflow_amqp2");
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            ("connection.start", None, None),
            ("connection.tune", None, None),
            ("connection.open", None, None),
            ("channel.open", None, None),
            ("exchange.declare", Some("logs"), None),
            ("basic.publish", Some("logs"), None),
            ("basic.deliver", Some("logs"), None),
        ]
    );
    assert!(e.iter().all(|x| x.flags.is_empty()));
    let publish = &e[5];
    assert_eq!(publish.request_body.as_ref().unwrap().0, b"Hello World!");
    assert_eq!(publish.amqp_exchange.as_deref(), Some("logs"));
    assert_eq!(publish.amqp_channel, Some(1));
    // The consumer's connection was joined mid-way: its delivery is still read, and
    // its sides told by the method (the broker delivers).
    let deliver = &e[6];
    assert_eq!(deliver.src_port, Some(46900));
    assert_eq!(deliver.dst_port, Some(5672));
    assert_eq!(deliver.request_body.as_ref().unwrap().0, b"Hello World!");
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("server=RabbitMQ 3.12.11")
    );
    assert_eq!(e[4].elapsed_time, Some(4883));
    agrees_with_tshark_methods("amqp_deepflow_amqp2", &e);
}

#[test]
fn channel_and_connection_errors() {
    let e = amqp("amqp_deepflow_error");
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(
        got,
        [
            // Two clients ask for a vhost that does not exist: the broker's
            // connection.close 530 answers the connection.open, and the clients
            // drop the connection without connection.close-ok.
            ("connection.start", None, None),
            ("connection.tune", None, None),
            ("connection.open", None, Some(530)),
            ("connection.close", None, Some(530)),
            ("connection.start", None, None),
            ("connection.tune", None, None),
            ("connection.open", None, Some(530)),
            ("connection.close", None, Some(530)),
            // An exchange redeclared with another type: channel.close 406.
            ("connection.start", None, None),
            ("connection.tune", None, None),
            ("connection.open", None, None),
            ("channel.open", None, None),
            ("exchange.declare", Some("test_ex"), None),
            ("exchange.declare", Some("test_ex"), Some(406)),
            ("channel.close", None, Some(406)),
            ("connection.close", None, Some(200)),
            // A mandatory message nobody can route: basic.return 312.
            ("connection.start", None, None),
            ("connection.tune", None, None),
            ("connection.open", None, None),
            ("channel.open", None, None),
            ("exchange.declare", Some("return_test"), None),
            ("basic.publish", Some("return_test"), None),
            ("basic.return", Some("return_test"), Some(312)),
            ("channel.close", None, Some(200)),
            ("connection.close", None, Some(200)),
        ]
    );
    for i in [3, 7] {
        assert!(e[i].flags.contains(Flags::NO_RESPONSE) && e[i].incomplete);
        assert!(
            e[i].summary
                .as_deref()
                .unwrap()
                .contains("NOT_ALLOWED - vhost /bad not found")
        );
    }
    assert!(
        e[13]
            .summary
            .as_deref()
            .unwrap()
            .contains("PRECONDITION_FAILED")
    );
    assert_eq!(e[22].amqp_routing_key.as_deref(), Some("nowhere"));
    assert_eq!(
        e[22].request_body.as_ref().unwrap().0,
        b"Unroutable message"
    );
    let flagged = e.iter().filter(|x| !x.flags.is_empty()).count();
    assert_eq!(flagged, 2);
    agrees_with_tshark_methods("amqp_deepflow_error", &e);
}

#[test]
fn celery_messages_on_connections_joined_mid_way() {
    let e = amqp("amqp_ndpi_celery");
    let count = |m: &str| e.iter().filter(|x| x.method.as_deref() == Some(m)).count();
    assert_eq!(
        (
            count("basic.publish"),
            count("basic.deliver"),
            count("basic.ack")
        ),
        (23, 8, 5)
    );
    assert!(e.iter().all(|x| x.flags.is_empty()));
    for x in e
        .iter()
        .filter(|x| x.method.as_deref() != Some("basic.ack"))
    {
        let body = &x.request_body.as_ref().unwrap().0;
        assert_eq!(x.request_body_size, Some(body.len() as u64));
        assert!(x.amqp_routing_key.is_some() && x.amqp_exchange.is_some());
    }
    let heartbeat = e
        .iter()
        .find(|x| x.amqp_routing_key.as_deref() == Some("worker.heartbeat"))
        .unwrap();
    assert!(
        heartbeat
            .request_body
            .as_ref()
            .unwrap()
            .0
            .starts_with(b"{\"sw_sys\"")
    );
    assert!(
        heartbeat
            .summary
            .as_deref()
            .unwrap()
            .contains("application/json")
    );
    agrees_with_tshark_methods("amqp_ndpi_celery", &e);
}

#[test]
fn a_lost_body_frame_cuts_only_its_message() {
    // Drop the segment with the first Content-Body of the celery capture (frame 5).
    let path = corpus_file("amqp_ndpi_celery");
    let mut i = 0;
    let bytes = rewrite(&path, 1, |f| {
        i += 1;
        if i == 5 { vec![] } else { vec![f.to_vec()] }
    });
    let e = amqp_entries(dissect_bytes(&bytes).0);
    assert_eq!(e.len(), 36);
    let damaged: Vec<_> = e.iter().filter(|x| !x.flags.is_empty()).collect();
    assert_eq!(
        damaged.len(),
        1,
        "{:?}",
        damaged.iter().map(|x| &x.summary).collect::<Vec<_>>()
    );
    assert_eq!(damaged[0].method.as_deref(), Some("basic.publish"));
    assert!(damaged[0].flags.contains(Flags::REQUEST_GAP) && damaged[0].incomplete);
}

fn live() -> Vec<Entry> {
    amqp_entries(dissect_file(&case_dir("live-rabbitmq").join("capture.pcap")).0)
}

#[test]
fn live_rabbitmq_session() {
    let e = live();
    let methods: Vec<_> = e.iter().map(|x| x.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "connection.start",
            "connection.tune",
            "connection.open",
            "channel.open",
            "exchange.declare",
            "queue.declare",
            "queue.bind",
            "basic.qos",
            "basic.publish",
            "basic.publish",
            "basic.publish",
            "basic.publish",
            "basic.get",
            "basic.consume",
            "basic.deliver",
            "basic.deliver",
            "basic.deliver",
            "basic.ack",
            "basic.ack",
            "basic.ack",
            "basic.cancel",
            "basic.get",
            "confirm.select",
            "basic.publish",
            "basic.return",
            "basic.ack",
            "queue.unbind",
            "queue.delete",
            "exchange.delete",
            "channel.open",
            "exchange.declare",
            "exchange.declare",
            "channel.close",
            "channel.open",
            "exchange.delete",
            "channel.close",
            "channel.close",
            "connection.close",
        ]
    );
    assert!(
        e.iter().all(|x| x.flags.is_empty()),
        "{:?}",
        e.iter().map(|x| x.flags).collect::<Vec<_>>()
    );
    let paths: Vec<_> = e[4..8].iter().map(|x| x.path.as_deref()).collect();
    assert_eq!(
        paths,
        [
            Some("reef-test-ex"),
            Some("reef-test-q"),
            Some("reef-test-q"),
            None
        ]
    );
    assert_eq!(e[6].amqp_exchange.as_deref(), Some("reef-test-ex"));
    assert_eq!(e[6].amqp_routing_key.as_deref(), Some("orders"));
    // Three JSON messages through the exchange, one of 20 000 bytes in five body frames
    // through the default exchange (path: the queue it is routed to).
    assert_eq!(e[8].request_body.as_ref().unwrap().0, br#"{"order": 0}"#);
    assert!(
        e[8].summary
            .as_deref()
            .unwrap()
            .contains("application/json")
    );
    assert_eq!(e[11].request_body_size, Some(20_000));
    assert_eq!(e[11].path.as_deref(), Some("reef-test-q"));
    assert_eq!(e[11].amqp_exchange.as_deref(), Some(""));
    // basic.get answered with a message, later one answered empty.
    assert_eq!(e[12].response_body.as_ref().unwrap().0, br#"{"order": 0}"#);
    assert!(
        e[21]
            .summary
            .as_deref()
            .unwrap()
            .ends_with("basic.get-empty")
    );
    // The big message delivered back, in frames of at most 4 KiB.
    assert_eq!(e[16].request_body_size, Some(20_000));
    assert!(
        e[16]
            .summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) basic.deliver")
    );
    // The unroutable message comes back, then the publisher confirm.
    assert_eq!(
        key(&e[24]),
        ("basic.return", Some("reef-test-ex"), Some(312))
    );
    assert!(
        e[25]
            .summary
            .as_deref()
            .unwrap()
            .starts_with("(broker) basic.ack")
    );
    // The redeclared exchange closes the channel with 406.
    assert_eq!(
        key(&e[31]),
        ("exchange.declare", Some("reef-test-ex2"), Some(406))
    );
    assert_eq!(key(&e[32]), ("channel.close", None, Some(406)));
    assert_eq!(e[32].amqp_channel, Some(2));
    assert_eq!(key(&e[37]), ("connection.close", None, Some(200)));
}

/// Live: a pika publisher and consumer against the RabbitMQ at 127.0.0.1:5672
/// (guest/guest), captured on `lo` while they run. Exchanges and queues are unique
/// to this run and deleted by the script.
mod running_broker {
    use std::collections::BTreeSet;
    use std::process::Command;
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Flags, Protocol};

    use crate::live_tools::{SETTLE, python_with, run, server, unique};

    /// The publisher declares, binds, publishes five JSON orders and a 20000-byte
    /// message, then one nobody can route (mandatory, with publisher confirms). The
    /// consumer takes one with basic.get, the other five delivered and acknowledged,
    /// cleans up, and provokes a channel error.
    const SCRIPT: &str = r#"
import json, sys
import pika

p = sys.argv[1]
ex, q, ex2 = p + "-ex", p + "-q", p + "-ex2"
params = pika.ConnectionParameters(
    "127.0.0.1", 5672, "/", pika.PlainCredentials("guest", "guest"),
    client_properties={"connection_name": p},
)
# The publisher: declares, binds, publishes five JSON orders and a 20000-byte
# message, then one nobody can route (mandatory, with publisher confirms).
pub = pika.BlockingConnection(params)
ch = pub.channel()
ch.exchange_declare(ex, "direct", auto_delete=True)
ch.queue_declare(q)
ch.queue_bind(q, ex, routing_key="orders")
for i in range(5):
    ch.basic_publish(ex, "orders", json.dumps({"order": i}).encode(),
                     pika.BasicProperties(content_type="application/json"))
ch.basic_publish("", q, b"x" * 20000)
ch.confirm_delivery()
try:
    ch.basic_publish(ex, "nowhere", b"unroutable", mandatory=True)
except pika.exceptions.UnroutableError:
    print("returned")
pub.close()
# The consumer: one basic.get, the other five delivered and acknowledged.
con = pika.BlockingConnection(params)
ch = con.channel()
ch.basic_qos(prefetch_count=10)
m, _, body = ch.basic_get(q, auto_ack=True)
got = [len(body)]
for m, _, body in ch.consume(q, inactivity_timeout=3):
    if m is None:
        break
    ch.basic_ack(m.delivery_tag)
    got.append(len(body))
    if len(got) == 6:
        break
ch.cancel()
ch.queue_delete(q)
ch.exchange_delete(ex)
# A channel error: the exchange exists with another type.
ch2 = con.channel()
ch2.exchange_declare(ex2, "direct", auto_delete=True)
try:
    ch2.exchange_declare(ex2, "topic")
except pika.exceptions.ChannelClosedByBroker as e:
    print("closed", e.reply_code)
ch3 = con.channel()
ch3.exchange_delete(ex2)
con.close()
print("got", got)
"#;

    #[test]
    fn live_pika_publisher_and_consumer() {
        let py = python_with(
            "pika",
            "scripts/test installs it in its venv (REEF_PYTHON); or pip install pika",
        );
        server("127.0.0.1:5672", "RabbitMQ (rabbitmq-server)");
        let p = unique("amqp");
        let (ex, q, ex2) = (format!("{p}-ex"), format!("{p}-q"), format!("{p}-ex2"));

        let cap = LiveCapture::start("lo");
        let out = run(
            Command::new(&py).args(["-c", SCRIPT, &p]),
            Duration::from_secs(8),
        );
        let (entries, _) = cap.stop(SETTLE);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("returned") && said.contains("closed 406"),
            "{said}"
        );
        assert!(said.contains("got [12, 12, 12, 12, 12, 20000]"), "{said}");

        let all: Vec<Entry> = entries
            .into_iter()
            .filter(|x| x.protocol == Protocol::Amqp && x.dst_port == Some(5672))
            .collect();
        // This run's two connections: those that named its exchanges and queue.
        let mine = |x: &Entry| {
            [&x.amqp_exchange, &x.amqp_queue]
                .iter()
                .any(|v| v.as_deref().is_some_and(|v| v.starts_with(&p)))
        };
        let conns: BTreeSet<_> = all.iter().filter(|x| mine(x)).map(|x| x.src_port).collect();
        assert_eq!(conns.len(), 2, "publisher and consumer");
        let e: Vec<&Entry> = all.iter().filter(|x| conns.contains(&x.src_port)).collect();
        let of = |m: &str| -> Vec<&Entry> {
            e.iter()
                .copied()
                .filter(|x| x.method.as_deref() == Some(m))
                .collect()
        };

        // Each connection's handshake, paired.
        for m in ["connection.start", "connection.tune", "connection.open"] {
            assert_eq!(of(m).len(), 2, "{m}");
            assert!(
                of(m)
                    .iter()
                    .all(|x| x.summary.as_deref().unwrap().contains(" → "))
            );
        }
        let declare = of("queue.declare");
        assert_eq!(declare.len(), 1);
        assert_eq!(declare[0].amqp_queue.as_deref(), Some(q.as_str()));
        let bind = of("queue.bind");
        assert_eq!(
            (
                bind[0].amqp_exchange.as_deref(),
                bind[0].amqp_routing_key.as_deref()
            ),
            (Some(ex.as_str()), Some("orders"))
        );
        assert!(
            bind[0]
                .summary
                .as_deref()
                .unwrap()
                .ends_with("→ (broker) queue.bind-ok")
        );

        // Published: five orders to the exchange, one big message to the queue by the
        // default exchange, one unroutable.
        let published = of("basic.publish");
        assert_eq!(published.len(), 7);
        let orders: Vec<_> = published
            .iter()
            .filter(|x| x.amqp_exchange.as_deref() == Some(ex.as_str()))
            .filter(|x| x.amqp_routing_key.as_deref() == Some("orders"))
            .collect();
        assert_eq!(orders.len(), 5);
        for (i, x) in orders.iter().enumerate() {
            assert_eq!(x.request_body_size, Some(12));
            assert_eq!(
                x.request_body.as_ref().unwrap().0,
                format!("{{\"order\": {i}}}").as_bytes()
            );
        }
        let big = published
            .iter()
            .find(|x| x.amqp_exchange.as_deref() == Some(""))
            .unwrap();
        assert_eq!(big.amqp_routing_key.as_deref(), Some(q.as_str()));
        assert_eq!(big.request_body_size, Some(20_000));
        let returned = of("basic.return");
        assert_eq!(returned.len(), 1);
        assert_eq!(returned[0].status_code, Some(312));
        assert_eq!(returned[0].amqp_routing_key.as_deref(), Some("nowhere"));
        assert!(
            returned[0]
                .summary
                .as_deref()
                .unwrap()
                .contains("312 NO_ROUTE")
        );

        // Consumed: one by basic.get, five delivered and acknowledged one by one.
        let get = of("basic.get");
        assert_eq!(get.len(), 1);
        assert!(
            get[0]
                .summary
                .as_deref()
                .unwrap()
                .contains("→ (broker) basic.get-ok")
        );
        let delivered = of("basic.deliver");
        assert_eq!(delivered.len(), 5);
        let sizes: Vec<_> = delivered
            .iter()
            .map(|x| x.request_body_size.unwrap())
            .collect();
        assert_eq!(sizes, [12, 12, 12, 12, 20_000]);
        let acks: Vec<_> = of("basic.ack")
            .into_iter()
            .filter(|x| !x.summary.as_deref().unwrap().starts_with("(broker)"))
            .map(|x| x.summary.clone().unwrap())
            .collect();
        let want: Vec<_> = (2..=6)
            .map(|t| format!("basic.ack delivery_tag={t}"))
            .collect();
        assert_eq!(acks, want);

        // The channel error: the declare that caused it, and the broker's close.
        let redeclared: Vec<_> = of("exchange.declare")
            .into_iter()
            .filter(|x| x.amqp_exchange.as_deref() == Some(ex2.as_str()))
            .map(|x| x.status_code)
            .collect();
        assert_eq!(redeclared, [None, Some(406)]);
        let closed: Vec<_> = of("channel.close")
            .into_iter()
            .map(|x| x.status_code)
            .collect();
        assert!(closed.contains(&Some(406)), "{closed:?}");
        let bye: Vec<_> = of("connection.close")
            .into_iter()
            .map(|x| (x.status_code, x.summary.as_deref().unwrap()))
            .collect();
        let normal = "connection.close 200 Normal shutdown → (broker) connection.close-ok";
        assert_eq!(bye, [(Some(200), normal); 2]);
        assert!(
            e.iter()
                .all(|x| !x.flags.intersects(Flags::INCOMPLETE | Flags::MALFORMED)),
            "{e:#?}"
        );
    }
}
