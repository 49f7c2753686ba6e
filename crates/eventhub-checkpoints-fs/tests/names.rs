//! Blob names with special characters, and very long ones, round-trip
//! through files and stay inside the directory.

use std::fs;
use std::path::Path;

use eventhub_checkpoints::{BackendErrorKind, BlobBackend, Metadata, WriteCondition};
use eventhub_checkpoints_fs::FileBackend;

fn names() -> Vec<String> {
    let mut names: Vec<String> = [
        "ns.servicebus.windows.net/hub/$default/ownership/0",
        "hub with space+plus%25/$Default #?&=",
        "p:0;ü/日本語/🦀",
        "../../escaped",
        "a/../../../b",
        "..",
        ".",
        "/leading/slash",
        "back\\slash",
        "A",
        "a",
        "%41",
        "@not-a-hash",
    ]
    .map(String::from)
    .into();
    // Encoded, these fit a file name exactly, or are too long for one.
    names.push("x".repeat(250));
    names.push("x".repeat(251));
    names.push(format!("long/{}", "ü".repeat(1019)));
    names.push(format!("long/{}", "ü".repeat(1018) + "v"));
    names.push("$".repeat(1024));
    names
}

fn metadata(i: usize) -> Metadata {
    // Order and case of the names are kept.
    [
        ("Zeta", i.to_string()),
        ("alpha", "two words".into()),
        ("OwnerId", "Ünïcode".into()),
    ]
    .into_iter()
    .collect()
}

#[tokio::test]
async fn special_and_long_names_round_trip() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("store");
    let backend = FileBackend::open(&root).unwrap();
    let names = names();
    let mut written = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let properties = backend
            .put_blob(name, &metadata(i), &WriteCondition::IfNotExists)
            .await
            .unwrap();
        written.push((name.clone(), i, properties));
    }
    written.sort_by(|a, b| a.0.cmp(&b.0));

    // A new backend on the same directory (as another process would) lists
    // every blob, in byte order of the name, exactly as written.
    let reopened = FileBackend::open(&root).unwrap();
    let listed = reopened.list_blobs("").await.unwrap();
    assert_eq!(listed.len(), names.len());
    for (item, (name, i, properties)) in listed.iter().zip(&written) {
        assert_eq!(&item.name, name);
        assert_eq!(item.metadata, metadata(*i));
        let pairs: Vec<_> = item.metadata.iter().collect();
        assert_eq!(pairs, metadata(*i).iter().collect::<Vec<_>>());
        assert_eq!(&item.properties, properties);
    }

    // Prefixes select by name, hashed file names included.
    let long: Vec<_> = reopened.list_blobs("long/").await.unwrap();
    assert_eq!(long.len(), 2);
    assert!(long.iter().all(|item| item.name.starts_with("long/ü")));
    assert_eq!(reopened.list_blobs("long/üü").await.unwrap().len(), 2);
    assert_eq!(reopened.list_blobs("A").await.unwrap().len(), 1);
    let dots: Vec<_> = reopened.list_blobs("..").await.unwrap();
    assert_eq!(
        dots.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["..", "../../escaped"]
    );

    // Nothing left the directory, and every blob is one file in blobs/.
    assert_eq!(entries(parent.path()), ["store"]);
    assert_eq!(entries(&root), [".lock", "blobs", "tmp"]);
    assert!(entries(&root.join("tmp")).is_empty());
    let files = entries(&root.join("blobs"));
    assert_eq!(files.len(), names.len());
    assert!(files.iter().all(|f| f.len() <= 255 && f.ends_with(".json")));
    assert!(files.iter().any(|f| f.starts_with('@')));
    for name in &names {
        assert!(backend.blob_path(name).starts_with(root.join("blobs")));
    }

    // Each one is deleted by its own name.
    for name in &names {
        backend
            .delete_blob(name, &WriteCondition::Unconditional)
            .await
            .unwrap();
        let again = backend.delete_blob(name, &WriteCondition::Unconditional).await;
        assert_eq!(again.unwrap_err().kind(), BackendErrorKind::NotFound);
    }
    assert!(backend.list_blobs("").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_recreated_blob_gets_a_new_etag() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FileBackend::open(dir.path()).unwrap();
    let first = backend
        .put_blob("b", &metadata(0), &WriteCondition::IfNotExists)
        .await
        .unwrap();
    backend
        .delete_blob("b", &WriteCondition::Unconditional)
        .await
        .unwrap();
    let second = backend
        .put_blob("b", &metadata(0), &WriteCondition::IfNotExists)
        .await
        .unwrap();
    assert_ne!(first.etag, second.etag);
    let stale = backend
        .set_metadata("b", &metadata(1), &WriteCondition::IfMatch(first.etag))
        .await;
    assert_eq!(stale.unwrap_err().kind(), BackendErrorKind::PreconditionFailed);
    let missing = backend
        .put_blob("c", &metadata(1), &WriteCondition::IfMatch(second.etag))
        .await;
    assert_eq!(missing.unwrap_err().kind(), BackendErrorKind::PreconditionFailed);
}

#[test]
fn debug_shows_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FileBackend::open(dir.path()).unwrap();
    assert_eq!(backend.root(), dir.path());
    assert!(format!("{backend:?}").contains(&dir.path().display().to_string()));
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
