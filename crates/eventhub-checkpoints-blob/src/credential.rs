//! How requests are authorized: SharedKey, SAS, or Entra ID bearer tokens.
//!
//! Secrets never appear in `Debug` output or error messages.

use std::fmt;
use std::sync::Arc;

#[cfg(feature = "entra-id")]
use azure_core::credentials::TokenCredential;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::bearer::TokenSource;
use crate::error::ConfigError;

/// A storage account key, decoded from base64. Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountKey(Vec<u8>);

impl AccountKey {
    /// Decodes a base64 account key; the error names the field, never the key.
    pub fn from_base64(key: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidField {
            field: "AccountKey",
            reason: reason.to_owned(),
        };
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| invalid("not valid base64"))?;
        if bytes.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(Self(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// A shared access signature: the query string of an account or container
/// SAS (with or without the leading `?`). Its `Debug` hides the `sig` value.
#[derive(Clone, PartialEq, Eq)]
pub struct SasToken {
    /// `(name, value)` pairs, percent-decoded, in their original order.
    pairs: Vec<(String, String)>,
}

impl SasToken {
    /// Parses a SAS query string; it must carry a `sig`.
    pub fn new(token: &str) -> Result<Self, ConfigError> {
        let token = token.trim().trim_start_matches('?');
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(token.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let invalid = |reason: &str| ConfigError::InvalidField {
            field: "SharedAccessSignature",
            reason: reason.to_owned(),
        };
        if pairs.iter().any(|(k, _)| k.is_empty()) {
            return Err(invalid("has a parameter without a name"));
        }
        match pairs.iter().find(|(k, _)| k == "sig") {
            None => return Err(invalid("has no sig parameter")),
            Some((_, sig)) if sig.is_empty() => return Err(invalid("has an empty sig")),
            Some(_) => {}
        }
        if pairs
            .iter()
            .any(|(k, v)| k.chars().chain(v.chars()).any(char::is_control))
        {
            return Err(invalid("contains control characters"));
        }
        Ok(Self { pairs })
    }

    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The `sig` value, to be scrubbed from anything printed.
    pub(crate) fn signature(&self) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == "sig")
            .map_or("", |(_, v)| v.as_str())
    }
}

impl fmt::Debug for SasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SasToken(")?;
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            let v = if k == "sig" { "<redacted>" } else { v.as_str() };
            write!(f, "{}{k}={v}", if i == 0 { "" } else { "&" })?;
        }
        f.write_str(")")
    }
}

/// The credential a backend signs its requests with.
#[derive(Clone)]
pub enum Credential {
    /// SharedKey: HMAC-SHA256 of each request with the account key.
    SharedKey {
        /// The storage account name.
        account: String,
        /// The account key.
        key: AccountKey,
    },
    /// An account or container SAS appended to every request.
    Sas(SasToken),
    /// Entra ID bearer tokens for scope `https://storage.azure.com/.default`
    /// from a [`TokenSource`]: see `Credential::bearer` (any `azure_core`
    /// credential) and [`Credential::token_source`].
    Bearer(Arc<dyn TokenSource>),
    /// No authorization (a container with public access).
    Anonymous,
}

impl Credential {
    /// A SharedKey credential from an account name and base64 key.
    pub fn shared_key(account: impl Into<String>, key_base64: &str) -> Result<Self, ConfigError> {
        let account = account.into();
        if account.is_empty() {
            return Err(ConfigError::MissingField {
                field: "AccountName",
                why: "SharedKey signing needs the account name",
            });
        }
        validate_account_name(&account)?;
        Ok(Self::SharedKey {
            account,
            key: AccountKey::from_base64(key_base64)?,
        })
    }

    /// A SAS credential from a SAS query string.
    pub fn sas(token: &str) -> Result<Self, ConfigError> {
        Ok(Self::Sas(SasToken::new(token)?))
    }

    /// Bearer tokens from any `azure_core` credential (every
    /// `azure_identity` credential).
    #[cfg(feature = "entra-id")]
    pub fn bearer(credential: Arc<dyn TokenCredential>) -> Self {
        Self::Bearer(Arc::new(crate::bearer::AzureCoreCredential(credential)))
    }

    /// Bearer tokens from your own [`TokenSource`] (another OAuth client, or
    /// an `azure_core` version this crate is not built with).
    pub fn token_source(source: Arc<dyn TokenSource>) -> Self {
        Self::Bearer(source)
    }
}

/// Longest accepted account name (Azure's are at most 24 characters).
const MAX_ACCOUNT_NAME: usize = 64;

/// Account names are ASCII letters, digits, `-` and `_` (Azure's are
/// lower-case letters and digits): the name becomes part of the host name
/// and of the `Authorization` header, so anything else could redirect
/// requests or inject a header.
pub(crate) fn validate_account_name(account: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidField {
        field: "AccountName",
        reason: reason.to_owned(),
    };
    if account.is_empty() {
        return Err(invalid("is empty"));
    }
    if account.chars().count() > MAX_ACCOUNT_NAME {
        return Err(invalid("is longer than 64 characters"));
    }
    if !account
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid("may contain only ASCII letters, digits, '-' and '_'"));
    }
    Ok(())
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::SharedKey { account, key } => f
                .debug_struct("SharedKey")
                .field("account", account)
                .field("key", key)
                .finish(),
            Credential::Sas(token) => fmt::Debug::fmt(token, f),
            // The credential's own `Debug` may show a secret or the tokens
            // it keeps: it is not shown.
            Credential::Bearer(_) => f.write_str("Bearer(..)"),
            Credential::Anonymous => f.write_str("Anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    #[test]
    fn debug_never_shows_secrets() {
        let shared = Credential::shared_key("acct", KEY).unwrap();
        let text = format!("{shared:?}");
        assert!(!text.contains("Eby8"), "{text}");
        assert!(text.contains("acct"));

        let sas = Credential::sas("?sv=2021-12-02&sp=rwdl&sig=c2VjcmV0c2lnbmF0dXJl%3D").unwrap();
        let text = format!("{sas:?}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(text.contains("sv=2021-12-02"));
    }

    #[test]
    fn bad_keys_and_tokens_are_named_not_echoed() {
        let err = AccountKey::from_base64("not base64!!secretish").unwrap_err();
        assert!(err.to_string().contains("AccountKey"));
        assert!(!err.to_string().contains("secretish"));
        assert!(AccountKey::from_base64("").is_err());
        assert!(SasToken::new("sv=2021-12-02&sp=r").is_err());
        assert!(SasToken::new("sv=1&sig=").is_err());
        assert!(SasToken::new("sv=1&sig=abc%0D%0Ax").is_err());
        assert!(Credential::shared_key("", KEY).is_err());
    }
}
