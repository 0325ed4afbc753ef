//! Column kinds: how one entry field maps to Rust, Arrow and JSON Schema.
//!
//! The entry (in `entry.rs`) is declared once as a list of `name: Kind` pairs; every
//! representation is derived from these kinds, so the Rust struct, the Arrow schema and
//! the JSON Schema cannot drift apart.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder,
    MapBuilder, StringBuilder, TimestampNanosecondBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int32Type, Int64Type, TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use serde_json::{Value, json};

use crate::SchemaError;
use crate::json::JsonOut;
use crate::values::{Body, CaptureSource, Flags, Headers, Protocol, Transport};

pub trait Column {
    type Value: Clone + PartialEq + std::fmt::Debug;
    type Builder: ArrayBuilder;
    const NULLABLE: bool;
    fn data_type() -> DataType;
    fn json_schema() -> Value;
    fn default_value() -> Self::Value;
    /// Absent values are left out of JSON lines to keep them short.
    fn is_absent(v: &Self::Value) -> bool;
    fn builder(capacity: usize) -> Self::Builder;
    fn append(b: &mut Self::Builder, v: &Self::Value);
    fn read(array: &dyn Array) -> Result<Vec<Self::Value>, SchemaError>;
    /// Writes the value as JSON, exactly as its `Serialize` impl does (`null` when
    /// absent, though entries leave absent columns out).
    fn write_json(v: &Self::Value, out: &mut JsonOut<'_>);
}

fn wrong_type(array: &dyn Array, expected: &str) -> SchemaError {
    SchemaError::ColumnType {
        expected: expected.to_string(),
        found: array.data_type().to_string(),
    }
}

fn read_primitive<T: ArrowPrimitiveType>(
    array: &dyn Array,
    what: &str,
) -> Result<Vec<Option<T::Native>>, SchemaError> {
    let a = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| wrong_type(array, what))?;
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect())
}

fn read_strings(array: &dyn Array) -> Result<Vec<Option<String>>, SchemaError> {
    let a = array
        .as_string_opt::<i32>()
        .ok_or_else(|| wrong_type(array, "Utf8"))?;
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect())
}

fn required<T>(v: Vec<Option<T>>, what: &'static str) -> Result<Vec<T>, SchemaError> {
    v.into_iter()
        .map(|x| x.ok_or(SchemaError::NullInRequired(what)))
        .collect()
}

/// Declares a nullable primitive column kind.
macro_rules! opt_primitive {
    ($kind:ident, $rust:ty, $builder:ty, $arrow:ident, $dt:expr, $json:literal, $write:ident) => {
        pub struct $kind;
        impl Column for $kind {
            type Value = Option<$rust>;
            type Builder = $builder;
            const NULLABLE: bool = true;
            fn data_type() -> DataType {
                $dt
            }
            fn json_schema() -> Value {
                json!({ "type": [$json, "null"] })
            }
            fn default_value() -> Self::Value {
                None
            }
            fn is_absent(v: &Self::Value) -> bool {
                v.is_none()
            }
            fn builder(capacity: usize) -> Self::Builder {
                <$builder>::with_capacity(capacity)
            }
            fn append(b: &mut Self::Builder, v: &Self::Value) {
                b.append_option(*v);
            }
            fn read(array: &dyn Array) -> Result<Vec<Self::Value>, SchemaError> {
                read_primitive::<$arrow>(array, stringify!($dt))
            }
            fn write_json(v: &Self::Value, out: &mut JsonOut<'_>) {
                match *v {
                    Some(n) => out.$write(n.into()),
                    None => out.null(),
                }
            }
        }
    };
}

opt_primitive!(
    OptI64,
    i64,
    Int64Builder,
    Int64Type,
    DataType::Int64,
    "integer",
    i64
);
opt_primitive!(
    OptI32,
    i32,
    Int32Builder,
    Int32Type,
    DataType::Int32,
    "integer",
    i64
);
opt_primitive!(
    OptU64,
    u64,
    UInt64Builder,
    UInt64Type,
    DataType::UInt64,
    "integer",
    u64
);
opt_primitive!(
    OptU32,
    u32,
    UInt32Builder,
    UInt32Type,
    DataType::UInt32,
    "integer",
    u64
);
opt_primitive!(
    OptU16,
    u16,
    UInt16Builder,
    UInt16Type,
    DataType::UInt16,
    "integer",
    u64
);

