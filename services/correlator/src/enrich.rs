//! Enrichment, pure: an entry batch in, the same batch out with its Kubernetes and
//! process context columns filled. Every other column is passed on as it is (the same
//! Arrow arrays, not copies); the context columns are built anew and replaced by name.
//!
//! A context value the indexes do not know keeps what the batch already had (a worker
//! with a tracer may have named the process itself), else stays null.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, UInt32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampNanosecondType, UInt16Type, UInt32Type};
use arrow_array::{
    Array, ArrayRef, MapArray, PrimitiveArray, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::ArrowError;
use reef_k8s_index::{K8sIndex, Nanos, Resolved};
use reef_schema::columns::{Column, OptLabels};
use reef_schema::subjects;

use crate::os_index::{OsIndex, Proc};

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("the batch has no {0:?} column")]
    MissingColumn(&'static str),
    #[error("column {column:?} is {found}, expected {expected}")]
    ColumnType {
        column: String,
        expected: String,
        found: String,
    },
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// Rows by outcome, per side (index 0: src, 1: dst).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnrichStats {
    pub rows: usize,
    /// Rows whose IP the Kubernetes index knew.
    pub resolved: [usize; 2],
    /// Rows whose IP it did not know (yet).
    pub unresolved: [usize; 2],
    /// Rows whose process (pid or comm) the OS index knew.
    pub process: [usize; 2],
}

impl EnrichStats {
    pub fn add(&mut self, o: &EnrichStats) {
        self.rows += o.rows;
        for s in 0..2 {
            self.resolved[s] += o.resolved[s];
            self.unresolved[s] += o.unresolved[s];
            self.process[s] += o.process[s];
        }
    }

    pub fn any_unresolved(&self) -> bool {
        self.unresolved.iter().any(|n| *n > 0)
    }
}

/// The context columns of one side.
struct Side {
    ip: &'static str,
    port: &'static str,
    pod: &'static str,
    namespace: &'static str,
    service: &'static str,
    workload: &'static str,
    workload_kind: &'static str,
    node: &'static str,
    process: &'static str,
    pid: &'static str,
    labels: &'static str,
}

const SIDES: [Side; 2] = [
    Side {
        ip: "src_ip",
        port: "src_port",
        pod: "src_pod",
        namespace: "src_namespace",
        service: "src_service",
        workload: "src_workload",
        workload_kind: "src_workload_kind",
        node: "src_node",
        process: "src_process",
        pid: "src_pid",
        labels: "src_labels",
    },
    Side {
        ip: "dst_ip",
        port: "dst_port",
        pod: "dst_pod",
        namespace: "dst_namespace",
        service: "dst_service",
        workload: "dst_workload",
        workload_kind: "dst_workload_kind",
        node: "dst_node",
        process: "dst_process",
        pid: "dst_pid",
        labels: "dst_labels",
    },
];

/// Enriches batches, reusing its buffers from one batch to the next.
#[derive(Debug, Default)]
pub struct Enricher {
    ips: [Vec<IpAddr>; 2],
}

fn column<'b>(batch: &'b RecordBatch, name: &'static str) -> Result<&'b ArrayRef, EnrichError> {
    batch
        .column_by_name(name)
        .ok_or(EnrichError::MissingColumn(name))
}

fn wrong(column: &str, expected: &str, found: &dyn Array) -> EnrichError {
    EnrichError::ColumnType {
        column: column.to_string(),
        expected: expected.to_string(),
        found: found.data_type().to_string(),
    }
}

fn strings<'b>(
    batch: &'b RecordBatch,
    name: &'static str,
) -> Result<Option<&'b StringArray>, EnrichError> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(c) => c
            .as_string_opt::<i32>()
            .map(Some)
            .ok_or_else(|| wrong(name, "Utf8", c.as_ref())),
    }
}

