//! Opening a directory: what `FileBackend::open` creates, refuses and
//! cleans up.

use std::fs;
use std::io;

use eventhub_checkpoints::{BlobBackend, Metadata, WriteCondition};
use eventhub_checkpoints_fs::FileBackend;

#[test]
fn a_directory_with_other_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    fs::create_dir(dir.path().join("tmp")).unwrap();
    fs::write(dir.path().join("tmp/build.log"), "also mine").unwrap();

    let error = FileBackend::open(dir.path()).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(error.to_string().contains("not a checkpoint store"), "{error}");
    assert_eq!(fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "mine");
    assert_eq!(
        fs::read_to_string(dir.path().join("tmp/build.log")).unwrap(),
        "also mine"
    );
    assert!(!dir.path().join("blobs").exists() && !dir.path().join(".lock").exists());
}

#[test]
fn new_and_empty_directories_become_stores() {
    let dir = tempfile::tempdir().unwrap();
    FileBackend::open(dir.path()).unwrap();
    FileBackend::open(dir.path().join("a/new/store")).unwrap();
    // Reopening a store is fine.
    FileBackend::open(dir.path()).unwrap();
}

#[tokio::test]
async fn only_a_crashed_writers_temporary_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FileBackend::open(dir.path()).unwrap();
    backend
        .put_blob("a/b", &Metadata::new(), &WriteCondition::Unconditional)
        .await
        .unwrap();
    let tmp = dir.path().join("tmp");
    fs::write(tmp.join("0123456789abcdef.tmp"), "half a blob").unwrap();
    fs::write(tmp.join("notes.txt"), "someone's").unwrap();
    fs::write(tmp.join("FEDCBA9876543210.tmp"), "not ours: upper case").unwrap();
    fs::create_dir(tmp.join("0123456789abcdee.tmp")).unwrap();

    FileBackend::open(dir.path()).unwrap();
    let mut left: Vec<String> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["0123456789abcdee.tmp", "FEDCBA9876543210.tmp", "notes.txt"]
    );
    assert_eq!(backend.list_blobs("a/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_existing_store_opens_for_reading_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let error = FileBackend::open_existing(&missing).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
    assert!(!missing.exists(), "nothing created");

    let store = dir.path().join("store");
    FileBackend::open(&store)
        .unwrap()
        .put_blob("a/b", &Metadata::new(), &WriteCondition::Unconditional)
        .await
        .unwrap();
    // A crashed writer's file stays: a reader takes no lock and cleans nothing.
    fs::write(store.join("tmp/0123456789abcdef.tmp"), "").unwrap();
    let reader = FileBackend::open_existing(&store).unwrap();
    assert_eq!(reader.list_blobs("a/").await.unwrap().len(), 1);
    assert!(store.join("tmp/0123456789abcdef.tmp").exists());
}
