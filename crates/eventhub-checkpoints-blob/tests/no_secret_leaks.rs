//! No secret ever leaves through logs, errors or `Debug`: every `tracing`
//! event at TRACE (and every `log` record of the HTTP stack, through the
//! `tracing-log` bridge) is captured into a buffer, along with the
//! `Display` and `Debug` of every error, claim result, backend, store,
//! credential and connection string met during a run with SharedKey, SAS
//! and bearer tokens against Azurite: successful calls, a wrong key, a
//! forged SAS, an expired token, faults through the proxy, and a service
//! that quotes the signature or the token back in its error messages.
//! None of it may contain an account key (base64, fragments of it, or the
//! decoded bytes in hex or as a byte list), a SAS `sig` (decoded or
//! percent-encoded, or fragments of it) or a bearer token (or its claims).
//!
//! The subscriber is this test binary's global default, so the binary holds
//! one test.

use std::fmt::Debug;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use eventhub_checkpoints::{
    BlobBackend, Checkpoint, CheckpointStore, Offset, OwnerId, OwnershipClaim, PartitionId, Scope,
};
use eventhub_checkpoints_blob::{
    AzureBlobBackend, AzureBlobOptions, ConnectionString, Credential, RetryOptions,
};
use eventhub_checkpoints_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
use eventhub_checkpoints_test_support::{
    ACCOUNT_KEY, ACCOUNT_NAME, Azurite, Transport, test_jwt, unique_container_name,
};

mod common;

/// Everything logged, from any thread.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish()
            .try_init()
            .expect("the only subscriber of this test binary");
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The secrets of the run, each with the forms it could leak in.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, secret: &str) {
        self.0.push((what.to_owned(), secret.to_owned()));
    }

    /// An account key as given, its fragments, and its bytes.
    fn account_key(&mut self, what: &str, key: &str) {
        self.fragments(what, key);
        let bytes = STANDARD.decode(key).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.add(&format!("{what} (hex)"), &hex);
        self.add(&format!("{what} (HEX)"), &hex.to_uppercase());
        self.add(&format!("{what} (bytes)"), &format!("{:?}", &bytes[..8]));
        self.add(&format!("{what} (url-safe)"), &URL_SAFE_NO_PAD.encode(&bytes));
        self.percent_encoded(what, key);
    }

    /// A SAS `sig` (decoded), percent-encoded both ways, and fragments.
    fn signature(&mut self, what: &str, sig: &str) {
        self.fragments(what, sig);
        self.percent_encoded(what, sig);
    }

    /// A bearer token, and its claims segment.
    fn token(&mut self, what: &str, token: &str) {
        self.add(what, token);
        let claims = token.split('.').nth(1).unwrap();
        self.add(&format!("{what} (claims)"), claims);
    }

    fn fragments(&mut self, what: &str, secret: &str) {
        self.add(what, secret);
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(16).step_by(4) {
            self.add(&format!("{what} (fragment)"), &window.iter().collect::<String>());
        }
    }

    fn percent_encoded(&mut self, what: &str, secret: &str) {
        let upper: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let lower = upper
            .replace("%2B", "%2b")
            .replace("%2F", "%2f")
            .replace("%3D", "%3d");
        self.add(&format!("{what} (percent-encoded)"), &upper);
        self.add(&format!("{what} (percent-encoded, lower case)"), &lower);
    }

    /// The first secret found in `text`, with some context.
    fn leak(&self, text: &str) -> Option<String> {
        self.0.iter().find_map(|(what, secret)| {
            let at = text.find(secret.as_str())?;
            let start = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
            let end = (at + secret.len() + 200).min(text.len());
            let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap();
            Some(format!("{what}: ...{}...", &text[start..end]))
        })
    }

    fn assert_absent(&self, source: &str, text: &str) {
        if let Some(leak) = self.leak(text) {
            panic!("leaked through {source}: {leak}");
        }
    }
}

/// Everything shown during the run besides the logs.
#[derive(Default)]
struct Shown(Vec<String>);

