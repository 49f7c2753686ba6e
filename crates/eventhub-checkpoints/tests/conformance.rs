//! The in-memory backend passes the conformance kit.

use std::sync::Arc;

use eventhub_checkpoints::{InMemoryBackend, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_backend_passes_the_conformance_kit() {
    let report = conformance::run_all(Arc::new(InMemoryBackend::new())).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.passed.len(), conformance::cases().len());
}
