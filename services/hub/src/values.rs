//! `/api/schema`: the filterable columns with their types and their most frequent
//! values in the window, for autocompletion.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_schema::DataType;
use serde::Serialize;

use crate::batch::Batch;

/// Newest rows looked at for frequent values.
pub const VALUES_SCAN_ROWS: usize = 50_000;
/// Values listed per column at most.
pub const VALUES_PER_COLUMN: usize = 20;
/// Distinct values counted per column at most (later new values are not counted).
const MAX_DISTINCT: usize = 2000;
/// Longer values are not suggested.
const MAX_VALUE_CHARS: usize = 200;
/// Columns whose values are unique or long text: no suggestions.
const NO_VALUES: &[&str] = &[
    "id",
    "parent_id",
    "summary",
    "postgresql_query",
    "mysql_query",
    "grpc_message",
    "db_error",
    "tls_ja3",
    "tls_ja4",
];

#[derive(Debug, Serialize)]
pub struct Value {
    pub value: serde_json::Value,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub nullable: bool,
    pub doc: String,
    pub values: Vec<Value>,
}

#[derive(Debug, Serialize)]
pub struct Schema {
    pub version: &'static str,
    pub columns: Vec<Column>,
}

/// The SQL type a filter sees.
fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Boolean => "boolean",
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => "integer",
        DataType::Timestamp(..) => "timestamp",
        DataType::List(_) => "text[]",
        DataType::Map(..) => "map(text, text)",
        DataType::Binary | DataType::LargeBinary => "bytes",
        _ => "other",
    }
}

fn suggestible(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::Int32 | DataType::UInt16 | DataType::UInt32
    )
}

pub fn schema(window: &[Arc<Batch>]) -> Schema {
    let arrow = reef_schema::entry_schema();
    let mut counts: Vec<HashMap<String, u64>> = vec![HashMap::new(); arrow.fields().len()];
    let mut scanned = 0;
    for b in window.iter().rev() {
        if scanned >= VALUES_SCAN_ROWS {
            break;
        }
        scanned += b.rows();
        for (i, field) in arrow.fields().iter().enumerate() {
            if NO_VALUES.contains(&field.name().as_str()) || !suggestible(field.data_type()) {
                continue;
            }
            let Some(col) = b.data.column_by_name(field.name()) else {
                continue;
            };
            let c = &mut counts[i];
            let mut add = |v: String| {
                if v.chars().count() > MAX_VALUE_CHARS {
                    return;
                }
                if let Some(n) = c.get_mut(&v) {
                    *n += 1;
                } else if c.len() < MAX_DISTINCT {
                    c.insert(v, 1);
                }
            };
            match col.data_type() {
                DataType::Utf8 => {
                    let a = col.as_string::<i32>();
                    for r in 0..a.len() {
                        if a.is_valid(r) {
                            add(a.value(r).to_string());
                        }
                    }
                }
                _ => {
                    if let Ok(a) = arrow_cast::cast(col, &DataType::Int64) {
                        let a = a.as_primitive::<arrow_array::types::Int64Type>();
                        for r in 0..a.len() {
                            if a.is_valid(r) {
                                add(a.value(r).to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    let columns = arrow
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let numeric = sql_type(f.data_type()) == "integer";
            let mut values: Vec<(String, u64)> = counts[i].drain().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            values.truncate(VALUES_PER_COLUMN);
            let name = reef_schema::COLUMNS
                .iter()
                .find(|c| c.name == f.name())
                .map(|c| (c.name, c.doc.trim().replace('\n', " ")));
            let (name, doc) = name.unwrap_or(("?", String::new()));
            Column {
                name,
                ty: sql_type(f.data_type()),
                nullable: f.is_nullable(),
                doc,
                values: values
                    .into_iter()
                    .map(|(v, count)| Value {
                        value: match (numeric, v.parse::<i64>()) {
                            (true, Ok(n)) => serde_json::Value::from(n),
                            _ => serde_json::Value::from(v),
                        },
                        count,
                    })
                    .collect(),
            }
        })
        .collect();
    Schema {
        version: reef_schema::SCHEMA_VERSION,
        columns,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reef_schema::Entry;

    #[test]
    fn frequent_values_are_counted_and_typed() {
        let mut rows = Vec::new();
        for i in 0..30 {
            rows.push(Entry {
                id: format!("e{i}"),
                method: Some(if i % 3 == 0 { "POST" } else { "GET" }.into()),
                status_code: Some(if i < 5 { 500 } else { 200 }),
                ..Entry::default()
            });
        }
        let b = Arc::new(Batch::new(1, 0, Entry::batch(&rows)));
        let s = schema(&[b]);
        let method = s.columns.iter().find(|c| c.name == "method").unwrap();
        assert_eq!(method.ty, "text");
        assert_eq!(method.values[0].value, "GET");
        assert_eq!(method.values[0].count, 20);
        assert_eq!(method.values[1].value, "POST");
        let status = s.columns.iter().find(|c| c.name == "status_code").unwrap();
        assert_eq!(status.ty, "integer");
        assert_eq!(status.values[0].value, serde_json::json!(200));
        assert_eq!(status.values[1].count, 5);
        let id = s.columns.iter().find(|c| c.name == "id").unwrap();
        assert!(id.values.is_empty());
        assert!(
            s.columns
                .iter()
                .any(|c| c.name == "timestamp" && c.ty == "timestamp")
        );
    }
}
