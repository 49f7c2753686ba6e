//! Shared setup of the Azurite tests: backends for each credential kind, SAS
//! tokens signed here, and a test token credential.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential};
use eventhub_checkpoints_test_support::{
    ACCOUNT_KEY, ACCOUNT_NAME, Azurite, Transport, test_jwt, unique_container_name,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub fn shared_key_backend_for(container: &str, options: AzureBlobOptions) -> AzureBlobBackend {
    AzureBlobBackend::new(
        Azurite::shared(Transport::Http).blob_endpoint(),
        container,
        Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
        options,
    )
    .unwrap()
}

pub fn shared_key_backend(options: AzureBlobOptions) -> AzureBlobBackend {
    shared_key_backend_for(&unique_container_name("sk"), options)
}

fn sign(string_to_sign: &str) -> String {
    let key = STANDARD.decode(ACCOUNT_KEY).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A service SAS for one container (signed-version 2018-11-09 layout).
pub fn container_sas(container: &str) -> String {
    let (sp, se, sv, sr) = ("racwdl", "2099-01-01T00:00:00Z", "2018-11-09", "c");
    let resource = format!("/blob/{ACCOUNT_NAME}/{container}");
    let sts = format!("{sp}\n\n{se}\n{resource}\n\n\n\n{sv}\n{sr}\n\n\n\n\n\n");
    format!(
        "sv={sv}&sr={sr}&sp={sp}&se={}&sig={}",
        encode(se),
        encode(&sign(&sts))
    )
}

/// An account SAS for the blob service (signed-version 2019-02-02 layout).
pub fn account_sas() -> String {
    let (sp, ss, srt, se, sv) = ("rwdlac", "b", "sco", "2099-01-01T00:00:00Z", "2019-02-02");
    let sts = format!("{ACCOUNT_NAME}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n\n{sv}\n");
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&sig={}",
        encode(se),
        encode(&sign(&sts))
    )
}

/// Issues unsigned JWTs that Azurite's `--oauth basic` accepts, counting
/// how often it was asked.
#[derive(Debug)]
pub struct TestTokenCredential {
    pub lifetime: Duration,
    pub calls: AtomicUsize,
}

impl TestTokenCredential {
    pub fn new(lifetime: Duration) -> Arc<Self> {
        Arc::new(Self {
            lifetime,
            calls: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl TokenCredential for TestTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let expires_on = OffsetDateTime::now_utc() + self.lifetime;
        Ok(AccessToken::new(test_jwt(self.lifetime), expires_on))
    }
}

pub fn bearer_backend_with(
    container: &str,
    credential: Arc<dyn TokenCredential>,
    mut options: AzureBlobOptions,
) -> AzureBlobBackend {
    let azurite = Azurite::shared(Transport::HttpsOAuth);
    options
        .root_certificates_pem
        .push(azurite.ca_certificate_pem().unwrap().as_bytes().to_vec());
    AzureBlobBackend::new(
        azurite.blob_endpoint(),
        container,
        Credential::bearer(credential),
        options,
    )
    .unwrap()
}

pub fn bearer_backend(container: &str, options: AzureBlobOptions) -> AzureBlobBackend {
    bearer_backend_with(
        container,
        TestTokenCredential::new(Duration::from_secs(3600)),
        options,
    )
}
