//! The journal: append-only files that hold every write group the store
//! takes, and the one place batch bytes are kept. RocksDB runs without its
//! own WAL and indexes the journal: a stored batch is a pointer to its bytes
//! in a journal record (`codec::encode_batch_pointer`). So each produced
//! byte reaches the disk once, where RocksDB with a WAL and blob files
//! wrote it twice (WAL, then blob file at the memtable flush).
//!
//! Record: `[magic: 4][payload length: 4][crc32 of payload: 4][payload]`,
//! the payload being the write group's ops (`ops_codec`). A torn or corrupt
//! record at the end of the newest file is where replay stops and the file
//! is cut; anywhere else it is corruption and the store refuses to open.
//!
//! Files are named `<id>.journal` (ids count up from 1) and rolled at
//! `file_target_bytes`; a rolled file is fdatasynced before the next one
//! takes writes, so a sync only ever needs the newest file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::StorageError;

pub(crate) const RECORD_HEADER: usize = 12;
const MAGIC: u32 = 0x534b_4a31; // "SKJ1"
/// Larger than any write group the writer forms (32 MiB), so a length
/// beyond it can only be garbage.
const MAX_RECORD_PAYLOAD: usize = 256 << 20;

/// A place in the journal: file id and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) file: u32,
    pub(crate) offset: u64,
}

impl Position {
    pub(crate) fn encode(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.file.to_be_bytes());
        out[4..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 12] = bytes.try_into().ok()?;
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&bytes[4..]);
        Some(Self {
            file: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            offset: u64::from_be_bytes(offset),
        })
    }
}

/// Where one batch's bytes lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) file: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

impl Location {
    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

fn io_error(context: &str, error: io::Error) -> StorageError {
    StorageError::Io(format!("journal: {context}: {error}"))
}

/// Puts the record header in front of `payload`, which starts with
/// [`RECORD_HEADER`] bytes reserved for it. `checksummed` are ranges of the
/// record, in order and apart, `(start, length, hasher over those bytes)`,
/// whose checksum is known already (the batches'): the record's checksum
/// combines them instead of reading those bytes again.
pub(crate) fn seal_record(record: &mut [u8], checksummed: &[(usize, usize, &crc32fast::Hasher)]) {
    let payload_len = (record.len() - RECORD_HEADER) as u32;
    let mut hasher = crc32fast::Hasher::new();
    let mut at = RECORD_HEADER;
    for (start, len, known) in checksummed {
        hasher.update(&record[at..*start]);
        hasher.combine(known);
        at = start + len;
    }
    hasher.update(&record[at..]);
    let crc = hasher.finalize();
    record[..4].copy_from_slice(&MAGIC.to_be_bytes());
    record[4..8].copy_from_slice(&payload_len.to_be_bytes());
    record[8..12].copy_from_slice(&crc.to_be_bytes());
}

/// fdatasync of a journal file, as a storage error.
pub(crate) fn sync_file(file: &File) -> Result<(), StorageError> {
    file.sync_data().map_err(|e| io_error("sync", e))
}

/// The journal files (shared by writers and readers).
pub(crate) struct Journal {
    dir: PathBuf,
    file_target_bytes: u64,
    /// Every file that exists, opened on first use.
    files: RwLock<BTreeMap<u32, Option<Arc<File>>>>,
}

/// The append end of the journal; the store keeps it under its write lock.
pub(crate) struct Appender {
    id: u32,
    file: Arc<File>,
    len: u64,
}

impl Appender {
    pub(crate) fn end(&self) -> Position {
        Position { file: self.id, offset: self.len }
    }

