//! [`AzureBlobBackend`]: the [`BlobBackend`] trait on the Blob REST API.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use eventhub_checkpoints::{
    BackendError, BackendErrorKind, BlobBackend, BlobItem, BlobProperties, ETag, Metadata, WriteCondition,
    format,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;
use url::Url;

use crate::api_version::ApiVersion;
use crate::bearer::TokenCache;
use crate::connection_string::ConnectionString;
use crate::credential::{Credential, SasToken};
use crate::error::ConfigError;
use crate::list_xml;
use crate::options::AzureBlobOptions;
use crate::shared_key::SharedKeySigner;

/// Everything but RFC 3986 unreserved characters is encoded in a path
/// segment or query value (as the Azure SDKs do: `$` becomes `%24`).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const X_MS_VERSION: HeaderName = HeaderName::from_static("x-ms-version");
const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
const X_MS_CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");

/// Largest error body read for a message.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// A [`BlobBackend`] over the Azure Blob REST API, for one container.
///
/// Signs every attempt afresh (a new `x-ms-date`), retries what may pass
/// with bounded exponential backoff, follows every List Blobs page, and maps
/// each failure to a [`BackendErrorKind`] with the service's request id.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use eventhub_checkpoints::CheckpointStore;
/// # use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = AzureBlobBackend::from_connection_string(
///     &std::env::var("AZURE_STORAGE_CONNECTION_STRING")?,
///     "checkpoints",
///     AzureBlobOptions::default(),
/// )?;
/// let store = CheckpointStore::new(Arc::new(backend));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AzureBlobBackend {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `<account url>/<container>`, no trailing slash, no query; parsed
    /// once: each call's URL is a copy with its own path and query.
    container_url: Url,
    /// `x-ms-version`, formatted once.
    version_header: HeaderValue,
    container: String,
    auth: Auth,
    options: AzureBlobOptions,
    in_flight: Semaphore,
    /// The SAS signature as given and as it travels in a query string, to
    /// scrub from anything the service sends back.
    redactions: Vec<String>,
}

enum Auth {
    SharedKey(SharedKeySigner),
    Sas(SasToken),
    Bearer(TokenCache),
    Anonymous,
}

impl fmt::Debug for AzureBlobBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.inner.auth {
            Auth::SharedKey(signer) => format!("SharedKey({})", signer.account()),
            Auth::Sas(_) => "SAS".to_owned(),
            Auth::Bearer(_) => "Bearer".to_owned(),
            Auth::Anonymous => "Anonymous".to_owned(),
        };
        f.debug_struct("AzureBlobBackend")
            .field("container_url", &self.inner.container_url.as_str())
            .field("auth", &auth)
            .field("options", &self.inner.options)
            .finish()
    }
}

/// A request before it is signed: what differs between calls.
struct Call<'a> {
    method: Method,
    blob: Option<&'a str>,
    query: Vec<(&'static str, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether an attempt that got no answer may have changed state.
    is_write: bool,
}

