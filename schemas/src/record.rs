//! Records declared once as a list of columns; see the `record!` macro.

/// One column's description, for `reef schema`, autocompletion and docs.
#[derive(Debug, Clone, Copy)]
pub struct ColumnInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub nullable: bool,
}

/// Declares a record type from a list of `name: ColumnKind` columns: the struct,
/// `Default`, `Serialize` (absent columns left out), a serde-free JSON writer, the
/// column list, the Arrow schema (with the record's schema name in its metadata), the
/// JSON Schema, a batch builder and a batch reader.
macro_rules! record {
    (
        $(#[doc = $rdoc:literal])+
        $Rec:ident, schema $sname:expr, file $file:literal, builder $Builder:ident, columns $COLS:ident,
        arrow $schema_fn:ident, from_batch $from_batch:ident;
        $( $(#[doc = $doc:literal])+ $name:ident : $kind:ident, )*
    ) => {
        $(#[doc = $rdoc])+
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(default)]
        pub struct $Rec {
            $( $(#[doc = $doc])+ pub $name: <columns::$kind as Column>::Value, )*
        }

        impl Default for $Rec {
            fn default() -> Self {
                $Rec { $( $name: <columns::$kind as Column>::default_value(), )* }
            }
        }

        impl serde::Serialize for $Rec {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                $(
                    if !<columns::$kind as Column>::is_absent(&self.$name) {
                        map.serialize_entry(stringify!($name), &self.$name)?;
                    }
                )*
                map.end()
            }
        }

        impl $Rec {
            /// Writes the record as a JSON object, the same one `Serialize` gives (absent
            /// columns left out), without going through serde. See `crate::json`.
            pub fn write_json(&self, out: &mut $crate::json::JsonOut<'_>) {
                out.byte(b'{');
                let mut first = true;
                $(
                    if !<columns::$kind as Column>::is_absent(&self.$name) {
                        // `,"name":`, without the comma before the first.
                        let key = concat!(",\"", stringify!($name), "\":").as_bytes();
                        out.raw(if first { &key[1..] } else { key });
                        first = false;
                        <columns::$kind as Column>::write_json(&self.$name, out);
                    }
                )*
                // The last column's `first = false` is never read.
                let _ = first;
                out.byte(b'}');
            }
        }

        /// Every column in schema order.
        pub const $COLS: &[$crate::record::ColumnInfo] = &[
            $( $crate::record::ColumnInfo {
                name: stringify!($name),
                doc: concat!($($doc, "\n"),+),
                nullable: <columns::$kind as Column>::NULLABLE,
            }, )*
        ];

        impl $Rec {
            /// The Arrow schema of batches of this record; its metadata names the schema.
            pub fn arrow_schema() -> arrow_schema::SchemaRef {
                $schema_fn()
            }

            /// The JSON Schema (draft 2020-12) of one JSON record.
            pub fn json_schema() -> serde_json::Value {
                let (props, required) = Self::json_properties();
                serde_json::json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "$id": concat!("https://reef.dev/schemas/", $file, ".schema.json"),
                    "title": $sname,
                    "description": concat!($($rdoc, " "),+).split_whitespace().collect::<Vec<_>>().join(" ")
                        + " JSON leaves absent (null) columns out. Columns may be added within v1; readers should ignore the ones they do not know.",
                    "type": "object",
                    "properties": props,
                    "required": required,
                })
            }
        }

        /// The Arrow schema of batches of this record.
        pub fn $schema_fn() -> arrow_schema::SchemaRef {
            use std::sync::OnceLock;
            static SCHEMA: OnceLock<arrow_schema::SchemaRef> = OnceLock::new();
            SCHEMA
                .get_or_init(|| {
                    let fields = vec![ $( arrow_schema::Field::new(
                stringify!($name),
                <columns::$kind as Column>::data_type(),
                        <columns::$kind as Column>::NULLABLE,
                    ), )* ];
                    let metadata = [("reef.schema".to_string(), $sname.to_string())]
                        .into_iter()
                        .collect();
                    std::sync::Arc::new(arrow_schema::Schema::new_with_metadata(fields, metadata))
                })
                .clone()
        }

        impl $Rec {
        fn json_properties() -> (serde_json::Map<String, serde_json::Value>, Vec<&'static str>) {
            use serde_json::Value;
            let mut props = serde_json::Map::new();
            let mut required = Vec::new();
            $(
                let mut schema = <columns::$kind as Column>::json_schema();
                if let Value::Object(o) = &mut schema {
                    o.insert(
                        "description".into(),
                        Value::String(concat!($($doc, "\n"),+).trim().to_string()),
                    );
                }
                props.insert(stringify!($name).to_string(), schema);
                if !<columns::$kind as Column>::NULLABLE {
                    required.push(stringify!($name));
                }
            )*
            (props, required)
        }
        }

        /// Appends records row by row and produces Arrow record batches.
        pub struct $Builder {
            rows: usize,
            $( $name: <columns::$kind as Column>::Builder, )*
        }

        impl $Builder {
            pub fn with_capacity(capacity: usize) -> Self {
                $Builder {
                    rows: 0,
                    $( $name: <columns::$kind as Column>::builder(capacity), )*
                }
            }

            pub fn push(&mut self, e: &$Rec) {
                self.rows += 1;
                $( <columns::$kind as Column>::append(&mut self.$name, &e.$name); )*
            }

            pub fn len(&self) -> usize {
                self.rows
            }

            pub fn is_empty(&self) -> bool {
                self.rows == 0
            }

            /// The rows pushed so far as one batch; the builder starts empty again.
            pub fn finish(&mut self) -> arrow_array::RecordBatch {
                use arrow_array::builder::ArrayBuilder;
                self.rows = 0;
                let columns: Vec<arrow_array::ArrayRef> =
                    vec![ $( ArrayBuilder::finish(&mut self.$name), )* ];
                // The builders produce exactly the types of the schema, which a test checks,
                // so this cannot fail.
                arrow_array::RecordBatch::try_new($schema_fn(), columns)
                    .expect("record builders match the record schema")
            }
        }

        /// Reads records back from a batch with this schema (or a newer one with extra
        /// columns: those are ignored; missing nullable columns read as absent).
        pub fn $from_batch(
            batch: &arrow_array::RecordBatch,
        ) -> Result<Vec<$Rec>, $crate::SchemaError> {
            let mut out = vec![$Rec::default(); batch.num_rows()];
            $(
                if let Some(col) = batch.column_by_name(stringify!($name)) {
                    let values = <columns::$kind as Column>::read(col.as_ref())
                        .map_err(|e| e.in_column(stringify!($name)))?;
                    for (entry, v) in out.iter_mut().zip(values) {
                        entry.$name = v;
                    }
                } else if !<columns::$kind as Column>::NULLABLE {
                    return Err($crate::SchemaError::MissingColumn(stringify!($name)));
                }
            )*
            Ok(out)
        }
    };
}