impl Shown {
    fn debug(&mut self, value: &impl Debug) {
        self.0.push(format!("{value:?}"));
    }

    fn error(&mut self, error: &(impl std::fmt::Display + Debug)) {
        self.0.push(format!("{error} {error:?}"));
    }

    /// Every result of a run of store calls (in a scope of its own); how
    /// many failed.
    async fn exercise(&mut self, store: &CheckpointStore) -> usize {
        let scope = &Scope::new(
            "ns.servicebus.windows.net",
            format!("leaks-{}", self.0.len()),
            "$Default",
        )
        .unwrap();
        self.debug(store);
        let mut failures = 0;
        let me = OwnerId::new("leak-test").unwrap();
        let claims =
            (0..3).map(|p| OwnershipClaim::new(scope.clone(), PartitionId::from(p), me.clone(), None));
        for outcome in store.claim_ownership(claims).await {
            self.debug(&outcome);
            failures += usize::from(outcome.result.claimed().is_none());
        }
        let checkpoint = Checkpoint::new(
            scope.clone(),
            PartitionId::from(0),
            Some(Offset::from(42)),
            Some(4),
        )
        .unwrap();
        match store.update_checkpoint(&checkpoint).await {
            Ok(()) => {}
            Err(error) => {
                failures += 1;
                self.error(&error);
            }
        }
        match store.list_ownership(scope).await {
            Ok(listing) => self.debug(&listing),
            Err(error) => {
                failures += 1;
                self.error(&error);
            }
        }
        match store.list_checkpoints(scope).await {
            Ok(listing) => self.debug(&listing),
            Err(error) => {
                failures += 1;
                self.error(&error);
            }
        }
        match store.delete_checkpoint(scope, &PartitionId::from(0)).await {
            Ok(_) => {}
            Err(error) => {
                failures += 1;
                self.error(&error);
            }
        }
        failures
    }
}

/// A credential that hands out test tokens and remembers each one; its
/// derived `Debug` shows them, as a careless credential's would.
#[derive(Debug)]
struct Recording {
    lifetime: Duration,
    expired: bool,
    issued: Mutex<Vec<String>>,
}

impl Recording {
    fn new(lifetime: Duration, expired: bool) -> Arc<Self> {
        Arc::new(Self {
            lifetime,
            expired,
            issued: Mutex::new(Vec::new()),
        })
    }
}

/// An unsigned JWT like `test_jwt`, but expired an hour ago.
fn expired_jwt() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = format!(
        r#"{{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/9d0a1f6e-3c55-4e6b-8a8e-5f3b2c1d0e7a/","iat":{},"nbf":{},"exp":{}}}"#,
        now - 7_200,
        now - 7_200,
        now - 3_600
    );
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[async_trait]
impl TokenCredential for Recording {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let token = if self.expired {
            expired_jwt()
        } else {
            test_jwt(self.lifetime)
        };
        self.issued.lock().unwrap().push(token.clone());
        // The cache is told the token is good for an hour either way.
        Ok(AccessToken::new(
            token,
            OffsetDateTime::now_utc() + Duration::from_secs(3_600),
        ))
    }
}

/// A credential with one fixed token, known before the run.
struct Fixed(String);

impl Debug for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fixed(..)")
    }
}

#[async_trait]
impl TokenCredential for Fixed {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            OffsetDateTime::now_utc() + Duration::from_secs(3_600),
        ))
    }
}

