//! The file backend passes the core's conformance kit.

use std::sync::Arc;
use std::time::Instant;

use eventhub_checkpoints::conformance;
use eventhub_checkpoints_fs::FileBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_backend_passes_the_conformance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FileBackend::open(dir.path()).unwrap());
    let started = Instant::now();
    let report = conformance::run_all(backend).await;
    println!("conformance kit: {:?}", started.elapsed());
    assert!(report.passed(), "{report}");
    assert_eq!(report.passed.len(), conformance::cases().len());
}
