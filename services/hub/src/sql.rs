//! `POST /api/sql`: read-only SQL over the window's entries (table `entries`).
//!
//! DataFusion plans and runs the query over the window's batches (shared, not copied).
//! DDL, DML (INSERT, COPY …) and statements (SET …) are refused by DataFusion's own SQL
//! options; reading files by URL is off by default. Memory and time are bounded.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use serde::Serialize;

use crate::batch::Batch;

/// Longest query text accepted, in bytes.
pub const MAX_SQL_BYTES: usize = 16 << 10;
/// Rows returned at most (`truncated` says when there were more).
pub const MAX_SQL_ROWS: usize = 10_000;
/// Memory a query may use for its own state (sorts, hash tables), beyond the window.
pub const SQL_MEMORY_BYTES: usize = 512 << 20;
/// Longest a query may run.
pub const SQL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub truncated: bool,
}

/// Runs `sql` over `window`. Errors are the user's to fix (they become 400s).
pub async fn run(sql: &str, window: Vec<Arc<Batch>>) -> Result<SqlResult, String> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(format!(
            "the query is {} bytes long; the limit is {MAX_SQL_BYTES}",
            sql.len()
        ));
    }
    if sql.trim().is_empty() {
        return Err("empty query: send {\"sql\": \"SELECT … FROM entries …\"}".into());
    }
    let schema = reef_schema::entry_schema();
    let batches: Vec<RecordBatch> = window.iter().map(|b| b.data.clone()).collect();
    let table = MemTable::try_new(Arc::clone(&schema), vec![batches]).map_err(|e| e.to_string())?;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(SQL_MEMORY_BYTES, 1.0)
        .build_arc()
        .map_err(|e| e.to_string())?;
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_information_schema(false);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    ctx.register_table("entries", Arc::new(table))
        .map_err(|e| e.to_string())?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let query = async {
        let df = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| clean(e.to_string()))?;
        let df = df
            .limit(0, Some(MAX_SQL_ROWS + 1))
            .map_err(|e| clean(e.to_string()))?;
        df.collect().await.map_err(|e| clean(e.to_string()))
    };
    let batches = tokio::time::timeout(SQL_TIMEOUT, query)
        .await
        .map_err(|_| format!("the query ran longer than {SQL_TIMEOUT:?}; narrow it"))??;
    to_rows(&batches)
}

/// DataFusion's messages name its own layers ("Error during planning: …"); the part
/// after them is what the user needs.
fn clean(msg: String) -> String {
    let msg = msg
        .strip_prefix("SQL error: ")
        .or_else(|| msg.strip_prefix("Error during planning: "))
        .unwrap_or(&msg)
        .to_string();
    if msg.contains("DDL not supported")
        || msg.contains("DML not supported")
        || msg.contains("Statement not supported")
    {
        format!("{msg}: /api/sql is read-only (SELECT over table `entries`)")
    } else {
        msg
    }
}

fn to_rows(batches: &[RecordBatch]) -> Result<SqlResult, String> {
    let Some(first) = batches.first() else {
        return Ok(SqlResult {
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
        });
    };
    let columns: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    let mut truncated = false;
    for b in batches {
        // Column names of a result may repeat (`SELECT 1, 1`): write under unique ones.
        let fields: Vec<Field> = b
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), true))
            .collect();
        let renamed = RecordBatch::try_new(Arc::new(Schema::new(fields)), b.columns().to_vec())
            .map_err(|e| e.to_string())?;
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
        w.write(&renamed).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        for line in String::from_utf8_lossy(&w.into_inner()).lines() {
            if rows.len() == MAX_SQL_ROWS {
                truncated = true;
                break;
            }
            let mut obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).map_err(|e| e.to_string())?;
            rows.push(
                (0..columns.len())
                    .map(|i| obj.remove(&format!("c{i}")).unwrap_or_default())
                    .collect(),
            );
        }
    }
    Ok(SqlResult {
        columns,
        rows,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reef_schema::Entry;

    fn window() -> Vec<Arc<Batch>> {
        let rows: Vec<Entry> = (0..50)
            .map(|i| Entry {
                id: format!("e{i}"),
                dst_service: Some(if i % 2 == 0 { "api" } else { "db" }.into()),
                status_code: Some(if i < 10 { 503 } else { 200 }),
                elapsed_time: Some(i64::from(i) * 10),
                ..Entry::default()
            })
            .collect();
        vec![Arc::new(Batch::new(1, 0, Entry::batch(&rows)))]
    }

    #[tokio::test]
    async fn aggregates_over_the_window() {
        let r = run(
            "SELECT dst_service, count(*) AS n, avg(elapsed_time) FROM entries \
             WHERE status_code >= 500 GROUP BY 1 ORDER BY 1",
            window(),
        )
        .await
        .unwrap();
        assert_eq!(r.columns[0], "dst_service");
        assert_eq!(r.columns[1], "n");
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0][0], "api");
        assert_eq!(r.rows[0][1], 5);
        assert_eq!(r.rows[0][2], 40.0);
        assert!(!r.truncated);
    }

    #[tokio::test]
    async fn writes_and_statements_are_refused() {
        for sql in [
            "DROP TABLE entries",
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO entries SELECT * FROM entries",
            "COPY entries TO '/tmp/x.csv'",
            "SET datafusion.execution.batch_size = 1",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "SELECT * FROM '/etc/passwd'",
            "SELECT nope FROM entries",
            "",
        ] {
            let e = run(sql, window()).await.unwrap_err();
            assert!(!e.is_empty(), "{sql}");
        }
        let e = run("DROP TABLE entries", window()).await.unwrap_err();
        assert!(e.contains("read-only"), "{e}");
    }
}
