use crate::LogId;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// A write or fsync failed earlier; the on-disk state is unknown, so every
    /// later write is refused until the process restarts and recovers.
    #[error("storage is poisoned by an earlier write failure: {0}")]
    Poisoned(String),
    #[error("corrupt entry in log {log} at offset {offset}: {reason}")]
    Corrupt { log: LogId, offset: i64, reason: String },
    #[error("corrupt metadata record {key}: {reason}")]
    CorruptMetadata { key: String, reason: String },
    #[error("the storage writer has stopped")]
    WriterStopped,
}

impl From<rocksdb::Error> for StorageError {
    fn from(error: rocksdb::Error) -> Self {
        StorageError::Io(error.into_string())
    }
}
