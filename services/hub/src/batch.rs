//! A decoded entry batch with its place in the stream, and the JSON summaries of its
//! rows, made once per batch however many clients receive them.

use std::sync::{Arc, OnceLock};

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use reef_schema::ipc;

use crate::source::Stored;

/// Columns of an entry summary, as sent on `/ws` and `/api/entries` (schemas/hub-api.md).
pub const SUMMARY_COLUMNS: &[&str] = &[
    "id",
    "node",
    "timestamp",
    "elapsed_time",
    "protocol",
    "transport",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "method",
    "path",
    "status_code",
    "summary",
    "http_version",
    "request_size",
    "response_size",
    "incomplete",
    "flags",
    "src_pod",
    "src_namespace",
    "src_service",
    "src_workload",
    "src_workload_kind",
    "src_process",
    "dst_pod",
    "dst_namespace",
    "dst_service",
    "dst_workload",
    "dst_workload_kind",
    "dst_process",
    "grpc_status",
    "dns_rcode",
    "tls_sni",
];

/// One stored message, decoded.
#[derive(Debug)]
pub struct Batch {
    pub seq: u64,
    pub time_ns: i64,
    pub data: RecordBatch,
    /// Memory of the batch's Arrow data (see [`Batch::resident_bytes`]).
    pub bytes: usize,
    summaries: OnceLock<Result<Vec<Box<str>>, String>>,
    counts: OnceLock<Counts>,
}

/// Entries per protocol and per node in a batch, for `/api/stats`.
#[derive(Debug, Default)]
pub struct Counts {
    pub protocols: Vec<(String, u64)>,
    pub nodes: Vec<(String, u64)>,
}

/// Why a stored message could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message {seq} is not Arrow IPC: {reason}")]
    NotArrow { seq: u64, reason: String },
    #[error("message {seq} is not an entry batch of this version (schema differs)")]
    OtherSchema { seq: u64 },
}

impl Batch {
    /// Decodes a stored message; messages of several batches are joined into one.
    pub fn decode(stored: &Stored, schema: &SchemaRef) -> Result<Arc<Batch>, DecodeError> {
        let batches = ipc::decode(&stored.payload).map_err(|e| DecodeError::NotArrow {
            seq: stored.seq,
            reason: e.to_string(),
        })?;
        if batches
            .iter()
            .any(|b| b.schema_ref().fields() != schema.fields())
        {
            return Err(DecodeError::OtherSchema { seq: stored.seq });
        }
        let data = match batches.len() {
            0 => RecordBatch::new_empty(Arc::clone(schema)),
            1 => batches.into_iter().next().expect("one batch"),
            _ => arrow_select::concat::concat_batches(schema, &batches).map_err(|e| {
                DecodeError::NotArrow {
                    seq: stored.seq,
                    reason: e.to_string(),
                }
            })?,
        };
        Ok(Arc::new(Batch::new(stored.seq, stored.time_ns, data)))
    }

