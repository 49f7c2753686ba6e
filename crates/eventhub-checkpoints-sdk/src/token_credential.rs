//! Entra ID for the blob backend, from the `azure_core` version
//! `azure_messaging_eventhubs` uses.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use azure_core::credentials::TokenCredential;
use eventhub_checkpoints_blob::{BearerToken, STORAGE_SCOPE, TokenSource};

/// A `TokenCredential` of the `azure_core` that `azure_messaging_eventhubs`
/// uses, as the blob backend's [`TokenSource`]: for building an
/// `AzureBlobBackend` yourself with
/// `Credential::token_source(Arc::new(TokenCredentialSource::new(credential)))`
/// (for example to create the container first).
/// [`SdkCheckpointStore::from_token_credential`](crate::SdkCheckpointStore::from_token_credential)
/// does it for you.
#[derive(Clone)]
pub struct TokenCredentialSource(Arc<dyn TokenCredential>);

impl TokenCredentialSource {
    /// Wraps a credential, such as one from `azure_identity`.
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self(credential)
    }
}

/// Does not show the credential: its own `Debug` may show a secret.
impl fmt::Debug for TokenCredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCredentialSource(..)")
    }
}

#[async_trait::async_trait]
impl TokenSource for TokenCredentialSource {
    async fn token(&self) -> Result<BearerToken, Box<dyn StdError + Send + Sync>> {
        let access = self.0.get_token(&[STORAGE_SCOPE], None).await?;
        Ok(BearerToken::new(
            access.token.secret(),
            SystemTime::from(access.expires_on),
        ))
    }
}
