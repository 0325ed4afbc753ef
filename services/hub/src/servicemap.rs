//! The service map: who talks to whom, with request counts, bytes, error rates and
//! latency, over a set of entry batches.

use std::collections::{BTreeSet, HashMap};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use serde::Serialize;

/// Latencies kept per edge for its percentiles (a uniform sample beyond this).
pub const MAX_LATENCY_SAMPLES: usize = 4096;
/// Nodes in a map at most: the busiest are kept.
pub const MAX_NODES: usize = 500;

#[derive(Debug, Serialize, PartialEq)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub namespace: Option<String>,
    pub kind: String,
    pub requests: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Edge {
    pub source: String,
    pub target: String,
    pub protocols: Vec<String>,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub latency_avg_us: Option<f64>,
    pub latency_p50_us: Option<i64>,
    pub latency_p99_us: Option<i64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ServiceMap {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub entries: u64,
}

#[derive(Default)]
struct EdgeAcc {
    protocols: BTreeSet<String>,
    requests: u64,
    errors: u64,
    request_bytes: u64,
    response_bytes: u64,
    latency_sum: i128,
    latency_n: u64,
    samples: Vec<i64>,
}

struct NodeAcc {
    name: String,
    namespace: Option<String>,
    kind: String,
    requests: u64,
}

#[derive(Default)]
pub struct Builder {
    nodes: HashMap<String, NodeAcc>,
    edges: HashMap<(String, String), EdgeAcc>,
    entries: u64,
    rng: u64,
}

struct Cols<'a> {
    str_cols: HashMap<&'static str, &'a arrow_array::StringArray>,
    status: Option<&'a arrow_array::PrimitiveArray<Int32Type>>,
    grpc_status: Option<&'a arrow_array::PrimitiveArray<Int32Type>>,
    elapsed: Option<&'a arrow_array::PrimitiveArray<Int64Type>>,
    req_size: Option<&'a arrow_array::PrimitiveArray<UInt64Type>>,
    resp_size: Option<&'a arrow_array::PrimitiveArray<UInt64Type>>,
}

const STR_COLS: &[&str] = &[
    "protocol",
    "src_ip",
    "dst_ip",
    "src_pod",
    "dst_pod",
    "src_namespace",
    "dst_namespace",
    "src_service",
    "dst_service",
    "src_workload",
    "dst_workload",
    "src_workload_kind",
    "dst_workload_kind",
];

impl<'a> Cols<'a> {
    fn new(b: &'a RecordBatch) -> Cols<'a> {
        let mut str_cols = HashMap::new();
        for name in STR_COLS {
            if let Some(a) = b
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
            {
                str_cols.insert(*name, a);
            }
        }
        Cols {
            str_cols,
            status: b
                .column_by_name("status_code")
                .and_then(|c| c.as_primitive_opt()),
            grpc_status: b
                .column_by_name("grpc_status")
                .and_then(|c| c.as_primitive_opt()),
            elapsed: b
                .column_by_name("elapsed_time")
                .and_then(|c| c.as_primitive_opt()),
            req_size: b
                .column_by_name("request_size")
                .and_then(|c| c.as_primitive_opt()),
            resp_size: b
                .column_by_name("response_size")
                .and_then(|c| c.as_primitive_opt()),
        }
    }

    fn s(&self, name: &str, row: usize) -> Option<&'a str> {
        let a = self.str_cols.get(name)?;
        (a.is_valid(row) && !a.value(row).is_empty()).then(|| a.value(row))
    }

