//! `reef local`: the same API as a hub, from one process with no NATS, and its local
//! retention across restarts.

use std::path::PathBuf;
use std::time::Duration;

use reef_integration::{case_dir, corpus_file, dissect_file};
use serde_json::{Value, json};

use crate::hub::{Client, http};

struct Local {
    addr: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts `reef local` in-process on a free port and waits for the replay to be stored.
async fn start(files: &[PathBuf], dir: &std::path::Path) -> Local {
    let mut worker = reef_worker::WorkerConfig::new(
        String::new(),
        "laptop",
        reef_worker::Source::Pcap {
            files: files.to_vec(),
            speed: reef_worker::Speed::Max,
        },
    );
    worker.redactor = None;
    let cfg = reef_local::LocalConfig {
        worker,
        data_dir: dir.to_path_buf(),
        retention: reef_local_bus::Limits::default(),
        hub: reef_hub::HubConfig::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let task = tokio::spawn(reef_local::run(cfg, listener, stop_rx, move |p| {
        if let reef_local::Progress::Replayed { entries, .. } = p {
            let _ = done_tx.send(entries);
        }
    }));
    let entries =
        tokio::task::spawn_blocking(move || done_rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the replay is stored");
    assert!(entries > 0);
    Local { addr, stop, task }
}

impl Local {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || http(addr, "GET", &path, ""))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reef_local_serves_the_hub_api_and_keeps_entries_across_restarts() {
    let dir = std::env::temp_dir().join(format!("reef-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = vec![
        case_dir("keepalive-1000").join("capture.pcap"),
        corpus_file("http_zeek_methods"),
    ];
    let want: Vec<reef_schema::Entry> = first.iter().flat_map(|f| dissect_file(f).0).collect();
    let want_4xx = want
        .iter()
        .filter(|e| e.status_code.is_some_and(|s| s >= 400))
        .count();
    assert!(want_4xx > 20);

    let local = start(&first, &dir).await;
    let (status, body) = get(local.addr, "/api/entries?since=start&limit=10000").await;
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), want.len());
    let first_line: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(first_line["node"], "laptop");

    // The WebSocket: history then live, with a filter.
    let mut c = Client::connect(&format!("ws://{}/ws", local.addr)).await;
    c.subscribe(json!({"type": "subscribe", "filter": "status_code >= 400", "since": "start"}))
        .await
        .unwrap();
    c.read_until(want_4xx, Duration::from_secs(30)).await;
    c.drain(Duration::from_millis(500)).await;
    assert_eq!(c.entries.len(), want_4xx);
    c.assert_no_repeats();

    // One entry in full, the schema's frequent values, SQL and the service map.
    let e = &c.entries[0];
    let (status, full) = get(
        local.addr,
        &format!(
            "/api/entries/{}?cursor={}",
            e["id"].as_str().unwrap(),
            e["cursor"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, 200, "{full}");
    let full: Value = serde_json::from_str(&full).unwrap();
    assert!(full["response_headers"].is_object());
    let (_, schema) = get(local.addr, "/api/schema").await;
    let schema: Value = serde_json::from_str(&schema).unwrap();
    let method = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "method")
        .unwrap();
    assert_eq!(method["values"][0]["value"], "GET");
    let addr = local.addr;
    let (status, sql) = tokio::task::spawn_blocking(move || {
        http(
            addr,
            "POST",
            "/api/sql",
            r#"{"sql": "SELECT count(*) FROM entries WHERE status_code >= 400"}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{sql}");
    assert_eq!(
        serde_json::from_str::<Value>(&sql).unwrap()["rows"][0][0],
        json!(want_4xx)
    );
    let (status, map) = get(local.addr, "/api/servicemap").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&map).unwrap()["entries"],
        json!(want.len())
    );
    let (_, stats) = get(local.addr, "/api/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["workers"][0]["node"], "laptop");
    drop(c);
    local.stop().await;

    // Restarted on the same data directory with another capture: the first one is
    // still there, in order, before the new one.
    let second = vec![corpus_file("http_zeek_bro-org-browse")];
    let more = dissect_file(&second[0]).0.len();
    let local = start(&second, &dir).await;
    let (status, body) = get(local.addr, "/api/entries?since=start&limit=10000").await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want.len() + more);
    let seqs: Vec<u64> = lines
        .iter()
        .map(|v| {
            let c = v["cursor"].as_str().unwrap();
            c.split('.').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "in stream order");
    local.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