/// Unix time in nanoseconds; Arrow's UTC timestamp so SQL can compare it with times.
pub struct TimestampNs;
impl Column for TimestampNs {
    type Value = i64;
    type Builder = TimestampNanosecondBuilder;
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    }
    fn json_schema() -> Value {
        json!({ "type": "integer" })
    }
    fn default_value() -> i64 {
        0
    }
    fn is_absent(_: &i64) -> bool {
        false
    }
    fn builder(capacity: usize) -> Self::Builder {
        TimestampNanosecondBuilder::with_capacity(capacity).with_timezone("UTC")
    }
    fn append(b: &mut Self::Builder, v: &i64) {
        b.append_value(*v);
    }
    fn read(array: &dyn Array) -> Result<Vec<i64>, SchemaError> {
        required(
            read_primitive::<TimestampNanosecondType>(array, "Timestamp(ns)")?,
            "timestamp",
        )
    }
    fn write_json(v: &i64, out: &mut JsonOut<'_>) {
        out.i64(*v);
    }
}

pub struct Utf8;
impl Column for Utf8 {
    type Value = String;
    type Builder = StringBuilder;
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn json_schema() -> Value {
        json!({ "type": "string" })
    }
    fn default_value() -> String {
        String::new()
    }
    fn is_absent(_: &String) -> bool {
        false
    }
    fn builder(capacity: usize) -> Self::Builder {
        StringBuilder::with_capacity(capacity, capacity * 16)
    }
    fn append(b: &mut Self::Builder, v: &String) {
        b.append_value(v);
    }
    fn read(array: &dyn Array) -> Result<Vec<String>, SchemaError> {
        required(read_strings(array)?, "string column")
    }
    fn write_json(v: &String, out: &mut JsonOut<'_>) {
        out.str(v);
    }
}

pub struct OptUtf8;
impl Column for OptUtf8 {
    type Value = Option<String>;
    type Builder = StringBuilder;
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn json_schema() -> Value {
        json!({ "type": ["string", "null"] })
    }
    fn default_value() -> Option<String> {
        None
    }
    fn is_absent(v: &Option<String>) -> bool {
        v.is_none()
    }
    fn builder(capacity: usize) -> Self::Builder {
        StringBuilder::with_capacity(capacity, capacity * 8)
    }
    fn append(b: &mut Self::Builder, v: &Option<String>) {
        b.append_option(v.as_deref());
    }
    fn read(array: &dyn Array) -> Result<Vec<Option<String>>, SchemaError> {
        read_strings(array)
    }
    fn write_json(v: &Option<String>, out: &mut JsonOut<'_>) {
        match v {
            Some(s) => out.str(s),
            None => out.null(),
        }
    }
}

/// An IP address as text, so filters read `src_ip = '10.0.0.7'`.
pub struct Ip;
impl Column for Ip {
    type Value = IpAddr;
    type Builder = StringBuilder;
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn json_schema() -> Value {
        json!({ "type": "string", "format": "ip" })
    }
    fn default_value() -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
    fn is_absent(_: &IpAddr) -> bool {
        false
    }
    fn builder(capacity: usize) -> Self::Builder {
        StringBuilder::with_capacity(capacity, capacity * 15)
    }
    fn append(b: &mut Self::Builder, v: &IpAddr) {
        use std::fmt::Write;
        // Formatting into the builder avoids a String per row.
        let _ = write!(b, "{v}");
        b.append_value("");
    }
    fn read(array: &dyn Array) -> Result<Vec<IpAddr>, SchemaError> {
        required(read_strings(array)?, "ip")?
            .into_iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| SchemaError::BadValue(format!("not an IP address: {s:?}")))
            })
            .collect()
    }
    fn write_json(v: &IpAddr, out: &mut JsonOut<'_>) {
        // The text form (as serde writes it) has nothing to escape.
        match v {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                out.byte(b'"');
                out.u64(a.into());
                out.byte(b'.');
                out.u64(b.into());
                out.byte(b'.');
                out.u64(c.into());
                out.byte(b'.');
                out.u64(d.into());
                out.byte(b'"');
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                out.byte(b'"');
                // Writing into a Vec cannot fail.
                let _ = write!(out.buf(), "{v6}");
                out.byte(b'"');
            }
        }
    }
}

pub struct Bool;
impl Column for Bool {
    type Value = bool;
    type Builder = BooleanBuilder;
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        DataType::Boolean
    }
    fn json_schema() -> Value {
        json!({ "type": "boolean" })
    }
    fn default_value() -> bool {
        false
    }
    fn is_absent(_: &bool) -> bool {
        false
    }
    fn builder(capacity: usize) -> Self::Builder {
        BooleanBuilder::with_capacity(capacity)
    }
    fn append(b: &mut Self::Builder, v: &bool) {
        b.append_value(*v);
    }
    fn read(array: &dyn Array) -> Result<Vec<bool>, SchemaError> {
        let a = array
            .as_boolean_opt()
            .ok_or_else(|| wrong_type(array, "Boolean"))?;
        Ok((0..a.len()).map(|i| a.is_valid(i) && a.value(i)).collect())
    }
    fn write_json(v: &bool, out: &mut JsonOut<'_>) {
        out.bool(*v);
    }
}