    fn node(&self, side: &str, row: usize) -> (String, NodeAcc) {
        let col = |c: &str| self.s(&format!("{side}_{c}"), row);
        let ns = col("namespace").map(str::to_string);
        let qualified = |kind: &str, name: &str| match &ns {
            Some(ns) => format!("{kind}:{ns}/{name}"),
            None => format!("{kind}:{name}"),
        };
        let (id, name, kind) = if let Some(svc) = col("service") {
            (
                qualified("service", svc),
                svc.to_string(),
                "service".to_string(),
            )
        } else if let Some(w) = col("workload") {
            let kind = col("workload_kind").unwrap_or("workload").to_string();
            (qualified("workload", w), w.to_string(), kind)
        } else if let Some(p) = col("pod") {
            (qualified("pod", p), p.to_string(), "pod".to_string())
        } else {
            let ip = col("ip").unwrap_or("?");
            (format!("ip:{ip}"), ip.to_string(), "ip".to_string())
        };
        (
            id,
            NodeAcc {
                name,
                namespace: ns,
                kind,
                requests: 0,
            },
        )
    }

    fn failed(&self, row: usize) -> bool {
        let status = self
            .status
            .filter(|a| a.is_valid(row))
            .map(|a| a.value(row));
        match self.s("protocol", row).unwrap_or("") {
            "http" | "graphql" => status.is_some_and(|s| s >= 500),
            "grpc" => self
                .grpc_status
                .filter(|a| a.is_valid(row))
                .map(|a| a.value(row))
                .or(status)
                .is_some_and(|s| s != 0),
            "websocket" | "tls" => false,
            _ => status.is_some_and(|s| s != 0),
        }
    }
}

fn opt<T: arrow_array::ArrowPrimitiveType>(
    a: Option<&arrow_array::PrimitiveArray<T>>,
    row: usize,
) -> Option<T::Native> {
    a.filter(|a| a.is_valid(row)).map(|a| a.value(row))
}

