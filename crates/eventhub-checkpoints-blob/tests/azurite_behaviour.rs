//! REST-specific behaviour against Azurite: paging, error mapping, secrets
//! kept out of errors, token caching, configuration checks.

use std::sync::atomic::Ordering;
use std::time::Duration;

use eventhub_checkpoints::{BackendErrorKind, BlobBackend, Metadata, WriteCondition};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, ConfigError, Credential};
use eventhub_checkpoints_test_support::{ACCOUNT_NAME, Azurite, Transport, unique_container_name};

mod common;

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn follows_every_page() {
    let options = AzureBlobOptions {
        list_page_size: 3,
        ..AzureBlobOptions::default()
    };
    let backend = common::shared_key_backend(options);
    backend.create_container().await.unwrap();
    assert!(
        !backend.create_container().await.unwrap(),
        "second create reports it existed"
    );
    for i in 0..10 {
        let name = format!("ns/hub/$default/checkpoint/{i}");
        let m = metadata(&[("offset", "1"), ("sequencenumber", "2")]);
        backend
            .put_blob(&name, &m, &WriteCondition::IfNotExists)
            .await
            .unwrap();
    }
    backend
        .put_blob(
            "ns/hub/$default/checkpoint",
            &metadata(&[]),
            &WriteCondition::Unconditional,
        )
        .await
        .unwrap();
    let listed = backend.list_blobs("ns/hub/$default/checkpoint/").await.unwrap();
    assert_eq!(listed.len(), 10);
    assert!(
        listed
            .iter()
            .all(|b| b.metadata.get("sequencenumber") == Some("2"))
    );
    assert_eq!(
        backend
            .list_blobs("ns/hub/$default/checkpoint")
            .await
            .unwrap()
            .len(),
        11
    );
    assert!(backend.list_blobs("other/").await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_container_is_not_found_with_request_id() {
    let backend = common::shared_key_backend(AzureBlobOptions::default());
    let err = backend.list_blobs("x/").await.unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::NotFound);
    assert_eq!(err.status(), Some(404));
    assert!(err.request_id().is_some_and(|id| !id.is_empty()), "{err:?}");
    assert!(err.to_string().contains("ContainerNotFound"), "{err}");
}

#[tokio::test]
async fn wrong_account_key_is_an_auth_error_that_shows_no_secret() {
    let other_key = "c2VjcmV0LWtleS10aGF0LWlzLW5vdC10aGUtYWNjb3VudHMta2V5LTEyMzQ1Ng==";
    let backend = AzureBlobBackend::new(
        Azurite::shared(Transport::Http).blob_endpoint(),
        &unique_container_name("badkey"),
        Credential::shared_key(ACCOUNT_NAME, other_key).unwrap(),
        AzureBlobOptions::default(),
    )
    .unwrap();
    let err = backend.create_container().await.unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Auth, "{err:?}");
    assert_eq!(err.status(), Some(403));
    let text = format!("{err} {err:?} {backend:?}");
    assert!(!text.contains(other_key) && !text.contains("c2VjcmV0"), "{text}");
    assert!(!text.contains("SharedKey devstoreaccount1:"), "{text}");
}

