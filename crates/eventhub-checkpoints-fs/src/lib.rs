//! A [`BlobBackend`] on a local directory: one small JSON file per blob.
//!
//! [`FileBackend`] is the default store of the `ehcp` CLI, and a short
//! example of how to write a backend: four calls, conditions checked against
//! the current state, a new etag on every write.
//!
//! ```
//! use std::sync::Arc;
//! use eventhub_checkpoints::{Checkpoint, CheckpointStore, Offset, PartitionId, Scope};
//! use eventhub_checkpoints_fs::FileBackend;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?; // or any directory, e.g. "/var/lib/ehcp"
//! let store = CheckpointStore::new(Arc::new(FileBackend::open(dir.path())?));
//! let scope = Scope::new("contoso.servicebus.windows.net", "telemetry", "$Default")?;
//! let checkpoint = Checkpoint::new(scope.clone(), PartitionId::from(0), Some(Offset::from(4096)), Some(17))?;
//! store.update_checkpoint(&checkpoint).await?;
//! assert_eq!(store.list_checkpoints(&scope).await?.items, [checkpoint]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # On disk
//!
//! ```text
//! <root>/
//!   .lock          empty; writers hold an exclusive lock on it
//!   blobs/         one file per blob, named after the blob (see below)
//!   tmp/           files being written, renamed into blobs/ when complete
//! ```
//!
//! A blob named `ns/hub/$default/ownership/0` is the file
//! `blobs/ns%2Fhub%2F%24default%2Fownership%2F0.json`:
//!
//! ```json
//! {
//!   "name": "ns/hub/$default/ownership/0",
//!   "etag": "0xCCE8B9A5597C3085",
//!   "last_modified_ns": 1767225600123456789,
//!   "metadata": [
//!     {
//!       "name": "ownerid",
//!       "value": "consumer-1"
//!     }
//!   ]
//! }
//! ```
//!
//! Every byte of the name other than `a`-`z`, `0`-`9`, `-`, `_` and `.` is
//! percent-encoded (upper-case letters too, for case-insensitive file
//! systems); a name whose encoded form would exceed 255 bytes is stored as
//! `@<SHA-256 of the name>.json` instead.
//!
//! # Guarantees
//!
//! - **Conditional writes are exact across threads and processes.** Every
//!   write takes an exclusive lock on `<root>/.lock`, reads the blob's
//!   current state, checks the condition, writes a temporary file, flushes
//!   it to disk and renames it over the blob's file, then releases the lock.
//!   Of several writers racing with the same etag or create-only, exactly
//!   one wins.
//! - **Readers never see a torn file.** A rename replaces the whole file at
//!   once, so listings take no lock.
//! - **Etags are random 64-bit values**, new on every write, so they are not
//!   reused across processes or after a blob is deleted and re-created.
//! - **A corrupt file does not fail a listing**: it is skipped with a
//!   warning. Writers treat it as an existing blob whose etag matches
//!   nothing, so an unconditional write or a delete repairs it.
//!
//! # Limits
//!
//! Local disks only: the lock and the atomic rename are not reliable on
//! network file systems such as NFS or SMB. One lock serializes all writes
//! to the directory (each holds it for one small file write), and every
//! listing reads the directory. Blob bodies are not stored: the core only
//! writes empty blobs with metadata. A write that returned just before a
//! power loss may be lost (the directory is not flushed); the previous
//! version then remains, never a torn one.

mod names;

use std::fmt::Display;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use eventhub_checkpoints::{
    BackendError, BackendErrorKind, BlobBackend, BlobItem, BlobProperties, ETag, Metadata, WriteCondition,
};
use serde::{Deserialize, Serialize};

