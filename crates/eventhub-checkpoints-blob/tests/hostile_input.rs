//! Hostile and malformed input, table-driven: configuration (connection
//! strings, keys, SAS tokens, API versions, account URLs, container names)
//! gives a specific `ConfigError` that never repeats a secret; names and
//! metadata that could inject headers are refused before anything is sent;
//! blobs written by a broken peer are skipped and reported by a listing;
//! unreadable List Blobs answers are typed errors. Nothing here may panic.
//! The fuzz targets' seed corpora (`fuzz/corpus/`) are replayed here too.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use eventhub_checkpoints::format::{self, BlobKind};
use eventhub_checkpoints::{
    BackendErrorKind, BlobBackend, Checkpoint, CheckpointStore, Metadata, Offset, OwnerId, PartitionId,
    Scope, SkipReason, ValidationError, WriteCondition,
};
use eventhub_checkpoints_blob::{
    ApiVersion, AzureBlobBackend, AzureBlobOptions, ConfigError, ConnectionString, Credential, RetryOptions,
};
use eventhub_checkpoints_test_support::fault_proxy::{Fault, FaultProxy, Match, Rule};
use eventhub_checkpoints_test_support::{
    ACCOUNT_KEY, ACCOUNT_NAME, Azurite, Transport, unique_container_name,
};

mod common;
#[path = "../../../fuzz/src/connection_string.rs"]
mod fuzz_connection_string;
#[path = "../../../fuzz/src/list_xml.rs"]
mod fuzz_list_xml;

/// A valid base64 account key (48 bytes, no padding, with `+` and `/`) that
/// must never be printed.
const KEY: &str = "++++aG9zdGlsZS1pbnB1dC1zZWNyZXQta2V5LW1hdGVyaWFsLTAxMjM0NTY3ODn/";
/// A SAS signature that must never be printed, raw and as it travels in a
/// query string.
const SIG: &str = "+/9zYXMtc2lnbmF0dXJlLXNlY3JldC1ob3N0aWxlLTAxMjM0NTY3ODk=";
const SIG_ENCODED: &str = "%2B%2F9zYXMtc2lnbmF0dXJlLXNlY3JldC1ob3N0aWxlLTAxMjM0NTY3ODk%3D";

/// What no error or `Debug` output may contain.
fn secrets() -> Vec<&'static str> {
    vec![KEY, &KEY[4..28], SIG, SIG_ENCODED, &SIG[2..26], "s3cr3t"]
}

fn assert_no_secret(context: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(secret),
            "{context}: {secret:?} appears in {text:?}"
        );
    }
}