#[tokio::test]
async fn bad_sas_signature_is_an_auth_error_that_shows_no_signature() {
    let container = unique_container_name("badsas");
    common::shared_key_backend_for(&container, AzureBlobOptions::default())
        .create_container()
        .await
        .unwrap();
    let good = common::container_sas(&container);
    let forged_sig = "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZS0xMjM0NTY3ODkwMTI=";
    let forged = good.split("&sig=").next().unwrap().to_owned() + "&sig=" + forged_sig;
    let backend = AzureBlobBackend::new(
        Azurite::shared(Transport::Http).blob_endpoint(),
        &container,
        Credential::sas(&forged).unwrap(),
        AzureBlobOptions::default(),
    )
    .unwrap();
    let err = backend.list_blobs("a/").await.unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Auth, "{err:?}");
    let text = format!("{err} {err:?} {backend:?}");
    assert!(!text.contains(forged_sig) && !text.contains("Zm9yZ2Vk"), "{text}");

    // The account SAS works for the container too.
    let backend = AzureBlobBackend::new(
        Azurite::shared(Transport::Http).blob_endpoint(),
        &container,
        Credential::sas(&common::account_sas()).unwrap(),
        AzureBlobOptions::default(),
    )
    .unwrap();
    backend
        .put_blob(
            "a/b",
            &metadata(&[("ownerid", "x")]),
            &WriteCondition::IfNotExists,
        )
        .await
        .unwrap();
    assert_eq!(backend.list_blobs("a/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn bearer_tokens_are_cached_and_refreshed_before_expiry() {
    let long_lived = common::TestTokenCredential::new(Duration::from_secs(3600));
    let container = unique_container_name("tokens");
    let backend = common::bearer_backend_with(&container, long_lived.clone(), AzureBlobOptions::default());
    backend.create_container().await.unwrap();
    for i in 0..20 {
        let name = format!("p/{i}");
        backend
            .put_blob(
                &name,
                &metadata(&[("ownerid", "me")]),
                &WriteCondition::IfNotExists,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        long_lived.calls.load(Ordering::SeqCst),
        1,
        "one token for 21 requests"
    );

    // A 4 s token is refreshed after half its life.
    let short_lived = common::TestTokenCredential::new(Duration::from_secs(4));
    let backend = common::bearer_backend_with(&container, short_lived.clone(), AzureBlobOptions::default());
    backend.list_blobs("p/").await.unwrap();
    backend.list_blobs("p/").await.unwrap();
    assert_eq!(short_lived.calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    backend.list_blobs("p/").await.unwrap();
    assert_eq!(short_lived.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn expired_bearer_token_is_an_auth_error() {
    let expired = common::TestTokenCredential::new(Duration::ZERO);
    let backend = common::bearer_backend_with(
        &unique_container_name("expired"),
        expired,
        AzureBlobOptions::default(),
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let err = backend.create_container().await.unwrap_err();
    assert_eq!(err.kind(), BackendErrorKind::Auth, "{err:?}");
}

#[test]
fn bearer_needs_https_and_a_recent_version() {
    let credential = Credential::bearer(common::TestTokenCredential::new(Duration::from_secs(60)));
    let err = AzureBlobBackend::new(
        "http://127.0.0.1:10000/devstoreaccount1",
        "container",
        credential.clone(),
        AzureBlobOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::BearerOverHttp { .. }), "{err}");
    let allowed = AzureBlobOptions {
        allow_bearer_over_http: true,
        ..AzureBlobOptions::default()
    };
    AzureBlobBackend::new(
        "http://127.0.0.1:10000/devstoreaccount1",
        "container",
        credential.clone(),
        allowed,
    )
    .expect("explicitly allowed");
    let old = AzureBlobOptions {
        api_version: "2017-07-29".parse().unwrap(),
        ..AzureBlobOptions::default()
    };
    let err =
        AzureBlobBackend::new("https://a.blob.core.windows.net", "container", credential, old).unwrap_err();
    assert!(
        matches!(err, ConfigError::ApiVersionTooOldForCredential { .. }),
        "{err}"
    );
}

#[test]
fn bad_urls_and_container_names_are_config_errors() {
    let cred = || Credential::Anonymous;
    let new = |url: &str, container: &str| {
        AzureBlobBackend::new(url, container, cred(), AzureBlobOptions::default()).map(|_| ())
    };
    assert!(matches!(
        new("not a url", "abc"),
        Err(ConfigError::InvalidAccountUrl { .. })
    ));
    assert!(matches!(
        new("ftp://host/acct", "abc"),
        Err(ConfigError::InvalidAccountUrl { .. })
    ));
    assert!(matches!(
        new("https://a.blob.core.windows.net?sv=1&sig=x", "abc"),
        Err(ConfigError::InvalidAccountUrl { .. })
    ));
    for bad in ["ab", "Abc", "a_b", "-ab", "ab-", "a--b", &"a".repeat(64)] {
        assert!(
            matches!(
                new("https://a.blob.core.windows.net", bad),
                Err(ConfigError::InvalidContainerName { .. })
            ),
            "{bad}"
        );
    }
    assert!(new("https://a.blob.core.windows.net/", "checkpoints").is_ok());
    let backend = AzureBlobBackend::new(
        "http://[::1]:10000/devstoreaccount1/",
        "checkpoints",
        cred(),
        AzureBlobOptions::default(),
    )
    .unwrap();
    assert_eq!(
        backend.container_url(),
        "http://[::1]:10000/devstoreaccount1/checkpoints"
    );
}