    /// The newest file: syncing it makes every appended record durable.
    pub(crate) fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Writes a sealed record; returns where it starts and whether a new
    /// file was begun for it.
    pub(crate) fn append(&mut self, journal: &Journal, record: &[u8]) -> Result<(Position, bool), StorageError> {
        let rolled = self.len > 0 && self.len + record.len() as u64 > journal.file_target_bytes;
        if rolled {
            self.file.sync_data().map_err(|e| io_error("sync before roll", e))?;
            let id = self.id + 1;
            self.file = journal.create(id)?;
            self.id = id;
            self.len = 0;
        }
        let at = self.end();
        self.file.write_all_at(record, self.len).map_err(|e| io_error("write", e))?;
        self.len += record.len() as u64;
        Ok((at, rolled))
    }
}

impl Journal {
    /// Opens the journal in `dir`, creating it (and its first file) if missing.
    pub(crate) fn open(dir: &Path, file_target_bytes: u64) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", e))?;
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error("list directory", e))? {
            let name = entry.map_err(|e| io_error("list directory", e))?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".journal").and_then(|id| id.parse::<u32>().ok()) {
                files.insert(id, None);
            }
        }
        let journal = Self { dir: dir.to_owned(), file_target_bytes, files: RwLock::new(files) };
        if journal.ids().is_empty() {
            journal.create(1)?;
        }
        Ok(journal)
    }

    fn path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("{id:010}.journal"))
    }

    pub(crate) fn ids(&self) -> Vec<u32> {
        self.files.read().unwrap_or_else(|p| p.into_inner()).keys().copied().collect()
    }

    fn create(&self, id: u32) -> Result<Arc<File>, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path(id))
            .map_err(|e| io_error("create file", e))?;
        // The new name must survive a crash before records in it count.
        File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(|e| io_error("sync directory", e))?;
        let file = Arc::new(file);
        self.files.write().unwrap_or_else(|p| p.into_inner()).insert(id, Some(Arc::clone(&file)));
        Ok(file)
    }

    pub(crate) fn file(&self, id: u32) -> Result<Arc<File>, StorageError> {
        if let Some(Some(file)) = self.files.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(Arc::clone(file));
        }
        let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
        let slot = files.get_mut(&id).ok_or_else(|| StorageError::Io(format!("journal file {id} does not exist")))?;
        if slot.is_none() {
            let file = OpenOptions::new().read(true).write(true).open(self.path(id));
            *slot = Some(Arc::new(file.map_err(|e| io_error("open file", e))?));
        }
        Ok(Arc::clone(slot.as_ref().expect("just filled")))
    }

    /// Reads `len` bytes at a place a pointer names.
    pub(crate) fn read(&self, file: u32, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let mut buffer = vec![0u8; len];
        self.file(file)?.read_exact_at(&mut buffer, offset).map_err(|e| io_error("read", e))?;
        Ok(Bytes::from(buffer))
    }

    /// The size of the files with ids in `from..to`.
    pub(crate) fn bytes_in(&self, from: u32, to: u32) -> Result<u64, StorageError> {
        let ids: Vec<u32> =
            self.files.read().unwrap_or_else(|p| p.into_inner()).range(from..to).map(|(id, _)| *id).collect();
        let mut total = 0;
        for id in ids {
            total += std::fs::metadata(self.path(id)).map_err(|e| io_error("stat", e))?.len();
        }
        Ok(total)
    }

    /// Deletes every file older than `id`: nothing points into them any more.
    pub(crate) fn delete_before(&self, id: u32) -> Result<usize, StorageError> {
        let doomed: Vec<u32> = {
            let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
            let kept = files.split_off(&id);
            std::mem::replace(&mut *files, kept).into_keys().collect()
        };
        for old in &doomed {
            std::fs::remove_file(self.path(*old)).map_err(|e| io_error("delete file", e))?;
        }
        Ok(doomed.len())
    }

    /// Replays the records from `from` on, in order, and returns the
    /// appender positioned after the last good one. Every file replayed is
    /// fdatasynced first: what the index is about to point at must be
    /// durable before the index can be flushed.
    pub(crate) fn replay(
        &self,
        from: Position,
        mut apply: impl FnMut(Position, Bytes) -> Result<(), StorageError>,
    ) -> Result<Appender, StorageError> {
        let ids: Vec<u32> = self.ids().into_iter().filter(|id| *id >= from.file).collect();
        let newest = *self.ids().last().expect("the journal always has a file");
        if ids.is_empty() {
            return Err(StorageError::Io(format!(
                "journal: the index was flushed up to file {} but the journal holds no such file",
                from.file
            )));
        }
        for id in ids {
            let file = self.file(id)?;
            file.sync_data().map_err(|e| io_error("sync before replay", e))?;
            let mut offset = if id == from.file { from.offset } else { 0 };
            while let Some(payload) = read_record(&file, offset)? {
                let len = payload.len() as u64;
                apply(Position { file: id, offset }, payload)?;
                offset += RECORD_HEADER as u64 + len;
            }
            let file_len = file.metadata().map_err(|e| io_error("stat", e))?.len();
            if offset < file_len {
                if id != newest {
                    return Err(StorageError::Io(format!(
                        "journal: file {} is corrupt at byte {offset} and newer files follow it; refusing to open",
                        self.path(id).display()
                    )));
                }
                // The torn tail of the newest file: writes that never completed.
                tracing::warn!(file = %self.path(id).display(), at = offset, dropped = file_len - offset, "journal: cutting a torn tail");
                file.set_len(offset).map_err(|e| io_error("cut torn tail", e))?;
                file.sync_all().map_err(|e| io_error("sync after cut", e))?;
            }
            if id == newest {
                return Ok(Appender { id, file, len: offset });
            }
        }
        unreachable!("the newest file is among those replayed")
    }
}