/// Declares a column kind for a string enum such as `Protocol`.
macro_rules! enum_column {
    ($kind:ident, $rust:ty) => {
        pub struct $kind;
        impl Column for $kind {
            type Value = $rust;
            type Builder = StringBuilder;
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                DataType::Utf8
            }
            fn json_schema() -> Value {
                let names: Vec<&str> = <$rust>::ALL.iter().map(|v| v.as_str()).collect();
                json!({ "type": "string", "enum": names })
            }
            fn default_value() -> $rust {
                <$rust>::default()
            }
            fn is_absent(_: &$rust) -> bool {
                false
            }
            fn builder(capacity: usize) -> Self::Builder {
                StringBuilder::with_capacity(capacity, capacity * 5)
            }
            fn append(b: &mut Self::Builder, v: &$rust) {
                b.append_value(v.as_str());
            }
            fn read(array: &dyn Array) -> Result<Vec<$rust>, SchemaError> {
                required(read_strings(array)?, stringify!($rust))?
                    .iter()
                    .map(|s| s.parse())
                    .collect()
            }
            fn write_json(v: &$rust, out: &mut JsonOut<'_>) {
                out.plain_str(v.as_str());
            }
        }
    };
}

enum_column!(ProtocolCol, Protocol);
enum_column!(TransportCol, Transport);
enum_column!(CaptureSourceCol, CaptureSource);

fn list_of_strings() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn map_of_strings() -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ])),
            false,
        )),
        false,
    )
}

type StringMapBuilder = MapBuilder<StringBuilder, StringBuilder>;

fn read_string_lists(array: &dyn Array) -> Result<Vec<Option<Vec<String>>>, SchemaError> {
    let a = array
        .as_list_opt::<i32>()
        .ok_or_else(|| wrong_type(array, "List<Utf8>"))?;
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                return Ok(None);
            }
            let inner = read_strings(a.value(i).as_ref())?;
            Ok(Some(inner.into_iter().flatten().collect()))
        })
        .collect()
}

/// Key/value pairs of one map row, in order.
type Pairs = Vec<(String, String)>;

fn read_string_maps(array: &dyn Array) -> Result<Vec<Option<Pairs>>, SchemaError> {
    let a = array
        .as_map_opt()
        .ok_or_else(|| wrong_type(array, "Map<Utf8, Utf8>"))?;
    let keys = required(read_strings(a.keys().as_ref())?, "map key")?;
    let values = read_strings(a.values().as_ref())?;
    let offsets = a.value_offsets();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                return Ok(None);
            }
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            if end > keys.len() || start > end {
                return Err(SchemaError::BadValue("map offsets out of range".into()));
            }
            Ok(Some(
                (start..end)
                    .map(|j| (keys[j].clone(), values[j].clone().unwrap_or_default()))
                    .collect(),
            ))
        })
        .collect()
}

/// Entry flags as a list of names, so SQL reads `array_has(flags, 'response_gap')`.
pub struct FlagsCol;
impl Column for FlagsCol {
    type Value = Flags;
    type Builder = ListBuilder<StringBuilder>;
    const NULLABLE: bool = false;
    fn data_type() -> DataType {
        list_of_strings()
    }
    fn json_schema() -> Value {
        let names: Vec<&str> = Flags::ALL.iter().map(|(_, n)| *n).collect();
        json!({ "type": "array", "items": { "type": "string", "enum": names } })
    }
    fn default_value() -> Flags {
        Flags::empty()
    }
    fn is_absent(v: &Flags) -> bool {
        v.is_empty()
    }
    fn builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(StringBuilder::new(), capacity)
    }
    fn append(b: &mut Self::Builder, v: &Flags) {
        for n in v.names() {
            b.values().append_value(n);
        }
        b.append(true);
    }
    fn read(array: &dyn Array) -> Result<Vec<Flags>, SchemaError> {
        Ok(read_string_lists(array)?
            .into_iter()
            .map(|names| {
                names
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| Flags::from_name(n))
                    .fold(Flags::empty(), |a, b| a | b)
            })
            .collect())
    }
    fn write_json(v: &Flags, out: &mut JsonOut<'_>) {
        out.byte(b'[');
        for (i, n) in v.names().enumerate() {
            if i > 0 {
                out.byte(b',');
            }
            out.plain_str(n);
        }
        out.byte(b']');
    }
}