/// Parses an IP column; a row with the same text as the previous one (one connection's
/// entries are usually adjacent) is not parsed again. Text that is not an address
/// becomes 0.0.0.0, which resolves to nothing.
fn parse_ips(col: &StringArray, out: &mut Vec<IpAddr>) {
    out.clear();
    out.reserve(col.len());
    let mut last: Option<(&str, IpAddr)> = None;
    for i in 0..col.len() {
        let ip = if col.is_valid(i) {
            let s = col.value(i);
            match last {
                Some((l, ip)) if l == s => ip,
                _ => {
                    let ip = s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                    last = Some((s, ip));
                    ip
                }
            }
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        out.push(ip);
    }
}

/// A string column: `value(row)`, else what the batch had, else null.
fn fill_strings<'a>(
    n: usize,
    existing: Option<&StringArray>,
    mut value: impl FnMut(usize) -> Option<&'a str>,
) -> ArrayRef {
    // An all-null column (the usual case: workers leave context empty) needs no
    // per-row fallback.
    let existing = existing.filter(|e| e.null_count() < e.len());
    // Sized exactly: growing the value buffer would copy it again (a first pass over
    // shared strings costs less than that copy).
    let bytes: usize = (0..n)
        .map(|i| match value(i) {
            Some(v) => v.len(),
            None => existing.map_or(0, |e| if e.is_valid(i) { e.value(i).len() } else { 0 }),
        })
        .sum();
    let mut b = StringBuilder::with_capacity(n, bytes);
    for i in 0..n {
        match value(i) {
            Some(v) => b.append_value(v),
            None => match existing {
                Some(e) if e.is_valid(i) => b.append_value(e.value(i)),
                _ => b.append_null(),
            },
        }
    }
    Arc::new(b.finish())
}

impl Enricher {
    pub fn new() -> Self {
        Self::default()
    }

    /// `batch` (entries captured on `node`, the node token of the subject they came on)
    /// with its context columns filled from `k8s` and `os`.
    pub fn enrich(
        &mut self,
        batch: &RecordBatch,
        node: &str,
        k8s: &K8sIndex,
        os: &OsIndex,
    ) -> Result<(RecordBatch, EnrichStats), EnrichError> {
        let n = batch.num_rows();
        let ts_col = column(batch, "timestamp")?;
        let ts: &PrimitiveArray<TimestampNanosecondType> = ts_col
            .as_primitive_opt()
            .ok_or_else(|| wrong("timestamp", "Timestamp(ns)", ts_col.as_ref()))?;
        let ts: &[Nanos] = ts.values();
        for (s, side) in SIDES.iter().enumerate() {
            let col = column(batch, side.ip)?;
            let col = col
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong(side.ip, "Utf8", col.as_ref()))?;
            parse_ips(col, &mut self.ips[s]);
        }
        let mut stats = EnrichStats {
            rows: n,
            ..EnrichStats::default()
        };

        // Kubernetes context per row and side.
        let mut resolved: [Vec<Option<&Resolved>>; 2] = [Vec::new(), Vec::new()];
        for (s, out) in resolved.iter_mut().enumerate() {
            let rows = self.ips[s].iter().copied().zip(ts.iter().copied());
            k8s.resolve_batch(rows, out);
            let known = out.iter().filter(|r| r.is_some()).count();
            stats.resolved[s] = known;
            stats.unresolved[s] = n - known;
        }