fn sig_of(sas: &str) -> String {
    let encoded = sas.split("&sig=").nth(1).unwrap().split('&').next().unwrap();
    url::form_urlencoded::parse(format!("sig={encoded}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

fn quick() -> AzureBlobOptions {
    AzureBlobOptions {
        retry: RetryOptions {
            max_retries: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        per_try_timeout: Duration::from_secs(2),
        allow_bearer_over_http: true,
        ..AzureBlobOptions::default()
    }
}

fn new_backend(url: &str, container: &str, credential: Credential, shown: &mut Shown) -> AzureBlobBackend {
    shown.debug(&credential);
    let backend = AzureBlobBackend::new(url, container, credential, quick()).unwrap();
    shown.debug(&backend);
    backend
}

/// Faults the proxy answers with, including a service that quotes the
/// request's signature or token back in its error message.
fn faults(quoted: &[&str]) -> Vec<Fault> {
    let mut faults = vec![
        Fault::storage_error(503, "ServerBusy", "The server is busy.").header("x-ms-retry-after-ms", "10"),
        Fault::storage_error(500, "InternalError", "The server encountered an internal error."),
        Fault::status(429),
        Fault::ResetBeforeForwarding,
        Fault::ForwardThenReset,
        Fault::storage_error(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request.",
        ),
    ];
    for quote in quoted {
        faults.push(Fault::storage_error(
            400,
            "InvalidQueryParameterValue",
            &format!(
                "Value {quote} for one of the query parameters specified in the request URI is invalid."
            ),
        ));
        faults.push(Fault::storage_error(
            500,
            "InternalError",
            &format!("The server failed on a request carrying {quote}."),
        ));
    }
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_an_error_or_a_debug_output() {
    let buffer = captured();
    let mut secrets = Secrets::default();
    let mut shown = Shown::default();
    let http = Azurite::shared(Transport::Http).blob_endpoint();
    let container = unique_container_name("leaks");
    secrets.account_key("the account key", ACCOUNT_KEY);

    // SharedKey: a working run, then a wrong key.
    let backend = new_backend(
        http,
        &container,
        Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
        &mut shown,
    );
    backend.create_container().await.unwrap();
    let store = CheckpointStore::new(Arc::new(backend));
    assert_eq!(shown.exercise(&store).await, 0, "a working SharedKey run");
    let wrong_key = STANDARD.encode(b"not-the-account-key-but-a-secret-all-the-same!!");
    secrets.account_key("a wrong account key", &wrong_key);
    let wrong = CheckpointStore::new(Arc::new(new_backend(
        http,
        &container,
        Credential::shared_key(ACCOUNT_NAME, &wrong_key).unwrap(),
        &mut shown,
    )));
    assert!(shown.exercise(&wrong).await >= 5, "a wrong key fails");

    // SAS: container and account SAS, then a forged one.
    let container_sas = common::container_sas(&container);
    let account_sas = common::account_sas();
    secrets.signature("the container SAS sig", &sig_of(&container_sas));
    secrets.signature("the account SAS sig", &sig_of(&account_sas));
    for sas in [&container_sas, &account_sas] {
        let store = CheckpointStore::new(Arc::new(new_backend(
            http,
            &container,
            Credential::sas(sas).unwrap(),
            &mut shown,
        )));
        assert_eq!(shown.exercise(&store).await, 0, "a working SAS run");
    }
    let forged_sig = "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZS1ub3Qtc2hvd24tYW55d2hlcmU=";
    secrets.signature("a forged SAS sig", forged_sig);
    let forged = format!(
        "{}&sig={}",
        container_sas.split("&sig=").next().unwrap(),
        url::form_urlencoded::byte_serialize(forged_sig.as_bytes()).collect::<String>()
    );
    let store = CheckpointStore::new(Arc::new(new_backend(
        http,
        &container,
        Credential::sas(&forged).unwrap(),
        &mut shown,
    )));
    assert!(shown.exercise(&store).await >= 5, "a forged SAS fails");

    // Connection strings, good and bad.
    for connection_string in [
        Azurite::shared(Transport::Http).connection_string(),
        format!("BlobEndpoint={http};SharedAccessSignature={container_sas}"),
        format!("AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY}!;BlobEndpoint={http}"),
        format!("BlobEndpoint={http};AccountKey={ACCOUNT_KEY}"),
        format!("AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};EndpointSuffix=a/b"),
        format!("BlobEndpoint={http};SharedAccessSignature={container_sas}%00"),
        format!("AccountName={ACCOUNT_NAME};{ACCOUNT_KEY}"),
    ] {
        match ConnectionString::parse(&connection_string) {
            Ok(parsed) => shown.debug(&parsed),
            Err(error) => shown.error(&error),
        }
        match AzureBlobBackend::from_connection_string(&connection_string, &container, quick()) {
            Ok(backend) => shown.debug(&backend),
            Err(error) => shown.error(&error),
        }
    }

    // Bearer tokens over https, then an expired one.
    let oauth_container = unique_container_name("leaks-oauth");
    let good = Recording::new(Duration::from_secs(3_600), false);
    let backend = common::bearer_backend_with(&oauth_container, good.clone(), quick());
    shown.debug(&backend);
    backend.create_container().await.unwrap();
    let store = CheckpointStore::new(Arc::new(backend));
    assert_eq!(shown.exercise(&store).await, 0, "a working bearer run");
    let expired = Recording::new(Duration::ZERO, true);
    let backend = common::bearer_backend_with(&oauth_container, expired.clone(), quick());
    let error = backend.list_blobs("a/").await.unwrap_err();
    assert_eq!(
        error.kind(),
        eventhub_checkpoints::BackendErrorKind::Auth,
        "{error}"
    );
    shown.error(&error);
    let store = CheckpointStore::new(Arc::new(backend));
    assert!(shown.exercise(&store).await >= 5, "an expired token fails");

    // Faults through the proxy, for each kind of credential, with a service
    // that quotes secrets back.
    let proxy = FaultProxy::start(http);
    let through = format!("{}/{ACCOUNT_NAME}", proxy.url());
    let fixed_token = test_jwt(Duration::from_secs(7_200));
    secrets.token("the fixed bearer token", &fixed_token);
    let container_sig = sig_of(&container_sas);
    let encoded_sig: String = url::form_urlencoded::byte_serialize(container_sig.as_bytes()).collect();
    let credentials: Vec<(Credential, Vec<&str>)> = vec![
        (Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(), vec![]),
        (
            Credential::sas(&container_sas).unwrap(),
            vec![container_sig.as_str(), encoded_sig.as_str()],
        ),
        (
            Credential::bearer(Arc::new(Fixed(fixed_token.clone()))),
            vec![fixed_token.as_str()],
        ),
    ];
    for (credential, quoted) in credentials {
        let store = CheckpointStore::new(Arc::new(new_backend(
            &through, &container, credential, &mut shown,
        )));
        for fault in faults(&quoted) {
            proxy.push(Rule::new(Match::any(), fault).times(3));
            shown.exercise(&store).await;
            while proxy.faults_left() > 0 {
                shown.exercise(&store).await;
            }
        }
    }
    proxy.settled().await;

    for token in good.issued.lock().unwrap().iter() {
        secrets.token("an issued bearer token", token);
    }
    for token in expired.issued.lock().unwrap().iter() {
        secrets.token("an expired bearer token", token);
    }
    assert!(!good.issued.lock().unwrap().is_empty() && !expired.issued.lock().unwrap().is_empty());

    // The checker finds what it looks for.
    let planted = format!("x {} y", &ACCOUNT_KEY[20..40]);
    assert!(secrets.leak(&planted).is_some());

    for (i, text) in shown.0.iter().enumerate() {
        secrets.assert_absent(&format!("shown value {i}"), text);
    }
    let logged = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    // The capture works: the backend's and the HTTP stack's events are in.
    assert!(logged.contains("blob request"), "no TRACE events captured");
    assert!(logged.contains("retrying"), "no retry events captured");
    assert!(
        logged.contains("ownership claim failed"),
        "no store warnings captured"
    );
    assert!(
        logged.contains("starting new connection"),
        "no reqwest log records captured"
    );
    secrets.assert_absent("the logs", &logged);
    eprintln!(
        "checked {} secrets against {} shown values and {} bytes of logs",
        secrets.0.len(),
        shown.0.len(),
        logged.len()
    );
}