impl AzureBlobBackend {
    /// A backend for `container` in the account at `account_url`
    /// (`https://acct.blob.core.windows.net`, or path-style such as
    /// `http://127.0.0.1:10000/devstoreaccount1`).
    pub fn new(
        account_url: &str,
        container: &str,
        credential: Credential,
        options: AzureBlobOptions,
    ) -> Result<Self, ConfigError> {
        // The parsed URL decides whether bearer tokens may be sent.
        let (container_url, url) = container_url(account_url, container)?;
        let container_url = Url::parse(&container_url).map_err(|e| ConfigError::InvalidAccountUrl {
            reason: e.to_string(),
        })?;
        let auth = match credential {
            Credential::SharedKey { account, key } => {
                crate::credential::validate_account_name(&account)?;
                Auth::SharedKey(SharedKeySigner::new(account, &key))
            }
            Credential::Sas(token) => Auth::Sas(token),
            Credential::Bearer(source) => {
                if options.api_version < ApiVersion::FIRST_WITH_BEARER_TOKENS {
                    return Err(ConfigError::ApiVersionTooOldForCredential {
                        credential: "bearer token",
                        needs: ApiVersion::FIRST_WITH_BEARER_TOKENS.to_string(),
                        version: options.api_version.to_string(),
                    });
                }
                if url.scheme() != "https" && !options.allow_bearer_over_http {
                    return Err(ConfigError::BearerOverHttp {
                        host: url.host_str().unwrap_or_default().to_owned(),
                    });
                }
                Auth::Bearer(TokenCache::new(source))
            }
            Credential::Anonymous => Auth::Anonymous,
        };
        if !(1..=5_000).contains(&options.list_page_size) {
            return Err(ConfigError::InvalidField {
                field: "list_page_size",
                reason: format!("{} is not between 1 and 5000", options.list_page_size),
            });
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("eventhub-checkpoints-blob/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.per_try_timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(options.max_concurrent_requests.max(1))
            // The Blob service never redirects: a redirect comes from
            // something in between, and a signed write must not follow it.
            .redirect(reqwest::redirect::Policy::none());
        let mut roots = Vec::new();
        for (i, pem) in options.root_certificates_pem.iter().enumerate() {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ConfigError::HttpClient(format!("root_certificates_pem[{i}]: {e}")))?;
            if certificates.is_empty() {
                return Err(ConfigError::HttpClient(format!(
                    "root_certificates_pem[{i}] holds no PEM certificate"
                )));
            }
            roots.extend(certificates);
        }
        if url.scheme() == "http" && !proxied_from_environment() {
            // No TLS is ever made: skip loading the system's roots (several
            // ms per backend, e.g. per `ehcp` run against Azurite). Behind a
            // proxy from the environment (which may speak https) they stay.
            builder = builder.tls_certs_only(roots);
        } else if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let redactions = match &auth {
            Auth::Sas(token) => secret_forms(token.signature()),
            _ => Vec::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                container_url,
                version_header: own_header_value(&options.api_version.to_string()),
                container: container.to_owned(),
                redactions,
                auth,
                in_flight: Semaphore::new(options.max_concurrent_requests.max(1)),
                options,
            }),
        })
    }

    /// A backend from a storage connection string.
    pub fn from_connection_string(
        connection_string: &str,
        container: &str,
        options: AzureBlobOptions,
    ) -> Result<Self, ConfigError> {
        let parsed = ConnectionString::parse(connection_string)?;
        Self::new(&parsed.blob_endpoint, container, parsed.credential, options)
    }

    /// The container's URL.
    pub fn container_url(&self) -> &str {
        self.inner.container_url.as_str()
    }

    /// Creates the container; `Ok(false)` if it already existed.
    pub async fn create_container(&self) -> Result<bool, BackendError> {
        let call = Call {
            method: Method::PUT,
            blob: None,
            query: vec![("restype", "container".to_owned())],
            headers: Vec::new(),
            is_write: true,
        };
        match self.inner.execute(&call).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == BackendErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether reqwest may send plain-HTTP requests through a proxy named in
/// the environment.
fn proxied_from_environment() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// Checks the account URL and the container name; the container's URL
/// (no trailing slash, no query) and the parsed account URL.
pub(crate) fn container_url(account_url: &str, container: &str) -> Result<(String, Url), ConfigError> {
    validate_container_name(container)?;
    let url = Url::parse(account_url.trim_end_matches('/')).map_err(|e| ConfigError::InvalidAccountUrl {
        reason: e.to_string(),
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ConfigError::InvalidAccountUrl {
            reason: format!("scheme {:?} is neither https nor http", url.scheme()),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::InvalidAccountUrl {
            reason: "must not carry a query (pass a SAS as the credential) or fragment".into(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::InvalidAccountUrl {
            reason: "must not carry a user name or password (pass a credential instead)".into(),
        });
    }
    let path = url.path().trim_end_matches('/');
    let container_url = format!(
        "{}://{}{}{}/{}",
        url.scheme(),
        host_for_url(&url),
        url.port().map(|p| format!(":{p}")).unwrap_or_default(),
        path,
        container
    );
    Ok((container_url, url))
}

fn host_for_url(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    }
}

/// Container names: 3–63 characters, lower-case letters, digits and single
/// hyphens, starting and ending with a letter or digit (`$root` and `$logs`
/// are system containers, not for checkpoints).
fn validate_container_name(name: &str) -> Result<(), ConfigError> {
    let fail = |reason| {
        Err(ConfigError::InvalidContainerName {
            name: name.chars().take(80).collect(),
            reason,
        })
    };
    if !(3..=63).contains(&name.len()) {
        return fail("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("may contain only lower-case letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return fail("must start and end with a letter or digit and not contain '--'");
    }
    Ok(())
}

impl Inner {
    /// Runs a call with retries; returns the successful answer.
    async fn execute(&self, call: &Call<'_>) -> Result<Answer, BackendError> {
        let started = Instant::now();
        // `None`: an overall timeout too long for the clock, that is none.
        let deadline = started.checked_add(self.options.overall_timeout);
        let url = self.url(call);
        let mut may_have_applied = false;
        let mut retry = 0;
        loop {
            // No attempt outlives the call's deadline.
            let budget = deadline.map_or(self.options.per_try_timeout, |deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(self.options.per_try_timeout)
            });
            let attempted = tokio::time::timeout(budget, self.attempt(call, &url))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure {
                        error: BackendError::new(BackendErrorKind::Transient, "attempt timed out"),
                        may_have_applied: true,
                    })
                });
            let failure = match attempted {
                Ok(answer) if answer.status.is_success() => return Ok(answer),
                Ok(answer) => Failure::from_answer(&answer, &self.redactions),
                Err(failure) => failure,
            };
            may_have_applied |= call.is_write && failure.may_have_applied;
            let mut error = failure.error;
            let delay = error
                .retry_after()
                .unwrap_or_else(|| self.options.retry.backoff(retry));
            let retryable = matches!(
                error.kind(),
                BackendErrorKind::Throttled | BackendErrorKind::Transient
            );
            // A delay the clock cannot even represent is out of time too.
            let out_of_time = match Instant::now().checked_add(delay) {
                Some(retry_at) => deadline.is_some_and(|deadline| retry_at >= deadline),
                None => true,
            };
            if !retryable || retry >= self.options.retry.max_retries || out_of_time {
                if may_have_applied {
                    error = error.with_write_may_have_applied();
                }
                if retryable {
                    tracing::warn!(
                        method = %call.method, blob = call.blob.unwrap_or(""), attempts = retry + 1,
                        elapsed_ms = started.elapsed().as_millis() as u64, %error, "giving up"
                    );
                }
                return Err(error);
            }
            tracing::debug!(
                method = %call.method, blob = call.blob.unwrap_or(""), retry, delay_ms = delay.as_millis() as u64,
                %error, "retrying"
            );
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// One signed attempt, its answer read whole (within the per-try
    /// timeout and while holding its in-flight permit).
    async fn attempt(&self, call: &Call<'_>, url: &Url) -> Result<Answer, Failure> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let version = self.options.api_version;
        let mut headers = HeaderMap::with_capacity(call.headers.len() + 6);
        headers.insert(X_MS_VERSION, self.version_header.clone());
        headers.insert(
            X_MS_DATE,
            own_header_value(&httpdate::fmt_http_date(SystemTime::now())),
        );
        if version >= ApiVersion::FIRST_WITH_CLIENT_REQUEST_ID {
            headers.insert(
                X_MS_CLIENT_REQUEST_ID,
                own_header_value(&format!("{:032x}", rand::random::<u128>())),
            );
        }
        if call.method == Method::PUT {
            headers.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        for (name, value) in &call.headers {
            headers.insert(name.clone(), value.clone());
        }
        let refused = |message: &str| Failure {
            error: BackendError::new(BackendErrorKind::Auth, message),
            may_have_applied: false,
        };
        let mut sent_token = None;
        match &self.auth {
            Auth::SharedKey(signer) => {
                let value = sensitive(&signer.authorization(call.method.as_str(), url, &headers, version))
                    .ok_or_else(|| refused("the account name cannot be sent in an Authorization header"))?;
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
            Auth::Bearer(cache) => {
                let token = cache.token().await.map_err(|error| Failure {
                    error,
                    may_have_applied: false,
                })?;
                let value = sensitive(&format!("Bearer {token}")).ok_or_else(|| {
                    refused("the token credential gave a token that is not a valid HTTP header value")
                })?;
                headers.insert(reqwest::header::AUTHORIZATION, value);
                sent_token = Some(token);
            }
            Auth::Sas(_) | Auth::Anonymous => {}
        }
        let started = Instant::now();
        let result = self
            .send(call, url.clone(), headers)
            .await
            .map(|answer| Answer { sent_token, ..answer });
        tracing::trace!(
            method = %call.method,
            container = %self.container,
            blob = call.blob.unwrap_or(""),
            status = result.as_ref().map(|a| a.status.as_u16()).unwrap_or(0),
            elapsed_us = started.elapsed().as_micros() as u64,
            "blob request"
        );
        result.map_err(|e| Failure::from_transport(&e.without_url()))
    }

    async fn send(&self, call: &Call<'_>, url: Url, headers: HeaderMap) -> Result<Answer, reqwest::Error> {
        let mut request = reqwest::Request::new(call.method.clone(), url);
        *request.headers_mut() = headers;
        *request.timeout_mut() = Some(self.options.per_try_timeout);
        let mut response = self.http.execute(request).await?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = if status.is_success() {
            response.bytes().await?
        } else {
            read_limited(response).await
        };
        Ok(Answer {
            status,
            headers,
            body,
            sent_token: None,
        })
    }

    /// The call's URL: the container's, with the blob's path segments and
    /// the query (the call's, then the SAS) percent-encoded.
    fn url(&self, call: &Call<'_>) -> Url {
        let mut url = self.container_url.clone();
        if let Some(blob) = call.blob {
            let mut path = String::with_capacity(url.path().len() + 1 + blob.len() * 3 / 2);
            path.push_str(url.path());
            for segment in blob.split('/') {
                path.push('/');
                path.extend(utf8_percent_encode(segment, ENCODE));
            }
            url.set_path(&path);
        }
        let sas_pairs = match &self.auth {
            Auth::Sas(token) => Some(token.pairs()),
            _ => None,
        };
        let mut query = String::new();
        let pairs = call
            .query
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(sas_pairs.into_iter().flatten());
        for (name, value) in pairs {
            if !query.is_empty() {
                query.push('&');
            }
            query.extend(utf8_percent_encode(name, ENCODE));
            query.push('=');
            query.extend(utf8_percent_encode(value, ENCODE));
        }
        if !query.is_empty() {
            url.set_query(Some(&query));
        }
        url
    }

    async fn write(
        &self,
        method: Method,
        blob: &str,
        query: Vec<(&'static str, String)>,
        mut headers: Vec<(HeaderName, HeaderValue)>,
        condition: &WriteCondition,
    ) -> Result<Answer, BackendError> {
        validate_blob_name(blob)?;
        match condition {
            WriteCondition::Unconditional => {}
            WriteCondition::IfMatch(etag) => headers.push((
                reqwest::header::IF_MATCH,
                header_value("If-Match", &etag.header_value())?,
            )),
            WriteCondition::IfNotExists => {
                headers.push((reqwest::header::IF_NONE_MATCH, HeaderValue::from_static("*")))
            }
        }
        let call = Call {
            method,
            blob: Some(blob),
            query,
            headers,
            is_write: true,
        };
        self.execute(&call)
            .await
            .map_err(|e| refine_condition_error(e, condition))
    }
}

/// A 412 to an `If-None-Match: *` write means the blob exists (Azure answers
/// 412, Azurite 409).
fn refine_condition_error(error: BackendError, condition: &WriteCondition) -> BackendError {
    if *condition == WriteCondition::IfNotExists && error.kind() == BackendErrorKind::PreconditionFailed {
        return error.with_kind(BackendErrorKind::AlreadyExists);
    }
    error
}

/// A whole HTTP answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
    /// The bearer token the request carried, to scrub from the answer.
    sent_token: Option<String>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn properties_of(answer: &Answer) -> Result<BlobProperties, BackendError> {
    let headers = &answer.headers;
    let etag = headers
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ETag::new(v).ok())
        .ok_or_else(|| BackendError::new(BackendErrorKind::Other, "response has no usable ETag header"))?;
    let last_modified = headers
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .unwrap_or_else(SystemTime::now);
    Ok(BlobProperties { etag, last_modified })
}

/// A header value of our own making (a version, a date, a hex id).
fn own_header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("the backend formats its own header values as visible ASCII")
}

/// A value the caller gave, checked: it must be visible ASCII (spaces and
/// tabs inside), with nothing HTTP would drop at either end. Refused before
/// anything is sent, so it can neither inject a header nor be stored
/// differently from what was asked.
fn header_value(what: &str, value: &str) -> Result<HeaderValue, BackendError> {
    let trimmed = value.trim_matches([' ', '\t']);
    match HeaderValue::from_str(value) {
        Ok(header) if value.is_ascii() && trimmed.len() == value.len() => Ok(header),
        _ => Err(BackendError::new(
            BackendErrorKind::Other,
            format!(
                "{what} {:?} cannot be sent as an HTTP header value (visible ASCII only, no whitespace at either end)",
                value.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// An `Authorization` value, hidden from `Debug`; `None` if it cannot be
/// a header value.
fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok().filter(|_| value.is_ascii())?;
    value.set_sensitive(true);
    Some(value)
}

/// Names a URL can address: not empty, and no `.` or `..` segment (URL
/// parsers drop or fold those, so the request would reach another blob).
fn validate_blob_name(name: &str) -> Result<(), BackendError> {
    if name.is_empty() {
        return Err(BackendError::new(
            BackendErrorKind::Other,
            "a blob name cannot be empty",
        ));
    }
    if name.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(BackendError::new(
            BackendErrorKind::Other,
            format!(
                "blob name {:?} has a '.' or '..' segment, which a URL cannot address",
                name.chars().take(256).collect::<String>()
            ),
        ));
    }
    Ok(())
}

/// A secret as given and as it may come back quoted from a URL:
/// percent-encoded with upper- or lower-case escapes.
fn secret_forms(secret: &str) -> Vec<String> {
    if secret.is_empty() {
        return Vec::new();
    }
    let encoded: String = utf8_percent_encode(secret, ENCODE).collect();
    let mut lower = String::with_capacity(encoded.len());
    let mut escape = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape = 2;
            lower.push(c);
        } else if escape > 0 {
            escape -= 1;
            lower.push(c.to_ascii_lowercase());
        } else {
            lower.push(c);
        }
    }
    let mut forms = vec![secret.to_owned(), encoded, lower];
    forms.dedup();
    forms
}

/// A failed attempt, classified.
struct Failure {
    error: BackendError,
    /// The request may have reached the service and been applied.
    may_have_applied: bool,
}

impl Failure {
    fn from_transport(error: &reqwest::Error) -> Self {
        let kind = BackendErrorKind::Transient;
        let (message, may_have_applied) = if error.is_connect() {
            ("could not connect", false)
        } else if error.is_timeout() {
            ("attempt timed out", true)
        } else if error.is_builder() {
            return Self {
                error: BackendError::new(BackendErrorKind::Auth, describe_chain(error)),
                may_have_applied: false,
            };
        } else {
            ("connection failed", true)
        };
        Self {
            error: BackendError::new(kind, format!("{message}: {}", describe_chain(error))),
            may_have_applied,
        }
    }

    fn from_answer(answer: &Answer, redactions: &[String]) -> Self {
        let status = answer.status;
        let header = |name: &str| answer.header(name).map(str::to_owned);
        let request_id = header("x-ms-request-id");
        let retry_after = header("x-ms-retry-after-ms")
            .and_then(|ms| ms.parse::<u64>().ok().map(Duration::from_millis))
            .or_else(|| header("retry-after").and_then(|s| s.parse::<u64>().ok().map(Duration::from_secs)));
        let body = String::from_utf8_lossy(&answer.body);
        let code = header("x-ms-error-code").or_else(|| xml_element(&body, "Code"));
        let kind = classify(status, code.as_deref());
        let mut message = code.clone().unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned()
        });
        if status.is_redirection() {
            message.push_str(
                " (not followed: the Blob service does not redirect; check the account URL and any proxy in between)",
            );
        }
        // The service's message can quote the signature it received; only
        // the code is kept for authorization failures.
        if kind != BackendErrorKind::Auth
            && let Some(detail) = xml_element(&body, "Message")
        {
            let first_line = detail.lines().next().unwrap_or("").trim();
            message = format!("{message}: {first_line}");
        }
        let token_forms = answer.sent_token.as_deref().map(secret_forms).unwrap_or_default();
        for secret in redactions.iter().chain(&token_forms) {
            message = message.replace(secret.as_str(), "<redacted>");
        }
        let mut error = BackendError::new(kind, message).with_status(status.as_u16());
        if let Some(id) = request_id {
            error = error.with_request_id(id);
        }
        if let Some(delay) = retry_after {
            error = error.with_retry_after(delay);
        }
        let may_have_applied = matches!(status.as_u16(), 408 | 500 | 502 | 504);
        Self {
            error,
            may_have_applied,
        }
    }
}

fn classify(status: StatusCode, code: Option<&str>) -> BackendErrorKind {
    match status.as_u16() {
        404 => BackendErrorKind::NotFound,
        412 => BackendErrorKind::PreconditionFailed,
        409 if matches!(code, Some("BlobAlreadyExists" | "ContainerAlreadyExists")) => {
            BackendErrorKind::AlreadyExists
        }
        401 | 403 => BackendErrorKind::Auth,
        429 => BackendErrorKind::Throttled,
        503 if code != Some("ServiceUnavailable") => BackendErrorKind::Throttled,
        408 | 500 | 502 | 503 | 504 => BackendErrorKind::Transient,
        _ => BackendErrorKind::Other,
    }
}

/// At most [`MAX_ERROR_BODY`] bytes of an error answer's body.
async fn read_limited(mut response: reqwest::Response) -> bytes::Bytes {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body.into()
}

fn xml_element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].trim().to_owned()).filter(|s| !s.is_empty())
}

