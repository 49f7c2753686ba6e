//! A corrupt blob file (written by a broken tool) is skipped with a warning
//! instead of failing the listing, and writes can repair it.
//!
//! Alone in its test binary because it installs a global log subscriber: the
//! listing logs from tokio's blocking threads.

use std::fs;
use std::io;
use std::sync::{Arc, Mutex};

use eventhub_checkpoints::{
    BackendErrorKind, BlobBackend, Checkpoint, CheckpointStore, Metadata, Offset, PartitionId, Scope,
    WriteCondition,
};
use eventhub_checkpoints_fs::FileBackend;

/// Collects everything logged.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn warnings(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.contains("WARN"))
            .map(String::from)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_files_are_skipped_with_a_warning() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FileBackend::open(dir.path()).unwrap());
    let store = CheckpointStore::new(backend.clone());
    let scope = Scope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap();
    let checkpoint = |p: u32| {
        Checkpoint::new(
            scope.clone(),
            PartitionId::from(p),
            Some(Offset::from(7)),
            Some(7),
        )
        .unwrap()
    };
    store.update_checkpoint(&checkpoint(0)).await.unwrap();
    store.update_checkpoint(&checkpoint(2)).await.unwrap();

    // Partition 1's file is broken JSON; one with a hashed name is empty; a
    // valid file sits under another blob's name; a stray file and a
    // directory are not blob files at all.
    let prefix = "ns.servicebus.windows.net/hub/$default/checkpoint/";
    let broken = backend.blob_path(&format!("{prefix}1"));
    fs::write(&broken, "{\"name\": \"ns.servicebus.windows.net/hub/$def").unwrap();
    let hashed = backend.blob_path(&format!("{prefix}{}", "9".repeat(300)));
    fs::write(&hashed, "").unwrap();
    fs::copy(
        backend.blob_path(&format!("{prefix}0")),
        backend.blob_path(&format!("{prefix}3")),
    )
    .unwrap();
    fs::write(dir.path().join("blobs").join("notes.txt"), "not a blob").unwrap();
    fs::create_dir(dir.path().join("blobs").join("dir.json")).unwrap();

    let listed = store.list_checkpoints(&scope).await.unwrap();
    assert_eq!(listed.items, [checkpoint(0), checkpoint(2)]);
    let blobs = backend.list_blobs("").await.unwrap();
    assert_eq!(blobs.len(), 2);

    let warnings = logs.warnings();
    let warned = |file: &std::path::Path| warnings.iter().any(|w| w.contains(&*file.display().to_string()));
    assert!(warned(&broken) && warned(&hashed), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("corrupt")), "{warnings:#?}");
    assert!(
        warnings.iter().any(|w| w.contains("does not match")),
        "{warnings:#?}"
    );
    assert!(!warnings.iter().any(|w| w.contains("notes.txt")), "{warnings:#?}");

    // A corrupt blob exists, with an etag that matches nothing ...
    let name = format!("{prefix}1");
    let m: Metadata = [("k", "v")].into_iter().collect();
    let create = backend.put_blob(&name, &m, &WriteCondition::IfNotExists).await;
    assert_eq!(create.unwrap_err().kind(), BackendErrorKind::AlreadyExists);
    let etag = blobs[0].properties.etag.clone();
    let update = backend
        .set_metadata(&name, &m, &WriteCondition::IfMatch(etag))
        .await;
    assert_eq!(update.unwrap_err().kind(), BackendErrorKind::PreconditionFailed);
    // ... and an unconditional write repairs it.
    store.update_checkpoint(&checkpoint(1)).await.unwrap();
    let listed = store.list_checkpoints(&scope).await.unwrap();
    assert_eq!(listed.items, [checkpoint(0), checkpoint(1), checkpoint(2)]);
}
