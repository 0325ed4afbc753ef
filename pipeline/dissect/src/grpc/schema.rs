//! gRPC messages decoded with the user's schema: a descriptor set
//! (`protoc --include_imports --descriptor_set_out=FILE`) read with prost-reflect, and
//! messages rendered as JSON-like text with their field names.

use std::fmt::Write;

use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, Value};

use super::protobuf::{base64, json_string};

/// Services, methods and message types from a descriptor set.
pub struct ProtoSchema {
    pool: DescriptorPool,
}

impl std::fmt::Debug for ProtoSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtoSchema")
            .field("services", &self.pool.services().len())
            .field("messages", &self.pool.all_messages().len())
            .finish()
    }
}

impl ProtoSchema {
    /// Reads a serialized `google.protobuf.FileDescriptorSet`.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<ProtoSchema, String> {
        DescriptorPool::decode(bytes)
            .map(|pool| ProtoSchema { pool })
            .map_err(|e| e.to_string())
    }

    /// Number of services the schema describes.
    pub fn services(&self) -> usize {
        self.pool.services().len()
    }

    /// The request and response types of the method at `path` (`/pkg.Service/Method`).
    pub fn method(&self, path: &str) -> Option<(MessageDescriptor, MessageDescriptor)> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        let s = self.pool.get_service_by_name(service)?;
        let m = s.methods().find(|m| m.name() == method)?;
        Some((m.input(), m.output()))
    }

    /// `bytes` decoded as `desc`, as text; `None` when they do not decode as that type.
    pub fn render(desc: &MessageDescriptor, bytes: &[u8]) -> Option<String> {
        let msg = DynamicMessage::decode(desc.clone(), bytes).ok()?;
        let mut out = String::new();
        write_message(&msg, &mut out);
        Some(out)
    }
}

fn write_message(m: &DynamicMessage, out: &mut String) {
    out.push('{');
    for (i, (field, value)) in m.fields().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(field.name(), out);
        out.push_str(": ");
        write_value(value, &field.kind(), out);
    }
    out.push('}');
}

fn write_value(v: &Value, kind: &Kind, out: &mut String) {
    match v {
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::I32(x) => {
            let _ = write!(out, "{x}");
        }
        Value::I64(x) => {
            let _ = write!(out, "{x}");
        }
        Value::U32(x) => {
            let _ = write!(out, "{x}");
        }
        Value::U64(x) => {
            let _ = write!(out, "{x}");
        }
        Value::F32(x) => write_float(f64::from(*x), out),
        Value::F64(x) => write_float(*x, out),
        Value::String(s) => json_string(s, out),
        Value::Bytes(b) => {
            out.push_str("{\"base64\": \"");
            out.push_str(&base64(b));
            out.push_str("\"}");
        }
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => json_string(v.name(), out),
                None => {
                    let _ = write!(out, "{n}");
                }
            },
            _ => {
                let _ = write!(out, "{n}");
            }
        },
        Value::Message(m) => write_message(m, out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, kind, out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                _ => kind.clone(),
            };
            // Sorted, so that the same message always reads the same.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let key = match k {
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(x) => x.to_string(),
                    MapKey::I64(x) => x.to_string(),
                    MapKey::U32(x) => x.to_string(),
                    MapKey::U64(x) => x.to_string(),
                    MapKey::String(s) => s.clone(),
                };
                json_string(&key, out);
                out.push_str(": ");
                write_value(v, &value_kind, out);
            }
            out.push('}');
        }
    }
}

fn write_float(x: f64, out: &mut String) {
    if x.is_finite() {
        let _ = write!(out, "{x}");
    } else {
        json_string(&x.to_string(), out);
    }
}
