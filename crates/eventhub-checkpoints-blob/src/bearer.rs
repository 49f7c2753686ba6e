//! Entra ID bearer tokens, cached and refreshed before they expire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use eventhub_checkpoints::{BackendError, BackendErrorKind};
use tokio::sync::Mutex;

/// The scope of Azure Storage tokens.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// Refresh this long before expiry (or at half the lifetime, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Fetches tokens from a credential and reuses each until shortly before it
/// expires; concurrent requests share one refresh.
pub(crate) struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    cached: Mutex<Option<Cached>>,
}

/// Shows neither the token nor the credential: a credential's own `Debug`
/// is not ours to trust (it may show a secret or the tokens it keeps).
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            credential,
            cached: Mutex::new(None),
        }
    }

    /// A valid token, from the cache or freshly fetched.
    pub(crate) async fn token(&self) -> Result<String, BackendError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let access = self
            .credential
            .get_token(&[STORAGE_SCOPE], None)
            .await
            .map_err(|e| {
                BackendError::new(
                    BackendErrorKind::Auth,
                    "could not get an Entra ID token for Azure Storage",
                )
                .with_source(e)
            })?;
        let lifetime: Duration = (access.expires_on - azure_core::time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        let token = access.token.secret().to_owned();
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + (lifetime - margin),
        });
        Ok(token)
    }
}