/// The kind of `ConfigError` a case must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    NoBlobEndpoint,
    Malformed(usize),
    Invalid(&'static str),
    Missing(&'static str),
    InvalidApiVersion,
    UnsupportedApiVersion,
    TooOldForCredential,
    InvalidAccountUrl,
    InvalidContainerName,
    BearerOverHttp,
    HttpClient,
}

fn kind_of(error: &ConfigError) -> Expect {
    match error {
        ConfigError::NoBlobEndpoint => Expect::NoBlobEndpoint,
        ConfigError::MalformedConnectionString { index } => Expect::Malformed(*index),
        ConfigError::InvalidField { field, .. } => Expect::Invalid(field),
        ConfigError::MissingField { field, .. } => Expect::Missing(field),
        ConfigError::InvalidApiVersion { .. } => Expect::InvalidApiVersion,
        ConfigError::UnsupportedApiVersion { .. } => Expect::UnsupportedApiVersion,
        ConfigError::ApiVersionTooOldForCredential { .. } => Expect::TooOldForCredential,
        ConfigError::InvalidAccountUrl { .. } => Expect::InvalidAccountUrl,
        ConfigError::InvalidContainerName { .. } => Expect::InvalidContainerName,
        ConfigError::BearerOverHttp { .. } => Expect::BearerOverHttp,
        ConfigError::HttpClient(_) => Expect::HttpClient,
        other => panic!("a ConfigError variant this test does not know: {other:?}"),
    }
}

fn check<T: std::fmt::Debug>(what: &str, result: Result<T, ConfigError>, expected: Expect) {
    let error = match result {
        Ok(value) => panic!("{what}: accepted as {value:?}, expected {expected:?}"),
        Err(error) => error,
    };
    assert_eq!(kind_of(&error), expected, "{what}: {error}");
    let shown = format!("{error} {error:?}");
    assert!(!error.to_string().is_empty(), "{what}");
    assert_no_secret(what, &shown);
}

// ---------------------------------------------------------------------------
// Configuration

#[test]
fn malformed_connection_strings_give_specific_errors_without_secrets() {
    use Expect::*;
    let key_with_a_space = format!("{} {}", &KEY[..20], &KEY[20..]);
    let cases: Vec<(String, Expect)> = vec![
        (String::new(), NoBlobEndpoint),
        (" ; ;; ".into(), NoBlobEndpoint),
        ("Foo=bar;Baz=qux".into(), NoBlobEndpoint),
        ("UseDevelopmentStorage=false".into(), NoBlobEndpoint),
        ("AccountName".into(), Malformed(1)),
        (format!("AccountName=acct;{KEY}"), Malformed(2)),
        (format!("=={KEY};AccountName=acct"), Malformed(1)),
        (
            format!("AccountName=acct;AccountKey={KEY}!"),
            Invalid("AccountKey"),
        ),
        (
            format!("AccountName=acct;AccountKey={key_with_a_space}"),
            Invalid("AccountKey"),
        ),
        (
            "AccountName=acct;AccountKey=s3cr3t-but-not-base64".into(),
            Invalid("AccountKey"),
        ),
        // An empty key (an unset variable interpolated into the string) is
        // not "no credential".
        ("AccountName=acct;AccountKey=".into(), Invalid("AccountKey")),
        ("AccountName=acct;AccountKey=   ".into(), Invalid("AccountKey")),
        (
            format!("BlobEndpoint=https://x.example;AccountKey={KEY}"),
            Missing("AccountName"),
        ),
        (
            format!("AccountName=;BlobEndpoint=https://x.example;AccountKey={KEY}"),
            Missing("AccountName"),
        ),
        // An account name becomes part of the host and of the signature.
        (
            format!("AccountName=evil.example/x?;AccountKey={KEY}"),
            Invalid("AccountName"),
        ),
        (
            format!("AccountName=acct@evil.example;AccountKey={KEY}"),
            Invalid("AccountName"),
        ),
        (
            format!("AccountName=acct\r\nx-ms-meta-evil: 1;AccountKey={KEY}"),
            Invalid("AccountName"),
        ),
        (
            "AccountName=acct;DefaultEndpointsProtocol=ftp".into(),
            Invalid("DefaultEndpointsProtocol"),
        ),
        (
            "AccountName=acct;EndpointSuffix=evil.example/path".into(),
            Invalid("EndpointSuffix"),
        ),
        (
            "AccountName=acct;EndpointSuffix=...".into(),
            Invalid("EndpointSuffix"),
        ),
        (
            "AccountName=acct;EndpointSuffix=x@evil.example".into(),
            Invalid("EndpointSuffix"),
        ),
        (
            "AccountName=acct;EndpointSuffix=core.windows.net?x=1".into(),
            Invalid("EndpointSuffix"),
        ),
        (
            "AccountName=acct;EndpointSuffix=core.windows.net#x".into(),
            Invalid("EndpointSuffix"),
        ),
        (
            "BlobEndpoint=https://x.example;SharedAccessSignature=sv=2021-12-02&sp=r".into(),
            Invalid("SharedAccessSignature"),
        ),
        (
            "BlobEndpoint=https://x.example;SharedAccessSignature=sv=1&sig=".into(),
            Invalid("SharedAccessSignature"),
        ),
        (
            "BlobEndpoint=https://x.example;SharedAccessSignature=".into(),
            Invalid("SharedAccessSignature"),
        ),
        (
            format!(
                "BlobEndpoint=https://x.example;SharedAccessSignature=sv=1&sig={SIG_ENCODED}%0D%0Ax-ms-evil:1"
            ),
            Invalid("SharedAccessSignature"),
        ),
        (
            format!("BlobEndpoint=https://x.example;SharedAccessSignature=sv=1&=x&sig={SIG_ENCODED}"),
            Invalid("SharedAccessSignature"),
        ),
    ];
    for (connection_string, expected) in cases {
        check(
            &format!("{connection_string:?}"),
            ConnectionString::parse(&connection_string),
            expected,
        );
    }

    // Valid strings never show their secrets either.
    for valid in [
        format!("AccountName=acct;AccountKey={KEY}"),
        format!(
            "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=1&sig={SIG_ENCODED}"
        ),
        format!("AccountName=acct;AccountKey={KEY};EndpointSuffix=local.azurestack.external"),
    ] {
        let parsed = ConnectionString::parse(&valid).unwrap();
        assert_no_secret(&valid, &format!("{parsed:?}"));
        let backend =
            AzureBlobBackend::from_connection_string(&valid, "checkpoints", AzureBlobOptions::default())
                .unwrap();
        assert_no_secret(&valid, &format!("{backend:?}"));
    }

    // Connection strings whose endpoint the backend cannot use.
    for endpoint in [
        "not a url",
        "https://user:s3cr3t@acct.blob.core.windows.net",
        "ftp://acct.example",
    ] {
        let connection_string = format!("BlobEndpoint={endpoint};AccountName=acct;AccountKey={KEY}");
        check(
            &connection_string,
            AzureBlobBackend::from_connection_string(
                &connection_string,
                "checkpoints",
                AzureBlobOptions::default(),
            ),
            Expect::InvalidAccountUrl,
        );
    }
}

#[test]
fn bad_account_keys_and_names_are_named_not_echoed() {
    for key in [
        "",
        " ",
        "\t\r\n",
        "s3cr3t!!",
        "czNjcjN0LWtleQ",
        "czNjcjN0 LWtleQ==",
        "-_-_s3cr3t-_-_",
        "czNjcjN0\0",
    ] {
        check(
            &format!("key {key:?}"),
            Credential::shared_key("acct", key),
            Expect::Invalid("AccountKey"),
        );
    }
    check(
        "empty account",
        Credential::shared_key("", KEY),
        Expect::Missing("AccountName"),
    );
    for account in [
        "a b",
        "acct\r\nx-ms-meta-evil: 1",
        "acct:x",
        "évian",
        "evil.example/x",
        "acct\0",
    ] {
        check(
            &format!("account {account:?}"),
            Credential::shared_key(account, KEY),
            Expect::Invalid("AccountName"),
        );
    }
    let good = Credential::shared_key("acct", KEY).unwrap();
    assert_no_secret("credential", &format!("{good:?}"));
}

#[test]
fn bad_sas_tokens_are_named_not_echoed() {
    for token in [
        String::new(),
        "?".into(),
        "sv=2021-12-02&sp=r".into(),
        "sig=".into(),
        "sv=1&sig=".into(),
        format!("sv=1&sig={SIG_ENCODED}%00"),
        format!("sv=1&sig={SIG_ENCODED}\u{7}"),
        format!("sv=1&sig={SIG_ENCODED}\r\nx-ms-meta-evil:1"),
        format!("sv=1&sp=r%0Ax&sig={SIG_ENCODED}"),
        "&&&".into(),
        format!("=x&sig={SIG_ENCODED}"),
        format!("sv=1&sig={SIG_ENCODED}&="),
        "💥 not a query string".into(),
        SIG.to_owned(),
    ] {
        check(
            &format!("SAS {token:?}"),
            Credential::sas(&token),
            Expect::Invalid("SharedAccessSignature"),
        );
    }
    let good = Credential::sas(&format!("?sv=2021-12-02&sp=racwdl&sig={SIG_ENCODED}")).unwrap();
    assert_no_secret("SAS", &format!("{good:?}"));
}

#[test]
fn bad_api_versions_are_config_errors() {
    use Expect::*;
    for (version, expected) in [
        ("", InvalidApiVersion),
        ("latest", InvalidApiVersion),
        ("2017-11-9", InvalidApiVersion),
        ("2017-11-09 ", InvalidApiVersion),
        ("2017-02-30", InvalidApiVersion),
        ("2017-11-09\r\nx-ms-meta-evil: 1", InvalidApiVersion),
        ("\u{0}\u{0}\u{0}\u{0}-\u{0}\u{0}-\u{0}\u{0}", InvalidApiVersion),
        ("٢٠١٧-١١-٠٩", InvalidApiVersion),
        ("+017-11-09", InvalidApiVersion),
        ("2008-12-31", UnsupportedApiVersion),
        ("0000-01-01", UnsupportedApiVersion),
    ] {
        check(&format!("{version:?}"), version.parse::<ApiVersion>(), expected);
    }
    let long = "9".repeat(10_000);
    check("a long version", long.parse::<ApiVersion>(), InvalidApiVersion);

    let old = AzureBlobOptions {
        api_version: "2017-07-29".parse().unwrap(),
        ..AzureBlobOptions::default()
    };
    let bearer = Credential::bearer(common::TestTokenCredential::new(Duration::from_secs(60)));
    check(
        "bearer on 2017-07-29",
        AzureBlobBackend::new("https://a.blob.core.windows.net", "checkpoints", bearer, old),
        TooOldForCredential,
    );
}

#[test]
fn bad_account_urls_are_config_errors_without_secrets() {
    let credential = || Credential::shared_key("acct", KEY).unwrap();
    for url in [
        "",
        "not a url",
        "ftp://acct.example/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "http://[::1",
        "https://a b.example",
        "https://acct.blob.core.windows.net?sv=1&sig=s3cr3t",
        "https://acct.blob.core.windows.net/?sig=s3cr3t",
        "https://acct.blob.core.windows.net#s3cr3t",
        "https://user:s3cr3t@acct.blob.core.windows.net",
        "https://:s3cr3t@acct.blob.core.windows.net",
        "https://s3cr3t@acct.blob.core.windows.net",
    ] {
        check(
            &format!("url {url:?}"),
            AzureBlobBackend::new(url, "checkpoints", credential(), AzureBlobOptions::default()),
            Expect::InvalidAccountUrl,
        );
    }
}

#[test]
fn bad_container_names_and_options_are_config_errors() {
    let new = |container: &str, options: AzureBlobOptions| {
        AzureBlobBackend::new(
            "https://acct.blob.core.windows.net",
            container,
            Credential::Anonymous,
            options,
        )
    };
    for container in [
        "",
        "ab",
        &"a".repeat(64),
        "Checkpoints",
        "a--b",
        "-ab",
        "ab-",
        "a_b",
        "a.b",
        "$root",
        "$logs",
        "ünïcode",
        "a b",
        "../etc",
        "a/b",
        "abc\r\nx-ms-meta-evil: 1",
        "abc\0",
    ] {
        check(
            &format!("container {container:?}"),
            new(container, AzureBlobOptions::default()),
            Expect::InvalidContainerName,
        );
    }
    for list_page_size in [0, 5_001, u32::MAX] {
        check(
            &format!("list_page_size {list_page_size}"),
            new(
                "checkpoints",
                AzureBlobOptions {
                    list_page_size,
                    ..AzureBlobOptions::default()
                },
            ),
            Expect::Invalid("list_page_size"),
        );
    }
    for pem in [
        &b"not a certificate"[..],
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        check(
            "a root certificate that is not one",
            new(
                "checkpoints",
                AzureBlobOptions {
                    root_certificates_pem: vec![pem.to_vec()],
                    ..AzureBlobOptions::default()
                },
            ),
            Expect::HttpClient,
        );
    }
    check(
        "bearer over http",
        AzureBlobBackend::new(
            "http://acct.example",
            "checkpoints",
            Credential::bearer(common::TestTokenCredential::new(Duration::from_secs(60))),
            AzureBlobOptions::default(),
        ),
        Expect::BearerOverHttp,
    );
}

// ---------------------------------------------------------------------------
// Names and header injection

#[test]
fn hostile_names_are_validation_errors() {
    let long = "a".repeat(257);
    for (ns, hub, cg) in [
        ("", "hub", "$Default"),
        ("ns", "a/b", "$Default"),
        ("ns", "hub", "a\\b"),
        ("ns", "..", "$Default"),
        ("ns", ".", "$Default"),
        ("ns", "hub\r\nx-ms-meta-evil: 1", "$Default"),
        ("ns\0", "hub", "$Default"),
        ("ns", "hub", "cg\n"),
        (long.as_str(), "hub", "$Default"),
    ] {
        let error = Scope::new(ns, hub, cg).expect_err(&format!("{ns:?} {hub:?} {cg:?}"));
        assert!(!error.to_string().is_empty());
    }
    for partition in ["", "/", "0/1", "..", ".", "\0", "0\r\n", &long] {
        assert!(PartitionId::new(partition).is_err(), "{partition:?}");
    }
    for owner in ["", "a\r\nx-ms-meta-evil: 1", "a\nb", "a\0b", "zoë", "\u{7f}"] {
        assert!(OwnerId::new(owner).is_err(), "{owner:?}");
    }
    assert_eq!(
        OwnerId::new("a\r\nx-ms-meta-evil: 1").unwrap_err(),
        ValidationError::Invalid {
            what: "owner id",
            reason: "contains a control character (such as CR or LF)"
        }
    );
    for offset in ["1\r\n2", "ü", "\0"] {
        assert!(Offset::new(offset).is_err(), "{offset:?}");
    }
}

fn through_proxy(proxy: &FaultProxy, container: &str, credential: Credential) -> AzureBlobBackend {
    AzureBlobBackend::new(
        &format!("{}/{ACCOUNT_NAME}", proxy.url()),
        container,
        credential,
        AzureBlobOptions {
            retry: RetryOptions {
                max_retries: 2,
                initial_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
            per_try_timeout: Duration::from_secs(5),
            allow_bearer_over_http: true,
            ..AzureBlobOptions::default()
        },
    )
    .unwrap()
}

/// A backend used directly can be handed anything; what cannot travel in a
/// header is refused before a request is sent, and nothing panics.
#[tokio::test]
async fn metadata_that_would_inject_headers_is_refused_before_sending() {
    let container = unique_container_name("hostile-meta");
    common::shared_key_backend_for(&container, AzureBlobOptions::default())
        .create_container()
        .await
        .unwrap();
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    let backend = through_proxy(
        &proxy,
        &container,
        Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
    );
    let hostile: Vec<Metadata> = vec![
        [("ownerid", "a\r\nx-ms-meta-evil: 1")].into_iter().collect(),
        [("ownerid", "a\nb")].into_iter().collect(),
        [("offset", "zoë")].into_iter().collect(),
        [("offset", "\0")].into_iter().collect(),
        [("evil\r\nx-ms-meta-x", "1")].into_iter().collect(),
        [("owner id", "a")].into_iter().collect(),
        [("", "a")].into_iter().collect(),
        [("ünï", "a")].into_iter().collect(),
    ];
    for metadata in &hostile {
        for condition in [WriteCondition::Unconditional, WriteCondition::IfNotExists] {
            let error = backend
                .put_blob("a/0", metadata, &condition)
                .await
                .expect_err(&format!("{metadata:?}"));
            assert_eq!(error.kind(), BackendErrorKind::Other, "{metadata:?}: {error}");
            let error = backend
                .set_metadata("a/0", metadata, &condition)
                .await
                .expect_err(&format!("{metadata:?}"));
            assert_eq!(error.kind(), BackendErrorKind::Other, "{metadata:?}: {error}");
        }
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // A blob name with CR/LF travels percent-encoded: no header is injected.
    let name = "a/x\r\nx-ms-meta-evil: 1";
    let metadata: Metadata = [("ownerid", "me")].into_iter().collect();
    backend
        .put_blob(name, &metadata, &WriteCondition::Unconditional)
        .await
        .unwrap();
    let sent = &proxy.requests()[0];
    assert!(sent.path_and_query.contains("%0D%0Ax-ms-meta-evil"), "{sent:?}");
    assert!(sent.header("x-ms-meta-evil").is_none(), "{sent:?}");
    let listed = backend.list_blobs("a/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].metadata.get("evil"), None);
    assert_eq!(listed[0].metadata.get("ownerid"), Some("me"));
}

/// URL parsers drop `.` and fold `..` path segments: a name with such a
/// segment would address another blob, so the backend refuses it.
#[tokio::test]
async fn dot_segments_in_blob_names_never_address_another_blob() {
    let (_container, backend, _store) = azurite_setup("hostile-dots").await;
    let metadata: Metadata = [("offset", "1")].into_iter().collect();
    let victim = "ns/hub/$default/checkpoint";
    backend
        .put_blob(victim, &metadata, &WriteCondition::Unconditional)
        .await
        .unwrap();
    for name in [
        "ns/hub/$default/checkpoint/0/..",
        "ns/hub/$default/checkpoint/..",
        "ns/hub/$default/checkpoint/.",
        "ns/hub/$default/./checkpoint",
        "../ns/hub/$default/checkpoint",
        "..",
        ".",
    ] {
        let error = backend
            .put_blob(name, &Metadata::new(), &WriteCondition::Unconditional)
            .await
            .expect_err(name);
        assert_eq!(error.kind(), BackendErrorKind::Other, "{name}: {error}");
        let error = backend
            .set_metadata(name, &Metadata::new(), &WriteCondition::Unconditional)
            .await
            .expect_err(name);
        assert_eq!(error.kind(), BackendErrorKind::Other, "{name}: {error}");
        let error = backend
            .delete_blob(name, &WriteCondition::Unconditional)
            .await
            .expect_err(name);
        assert_eq!(error.kind(), BackendErrorKind::Other, "{name}: {error}");
    }
    let listed = backend.list_blobs("").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, victim);
    assert_eq!(listed[0].metadata, metadata, "the victim blob was not touched");
}

/// A token credential that hands out a fixed token.
struct FixedToken(&'static str);

impl std::fmt::Debug for FixedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FixedToken(<redacted>)")
    }
}

#[async_trait]
impl TokenCredential for FixedToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.to_owned(),
            OffsetDateTime::now_utc() + Duration::from_secs(3600),
        ))
    }
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_an_auth_error_not_a_panic() {
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    for token in ["s3cr3t\r\nx-ms-meta-evil: 1", "s3cr3t-zoë", "s3cr3t\0"] {
        let backend = through_proxy(
            &proxy,
            "checkpoints",
            Credential::bearer(Arc::new(FixedToken(token))),
        );
        let error = backend.list_blobs("a/").await.unwrap_err();
        assert_eq!(error.kind(), BackendErrorKind::Auth, "{error}");
        assert_no_secret("token error", &format!("{error} {error:?} {backend:?}"));
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}

// ---------------------------------------------------------------------------
// Blobs written by a broken peer

async fn azurite_setup(name: &str) -> (String, AzureBlobBackend, CheckpointStore) {
    let container = unique_container_name(name);
    let backend = common::shared_key_backend_for(&container, AzureBlobOptions::default());
    assert!(backend.create_container().await.unwrap());
    let store = CheckpointStore::new(Arc::new(backend.clone()));
    (container, backend, store)
}

fn scope() -> Scope {
    Scope::new("ns.servicebus.windows.net", "hub", "$Default").unwrap()
}

/// A blob name, its metadata, and why a listing skips it (if it does).
type PeerBlob = (String, Vec<(&'static str, &'static str)>, Option<SkipReason>);

#[tokio::test]
async fn blobs_of_a_broken_peer_are_skipped_and_reported() {
    let (_container, backend, store) = azurite_setup("hostile-peer").await;
    let s = scope();
    let cp = format::prefix(&s, BlobKind::Checkpoint);
    let own = format::prefix(&s, BlobKind::Ownership);
    let blobs: Vec<PeerBlob> = vec![
        (format!("{cp}0"), vec![], Some(SkipReason::EmptyCheckpoint)),
        (
            format!("{cp}1"),
            vec![("sequencenumber", "seven")],
            Some(SkipReason::InvalidSequenceNumber("seven".into())),
        ),
        (
            format!("{cp}2"),
            vec![("offset", "1"), ("sequencenumber", "99999999999999999999")],
            Some(SkipReason::InvalidSequenceNumber("99999999999999999999".into())),
        ),
        (
            format!("{cp}3"),
            vec![("offset", "None"), ("sequencenumber", "")],
            Some(SkipReason::EmptyCheckpoint),
        ),
        (
            format!("{cp}4"),
            vec![("offset", "no offset"), ("sequencenumber", "0x10")],
            Some(SkipReason::InvalidSequenceNumber("0x10".into())),
        ),
        (
            format!("{cp}5"),
            vec![("offset", "500"), ("sequencenumber", "5")],
            None,
        ),
        (
            format!("{cp}5/extra"),
            vec![("offset", "1")],
            Some(SkipReason::UnexpectedName),
        ),
        (
            format!("{cp}/6"),
            vec![("offset", "1")],
            Some(SkipReason::UnexpectedName),
        ),
        (
            cp.clone(),
            vec![("offset", "1")],
            Some(SkipReason::UnexpectedName),
        ),
        (
            format!("{cp}7"),
            vec![("Offset", "g:1:2"), ("SEQUENCENUMBER", "-3")],
            None,
        ),
        (format!("{own}0"), vec![("ownerid", "alice")], None),
        (format!("{own}1"), vec![], None),
        (
            format!("{own}1/x"),
            vec![("ownerid", "bob")],
            Some(SkipReason::UnexpectedName),
        ),
        (
            format!("{own}/2"),
            vec![("ownerid", "bob")],
            Some(SkipReason::UnexpectedName),
        ),
        (
            format!("{own}3"),
            vec![("unrelated", "x"), ("OWNERID", "carol")],
            None,
        ),
    ];
    for (name, metadata, _) in &blobs {
        let metadata: Metadata = metadata.iter().copied().collect();
        backend
            .put_blob(name, &metadata, &WriteCondition::Unconditional)
            .await
            .unwrap_or_else(|e| panic!("put {name:?}: {e}"));
    }
    let checkpoints = store.list_checkpoints(&s).await.unwrap();
    let ownership = store.list_ownership(&s).await.unwrap();
    let mut skipped: Vec<(String, SkipReason)> = checkpoints
        .skipped
        .iter()
        .chain(&ownership.skipped)
        .map(|b| (b.name.clone(), b.reason.clone()))
        .collect();
    skipped.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, SkipReason)> = blobs
        .iter()
        .filter_map(|(name, _, reason)| reason.clone().map(|r| (name.clone(), r)))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(skipped, expected);

    let read: Vec<(String, Option<String>, Option<i64>)> = checkpoints
        .items
        .iter()
        .map(|c| {
            (
                c.partition_id().to_string(),
                c.offset().map(|o| o.to_string()),
                c.sequence_number(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            ("5".to_owned(), Some("500".to_owned()), Some(5)),
            ("7".to_owned(), Some("g:1:2".to_owned()), Some(-3)),
        ]
    );
    let owners: Vec<(String, Option<String>)> = ownership
        .items
        .iter()
        .map(|o| {
            (
                o.partition_id.to_string(),
                o.owner_id.as_ref().map(|id| id.to_string()),
            )
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("0".to_owned(), Some("alice".to_owned())),
            ("1".to_owned(), None),
            ("3".to_owned(), Some("carol".to_owned())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_listing_with_broken_blobs_succeeds_and_reports_them() {
    const BLOBS: u32 = 6_000;
    let (_container, backend, store) = azurite_setup("hostile-huge").await;
    let s = scope();
    let started = Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for worker in 0..32u32 {
        let backend = backend.clone();
        let s = s.clone();
        writers.spawn(async move {
            for p in (worker..BLOBS).step_by(32) {
                let name = format::blob_name(&s, BlobKind::Checkpoint, &PartitionId::from(p));
                let metadata: Metadata = if p % 20 == 7 {
                    [("offset", "1"), ("sequencenumber", "not-a-number")]
                        .into_iter()
                        .collect()
                } else {
                    let cp =
                        Checkpoint::new(s.clone(), PartitionId::from(p), None, Some(i64::from(p))).unwrap();
                    format::checkpoint_metadata(&cp)
                };
                backend
                    .put_blob(&name, &metadata, &WriteCondition::Unconditional)
                    .await
                    .unwrap();
            }
        });
    }
    writers.join_all().await;
    let written = started.elapsed();
    let listed = store.list_checkpoints(&s).await.unwrap();
    let broken = (0..BLOBS).filter(|p| p % 20 == 7).count();
    assert_eq!(listed.skipped.len(), broken);
    assert_eq!(listed.items.len(), BLOBS as usize - broken);
    assert!(
        listed
            .skipped
            .iter()
            .all(|b| b.reason == SkipReason::InvalidSequenceNumber("not-a-number".into()))
    );
    assert!(
        listed
            .items
            .iter()
            .all(|c| c.sequence_number() == Some(c.partition_id().as_str().parse().unwrap()))
    );
    eprintln!(
        "{BLOBS} blobs written in {written:?}, listed in {:?}",
        started.elapsed() - written
    );
}

// ---------------------------------------------------------------------------
// Unreadable answers from the service

const LAST_MODIFIED: &str = "Sun, 29 Nov 2026 02:18:23 GMT";

fn page(blobs: &str, next_marker: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults \
         ServiceEndpoint=\"http://127.0.0.1/devstoreaccount1\" ContainerName=\"c\">\
         <Blobs>{blobs}</Blobs><NextMarker>{next_marker}</NextMarker></EnumerationResults>"
    )
}

fn blob(name: &str, properties: &str, metadata: &str) -> String {
    format!(
        "<Blob><Name>{name}</Name><Properties>{properties}</Properties><Metadata>{metadata}</Metadata></Blob>"
    )
}

fn good_blob(partition: u32) -> String {
    blob(
        &format!("ns.servicebus.windows.net/hub/$default/checkpoint/{partition}"),
        &format!("<Last-Modified>{LAST_MODIFIED}</Last-Modified><Etag>0x8D{partition}</Etag>"),
        "<offset>1</offset><sequencenumber>1</sequencenumber>",
    )
}

/// Bodies a 200 answer to List Blobs may not have.
fn unreadable_pages() -> Vec<(&'static str, String)> {
    let good = page(&good_blob(0), "");
    vec![
        ("truncated", good[..good.len() / 2].to_owned()),
        ("truncated after the root", good[..good.len() - 5].to_owned()),
        (
            "wrong root",
            "<Error><Code>InternalError</Code><Message>x</Message></Error>".into(),
        ),
        ("two roots", format!("{good}{good}")),
        (
            "only empty roots",
            "<EnumerationResults/><EnumerationResults/>".into(),
        ),
        (
            "missing Etag",
            page(
                &blob(
                    "ns.servicebus.windows.net/hub/$default/checkpoint/0",
                    &format!("<Last-Modified>{LAST_MODIFIED}</Last-Modified>"),
                    "",
                ),
                "",
            ),
        ),
        (
            "bad Etag",
            page(
                &blob(
                    "ns.servicebus.windows.net/hub/$default/checkpoint/0",
                    &format!("<Last-Modified>{LAST_MODIFIED}</Last-Modified><Etag>a\"b</Etag>"),
                    "",
                ),
                "",
            ),
        ),
        (
            "missing Last-Modified",
            page(
                &blob(
                    "ns.servicebus.windows.net/hub/$default/checkpoint/0",
                    "<Etag>0x1</Etag>",
                    "",
                ),
                "",
            ),
        ),
        (
            "bad Last-Modified",
            page(
                &blob(
                    "ns.servicebus.windows.net/hub/$default/checkpoint/0",
                    "<Last-Modified>yesterday</Last-Modified><Etag>0x1</Etag>",
                    "",
                ),
                "",
            ),
        ),
        (
            "missing Name",
            page("<Blob><Properties><Etag>0x1</Etag></Properties></Blob>", ""),
        ),
        ("empty body", String::new()),
        ("whitespace", " \r\n\t ".into()),
        (
            "HTML error page",
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
             <body><h1>Bad Gateway</h1><p>nginx</p></body></html>"
                .into(),
        ),
        ("broken HTML", "<html><body><p>Oops<br></body></html>".into()),
        ("JSON", "{\"value\": []}".into()),
        ("plain text", "OK".into()),
        (
            "unknown entity",
            "<EnumerationResults>&nbsp;</EnumerationResults>".into(),
        ),
        (
            "entity expansion",
            "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
             <EnumerationResults><Blobs><Blob><Name>&lol2;</Name></Blob></Blobs></EnumerationResults>"
                .into(),
        ),
        (
            "bad character reference",
            "<EnumerationResults>&#xD800;</EnumerationResults>".into(),
        ),
        (
            "mismatched tags",
            "<EnumerationResults><Blobs></Blob></EnumerationResults>".into(),
        ),
    ]
}

async fn proxy_setup(name: &str) -> (FaultProxy, CheckpointStore) {
    let container = unique_container_name(name);
    common::shared_key_backend_for(&container, AzureBlobOptions::default())
        .create_container()
        .await
        .unwrap();
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    let backend = through_proxy(
        &proxy,
        &container,
        Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
    );
    (proxy, CheckpointStore::new(Arc::new(backend)))
}

fn list() -> Match {
    Match::method("GET").path_contains("comp=list")
}

#[tokio::test]
async fn unreadable_list_answers_are_typed_errors() {
    let (proxy, store) = proxy_setup("hostile-xml").await;
    let s = scope();
    for (what, body) in unreadable_pages() {
        proxy.clear_requests();
        proxy.push(Rule::new(
            list(),
            Fault::status(200)
                .header("Content-Type", "application/xml")
                .header("x-ms-request-id", "hostile-1")
                .body(body.clone()),
        ));
        let error = store.list_checkpoints(&s).await.expect_err(what);
        assert_eq!(error.kind(), BackendErrorKind::Other, "{what}: {error}");
        let text = error.to_string();
        assert!(text.contains("unreadable List Blobs response"), "{what}: {text}");
        assert_eq!(error.backend_error().request_id(), Some("hostile-1"), "{what}");
        assert_eq!(
            proxy.requests().len(),
            1,
            "{what}: an unreadable answer is not retried"
        );
    }
    assert_eq!(proxy.faults_left(), 0);

    // Well-formed but odd pages are read, not refused.
    for (what, body, items) in [
        (
            "deep nesting",
            format!(
                "<EnumerationResults>{}{}</EnumerationResults>",
                "<a>".repeat(50_000),
                "</a>".repeat(50_000)
            ),
            0,
        ),
        (
            "unknown elements",
            page(&format!("<Unknown>x</Unknown>{}", good_blob(1)), "")
                .replace("<Properties>", "<Properties><Extra a=\"1\">y</Extra>"),
            1,
        ),
        (
            "names outside the prefix",
            page(
                &blob(
                    "elsewhere/0",
                    &format!("<Last-Modified>{LAST_MODIFIED}</Last-Modified><Etag>0x1</Etag>"),
                    "",
                ),
                "",
            ),
            0,
        ),
    ] {
        proxy.push(Rule::new(list(), Fault::status(200).body(body)));
        let listed = store
            .list_checkpoints(&s)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(listed.items.len(), items, "{what}");
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with a 200 and
/// these body bytes (the fault proxy's canned bodies are text).
fn raw_server(body: Vec<u8>) -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://{}/{ACCOUNT_NAME}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let mut answer =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        answer.extend_from_slice(&body);
                        if stream.write_all(&answer).is_err() {
                            return;
                        }
                        continue;
                    }
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_list_answer_that_is_not_utf8_is_a_typed_error() {
    let s = scope();
    for body in [
        b"\xff\xfe<\x00E\x00".to_vec(),
        page(&good_blob(0), "")
            .replace("checkpoint/0", "checkpoint/\u{1}")
            .into_bytes(),
        {
            let mut bytes = page(&good_blob(0), "").into_bytes();
            let at = bytes.len() / 2;
            bytes[at] = 0xc3;
            bytes
        },
    ] {
        let url = raw_server(body);
        let backend = AzureBlobBackend::new(
            &url,
            "checkpoints",
            Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap(),
            AzureBlobOptions::default(),
        )
        .unwrap();
        let store = CheckpointStore::new(Arc::new(backend));
        match store.list_checkpoints(&s).await {
            Err(error) => assert_eq!(error.kind(), BackendErrorKind::Other, "{error}"),
            // A control character in a name is readable XML; that blob is
            // skipped.
            Ok(listed) => assert_eq!(listed.skipped.len(), 1, "{listed:?}"),
        }
    }
}

/// A service that hands back a marker it already gave would page forever.
#[tokio::test]
async fn a_list_marker_that_repeats_ends_the_listing_with_a_typed_error() {
    let (proxy, store) = proxy_setup("hostile-marker").await;
    proxy.push(Rule::new(
        list(),
        Fault::status(200).body(page(&good_blob(0), "m1")),
    ));
    proxy.push(Rule::new(
        list(),
        Fault::status(200).body(page(&good_blob(1), "m2")),
    ));
    proxy.push(Rule::new(list(), Fault::status(200).body(page(&good_blob(2), "m1"))).times(1_000));
    let started = Instant::now();
    let error = store.list_checkpoints(&scope()).await.unwrap_err();
    assert_eq!(error.kind(), BackendErrorKind::Other, "{error}");
    assert!(error.to_string().contains("marker"), "{error}");
    assert_eq!(proxy.requests().len(), 3);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// `Retry-After` is the service's to choose; an absurd one ends the call
/// (it cannot be waited for within the overall timeout) instead of
/// overflowing the clock.
#[tokio::test]
async fn an_absurd_retry_after_is_a_typed_error_not_a_panic() {
    let (proxy, store) = proxy_setup("hostile-retry").await;
    for (header, value) in [
        ("Retry-After", "18446744073709551615"),
        ("Retry-After", "99999999999999999999999"),
        ("Retry-After", "-1"),
        ("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("x-ms-retry-after-ms", "18446744073709551615"),
    ] {
        proxy.clear_requests();
        proxy.push(
            Rule::new(
                list(),
                Fault::storage_error(503, "ServerBusy", "Busy.").header(header, value),
            )
            .times(10),
        );
        let started = Instant::now();
        let error = store.list_checkpoints(&scope()).await.unwrap_err();
        assert_eq!(
            error.kind(),
            BackendErrorKind::Throttled,
            "{header}: {value}: {error}"
        );
        assert!(error.to_string().contains("ServerBusy"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "{header}: {value}");
        proxy.clear_requests();
        while proxy.faults_left() > 0 {
            let _ = store.list_checkpoints(&scope()).await;
        }
    }
}

/// Options at the edge of what a `Duration` holds ("no limit") are taken
/// as such: nothing overflows and the calls still end.
#[tokio::test]
async fn absurd_timeouts_and_delays_never_panic() {
    let container = unique_container_name("hostile-options");
    common::shared_key_backend_for(&container, AzureBlobOptions::default())
        .create_container()
        .await
        .unwrap();
    let proxy = FaultProxy::start(Azurite::shared(Transport::Http).blob_endpoint());
    let url = format!("{}/{ACCOUNT_NAME}", proxy.url());
    let credential = || Credential::shared_key(ACCOUNT_NAME, ACCOUNT_KEY).unwrap();
    let unlimited = AzureBlobOptions {
        per_try_timeout: Duration::MAX,
        overall_timeout: Duration::MAX,
        retry: RetryOptions {
            max_retries: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::MAX,
        },
        ..AzureBlobOptions::default()
    };
    let store = CheckpointStore::new(Arc::new(
        AzureBlobBackend::new(&url, &container, credential(), unlimited.clone()).unwrap(),
    ));
    proxy.push(Rule::new(list(), Fault::status(500)).times(2));
    store.list_checkpoints(&scope()).await.unwrap();
    assert_eq!(proxy.requests().len(), 3);

    // A first delay no clock can wait for ends the call at once.
    let never_wait = AzureBlobOptions {
        retry: RetryOptions {
            max_retries: 5,
            initial_delay: Duration::MAX,
            max_delay: Duration::MAX,
        },
        ..unlimited
    };
    let store = CheckpointStore::new(Arc::new(
        AzureBlobBackend::new(&url, &container, credential(), never_wait).unwrap(),
    ));
    proxy.clear_requests();
    proxy.push(Rule::new(list(), Fault::status(500)).times(2));
    let error = store.list_checkpoints(&scope()).await.unwrap_err();
    assert_eq!(error.kind(), BackendErrorKind::Transient, "{error}");
    assert_eq!(proxy.requests().len(), 1);
}

// ---------------------------------------------------------------------------
// The fuzz targets' seed corpora, replayed

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{} has {} files", dir.display(), files.len());
    files
}

#[test]
fn the_connection_string_corpus_replays() {
    for (path, bytes) in corpus("connection_string") {
        eprintln!("{}", path.display());
        fuzz_connection_string::run(&bytes);
    }
}

#[test]
fn the_list_xml_corpus_replays() {
    for (path, bytes) in corpus("list_xml") {
        eprintln!("{}", path.display());
        fuzz_list_xml::run(&bytes);
    }
}