        // Processes per row: [connected, accepted].
        let mut procs: [Vec<Option<&Proc>>; 2] = [Vec::new(), Vec::new()];
        if let Some(node_id) = os.node_id(node).filter(|_| !os.is_empty()) {
            let port =
                |name: &'static str| -> Result<Option<&PrimitiveArray<UInt16Type>>, EnrichError> {
                    match batch.column_by_name(name) {
                        None => Ok(None),
                        Some(c) => c
                            .as_primitive_opt::<UInt16Type>()
                            .map(Some)
                            .ok_or_else(|| wrong(name, "UInt16", c.as_ref())),
                    }
                };
            let (sp, dp) = (port(SIDES[0].port)?, port(SIDES[1].port)?);
            if let (Some(sp), Some(dp)) = (sp, dp) {
                procs[0].reserve(n);
                procs[1].reserve(n);
                let rows = self.ips[0].iter().zip(&self.ips[1]).zip(ts).enumerate();
                for (i, ((src, dst), t)) in rows {
                    let (c, a) = if sp.is_valid(i) && dp.is_valid(i) {
                        os.lookup(node_id, *src, sp.value(i), *dst, dp.value(i), *t)
                    } else {
                        (None, None)
                    };
                    procs[0].push(c);
                    procs[1].push(a);
                }
                for (s, p) in procs.iter().enumerate() {
                    stats.process[s] = p.iter().filter(|p| p.is_some()).count();
                }
            }
        }

        let schema = batch.schema();
        let mut columns = batch.columns().to_vec();
        let mut replace = |name: &'static str, array: ArrayRef| -> Result<(), EnrichError> {
            // A batch of an older schema without this column keeps its shape.
            let Ok(i) = schema.index_of(name) else {
                return Ok(());
            };
            let field = schema.field(i);
            if field.data_type() != array.data_type() {
                return Err(wrong(
                    name,
                    &field.data_type().to_string(),
                    columns[i].as_ref(),
                ));
            }
            columns[i] = array;
            Ok(())
        };
        for (s, side) in SIDES.iter().enumerate() {
            let res = &resolved[s];
            type Pick = fn(&Resolved) -> Option<&str>;
            let fields: [(&'static str, Pick); 6] = [
                (side.pod, |r| r.pod.as_deref()),
                (side.namespace, |r| r.namespace.as_deref()),
                (side.service, |r| r.service.as_deref()),
                (side.workload, |r| r.workload.as_deref()),
                (side.workload_kind, |r| r.workload_kind.as_deref()),
                (side.node, |r| r.node.as_deref()),
            ];
            for (name, pick) in fields {
                let existing = strings(batch, name)?;
                let array = fill_strings(n, existing, |i| res[i].and_then(pick));
                replace(name, array)?;
            }
            let ps = &procs[s];
            let existing = strings(batch, side.process)?;
            let array = fill_strings(n, existing, |i| {
                ps.get(i).copied().flatten().and_then(|p| p.comm.as_deref())
            });
            replace(side.process, array)?;
            replace(side.pid, pids(batch, side.pid, n, ps)?)?;
            replace(side.labels, labels(batch, side.labels, n, res)?)?;
        }
        Ok((RecordBatch::try_new(schema.clone(), columns)?, stats))
    }
}

/// The pid column: the process's pid, else what the batch had, else null.
fn pids(
    batch: &RecordBatch,
    name: &'static str,
    n: usize,
    procs: &[Option<&Proc>],
) -> Result<ArrayRef, EnrichError> {
    let existing = match batch.column_by_name(name) {
        None => None,
        Some(c) => Some(
            c.as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| wrong(name, "UInt32", c.as_ref()))?,
        ),
    }
    .filter(|e| e.null_count() < e.len());
    if procs.is_empty()
        && let Some(e) = existing
    {
        return Ok(Arc::new(e.clone()));
    }
    if procs.is_empty() {
        return Ok(Arc::new(UInt32Array::new_null(n)));
    }
    let mut b = UInt32Builder::with_capacity(n);
    for i in 0..n {
        match procs.get(i).copied().flatten().and_then(|p| p.pid) {
            Some(p) => b.append_value(p),
            None => match existing {
                Some(e) if e.is_valid(i) => b.append_value(e.value(i)),
                _ => b.append_null(),
            },
        }
    }
    Ok(Arc::new(b.finish()))
}

