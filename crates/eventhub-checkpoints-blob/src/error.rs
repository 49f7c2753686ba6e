//! Configuration errors, reported when a backend is built.
//!
//! No variant carries a secret: a malformed key or SAS token is named by its
//! field, never echoed.

/// The backend could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `x-ms-version` is not a `YYYY-MM-DD` date.
    #[error("api version {value:?} is not a YYYY-MM-DD date")]
    InvalidApiVersion {
        /// The rejected value (truncated).
        value: String,
    },
    /// The version predates what this backend can speak.
    #[error("api version {version} is older than the oldest supported version {oldest}")]
    UnsupportedApiVersion {
        /// The requested version.
        version: String,
        /// The oldest supported version.
        oldest: String,
    },
    /// A credential needs a newer version than the one chosen.
    #[error("{credential} needs api version {needs} or later, but {version} was chosen")]
    ApiVersionTooOldForCredential {
        /// The credential kind.
        credential: &'static str,
        /// The minimum version.
        needs: String,
        /// The chosen version.
        version: String,
    },
    /// A connection string segment is not `Key=Value`.
    #[error("connection string segment {index} is not of the form Key=Value")]
    MalformedConnectionString {
        /// 1-based position of the bad segment.
        index: usize,
    },
    /// A connection string names no blob endpoint and no account to derive one from.
    #[error(
        "connection string has no usable blob endpoint: give BlobEndpoint, or AccountName (with optional DefaultEndpointsProtocol and EndpointSuffix), or UseDevelopmentStorage=true"
    )]
    NoBlobEndpoint,
    /// A required field is missing.
    #[error("{field} is required: {why}")]
    MissingField {
        /// The field.
        field: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
    /// A field's value is malformed; the value itself is not repeated.
    #[error("{field} is invalid: {reason}")]
    InvalidField {
        /// The field, e.g. `AccountKey`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The account URL cannot be used.
    #[error("account URL is invalid: {reason}")]
    InvalidAccountUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The container name breaks Blob Storage's naming rules.
    #[error("container name {name:?} is invalid: {reason}")]
    InvalidContainerName {
        /// The rejected name.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// Bearer tokens would travel in clear text.
    #[error(
        "refusing to send bearer tokens over plain http to {host}; use https, or set allow_bearer_over_http for a local emulator"
    )]
    BearerOverHttp {
        /// The endpoint's host.
        host: String,
    },
    /// The HTTP client could not be built (for example, an unreadable root certificate).
    #[error("HTTP client setup failed: {0}")]
    HttpClient(String),
}