pub struct OptStrList;
impl Column for OptStrList {
    type Value = Option<Vec<String>>;
    type Builder = ListBuilder<StringBuilder>;
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        list_of_strings()
    }
    fn json_schema() -> Value {
        json!({ "type": ["array", "null"], "items": { "type": "string" } })
    }
    fn default_value() -> Self::Value {
        None
    }
    fn is_absent(v: &Self::Value) -> bool {
        v.is_none()
    }
    fn builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(StringBuilder::new(), capacity)
    }
    fn append(b: &mut Self::Builder, v: &Self::Value) {
        match v {
            Some(items) => {
                for s in items {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    fn read(array: &dyn Array) -> Result<Vec<Self::Value>, SchemaError> {
        read_string_lists(array)
    }
    fn write_json(v: &Self::Value, out: &mut JsonOut<'_>) {
        match v {
            Some(items) => out.str_list(items.iter().map(String::as_str)),
            None => out.null(),
        }
    }
}

pub struct OptHeaders;
impl Column for OptHeaders {
    type Value = Option<Headers>;
    type Builder = StringMapBuilder;
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        map_of_strings()
    }
    fn json_schema() -> Value {
        json!({ "type": ["object", "null"], "additionalProperties": { "type": "string" } })
    }
    fn default_value() -> Self::Value {
        None
    }
    fn is_absent(v: &Self::Value) -> bool {
        v.is_none()
    }
    fn builder(_capacity: usize) -> Self::Builder {
        MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
    }
    fn append(b: &mut Self::Builder, v: &Self::Value) {
        if let Some(h) = v {
            for (k, val) in h.iter() {
                b.keys().append_value(k);
                b.values().append_value(val);
            }
        }
        // Infallible: keys and values were appended in pairs just above.
        let _ = b.append(v.is_some());
    }
    fn read(array: &dyn Array) -> Result<Vec<Self::Value>, SchemaError> {
        Ok(read_string_maps(array)?
            .into_iter()
            .map(|m| m.map(Headers))
            .collect())
    }
    fn write_json(v: &Self::Value, out: &mut JsonOut<'_>) {
        match v {
            Some(h) => h.write_json(out),
            None => out.null(),
        }
    }
}

pub struct OptLabels;
impl Column for OptLabels {
    type Value = Option<BTreeMap<String, String>>;
    type Builder = StringMapBuilder;
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        map_of_strings()
    }
    fn json_schema() -> Value {
        json!({ "type": ["object", "null"], "additionalProperties": { "type": "string" } })
    }
    fn default_value() -> Self::Value {
        None
    }
    fn is_absent(v: &Self::Value) -> bool {
        v.is_none()
    }
    fn builder(_capacity: usize) -> Self::Builder {
        MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
    }
    fn append(b: &mut Self::Builder, v: &Self::Value) {
        if let Some(m) = v {
            for (k, val) in m {
                b.keys().append_value(k);
                b.values().append_value(val);
            }
        }
        let _ = b.append(v.is_some());
    }
    fn read(array: &dyn Array) -> Result<Vec<Self::Value>, SchemaError> {
        Ok(read_string_maps(array)?
            .into_iter()
            .map(|m| m.map(|pairs| pairs.into_iter().collect()))
            .collect())
    }
    fn write_json(v: &Self::Value, out: &mut JsonOut<'_>) {
        let Some(m) = v else {
            return out.null();
        };
        out.byte(b'{');
        for (i, (k, val)) in m.iter().enumerate() {
            if i > 0 {
                out.byte(b',');
            }
            out.str(k);
            out.byte(b':');
            out.str(val);
        }
        out.byte(b'}');
    }
}

pub struct OptBody;
impl Column for OptBody {
    type Value = Option<Body>;
    type Builder = BinaryBuilder;
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        DataType::Binary
    }
    fn json_schema() -> Value {
        json!({
            "oneOf": [
                { "type": "string", "description": "the body, when it is valid UTF-8" },
                {
                    "type": "object",
                    "properties": { "base64": { "type": "string" } },
                    "required": ["base64"],
                    "description": "a body that is not UTF-8, base64-encoded"
                },
                { "type": "null" }
            ]
        })
    }
    fn default_value() -> Self::Value {
        None
    }
    fn is_absent(v: &Self::Value) -> bool {
        v.is_none()
    }
    fn builder(capacity: usize) -> Self::Builder {
        BinaryBuilder::with_capacity(capacity, capacity * 64)
    }
    fn append(b: &mut Self::Builder, v: &Self::Value) {
        b.append_option(v.as_ref().map(|b| b.0.as_slice()));
    }
    fn read(array: &dyn Array) -> Result<Vec<Self::Value>, SchemaError> {
        let a = array
            .as_binary_opt::<i32>()
            .ok_or_else(|| wrong_type(array, "Binary"))?;
        Ok((0..a.len())
            .map(|i| a.is_valid(i).then(|| Body(a.value(i).to_vec())))
            .collect())
    }
    fn write_json(v: &Self::Value, out: &mut JsonOut<'_>) {
        match v {
            Some(b) => b.write_json(out),
            None => out.null(),
        }
    }
}