/// The error and its causes on one line, without any URL.
fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `x-ms-meta-*` headers; metadata names must be C# identifiers (ASCII
/// letters, digits and `_`, not starting with a digit), as Blob Storage
/// requires, and values header values.
fn metadata_headers(metadata: &Metadata) -> Result<Vec<(HeaderName, HeaderValue)>, BackendError> {
    metadata
        .iter()
        .map(|(name, value)| {
            let identifier = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let header = match name {
                format::OWNER_ID => Ok(HeaderName::from_static("x-ms-meta-ownerid")),
                format::OFFSET => Ok(HeaderName::from_static("x-ms-meta-offset")),
                format::SEQUENCE_NUMBER => Ok(HeaderName::from_static("x-ms-meta-sequencenumber")),
                _ => HeaderName::from_bytes(format!("x-ms-meta-{}", name.to_ascii_lowercase()).as_bytes()),
            };
            match header {
                Ok(header) if identifier => Ok((header, header_value("metadata value", value)?)),
                _ => Err(BackendError::new(
                    BackendErrorKind::Other,
                    format!(
                        "metadata name {:?} is not a C# identifier",
                        name.chars().take(64).collect::<String>()
                    ),
                )),
            }
        })
        .collect()
}

#[async_trait]
impl BlobBackend for AzureBlobBackend {
    async fn list_blobs(&self, prefix: &str) -> Result<Vec<BlobItem>, BackendError> {
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        let mut markers_seen = std::collections::HashSet::new();
        loop {
            let mut query = vec![
                ("restype", "container".to_owned()),
                ("comp", "list".to_owned()),
                ("prefix", prefix.to_owned()),
                ("include", "metadata".to_owned()),
                ("maxresults", self.inner.options.list_page_size.to_string()),
            ];
            if let Some(marker) = marker.take() {
                query.push(("marker", marker));
            }
            let call = Call {
                method: Method::GET,
                blob: None,
                query,
                headers: Vec::new(),
                is_write: false,
            };
            let answer = self.inner.execute(&call).await?;
            let request_id = answer.header("x-ms-request-id").map(str::to_owned);
            let page = list_xml::parse_page(&answer.body).map_err(|e| {
                let error = BackendError::new(BackendErrorKind::Other, "unreadable List Blobs response")
                    .with_source(e);
                match &request_id {
                    Some(id) => error.with_request_id(id.clone()),
                    None => error,
                }
            })?;
            items.extend(page.blobs);
            match page.next_marker {
                // A marker handed out twice would page forever.
                Some(next) if !markers_seen.insert(next.clone()) => {
                    let error = BackendError::new(
                        BackendErrorKind::Other,
                        format!(
                            "List Blobs returned the marker {:?} a second time; the listing would never end",
                            next.chars().take(256).collect::<String>()
                        ),
                    );
                    return Err(match request_id {
                        Some(id) => error.with_request_id(id),
                        None => error,
                    });
                }
                Some(next) => marker = Some(next),
                None => return Ok(items),
            }
        }
    }

    async fn put_blob(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        let mut headers = metadata_headers(metadata)?;
        headers.push((
            HeaderName::from_static("x-ms-blob-type"),
            HeaderValue::from_static("BlockBlob"),
        ));
        let response = self
            .inner
            .write(Method::PUT, name, Vec::new(), headers, condition)
            .await?;
        properties_of(&response)
    }

    async fn set_metadata(
        &self,
        name: &str,
        metadata: &Metadata,
        condition: &WriteCondition,
    ) -> Result<BlobProperties, BackendError> {
        let query = vec![("comp", "metadata".to_owned())];
        let response = self
            .inner
            .write(Method::PUT, name, query, metadata_headers(metadata)?, condition)
            .await?;
        properties_of(&response)
    }

    async fn delete_blob(&self, name: &str, condition: &WriteCondition) -> Result<(), BackendError> {
        self.inner
            .write(Method::DELETE, name, Vec::new(), Vec::new(), condition)
            .await
            .map(|_| ())
    }
}
