//! The reef.v1 records and their wire forms.
//!
//! An [`Entry`] is the unit everywhere in Reef: in Arrow batches on NATS, in SQL filters,
//! in JSON on the WebSocket and in `reef dissect --format jsonl`. This crate defines it
//! once and derives the Arrow schema ([`entry_schema`]) and the JSON Schema
//! ([`entry_json_schema`], committed as `schemas/entry.v1.schema.json`) from that
//! definition.

mod base64;
pub mod columns;
#[macro_use]
mod record;
mod entry;
mod flow;
pub mod ipc;
mod json;
#[cfg(test)]
mod json_line_tests;
mod os;
mod status;
pub mod subjects;
mod values;

pub use entry::{
    COLUMNS, Entry, EntryBatchBuilder, entries_from_batch, entry_json_schema, entry_schema,
};
pub use flow::{
    FLOW_COLUMNS, FlowBatchBuilder, FlowRecord, flow_json_schema, flow_schema, flows_from_batch,
};
pub use json::{JsonOut, WriteJson, write_json_line, write_json_line_serde};
pub use os::{
    OS_ACCEPT, OS_CLOSE, OS_COLUMNS, OS_CONNECT, OsEvent, OsEventBatchBuilder, os_event_schema,
    os_events_from_batch, os_json_schema,
};
pub use record::ColumnInfo;

/// The values the enum columns can take (`protocol`, `transport`, `capture_source`):
/// filters check strings compared with them, and the dashboard suggests them.
pub fn column_domains() -> std::collections::HashMap<String, Vec<String>> {
    let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let protocols: Vec<&str> = Protocol::ALL.iter().map(|p| p.as_str()).collect();
    let transports: Vec<&str> = Transport::ALL.iter().map(|p| p.as_str()).collect();
    let sources: Vec<&str> = CaptureSource::ALL.iter().map(|p| p.as_str()).collect();
    [
        ("protocol".to_string(), names(&protocols)),
        ("transport".to_string(), names(&transports)),
        ("capture_source".to_string(), names(&sources)),
    ]
    .into_iter()
    .collect()
}
pub use status::{STATUS_EVERY, WorkerStatus};
pub use values::{Body, CaptureSource, Flags, Headers, Protocol, Transport};