    pub fn new(seq: u64, time_ns: i64, data: RecordBatch) -> Batch {
        // The used part of each column: batches decoded from IPC share buffers between
        // columns, so counting whole buffers per column would count them many times.
        let bytes = data
            .columns()
            .iter()
            .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
            .sum::<usize>()
            .max(1);
        Batch {
            seq,
            time_ns,
            data,
            bytes,
            summaries: OnceLock::new(),
            counts: OnceLock::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.data.num_rows()
    }

    /// The cursor of row `row`: after it, a client resumes at the next entry.
    pub fn cursor(&self, row: usize) -> String {
        format!("{}.{}", self.seq, row)
    }

    /// Memory the batch holds: its Arrow data and, once rendered, its summaries. The
    /// window renders them before counting, so that its limit bounds both (they are
    /// about as big as the Arrow data).
    pub fn resident_bytes(&self) -> usize {
        let summaries = match self.summaries.get() {
            Some(Ok(v)) => v
                .iter()
                .map(|s| s.len() + std::mem::size_of::<Box<str>>())
                .sum(),
            _ => 0,
        };
        self.bytes + summaries
    }

    /// One JSON object per row: the summary columns and the row's cursor.
    pub fn summaries(&self) -> Result<&[Box<str>], String> {
        self.summaries
            .get_or_init(|| summaries_of(self.seq, &self.data))
            .as_ref()
            .map(|v| v.as_slice())
            .map_err(|e| e.clone())
    }

    pub fn counts(&self) -> &Counts {
        self.counts.get_or_init(|| Counts {
            protocols: count_values(&self.data, "protocol"),
            nodes: count_values(&self.data, "node"),
        })
    }

    /// The row whose `id` is `id`.
    pub fn find_id(&self, id: &str) -> Option<usize> {
        let ids = self.data.column_by_name("id")?;
        let ids = ids.as_any().downcast_ref::<StringArray>()?;
        (0..ids.len()).find(|&i| ids.is_valid(i) && ids.value(i) == id)
    }
}

fn count_values(data: &RecordBatch, column: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let Some(a) = data
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
    else {
        return out;
    };
    for i in 0..a.len() {
        if a.is_null(i) {
            continue;
        }
        let v = a.value(i);
        match out.iter_mut().find(|(k, _)| k == v) {
            Some((_, n)) => *n += 1,
            None => out.push((v.to_string(), 1)),
        }
    }
    out
}

/// Projects the summary columns (timestamps as integer nanoseconds, like the entry JSON)
/// and writes each row as a JSON object with its cursor first.
fn summaries_of(seq: u64, data: &RecordBatch) -> Result<Vec<Box<str>>, String> {
    let mut fields = Vec::with_capacity(SUMMARY_COLUMNS.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(SUMMARY_COLUMNS.len());
    for name in SUMMARY_COLUMNS {
        let Some(col) = data.column_by_name(name) else {
            continue;
        };
        let col = if matches!(col.data_type(), DataType::Timestamp(..)) {
            arrow_cast::cast(col, &DataType::Int64).map_err(|e| e.to_string())?
        } else {
            Arc::clone(col)
        };
        fields.push(Field::new(*name, col.data_type().clone(), true));
        columns.push(col);
    }
    let projected =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
    writer.write(&projected).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let text = String::from_utf8(writer.into_inner()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(data.num_rows());
    for (row, line) in text.lines().enumerate() {
        // Every line is an object: `{"id":…}`; the cursor goes first.
        let rest = line.strip_prefix('{').unwrap_or(line);
        let sep = if rest.starts_with('}') { "" } else { "," };
        out.push(format!("{{\"cursor\":\"{seq}.{row}\"{sep}{rest}").into_boxed_str());
    }
    if out.len() != data.num_rows() {
        return Err(format!(
            "{} JSON lines for {} rows",
            out.len(),
            data.num_rows()
        ));
    }
    Ok(out)
}

/// A cursor as the client sends it back: `<seq>.<row>`.
pub fn parse_cursor(text: &str) -> Option<(u64, usize)> {
    let (seq, row) = text.trim().split_once('.')?;
    Some((seq.parse().ok()?, row.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reef_schema::Entry;

    #[test]
    fn summaries_have_cursor_and_no_bodies() {
        let e = Entry {
            id: "n1-1".into(),
            method: Some("GET".into()),
            path: Some("/a\u{2028}b".into()),
            status_code: Some(200),
            request_body: Some(reef_schema::Body(b"secret body".to_vec())),
            timestamp: 1_700_000_000_123_456_789,
            ..Entry::default()
        };
        let b = Batch::new(42, 0, Entry::batch(&[e.clone(), e]));
        let s = b.summaries().unwrap();
        assert_eq!(s.len(), 2);
        let v: serde_json::Value = serde_json::from_str(&s[1]).unwrap();
        assert_eq!(v["cursor"], "42.1");
        assert_eq!(v["id"], "n1-1");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/a\u{2028}b");
        assert_eq!(v["status_code"], 200);
        assert_eq!(v["timestamp"], 1_700_000_000_123_456_789_i64);
        assert!(v["dst_service"].is_null());
        assert!(v.get("request_body").is_none());
        assert_eq!(b.find_id("n1-1"), Some(0));
        assert_eq!(b.find_id("zz"), None);
        assert_eq!(parse_cursor("42.7"), Some((42, 7)));
        assert_eq!(parse_cursor("42"), None);
        assert_eq!(parse_cursor("x.1"), None);
    }
}
