//! Bearer tokens for Azure Storage: where they come from ([`TokenSource`]),
//! and a cache that refreshes them before they expire.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use eventhub_checkpoints::{BackendError, BackendErrorKind};
use tokio::sync::Mutex;

/// The scope of Azure Storage tokens.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// Refresh this long before expiry (or at half the lifetime, if shorter).
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An OAuth 2 access token for Azure Storage and when it expires. Its
/// `Debug` hides the token.
#[derive(Clone)]
pub struct BearerToken {
    token: String,
    expires_at: SystemTime,
}

impl BearerToken {
    /// A token (the JWT, without `Bearer `) valid until `expires_at`.
    pub fn new(token: impl Into<String>, expires_at: SystemTime) -> Self {
        Self {
            token: token.into(),
            expires_at,
        }
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where a backend gets its bearer tokens for [`STORAGE_SCOPE`].
///
/// With the `entra-id` feature, `Credential::bearer`
/// makes one of any `azure_core` `TokenCredential` (every `azure_identity`
/// credential). Implement it yourself to use another OAuth client, for
/// example an `azure_core` version this crate is not built with. The backend
/// caches each token and asks again shortly before it expires; concurrent
/// requests share one call. Implementations use the `async_trait` crate:
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
/// use eventhub_checkpoints_blob::{BearerToken, Credential, TokenSource};
/// use tokio::sync::RwLock;
///
/// /// The token another task of the application keeps fresh.
/// struct Shared(RwLock<BearerToken>);
///
/// #[async_trait::async_trait]
/// impl TokenSource for Shared {
///     async fn token(&self) -> Result<BearerToken, Box<dyn std::error::Error + Send + Sync>> {
///         Ok(self.0.read().await.clone())
///     }
/// }
///
/// let first = BearerToken::new("eyJ0eXAi…", SystemTime::now() + Duration::from_secs(3600));
/// let credential = Credential::token_source(Arc::new(Shared(RwLock::new(first))));
/// ```
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for [`STORAGE_SCOPE`]. An error must not contain a secret: it
    /// becomes the source of the backend's `Auth` error.
    async fn token(&self) -> Result<BearerToken, Box<dyn StdError + Send + Sync>>;
}

/// Any `azure_core` credential as a [`TokenSource`].
#[cfg(feature = "entra-id")]
pub(crate) struct AzureCoreCredential(pub(crate) Arc<dyn azure_core::credentials::TokenCredential>);

#[cfg(feature = "entra-id")]
#[async_trait]
impl TokenSource for AzureCoreCredential {
    async fn token(&self) -> Result<BearerToken, Box<dyn StdError + Send + Sync>> {
        let access = self.0.get_token(&[STORAGE_SCOPE], None).await?;
        Ok(BearerToken::new(
            access.token.secret(),
            SystemTime::from(access.expires_on),
        ))
    }
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Fetches tokens from a source and reuses each until shortly before it
/// expires; concurrent requests share one refresh.
pub(crate) struct TokenCache {
    source: Arc<dyn TokenSource>,
    cached: Mutex<Option<Cached>>,
}

/// Shows neither the token nor the source: a source's own `Debug` is not
/// ours to trust (it may show a secret or the tokens it keeps).
impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    pub(crate) fn new(source: Arc<dyn TokenSource>) -> Self {
        Self {
            source,
            cached: Mutex::new(None),
        }
    }

    /// A valid token, from the cache or freshly fetched.
    pub(crate) async fn token(&self) -> Result<String, BackendError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.source.token().await.map_err(|e| {
            BackendError::new(
                BackendErrorKind::Auth,
                "could not get a bearer token for Azure Storage",
            )
            .with_source(e)
        })?;
        let lifetime = fresh
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *cached = Some(Cached {
            token: fresh.token.clone(),
            refresh_at: Instant::now() + (lifetime - margin),
        });
        Ok(fresh.token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Hands out numbered tokens that expire `expires_in` seconds from now
    /// (negative: already expired).
    struct Numbered {
        calls: AtomicUsize,
        expires_in: i64,
    }

    #[async_trait]
    impl TokenSource for Numbered {
        async fn token(&self) -> Result<BearerToken, Box<dyn StdError + Send + Sync>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let now = SystemTime::now();
            let seconds = Duration::from_secs(self.expires_in.unsigned_abs());
            let expires_at = if self.expires_in >= 0 {
                now + seconds
            } else {
                now - seconds
            };
            Ok(BearerToken::new(format!("token-{n}"), expires_at))
        }
    }

    #[tokio::test]
    async fn a_token_is_reused_until_it_nears_expiry() {
        let source = Arc::new(Numbered {
            calls: AtomicUsize::new(0),
            expires_in: 3600,
        });
        let cache = TokenCache::new(source.clone());
        assert_eq!(cache.token().await.unwrap(), "token-0");
        assert_eq!(cache.token().await.unwrap(), "token-0");
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);

        let expired = Arc::new(Numbered {
            calls: AtomicUsize::new(0),
            expires_in: -10,
        });
        let cache = TokenCache::new(expired.clone());
        assert_eq!(cache.token().await.unwrap(), "token-0");
        assert_eq!(cache.token().await.unwrap(), "token-1");
    }

    #[test]
    fn debug_hides_the_token() {
        let token = BearerToken::new("eyJ-secret", SystemTime::UNIX_EPOCH);
        let shown = format!("{token:?}");
        assert!(
            !shown.contains("eyJ-secret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
