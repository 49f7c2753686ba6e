//! Client options of [`AzureBlobBackend`](crate::AzureBlobBackend).

use std::time::Duration;

use crate::api_version::ApiVersion;
use crate::retry::RetryOptions;

/// How the backend talks to Blob Storage. Holds no secret, so its `Debug`
/// is safe to log.
///
/// ```
/// # use eventhub_checkpoints_blob::{AzureBlobOptions, ApiVersion};
/// let options = AzureBlobOptions {
///     api_version: "2017-11-09".parse()?, // an Azure Stack Hub site
///     ..AzureBlobOptions::default()
/// };
/// # Ok::<(), eventhub_checkpoints_blob::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AzureBlobOptions {
    /// The `x-ms-version` sent. Default [`ApiVersion::DEFAULT`].
    pub api_version: ApiVersion,
    /// Retries of failed attempts.
    pub retry: RetryOptions,
    /// Limit of one attempt, body included. Default 30 s.
    pub per_try_timeout: Duration,
    /// Limit of one call, all attempts and delays included. Default 2 min.
    pub overall_timeout: Duration,
    /// Requests (and so connections) in flight at once. Default 64.
    pub max_concurrent_requests: usize,
    /// `maxresults` of each List Blobs page (1 to 5,000). Default 5,000.
    pub list_page_size: u32,
    /// Allow bearer tokens over plain http (a local emulator only).
    pub allow_bearer_over_http: bool,
    /// Extra trusted root certificates, PEM (for example an Azure Stack Hub
    /// or emulator certificate authority), added to the system's roots.
    pub root_certificates_pem: Vec<Vec<u8>>,
}

impl Default for AzureBlobOptions {
    fn default() -> Self {
        Self {
            api_version: ApiVersion::DEFAULT,
            retry: RetryOptions::default(),
            per_try_timeout: Duration::from_secs(30),
            overall_timeout: Duration::from_secs(120),
            max_concurrent_requests: 64,
            list_page_size: 5_000,
            allow_bearer_over_http: false,
            root_certificates_pem: Vec::new(),
        }
    }
}