/// Name and version of the entry schema; breaking changes get a new version.
pub const ENTRY_SCHEMA: &str = "reef.v1.entry";
/// Name and version of the flow record schema.
pub const FLOW_SCHEMA: &str = "reef.v1.flow";
/// Name and version of the OS event schema.
pub const OS_SCHEMA: &str = "reef.v1.os";
/// Prefix of every NATS subject and schema name of this version.
pub const SCHEMA_VERSION: &str = "reef.v1";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error("unknown {what} {value:?}")]
    UnknownValue { what: &'static str, value: String },
    #[error("column has type {found}, expected {expected}")]
    ColumnType { expected: String, found: String },
    #[error("null in a column that is never null ({0})")]
    NullInRequired(&'static str),
    #[error("batch lacks the required column {0:?}")]
    MissingColumn(&'static str),
    #[error("{0}")]
    BadValue(String),
    #[error("column {column:?}: {source}")]
    InColumn {
        column: &'static str,
        source: Box<SchemaError>,
    },
}

impl SchemaError {
    fn in_column(self, column: &'static str) -> SchemaError {
        SchemaError::InColumn {
            column,
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn sample() -> Entry {
        let mut req = Headers::new();
        req.push("Host", "example.com");
        req.push("Accept", "*/*");
        req.push("accept", "text/html");
        Entry {
            id: "n1-1".into(),
            node: Some("node-a".into()),
            timestamp: 1_700_000_000_123_456_789,
            elapsed_time: Some(1234),
            protocol: Protocol::Http,
            transport: Transport::Tcp,
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: Some(40000),
            dst_ip: "fd00::2".parse::<IpAddr>().unwrap(),
            dst_port: Some(80),
            capture_source: CaptureSource::Pcap,
            method: Some("GET".into()),
            path: Some("/a?b=c".into()),
            status_code: Some(200),
            http_version: Some("1.1".into()),
            request_headers: Some(req),
            response_body: Some(Body(vec![0, 159, 146, 150])),
            response_body_size: Some(4),
            incomplete: true,
            flags: Flags::RESPONSE_GAP | Flags::MALFORMED,
            dns_questions: Some(vec!["a.example A".into()]),
            src_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Entry::default()
        }
    }

    #[test]
    fn arrow_round_trip_keeps_every_field() {
        let entries = vec![sample(), Entry::default(), sample()];
        let batch = Entry::batch(&entries);
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), entry_schema());
        let back = entries_from_batch(&batch).unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn builder_is_reusable_after_finish() {
        let mut b = EntryBatchBuilder::with_capacity(4);
        b.push(&sample());
        assert_eq!(b.finish().num_rows(), 1);
        assert!(b.is_empty());
        b.push(&Entry::default());
        b.push(&sample());
        let batch = b.finish();
        assert_eq!(entries_from_batch(&batch).unwrap()[1], sample());
    }

    #[test]
    fn json_leaves_out_absent_columns_and_reads_back() {
        let e = sample();
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(r#""timestamp":1700000000123456789"#));
        assert!(line.contains(r#""src_ip":"10.0.0.1""#));
        assert!(line.contains(r#""flags":["response_gap","malformed"]"#));
        assert!(!line.contains("grpc_status"));
        let back: Entry = serde_json::from_str(&line).unwrap();
        assert_eq!(back.request_headers.as_ref().unwrap().len(), 2); // combined in JSON
        assert_eq!(back.response_body, e.response_body);
        assert_eq!(back.timestamp, e.timestamp);
    }

    #[test]
    fn missing_required_column_is_an_error() {
        let batch = Entry::batch(&[sample()]);
        let idx = batch.schema().index_of("protocol").unwrap();
        let mut b = batch.clone();
        b.remove_column(idx);
        assert_eq!(
            entries_from_batch(&b).unwrap_err(),
            SchemaError::MissingColumn("protocol")
        );
    }

    #[test]
    fn json_schema_lists_every_column() {
        let s = entry_json_schema();
        let props = s["properties"].as_object().unwrap();
        assert_eq!(props.len(), COLUMNS.len());
        for c in COLUMNS {
            assert!(props.contains_key(c.name), "{}", c.name);
            assert!(!c.doc.trim().is_empty(), "{} has no doc", c.name);
        }
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(required.contains(&"timestamp") && !required.contains(&"method"));
    }

    /// The committed JSON Schemas are what consumers in other languages read; they must
    /// be the ones this code generates. Regenerate with `REEF_BLESS=1 cargo test -p reef-schema`.
    #[test]
    fn committed_json_schemas_are_current() {
        for (file, schema) in [
            ("entry.v1.schema.json", entry_json_schema()),
            ("flow.v1.schema.json", flow_json_schema()),
            ("os.v1.schema.json", os_json_schema()),
        ] {
            let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
            let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            if std::env::var_os("REEF_BLESS").is_some() {
                std::fs::write(&path, &generated).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "schemas/{file} is stale: run REEF_BLESS=1 cargo test -p reef-schema"
            );
        }
    }

    #[test]
    fn os_events_round_trip_through_ipc() {
        let e = OsEvent {
            timestamp: 5,
            node: Some("n1".into()),
            kind: OS_CONNECT.into(),
            pid: Some(42),
            tgid: Some(42),
            comm: Some("curl".into()),
            cgroup_id: Some(7),
            container_id: Some("abc".into()),
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: Some(40000),
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: Some(80),
        };
        let mut b = OsEventBatchBuilder::with_capacity(2);
        b.push(&e);
        b.push(&OsEvent::default());
        let batch = b.finish();
        assert_eq!(batch.schema(), os_event_schema());
        let bytes = ipc::encode(&batch, ipc::Compression::Lz4).unwrap();
        let back = ipc::decode(&bytes).unwrap();
        assert_eq!(
            os_events_from_batch(&back[0]).unwrap(),
            vec![e, OsEvent::default()]
        );
    }

    #[test]
    fn flow_records_round_trip_through_arrow() {
        let f = FlowRecord {
            id: "w-1".into(),
            start: 10,
            end: 20,
            transport: Transport::Tcp,
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: Some(1234),
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: Some(80),
            protocol: Some("http1".into()),
            src_packets: Some(3),
            handshake_rtt: Some(120),
            end_reason: Some("fin".into()),
            ..FlowRecord::default()
        };
        let mut b = FlowBatchBuilder::with_capacity(2);
        b.push(&f);
        b.push(&FlowRecord::default());
        let batch = b.finish();
        assert_eq!(batch.schema(), flow_schema());
        assert_eq!(
            flows_from_batch(&batch).unwrap(),
            vec![f, FlowRecord::default()]
        );
    }
}
