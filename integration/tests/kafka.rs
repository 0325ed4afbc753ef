//! Kafka end to end on the corpus captures. No Kafka broker exists on these machines
//! (and none can be installed), so the captures and the unit tests built from the
//! protocol's message definitions (`pipeline/dissect/src/kafka/tests.rs`) are the
//! tests.
//!
//! tshark 4.0 differences shown here (its Kafka dissector predates these versions):
//! - Metadata v12 (`kafka_ndpi_kafka`, frame 33): tshark reads the topic as
//!   `[ Null ]`; Reef reads `sampleTopic`.
//! - Produce v9 (`kafka_ndpi_kafka`, frame 36): tshark flags it malformed, finds no
//!   topic and cannot link the response (frame 37: "Request Missing"); Reef reads the
//!   topic and pairs the response by correlation id.
//! - Fetch v13 (`kafka_deepflow_mixed-with-unsupported`, frame 1): tshark flags it
//!   malformed and cannot link the response (frame 9); Reef pairs them (a long poll of
//!   about 500 ms).

use reef_integration::{corpus_file, dissect_file};
use reef_schema::{Entry, Flags, Protocol};

fn kafka(name: &str) -> Vec<Entry> {
    dissect_file(&corpus_file(name))
        .0
        .into_iter()
        .filter(|e| e.protocol == Protocol::Kafka)
        .collect()
}

fn truth(name: &str) -> serde_json::Value {
    let p = reef_integration::corpus_dir().join(format!("{name}.truth.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn by_corr(e: &[Entry], port: u16, corr: i32) -> &Entry {
    e.iter()
        .find(|x| x.src_port == Some(port) && x.kafka_correlation_id == Some(corr))
        .unwrap_or_else(|| panic!("no entry for {port}/{corr}"))
}

#[test]
fn api_versions_v3_flexible_header() {
    let e = kafka("kafka_deepflow_api-versions-v3");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].method.as_deref(), Some("ApiVersions"));
    assert_eq!(e[0].kafka_api_version, Some(3));
    assert_eq!(e[0].kafka_client_id.as_deref(), Some("adminclient-1"));
    assert_eq!(e[0].kafka_correlation_id, Some(2));
    assert_eq!(e[0].status_code, Some(0));
    assert_eq!(e[0].response_size, Some(439));
}

#[test]
fn merged_captures_with_missing_requests_and_retransmissions() {
    let e = kafka("kafka_ndpi_kafka");
    let names: Vec<_> = e.iter().map(|x| x.method.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "ApiVersions",
            "Metadata",
            "Metadata",
            "Metadata",
            "ApiVersions",
            "Produce",
            "Produce",
            "Metadata",
            "ApiVersions",
            "ApiVersions",
            "ApiVersions",
            "InitProducerId",
            "Metadata",
            "Produce",
        ]
    );
    // Requests whose responses the capture does not have.
    let unanswered: Vec<_> = e
        .iter()
        .filter(|x| x.flags.contains(Flags::NO_RESPONSE))
        .map(|x| (x.src_port.unwrap(), x.kafka_correlation_id.unwrap()))
        .collect();
    assert_eq!(unanswered, [(53768, 212), (58300, 4), (53052, 15)]);
    // A retransmitted request and response count once.
    let produce: Vec<_> = e
        .iter()
        .filter(|x| x.src_port == Some(38176))
        .map(|x| (x.kafka_correlation_id.unwrap(), x.status_code.unwrap()))
        .collect();
    assert_eq!(produce, [(2, 0), (3, 0)]);
    assert_eq!(
        by_corr(&e, 38176, 2).kafka_topic.as_deref(),
        Some("LB_MAIN_LOG_INPUT")
    );
    assert_eq!(
        by_corr(&e, 38176, 2).kafka_client_id.as_deref(),
        Some("rdkafka")
    );
}

/// tshark differs: Metadata v12 reads as topic `[ Null ]` in its view.
#[test]
fn tshark_differs_metadata_v12_topic() {
    let t = truth("kafka_ndpi_kafka");
    let md = t["l7"]["kafka"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["api_version"] == 12)
        .unwrap();
    assert_eq!(md["topics"][0], "[ Null ]");
    let e = kafka("kafka_ndpi_kafka");
    let m = by_corr(&e, 46136, 5);
    assert_eq!(m.method.as_deref(), Some("Metadata"));
    assert_eq!(m.kafka_api_version, Some(12));
    assert_eq!(m.kafka_topic.as_deref(), Some("sampleTopic"));
    assert_eq!(m.status_code, Some(0));
    assert!(!m.flags.contains(Flags::MALFORMED));
}

/// tshark differs: Produce v9 is malformed in its view (no topic) and its response
/// is "Request Missing"; Reef reads the topic and pairs them.
#[test]
fn tshark_differs_produce_v9_paired_with_its_response() {
    let t = truth("kafka_ndpi_kafka");
    let k = &t["l7"]["kafka"];
    let produce = k["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["api_version"] == 9)
        .unwrap();
    assert!(produce["response"].is_null());
    assert_eq!(produce["topics"].as_array().unwrap().len(), 0);
    assert!(
        k["unmatched_responses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["correlation_id"] == 6)
    );
    let e = kafka("kafka_ndpi_kafka");
    let p = by_corr(&e, 46136, 6);
    assert_eq!(p.method.as_deref(), Some("Produce"));
    assert_eq!(p.kafka_api_version, Some(9));
    assert_eq!(p.kafka_topic.as_deref(), Some("sampleTopic"));
    assert_eq!(p.kafka_client_id.as_deref(), Some("console-producer"));
    assert_eq!(p.status_code, Some(0));
    assert_eq!(p.response_size, Some(62));
    assert!(p.summary.as_deref().unwrap().contains("acks=-1"));
    assert!(!p.incomplete);
}

/// tshark differs: Fetch v13 is malformed in its view and its response unmatched;
/// Reef pairs the long poll with its response.
#[test]
fn tshark_differs_fetch_v13_paired_with_its_response() {
    let t = truth("kafka_deepflow_mixed-with-unsupported");
    let k = &t["l7"]["kafka"];
    assert!(k["transactions"][0]["response"].is_null());
    assert_eq!(k["unmatched_responses"][0]["correlation_id"], 15551976);
    let e = kafka("kafka_deepflow_mixed-with-unsupported");
    let f = by_corr(&e, 56786, 15551976);
    assert_eq!(f.method.as_deref(), Some("Fetch"));
    assert_eq!(f.kafka_api_version, Some(13));
    assert_eq!(f.status_code, Some(0));
    assert!((490_000..520_000).contains(&f.elapsed_time.unwrap()));
    let commit = by_corr(&e, 56848, 15551977);
    assert_eq!(commit.method.as_deref(), Some("OffsetCommit"));
    assert_eq!(commit.kafka_topic.as_deref(), Some("orders"));
    assert!(
        commit
            .summary
            .as_deref()
            .unwrap()
            .contains("group=frauddetectionservice")
    );
    assert_eq!(
        by_corr(&e, 56848, 15551978).method.as_deref(),
        Some("Heartbeat")
    );
}