/// The payload of the record at `offset`, or `None` at the end of the
/// good records (end of file, a torn write, or garbage).
fn read_record(file: &File, offset: u64) -> Result<Option<Bytes>, StorageError> {
    let mut header = [0u8; RECORD_HEADER];
    match file.read_exact_at(&mut header, offset) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_error("read header", e)),
    }
    let field = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let (magic, len, crc) = (field(0), field(4) as usize, field(8));
    if magic != MAGIC || len > MAX_RECORD_PAYLOAD {
        return Ok(None);
    }
    let mut payload = vec![0u8; len];
    match file.read_exact_at(&mut payload, offset + RECORD_HEADER as u64) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_error("read record", e)),
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    Ok(Some(Bytes::from(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut record = vec![0u8; RECORD_HEADER];
        record.extend_from_slice(payload);
        seal_record(&mut record, &[]);
        record
    }

    fn replay_all(journal: &Journal, from: Position) -> (Vec<(Position, Bytes)>, Appender) {
        let mut seen = Vec::new();
        let appender = journal
            .replay(from, |at, payload| {
                seen.push((at, payload));
                Ok(())
            })
            .expect("replay");
        (seen, appender)
    }

    #[test]
    fn records_replay_in_order_across_rolled_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path(), 64).expect("open");
        let (_, mut appender) = replay_all(&journal, Position { file: 1, offset: 0 });
        let mut starts = Vec::new();
        for n in 0..5u8 {
            starts.push(appender.append(&journal, &record(&[n; 40])).expect("append").0);
        }
        assert_eq!(journal.ids(), vec![1, 2, 3, 4, 5], "each 52-byte record overflows a 64-byte file");
        let (seen, appender) = replay_all(&Journal::open(dir.path(), 64).expect("reopen"), starts[2]);
        assert_eq!(seen.iter().map(|(at, _)| *at).collect::<Vec<_>>(), starts[2..].to_vec());
        assert_eq!(seen[0].1.as_ref(), &[2u8; 40]);
        assert_eq!(appender.end(), Position { file: 5, offset: 52 });
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_continue_after_the_last_good_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path(), 1 << 20).expect("open");
        let (_, mut appender) = replay_all(&journal, Position { file: 1, offset: 0 });
        appender.append(&journal, &record(b"kept")).expect("append");
        let torn = record(b"lost in the crash");
        appender.append(&journal, &torn[..torn.len() - 3]).expect("append a torn write");
        let journal = Journal::open(dir.path(), 1 << 20).expect("reopen");
        let (seen, mut appender) = replay_all(&journal, Position { file: 1, offset: 0 });
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1.as_ref(), b"kept");
        assert_eq!(std::fs::metadata(journal.path(1)).expect("stat").len(), 16, "the torn bytes are gone");
        appender.append(&journal, &record(b"after")).expect("append");
        let (seen, _) =
            replay_all(&Journal::open(dir.path(), 1 << 20).expect("reopen"), Position { file: 1, offset: 0 });
        assert_eq!(
            seen.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>(),
            vec![Bytes::from("kept"), Bytes::from("after")]
        );
    }

    #[test]
    fn a_corrupt_record_before_newer_files_refuses_to_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path(), 32).expect("open");
        let (_, mut appender) = replay_all(&journal, Position { file: 1, offset: 0 });
        appender.append(&journal, &record(&[7; 30])).expect("append");
        appender.append(&journal, &record(&[8; 30])).expect("append");
        journal.file(1).expect("file").write_all_at(&[0xff], 20).expect("flip a byte");
        let journal = Journal::open(dir.path(), 32).expect("reopen");
        let error = journal.replay(Position { file: 1, offset: 0 }, |_, _| Ok(())).err().expect("refused");
        assert!(error.to_string().contains("corrupt"), "{error}");
    }

    #[test]
    fn old_files_are_deleted_and_reads_find_bytes_where_pointers_say() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path(), 32).expect("open");
        let (_, mut appender) = replay_all(&journal, Position { file: 1, offset: 0 });
        for n in 0..3u8 {
            appender.append(&journal, &record(&[n; 30])).expect("append");
        }
        assert_eq!(journal.read(2, RECORD_HEADER as u64, 3).expect("read").as_ref(), &[1, 1, 1]);
        assert_eq!(journal.delete_before(3).expect("delete"), 2);
        assert_eq!(journal.ids(), vec![3]);
        assert!(!journal.path(1).exists());
        assert!(journal.read(1, 0, 1).is_err(), "a deleted file reads as an error, not as zeroes");
    }
}