impl Builder {
    /// Adds the rows of `batch` selected by `rows` (all when None).
    pub fn add(&mut self, batch: &RecordBatch, rows: Option<&[u32]>) {
        let cols = Cols::new(batch);
        let all: Vec<u32>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..batch.num_rows() as u32).collect();
                &all
            }
        };
        for &row in rows {
            let row = row as usize;
            self.entries += 1;
            let (src, src_acc) = cols.node("src", row);
            let (dst, dst_acc) = cols.node("dst", row);
            self.nodes.entry(src.clone()).or_insert(src_acc);
            self.nodes.entry(dst.clone()).or_insert(dst_acc).requests += 1;
            let e = self.edges.entry((src, dst)).or_default();
            e.requests += 1;
            if let Some(p) = cols.s("protocol", row)
                && !e.protocols.contains(p)
            {
                e.protocols.insert(p.to_string());
            }
            if cols.failed(row) {
                e.errors += 1;
            }
            e.request_bytes += opt(cols.req_size, row).unwrap_or(0);
            e.response_bytes += opt(cols.resp_size, row).unwrap_or(0);
            if let Some(us) = opt(cols.elapsed, row) {
                e.latency_sum += i128::from(us);
                e.latency_n += 1;
                if e.samples.len() < MAX_LATENCY_SAMPLES {
                    e.samples.push(us);
                } else {
                    // Reservoir sampling keeps a uniform sample of every latency seen.
                    self.rng = self
                        .rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let j = (self.rng >> 33) % e.latency_n;
                    if (j as usize) < MAX_LATENCY_SAMPLES {
                        e.samples[j as usize] = us;
                    }
                }
            }
        }
    }

    pub fn finish(self) -> ServiceMap {
        let mut nodes: Vec<(String, NodeAcc)> = self.nodes.into_iter().collect();
        // The busiest nodes (as servers, then as clients by name) first.
        nodes.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(&b.0)));
        nodes.truncate(MAX_NODES);
        let kept: std::collections::HashSet<&str> =
            nodes.iter().map(|(id, _)| id.as_str()).collect();
        let mut edges: Vec<Edge> = self
            .edges
            .into_iter()
            .filter(|((s, t), _)| kept.contains(s.as_str()) && kept.contains(t.as_str()))
            .map(|((source, target), mut e)| {
                e.samples.sort_unstable();
                let pct = |p: f64| -> Option<i64> {
                    if e.samples.is_empty() {
                        return None;
                    }
                    let i = ((e.samples.len() - 1) as f64 * p).round() as usize;
                    e.samples.get(i).copied()
                };
                Edge {
                    source,
                    target,
                    protocols: e.protocols.iter().cloned().collect(),
                    requests: e.requests,
                    errors: e.errors,
                    error_rate: if e.requests == 0 {
                        0.0
                    } else {
                        e.errors as f64 / e.requests as f64
                    },
                    request_bytes: e.request_bytes,
                    response_bytes: e.response_bytes,
                    latency_avg_us: (e.latency_n > 0)
                        .then(|| e.latency_sum as f64 / e.latency_n as f64),
                    latency_p50_us: pct(0.5),
                    latency_p99_us: pct(0.99),
                }
            })
            .collect();
        edges.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.source.cmp(&b.source)));
        ServiceMap {
            nodes: nodes
                .into_iter()
                .map(|(id, n)| Node {
                    id,
                    name: n.name,
                    namespace: n.namespace,
                    kind: n.kind,
                    requests: n.requests,
                })
                .collect(),
            edges,
            entries: self.entries,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reef_schema::{Entry, Protocol};

    fn e(src: &str, dst_svc: Option<&str>, status: i32, us: i64) -> Entry {
        Entry {
            id: "x".into(),
            protocol: Protocol::Http,
            src_ip: src.parse().unwrap(),
            dst_ip: "10.0.0.9".parse().unwrap(),
            dst_service: dst_svc.map(str::to_string),
            dst_namespace: dst_svc.map(|_| "shop".to_string()),
            src_pod: (src == "10.0.0.1").then(|| "web-1".to_string()),
            src_namespace: (src == "10.0.0.1").then(|| "shop".to_string()),
            src_workload: (src == "10.0.0.1").then(|| "web".to_string()),
            src_workload_kind: (src == "10.0.0.1").then(|| "Deployment".to_string()),
            status_code: Some(status),
            elapsed_time: Some(us),
            request_size: Some(100),
            response_size: Some(1000),
            ..Entry::default()
        }
    }

    #[test]
    fn edges_count_requests_errors_and_latency() {
        let mut rows = Vec::new();
        for i in 0..100 {
            rows.push(e(
                "10.0.0.1",
                Some("api"),
                if i < 10 { 503 } else { 200 },
                i + 1,
            ));
        }
        rows.push(e("10.0.0.2", None, 404, 7));
        let batch = Entry::batch(&rows);
        let mut b = Builder::default();
        b.add(&batch, None);
        let map = b.finish();
        assert_eq!(map.entries, 101);
        assert_eq!(map.edges.len(), 2);
        let top = &map.edges[0];
        assert_eq!(top.source, "workload:shop/web");
        assert_eq!(top.target, "service:shop/api");
        assert_eq!(top.requests, 100);
        assert_eq!(top.errors, 10);
        assert!((top.error_rate - 0.1).abs() < 1e-9);
        assert_eq!(top.request_bytes, 10_000);
        assert_eq!(top.latency_p50_us, Some(51));
        assert_eq!(top.latency_p99_us, Some(99));
        assert_eq!(top.protocols, vec!["http".to_string()]);
        let other = &map.edges[1];
        assert_eq!(other.source, "ip:10.0.0.2");
        assert_eq!(other.target, "ip:10.0.0.9");
        assert_eq!(other.errors, 0, "a 404 is not a server error");
        let api = map
            .nodes
            .iter()
            .find(|n| n.id == "service:shop/api")
            .unwrap();
        assert_eq!(api.kind, "service");
        assert_eq!(api.requests, 100);
        let web = map
            .nodes
            .iter()
            .find(|n| n.id == "workload:shop/web")
            .unwrap();
        assert_eq!(web.kind, "Deployment");
        // Only some rows.
        let mut b = Builder::default();
        b.add(&batch, Some(&[0, 100]));
        assert_eq!(b.finish().entries, 2);
    }
}
