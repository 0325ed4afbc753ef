//! Helpers for Reef's end-to-end tests: where the shared corpus is, how to run a
//! capture through the whole pipeline, and how to rewrite real captures into harder
//! ones (extra VLAN tags, IP fragments) without inventing traffic.

pub mod kube_api;
pub mod live;
pub mod nats;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use reef_engine::{Config, Engine, Stats};
use reef_pcap::{CaptureReader, PcapWriter};
use reef_schema::Entry;

/// The shared corpus of real captures (`../shared/corpus` beside the repository, or
/// `$REEF_CORPUS`). The tests need it: CI checks it out next to the clone.
pub fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REEF_CORPUS") {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    assert!(
        dir.is_dir(),
        "the shared corpus is not at {} — check out ../shared beside the repository or set REEF_CORPUS",
        dir.display()
    );
    dir
}

/// A capture of the corpus by name (without its extension).
pub fn corpus_file(name: &str) -> PathBuf {
    let dir = corpus_dir();
    for ext in ["pcap", "pcapng"] {
        let p = dir.join(format!("{name}.{ext}"));
        if p.exists() {
            return p;
        }
    }
    panic!("no capture named {name} in {}", dir.display());
}

/// This crate's own fixtures, under `integration/cases/`.
pub fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cases")
        .join(name)
}

/// Runs capture bytes through an engine with flow records on, returning the flows.
pub fn flows_of(path: &Path) -> Vec<reef_schema::FlowRecord> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = CaptureReader::new(Cursor::new(bytes)).expect("a capture");
    let mut engine = Engine::new(Config {
        flow_records: true,
        ..Config::default()
    });
    while let Some(p) = reader.next_packet().expect("a well-formed capture") {
        engine.packet(p.ts_ns, p.link_type, p.data);
    }
    engine.finish();
    engine.drain_flows().collect()
}

/// Runs capture bytes through the engine, as `reef dissect` does.
pub fn dissect_bytes(bytes: &[u8]) -> (Vec<Entry>, Stats) {
    let mut reader = CaptureReader::new(Cursor::new(bytes)).expect("a capture");
    let mut engine = Engine::new(Config::default());
    let mut entries = Vec::new();
    while let Some(p) = reader.next_packet().expect("a well-formed capture") {
        engine.packet(p.ts_ns, p.link_type, p.data);
        entries.extend(engine.take_entries());
    }
    engine.finish();
    entries.extend(engine.take_entries());
    (entries, engine.stats())
}

pub fn dissect_file(path: &Path) -> (Vec<Entry>, Stats) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    dissect_bytes(&bytes)
}

/// Rewrites a capture frame by frame: `f` gets each frame and returns the frames to
/// write instead (none, itself, or several), with the output link type.
pub fn rewrite(path: &Path, link_type: u16, mut f: impl FnMut(&[u8]) -> Vec<Vec<u8>>) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = CaptureReader::new(Cursor::new(bytes)).expect("a capture");
    let mut w = PcapWriter::new(Vec::new(), link_type, true).expect("in memory");
    while let Some(p) = reader.next_packet().expect("a well-formed capture") {
        for frame in f(p.data) {
            w.write_packet(p.ts_ns, &frame, frame.len() as u32)
                .expect("in memory");
        }
    }
    w.into_inner().expect("in memory")
}

/// One line per entry with what a reviewer checks: time, endpoints, request, status,
/// flags and sizes. Golden files are made of these.
pub fn golden_line(e: &Entry) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    format!(
        "{}.{:06}\t{}:{} -> {}:{}\t{} {}\t{}\t[{}]\treq={} resp={} body={}/{}",
        e.timestamp.div_euclid(1_000_000_000),
        e.timestamp.rem_euclid(1_000_000_000) / 1000,
        e.src_ip,
        e.src_port.unwrap_or(0),
        e.dst_ip,
        e.dst_port.unwrap_or(0),
        e.method.as_deref().unwrap_or("-"),
        e.path.as_deref().unwrap_or("-"),
        e.status_code.map_or("-".to_string(), |s| s.to_string()),
        e.flags.names().collect::<Vec<_>>().join(","),
        opt(e.request_size),
        opt(e.response_size),
        opt(e.request_body_size),
        opt(e.response_body_size),
    )
}
