//! The conformance kit against Azurite, with every credential kind and the
//! API versions Azure Stack Hub sites pin.

use std::sync::Arc;

use eventhub_checkpoints::conformance;
use eventhub_checkpoints_blob::{ApiVersion, AzureBlobBackend, AzureBlobOptions, Credential};
use eventhub_checkpoints_test_support::{Azurite, Transport, unique_container_name};

mod common;

async fn run_kit(backend: AzureBlobBackend) {
    assert!(backend.create_container().await.expect("create container"));
    let report = conformance::run_all(Arc::new(backend)).await;
    assert!(report.passed(), "{report}");
}

fn options(version: &str) -> AzureBlobOptions {
    AzureBlobOptions {
        api_version: version.parse::<ApiVersion>().unwrap(),
        ..AzureBlobOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_default_version() {
    run_kit(common::shared_key_backend(AzureBlobOptions::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_azure_stack_hub_2017_11_09() {
    run_kit(common::shared_key_backend(options("2017-11-09"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_azure_stack_hub_2019_02_02() {
    run_kit(common::shared_key_backend(options("2019-02-02"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_string_with_shared_key() {
    let azurite = Azurite::shared(Transport::Http);
    let backend = AzureBlobBackend::from_connection_string(
        &azurite.connection_string(),
        &unique_container_name("cs"),
        AzureBlobOptions::default(),
    )
    .unwrap();
    run_kit(backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sas_default_and_old_versions() {
    for version in [
        ApiVersion::DEFAULT.to_string(),
        "2017-11-09".into(),
        "2019-02-02".into(),
    ] {
        let container = unique_container_name("sas");
        common::shared_key_backend_for(&container, AzureBlobOptions::default())
            .create_container()
            .await
            .unwrap();
        let sas = common::container_sas(&container);
        let backend = AzureBlobBackend::new(
            Azurite::shared(Transport::Http).blob_endpoint(),
            &container,
            Credential::sas(&sas).unwrap(),
            options(&version),
        )
        .unwrap();
        let report = conformance::run_all(Arc::new(backend)).await;
        assert!(report.passed(), "SAS with {version}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_over_https() {
    for version in [
        ApiVersion::DEFAULT.to_string(),
        "2017-11-09".into(),
        "2019-02-02".into(),
    ] {
        run_kit(common::bearer_backend(
            &unique_container_name("bearer"),
            options(&version),
        ))
        .await;
    }
}