const LOCK_FILE: &str = ".lock";
const BLOBS_DIR: &str = "blobs";
const TMP_DIR: &str = "tmp";
/// Temporary files are 16 lower-case hex digits and this suffix.
const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` is one of the temporary files this crate writes.
fn is_temp_file_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|name| name.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|stem| stem.len() == 16 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Fails if `root` exists, holds anything, and is not a store.
fn refuse_foreign_directory(root: &Path) -> io::Result<()> {
    let mut entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if entries.next().is_none() || root.join(LOCK_FILE).is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is not empty and is not a checkpoint store (it has no {LOCK_FILE}); \
             choose a new or empty directory",
            root.display()
        ),
    ))
}

/// A container of blobs in a local directory; see the [crate docs](crate)
/// for the layout and the guarantees.
///
/// Any number of `FileBackend`s, in any number of processes on one machine,
/// may use the same directory at once.
#[derive(Clone, Debug)]
pub struct FileBackend {
    root: PathBuf,
}

/// The content of one blob file.
#[derive(Debug, Serialize, Deserialize)]
struct BlobFile {
    /// The full blob name; a hashed file name does not say it.
    name: String,
    /// The etag, unquoted.
    etag: String,
    /// Last write, in nanoseconds since the Unix epoch: exact, so a listing
    /// returns the time the write returned.
    last_modified_ns: u64,
    /// The metadata in the order written, names in the case written.
    metadata: Vec<MetadataEntry>,
}

/// One metadata pair of a [`BlobFile`].
#[derive(Debug, Serialize, Deserialize)]
struct MetadataEntry {
    name: String,
    value: String,
}

/// What a write finds at a blob's path.
enum Current {
    Missing,
    /// The blob exists, with this etag, or `None` if its file is corrupt
    /// (then no `IfMatch` matches it).
    Exists(Option<ETag>),
}

/// What `write` does when the blob does not exist.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IfMissing {
    /// Create it (Put Blob).
    Create,
    /// Fail with `NotFound` (Set Blob Metadata).
    NotFound,
}

impl FileBackend {
    /// A backend on the directory `root`, created (with its parents) if
    /// needed.
    ///
    /// Refuses (`InvalidInput`) a directory that holds files but is not a
    /// store (it has no `.lock`), so a mistyped path such as a home or
    /// project directory is never turned into one. Removes the temporary
    /// files a crashed writer left in `tmp/`, and nothing else there.
    pub fn open(root: impl AsRef<Path>) -> io::Result<FileBackend> {
        // Absolute, so that a later change of the working directory does
        // not move the store.
        let root = std::path::absolute(root)?;
        refuse_foreign_directory(&root)?;
        fs::create_dir_all(root.join(BLOBS_DIR))?;
        fs::create_dir_all(root.join(TMP_DIR))?;
        // Created once here and never truncated or deleted: writers in every
        // process must lock the same file.
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(root.join(LOCK_FILE))?;
        let backend = FileBackend { root };
        backend.remove_stale_temp_files()?;
        Ok(backend)
    }

    /// A backend on the store that already exists at `root`, for reading:
    /// creates nothing, takes no lock and removes nothing, so a read-only
    /// directory can be inspected. Fails with `NotFound` if `root` is not a
    /// store (no `.lock`). Writes through it work like any other's.
    pub fn open_existing(root: impl AsRef<Path>) -> io::Result<FileBackend> {
        let root = std::path::absolute(root)?;
        if !root.join(LOCK_FILE).is_file() || !root.join(BLOBS_DIR).is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is not a checkpoint store (no {LOCK_FILE} and {BLOBS_DIR}/)",
                    root.display()
                ),
            ));
        }
        Ok(FileBackend { root })
    }

    /// The store's directory, as an absolute path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds (or would hold) the blob `name`, for tools and
    /// tests that look at the directory.
    pub fn blob_path(&self, name: &str) -> PathBuf {
        self.root.join(BLOBS_DIR).join(names::file_name(name))
    }

    /// Takes the exclusive write lock, waiting for it as long as it takes;
    /// the lock is released when the returned file is dropped (closed).
    ///
    /// The file is opened anew each time: a lock belongs to one open file,
    /// so threads sharing one handle would not exclude each other.
    fn lock(&self) -> Result<File, BackendError> {
        let path = self.root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        file.lock()
            .map_err(|e| io_error(format!("cannot lock {}", path.display()), e))?;
        Ok(file)
    }

    /// Temporary files only exist while their writer holds the lock, so any
    /// found while holding it were left by a crash. Only files named as
    /// [`replace`](Self::replace) names them are removed.
    fn remove_stale_temp_files(&self) -> io::Result<()> {
        let _lock = self.lock().map_err(io::Error::other)?;
        for entry in fs::read_dir(self.root.join(TMP_DIR))? {
            let entry = entry?;
            if !entry.file_type()?.is_file() || !is_temp_file_name(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            tracing::debug!(file = %path.display(), "removing a temporary file left by a crashed writer");
            fs::remove_file(path)?;
        }
        Ok(())
    }

    /// Every blob whose name starts with `prefix`, in name order.
    fn list(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
        let dir = self.root.join(BLOBS_DIR);
        let read_error = |e| io_error(format!("cannot read {}", dir.display()), e);
        let mut items = Vec::new();
        for entry in fs::read_dir(&dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let file_name = entry.file_name();
            // Skip what this crate did not write (editor backups, notes, ...).
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if !file_name.ends_with(names::SUFFIX) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            // Most file names say the blob name: skip other prefixes unread.
            if let Some(name) = names::blob_name(file_name)
                && !name.starts_with(prefix)
            {
                continue;
            }
            let path = entry.path();
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                // Deleted since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(format!("cannot read {}", path.display()), e)),
            };
            match parse(&bytes) {
                Ok(item) if names::file_name(&item.name) != file_name => tracing::warn!(
                    file = %path.display(),
                    blob = %item.name,
                    "skipping a blob file whose name does not match the blob it holds"
                ),
                Ok(item) if item.name.starts_with(prefix) => items.push(item),
                Ok(_) => {}
                Err(error) => tracing::warn!(file = %path.display(), %error, "skipping a corrupt blob file"),
            }
        }
        // `String` order is byte order of UTF-8, the order Blob Storage lists in.
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    /// Writes the blob `name` with `metadata` if `condition` holds.
    fn write(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
        if_missing: IfMissing,
    ) -> Result<BlobProperties, BackendError> {
        let _lock = self.lock()?;
        let path = self.blob_path(name);
        let current = read_current(&path)?;
        if if_missing == IfMissing::NotFound && matches!(current, Current::Missing) {
            return Err(not_found(name));
        }
        check(name, condition, &current)?;

        let etag = new_etag(&current);
        let last_modified_ns = now_ns()?;
        let file = BlobFile {
            name: name.to_owned(),
            etag: etag.as_str().to_owned(),
            last_modified_ns,
            metadata: metadata
                .iter()
                .map(|(name, value)| MetadataEntry {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })
                .collect(),
        };
        let mut json = serde_json::to_vec_pretty(&file).expect("a BlobFile always serializes");
        json.push(b'\n');
        self.replace(&path, &json)?;
        Ok(BlobProperties {
            etag,
            last_modified: time_from_ns(last_modified_ns),
        })
    }

    /// Deletes the blob `name` if `condition` holds.
    fn delete(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        let _lock = self.lock()?;
        let path = self.blob_path(name);
        let current = read_current(&path)?;
        if matches!(current, Current::Missing) {
            return Err(not_found(name));
        }
        check(name, condition, &current)?;
        fs::remove_file(&path).map_err(|e| io_error(format!("cannot delete {}", path.display()), e))
    }

    /// Replaces `path` with `contents` all at once: writes a temporary file,
    /// flushes it to disk, renames it over `path`. Called with the lock held.
    fn replace(&self, path: &Path, contents: &[u8]) -> Result<(), BackendError> {
        let tmp = self
            .root
            .join(TMP_DIR)
            .join(format!("{:016x}{TEMP_SUFFIX}", rand::random::<u64>()));
        let written = File::create_new(&tmp)
            .and_then(|mut file| {
                file.write_all(contents)?;
                // Without this, a crash soon after the rename could leave an
                // empty or partial file under the blob's name.
                file.sync_all()
            })
            .map_err(|e| io_error(format!("cannot write {}", tmp.display()), e))
            .and_then(|()| {
                fs::rename(&tmp, path).map_err(|e| io_error(format!("cannot replace {}", path.display()), e))
            });
        if written.is_err() {
            // Best effort: a left-over is removed by the next `open`.
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// Reads the state a write must check its condition against.
fn read_current(path: &Path) -> Result<Current, BackendError> {
    match fs::read(path) {
        Ok(bytes) => match parse(&bytes) {
            Ok(item) => Ok(Current::Exists(Some(item.properties.etag))),
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "blob file is corrupt; treating it as a blob whose etag matches nothing");
                Ok(Current::Exists(None))
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Current::Missing),
        Err(e) => Err(io_error(format!("cannot read {}", path.display()), e)),
    }
}

/// Checks a write's condition the way Blob Storage does.
fn check(name: &str, condition: &WriteCondition, current: &Current) -> Result<(), BackendError> {
    match (condition, current) {
        (WriteCondition::Unconditional, _) => Ok(()),
        (WriteCondition::IfMatch(etag), Current::Exists(Some(current))) if current == etag => Ok(()),
        (WriteCondition::IfMatch(_), _) => Err(BackendError::new(
            BackendErrorKind::PreconditionFailed,
            format!("etag of '{name}' does not match"),
        )),
        (WriteCondition::IfNotExists, Current::Missing) => Ok(()),
        (WriteCondition::IfNotExists, Current::Exists(_)) => Err(BackendError::new(
            BackendErrorKind::AlreadyExists,
            format!("'{name}' already exists"),
        )),
    }
}

/// A random etag, other than the blob's current one.
fn new_etag(current: &Current) -> ETag {
    loop {
        let etag = ETag::new(format!("0x{:016X}", rand::random::<u64>())).expect("generated etags are valid");
        if !matches!(current, Current::Exists(Some(old)) if *old == etag) {
            return etag;
        }
    }
}

/// Parses a blob file.
fn parse(bytes: &[u8]) -> Result<BlobItem, String> {
    let file: BlobFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let etag = ETag::new(&file.etag).map_err(|e| format!("bad etag: {e}"))?;
    Ok(BlobItem {
        name: file.name,
        metadata: file.metadata.into_iter().map(|e| (e.name, e.value)).collect(),
        properties: BlobProperties {
            etag,
            last_modified: time_from_ns(file.last_modified_ns),
        },
    })
}

fn now_ns() -> Result<u64, BackendError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_nanos()).ok())
        .ok_or_else(|| {
            BackendError::new(
                BackendErrorKind::Other,
                "the system clock is before 1970 or after 2554",
            )
        })
}

fn time_from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn not_found(name: &str) -> BackendError {
    BackendError::new(BackendErrorKind::NotFound, format!("'{name}' does not exist"))
}

/// An I/O failure, kept as the source. Only interruptions are worth a retry;
/// everything else (permissions, a full disk, a missing directory) is
/// `Other`.
fn io_error(message: impl Display, error: io::Error) -> BackendError {
    let kind = match error.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            BackendErrorKind::Transient
        }
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, message.to_string()).with_source(error)
}

/// Runs blocking file I/O on tokio's blocking pool, off the async executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(BackendError::new(BackendErrorKind::Other, "file I/O task failed").with_source(e))
    })
}

// Each call copies its arguments and the (cheap) backend into a closure for
// the blocking pool.
#[async_trait]
impl BlobBackend for FileBackend {
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
        let (this, prefix) = (self.clone(), prefix.to_owned());
        blocking(move || this.list(&prefix)).await
    }

    async fn put_blob(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        let (this, name, metadata, condition) =
            (self.clone(), name.to_owned(), metadata.clone(), condition.clone());
        blocking(move || this.write(&name, &metadata, &condition, IfMissing::Create)).await
    }

    async fn set_metadata(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        let (this, name, metadata, condition) =
            (self.clone(), name.to_owned(), metadata.clone(), condition.clone());
        blocking(move || this.write(&name, &metadata, &condition, IfMissing::NotFound)).await
    }

    async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        let (this, name, condition) = (self.clone(), name.to_owned(), condition.clone());
        blocking(move || this.delete(&name, &condition)).await
    }
}
