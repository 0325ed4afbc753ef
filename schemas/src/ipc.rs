//! Arrow IPC stream bytes: how batches travel on NATS (one batch per message).

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::ArrowError;

/// How the buffers of a batch are compressed. Arrow IPC says so in each message, so
/// every Arrow reader (pyarrow, arrow-rs, arrow-go…) decodes either without being told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    /// LZ4 frames per buffer: entries are repetitive (null columns, the same hosts and
    /// headers), so this cuts the bytes NATS stores and carries several times over, for
    /// less CPU than the dissection that made them. A buffer that does not shrink is
    /// stored as it is.
    #[default]
    Lz4,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            _ => Err(format!("unknown compression {s:?}: use lz4 or none")),
        }
    }
}

/// One batch as Arrow IPC stream bytes (schema message, batch, end of stream).
pub fn encode(batch: &RecordBatch, compression: Compression) -> Result<Vec<u8>, ArrowError> {
    let options = IpcWriteOptions::default().try_with_compression(match compression {
        Compression::None => None,
        Compression::Lz4 => Some(CompressionType::LZ4_FRAME),
    })?;
    let mut w = StreamWriter::try_new_with_options(Vec::new(), batch.schema_ref(), options)?;
    w.write(batch)?;
    w.into_inner()
}

/// Every batch in Arrow IPC stream bytes.
pub fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, ArrowError> {
    StreamReader::try_new(bytes, None)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, entries_from_batch};

    #[test]
    fn entries_survive_ipc() {
        let e = Entry {
            id: "a".into(),
            method: Some("GET".into()),
            ..Entry::default()
        };
        let many = vec![e.clone(); 500];
        let plain = encode(&Entry::batch(&many), Compression::None).unwrap();
        let lz4 = encode(&Entry::batch(&many), Compression::Lz4).unwrap();
        for bytes in [&plain, &lz4] {
            let batches = decode(bytes).unwrap();
            assert_eq!(batches.len(), 1);
            assert_eq!(entries_from_batch(&batches[0]).unwrap(), many);
        }
        assert!(
            lz4.len() * 3 < plain.len(),
            "{} vs {}",
            lz4.len(),
            plain.len()
        );
        assert!(decode(b"not arrow").is_err());
        assert_eq!("lz4".parse::<Compression>(), Ok(Compression::Lz4));
        assert!("zip".parse::<Compression>().is_err());
    }
}