/// The labels column: the pod's labels when the IP is a pod's, else what the batch had,
/// else null.
fn labels(
    batch: &RecordBatch,
    name: &'static str,
    n: usize,
    resolved: &[Option<&Resolved>],
) -> Result<ArrayRef, EnrichError> {
    let existing: Option<&MapArray> = match batch.column_by_name(name) {
        None => None,
        Some(c) => Some(
            c.as_map_opt()
                .ok_or_else(|| wrong(name, "Map(Utf8, Utf8)", c.as_ref()))?,
        ),
    }
    .filter(|e| e.null_count() < e.len());
    // Sized from the pods' labels (the usual source), so that the key and value buffers
    // are not copied as they grow; the builder is the one the entry schema uses.
    let (mut pairs, mut key_bytes, mut value_bytes) = (0, 0, 0);
    for r in resolved.iter().flatten().filter(|r| r.pod.is_some()) {
        pairs += r.labels.len();
        for (k, v) in r.labels.iter() {
            key_bytes += k.len();
            value_bytes += v.len();
        }
    }
    let mut b = if pairs == 0 {
        <OptLabels as Column>::builder(n)
    } else {
        arrow_array::builder::MapBuilder::with_capacity(
            None,
            StringBuilder::with_capacity(pairs, key_bytes),
            StringBuilder::with_capacity(pairs, value_bytes),
            n,
        )
    };
    for i in 0..n {
        let pod_labels = resolved
            .get(i)
            .copied()
            .flatten()
            .filter(|r| r.pod.is_some());
        if let Some(r) = pod_labels {
            for (k, v) in r.labels.iter() {
                b.keys().append_value(k);
                b.values().append_value(v);
            }
            b.append(true)?;
            continue;
        }
        match existing {
            Some(e) if e.is_valid(i) => {
                let entries = e.value(i);
                let (keys, values) = (entries.column(0), entries.column(1));
                let (Some(keys), Some(values)) =
                    (keys.as_string_opt::<i32>(), values.as_string_opt::<i32>())
                else {
                    return Err(wrong(name, "Map(Utf8, Utf8)", e));
                };
                for j in 0..keys.len() {
                    b.keys().append_value(keys.value(j));
                    if values.is_valid(j) {
                        b.values().append_value(values.value(j));
                    } else {
                        b.values().append_null();
                    }
                }
                b.append(true)?;
            }
            _ => b.append(false)?,
        }
    }
    Ok(Arc::new(b.finish()))
}

/// Splits an enriched batch by subject, `reef.v1.enriched.<dst_namespace>.<protocol>`:
/// one part per (server namespace, protocol), rows in their original order within it.
/// A batch of one subject (the common case) is passed on whole, without copying.
pub fn split_by_subject(batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>, EnrichError> {
    let protocol = strings(batch, "protocol")?.ok_or(EnrichError::MissingColumn("protocol"))?;
    let namespace = strings(batch, "dst_namespace")?;
    let key = |i: usize| -> (Option<&str>, &str) {
        let ns = namespace.filter(|c| c.is_valid(i)).map(|c| c.value(i));
        let p = if protocol.is_valid(i) {
            protocol.value(i)
        } else {
            "_"
        };
        (ns, p)
    };
    type Group<'b> = ((Option<&'b str>, &'b str), Vec<u32>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for i in 0..batch.num_rows() {
        let k = key(i);
        // Few subjects per batch: a linear scan beats hashing, and the last group is
        // checked first because rows of one connection are adjacent.
        match groups.iter_mut().rev().find(|(g, _)| *g == k) {
            Some((_, rows)) => rows.push(i as u32),
            None => groups.push((k, vec![i as u32])),
        }
    }
    if groups.len() == 1 {
        let ((ns, p), _) = groups[0];
        return Ok(vec![(subjects::enriched(ns, p), batch.clone())]);
    }
    // One `take` in subject order, then zero-copy slices: a take per subject would copy
    // every column once per subject.
    let mut order = Vec::with_capacity(batch.num_rows());
    let mut bounds = Vec::with_capacity(groups.len());
    for ((ns, p), rows) in &groups {
        let start = order.len();
        order.extend_from_slice(rows);
        bounds.push((subjects::enriched(*ns, p), start, rows.len()));
    }
    let sorted = arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))?;
    Ok(bounds
        .into_iter()
        .map(|(subject, start, len)| (subject, sorted.slice(start, len)))
        .collect())
}
