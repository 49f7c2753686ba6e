//! The contract test: one scripted sequence of `CheckpointStore` trait calls,
//! run against the SDK's own `InMemoryCheckpointStore` and against
//! `SdkCheckpointStore` over `InMemoryBackend` and over Azurite (with a
//! connection string, and with Entra ID tokens over HTTPS), must give
//! the same observable results: which claims succeeded, owners, offsets,
//! sequence numbers, and whether the etags and times each store returns are
//! consistent. Etag and time values differ legitimately and are not compared.
//!
//! Where the adapter deliberately behaves differently from the SDK's
//! in-memory store, the step is listed in [`DIVERGENCES`] with what each
//! side must observe.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::Etag;
use azure_core::time::OffsetDateTime;
use azure_messaging_eventhubs::models::{Checkpoint, Ownership};
use azure_messaging_eventhubs::{CheckpointStore, InMemoryCheckpointStore};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential};
use eventhub_checkpoints_sdk::{SdkCheckpointStore, TokenCredentialSource};
use eventhub_checkpoints_test_support::{Azurite, Transport, test_jwt, unique_container_name};

const NS: &str = "contoso.servicebus.windows.net";
const HUB: &str = "telemetry";
const CG: &str = "$Default";

/// Steps where the adapter differs from the SDK's in-memory store on
/// purpose: (step, what the SDK's store observes, what the adapter observes).
const DIVERGENCES: &[(&str, &str, &str)] = &[
    // Blob names are lower-cased, as the .NET, Python and JavaScript stores
    // write them (azure-sdk-for-rust #5099): any casing finds the blobs.
    // The SDK's in-memory store keys by the names as given.
    ("mixed case: list checkpoints in lower case", "[]", "[0:7/7]"),
    ("mixed case: list ownership in lower case", "[]", "[0=c]"),
    // One lost claim in a batch: the SDK's in-memory store fails the whole
    // call (after applying the claims before it); the adapter leaves the
    // lost claim out and returns the others, as the official blob store does.
    (
        "mixed batch: b renews 0 and claims 1 with a stale etag",
        "error",
        "[0=b etag:new time:ok]",
    ),
    // An empty owner id is a release, as .NET, Python and JavaScript write
    // it: the adapter reports no owner, so the processor can claim the
    // partition at once instead of seeing an owner named "".
    (
        "release with an empty owner id: a releases 2",
        "[2='' etag:new time:ok]",
        "[2=- etag:new time:ok]",
    ),
    (
        "list after the empty-owner release",
        "[0=b,1=b,2='']",
        "[0=b,1=b,2=-]",
    ),
];

/// One store under test.
struct Subject {
    name: &'static str,
    store: Arc<dyn CheckpointStore>,
    /// The SDK's in-memory store reports a lost claim as an error of the
    /// whole call; single-claim steps read that as "nothing claimed".
    lost_claim_is_error: bool,
}

/// What the script saw, step by step.
type Transcript = Vec<(String, String)>;

fn ownership(partition: &str, owner: Option<&str>, etag: Option<&Etag>) -> Ownership {
    ownership_in(NS, HUB, CG, partition, owner, etag)
}

fn ownership_in(
    ns: &str,
    hub: &str,
    cg: &str,
    partition: &str,
    owner: Option<&str>,
    etag: Option<&Etag>,
) -> Ownership {
    Ownership {
        fully_qualified_namespace: ns.into(),
        event_hub_name: hub.into(),
        consumer_group: cg.into(),
        partition_id: partition.into(),
        owner_id: owner.map(Into::into),
        etag: etag.cloned(),
        last_modified_time: None,
    }
}

fn checkpoint_in(
    ns: &str,
    hub: &str,
    cg: &str,
    partition: &str,
    offset: Option<&str>,
    sequence_number: Option<i64>,
) -> Checkpoint {
    Checkpoint {
        fully_qualified_namespace: ns.into(),
        event_hub_name: hub.into(),
        consumer_group: cg.into(),
        partition_id: partition.into(),
        offset: offset.map(Into::into),
        sequence_number,
    }
}

fn owner_text(owner: &Option<String>) -> String {
    match owner.as_deref() {
        None => "-".into(),
        Some("") => "''".into(),
        Some(owner) => owner.into(),
    }
}

/// Runs the script against one store and records what it observed.
struct Script<'a> {
    subject: &'a Subject,
    started: SystemTime,
    /// The etag each partition's ownership had after the last claim this
    /// script saw succeed, per scope.
    etags: HashMap<String, Etag>,
    transcript: Transcript,
}

impl Script<'_> {
    fn record(&mut self, step: &str, observed: String) {
        self.transcript.push((step.to_owned(), observed));
    }

    /// Claims, records `[p=owner etag:new time:ok, ...]`, and remembers the
    /// new etags. `Err` is recorded as `error`.
    async fn claim(&mut self, step: &str, claims: &[Ownership]) {
        let result = self.subject.store.claim_ownership(claims).await;
        let observed = match result {
            Ok(claimed) => self.describe_claimed(claims, &claimed),
            // One claim, lost: the same as the empty list the blob stores
            // return.
            Err(_) if self.subject.lost_claim_is_error && claims.len() == 1 => "[]".to_owned(),
            Err(_) if self.subject.lost_claim_is_error => "error".to_owned(),
            Err(e) => panic!("{}: {step}: {e:?}", self.subject.name),
        };
        self.record(step, observed);
    }

    fn describe_claimed(&mut self, claims: &[Ownership], claimed: &[Ownership]) -> String {
        let mut parts = Vec::new();
        for o in claimed {
            let requested = claims
                .iter()
                .find(|c| c.partition_id == o.partition_id)
                .unwrap_or_else(|| panic!("{}: returned an unrequested claim {o:?}", self.subject.name));
            assert_eq!(
                (&o.fully_qualified_namespace, &o.event_hub_name, &o.consumer_group),
                (
                    &requested.fully_qualified_namespace,
                    &requested.event_hub_name,
                    &requested.consumer_group
                ),
                "{}: names are echoed as given",
                self.subject.name
            );
            let etag = o
                .etag
                .clone()
                .filter(|e| !e.as_ref().is_empty())
                .expect("a claimed ownership has an etag");
            let etag_flag = if requested.etag.as_ref() == Some(&etag) {
                "same"
            } else {
                "new"
            };
            self.etags.insert(key_of(o), etag);
            parts.push(format!(
                "{}={} etag:{etag_flag} time:{}",
                o.partition_id,
                owner_text(&o.owner_id),
                self.time_flag(o.last_modified_time)
            ));
        }
        format!("[{}]", parts.join(","))
    }

    fn time_flag(&self, time: Option<azure_core::time::OffsetDateTime>) -> &'static str {
        let Some(time) = time else { return "none" };
        let time = SystemTime::from(time);
        // Blob Storage has one-second Last-Modified times.
        let earliest = self.started - Duration::from_secs(2);
        let latest = SystemTime::now() + Duration::from_secs(2);
        if earliest <= time && time <= latest {
            "ok"
        } else {
            "off"
        }
    }

    /// Lists ownership: `[p=owner,...]`, checking that each listed etag is the
    /// one the last successful claim returned (when `check_etags`; otherwise
    /// the listed etags are remembered instead).
    async fn list_ownership(&mut self, step: &str, names: (&str, &str, &str), check_etags: bool) {
        let listed = self
            .subject
            .store
            .list_ownerships(names.0, names.1, names.2)
            .await
            .unwrap_or_else(|e| panic!("{}: {step}: {e:?}", self.subject.name));
        let mut parts = Vec::new();
        for o in &listed {
            assert_eq!(
                (
                    o.fully_qualified_namespace.as_str(),
                    o.event_hub_name.as_str(),
                    o.consumer_group.as_str()
                ),
                names,
                "{}: listings echo the names asked for",
                self.subject.name
            );
            assert_eq!(
                self.time_flag(o.last_modified_time),
                "ok",
                "{}: {o:?}",
                self.subject.name
            );
            if check_etags {
                assert_eq!(
                    o.etag.as_ref(),
                    self.etags.get(&key_of(o)),
                    "{}: {step}: listed etag of partition {} is the last one a claim returned",
                    self.subject.name,
                    o.partition_id
                );
            } else if let Some(etag) = &o.etag {
                // A call that failed may have written claims it did not
                // return: take the etags the listing shows from here on.
                self.etags.insert(key_of(o), etag.clone());
            }
            parts.push(format!("{}={}", o.partition_id, owner_text(&o.owner_id)));
        }
        self.record(step, format!("[{}]", parts.join(",")));
    }

    async fn update(&mut self, step: &str, checkpoints: Vec<Checkpoint>) {
        for checkpoint in checkpoints {
            self.subject
                .store
                .update_checkpoint(checkpoint)
                .await
                .unwrap_or_else(|e| panic!("{}: {step}: {e:?}", self.subject.name));
        }
        self.record(step, "ok".into());
    }

    /// Lists checkpoints: `[p:offset/sequence,...]`.
    async fn list_checkpoints(&mut self, step: &str, names: (&str, &str, &str)) {
        let listed = self
            .subject
            .store
            .list_checkpoints(names.0, names.1, names.2)
            .await
            .unwrap_or_else(|e| panic!("{}: {step}: {e:?}", self.subject.name));
        let parts: Vec<String> = listed
            .iter()
            .map(|c| {
                assert_eq!(
                    (
                        c.fully_qualified_namespace.as_str(),
                        c.event_hub_name.as_str(),
                        c.consumer_group.as_str()
                    ),
                    names,
                    "{}: listings echo the names asked for",
                    self.subject.name
                );
                format!(
                    "{}:{}/{}",
                    c.partition_id,
                    c.offset.as_deref().unwrap_or("-"),
                    c.sequence_number.map_or("-".into(), |s| s.to_string())
                )
            })
            .collect();
        self.record(step, format!("[{}]", parts.join(",")));
    }

    fn etag(&self, ns: &str, hub: &str, cg: &str, partition: &str) -> Etag {
        self.etags
            .get(&format!("{ns}/{hub}/{cg}/{partition}"))
            .cloned()
            .unwrap_or_else(|| panic!("{}: no etag recorded for {partition}", self.subject.name))
    }

    fn default_etag(&self, partition: &str) -> Etag {
        self.etag(NS, HUB, CG, partition)
    }
}

fn key_of(o: &Ownership) -> String {
    format!(
        "{}/{}/{}/{}",
        o.fully_qualified_namespace, o.event_hub_name, o.consumer_group, o.partition_id
    )
}

async fn run_script(subject: &Subject) -> Transcript {
    let mut s = Script {
        subject,
        started: SystemTime::now(),
        etags: HashMap::new(),
        transcript: Vec::new(),
    };
    let default = (NS, HUB, CG);

    // Claim new partitions (no etag: only if nobody has yet).
    let claims: Vec<_> = ["0", "1", "2"]
        .iter()
        .map(|p| ownership(p, Some("a"), None))
        .collect();
    s.claim("a claims new partitions 0, 1, 2", &claims).await;
    let first_etag_0 = s.default_etag("0");

    // Renew with the etags just returned.
    let renewals = [
        ownership("0", Some("a"), Some(&s.default_etag("0"))),
        ownership("1", Some("a"), Some(&s.default_etag("1"))),
    ];
    s.claim("a renews 0 and 1 with their etags", &renewals).await;

    // Stale etag, and a first claim of an existing partition: both lost.
    s.claim(
        "stale etag: b claims 0 with its first etag",
        &[ownership("0", Some("b"), Some(&first_etag_0))],
    )
    .await;
    s.claim(
        "no etag on an existing partition: b claims 2",
        &[ownership("2", Some("b"), None)],
    )
    .await;
    s.list_ownership("list ownership", default, true).await;

    // Checkpoints: offset and sequence number, sequence number only, offset
    // only, then an update.
    s.update(
        "update checkpoints",
        vec![
            checkpoint_in(NS, HUB, CG, "0", Some("4096"), Some(17)),
            checkpoint_in(NS, HUB, CG, "1", None, Some(5)),
            checkpoint_in(NS, HUB, CG, "2", Some("100"), None),
            checkpoint_in(NS, HUB, CG, "0", Some("8192"), Some(33)),
        ],
    )
    .await;
    s.list_checkpoints("list checkpoints", default).await;

    // Another owner takes over partition 1 with the listed etag; the old
    // owner's renewal then loses.
    let etag_1 = s.default_etag("1");
    s.claim(
        "b steals 1 with the listed etag",
        &[ownership("1", Some("b"), Some(&etag_1))],
    )
    .await;
    s.claim(
        "a renews 1 with its now stale etag",
        &[ownership("1", Some("a"), Some(&etag_1))],
    )
    .await;
    s.list_ownership("list after the steal", default, true).await;

    // Consumer groups are kept apart.
    s.update(
        "checkpoint in another consumer group",
        vec![checkpoint_in(NS, HUB, "analytics", "0", Some("10"), Some(1))],
    )
    .await;
    s.list_checkpoints("list checkpoints of $Default", default).await;
    s.list_checkpoints("list checkpoints of analytics", (NS, HUB, "analytics"))
        .await;
    s.list_ownership("list ownership of analytics", (NS, HUB, "analytics"), true)
        .await;

    // Mixed-case names.
    let mixed = ("Contoso.ServiceBus.Windows.Net", "Orders", "$Default");
    s.update(
        "mixed case: update checkpoint",
        vec![checkpoint_in(mixed.0, mixed.1, mixed.2, "0", Some("7"), Some(7))],
    )
    .await;
    s.claim(
        "mixed case: c claims 0",
        &[ownership_in(mixed.0, mixed.1, mixed.2, "0", Some("c"), None)],
    )
    .await;
    s.list_checkpoints("mixed case: list checkpoints in the same case", mixed)
        .await;
    s.list_ownership("mixed case: list ownership in the same case", mixed, true)
        .await;
    let lower = ("contoso.servicebus.windows.net", "orders", "$default");
    s.list_checkpoints("mixed case: list checkpoints in lower case", lower)
        .await;
    s.list_ownership("mixed case: list ownership in lower case", lower, false)
        .await;

    // Release (no owner), and a claim of the released partition.
    let etag_0 = s.default_etag("0");
    s.claim("a releases 0 (no owner)", &[ownership("0", None, Some(&etag_0))])
        .await;
    s.list_ownership("list after the release", default, true).await;
    let etag_0 = s.default_etag("0");
    s.claim("b claims released 0", &[ownership("0", Some("b"), Some(&etag_0))])
        .await;

    // One good claim and one lost claim in one call.
    let etag_0 = s.default_etag("0");
    s.claim(
        "mixed batch: b renews 0 and claims 1 with a stale etag",
        &[
            ownership("0", Some("b"), Some(&etag_0)),
            ownership("1", Some("b"), Some(&etag_1)),
        ],
    )
    .await;
    s.list_ownership("list after the mixed batch", default, false)
        .await;

    // Release with an empty owner id, as the other languages' processors do.
    let listed = s
        .subject
        .store
        .list_ownerships(NS, HUB, CG)
        .await
        .expect("list ownership");
    let etag_2 = listed
        .iter()
        .find(|o| o.partition_id == "2")
        .and_then(|o| o.etag.clone())
        .expect("partition 2 is listed with an etag");
    s.claim(
        "release with an empty owner id: a releases 2",
        &[ownership("2", Some(""), Some(&etag_2))],
    )
    .await;
    s.list_ownership("list after the empty-owner release", default, true)
        .await;

    s.transcript
}

fn sdk_in_memory() -> Subject {
    Subject {
        name: "SDK InMemoryCheckpointStore",
        store: Arc::new(InMemoryCheckpointStore::new()),
        lost_claim_is_error: true,
    }
}

fn adapter_in_memory() -> Subject {
    Subject {
        name: "SdkCheckpointStore over InMemoryBackend",
        store: Arc::new(SdkCheckpointStore::in_memory()),
        lost_claim_is_error: false,
    }
}

async fn adapter_over_azurite() -> Subject {
    let connection_string =
        tokio::task::spawn_blocking(|| Azurite::shared(Transport::Http).connection_string())
            .await
            .expect("Azurite starts");
    let container = unique_container_name("sdk-contract");
    let backend =
        AzureBlobBackend::from_connection_string(&connection_string, &container, AzureBlobOptions::default())
            .expect("Azurite's connection string is valid");
    backend.create_container().await.expect("container created");
    Subject {
        name: "SdkCheckpointStore over Azurite",
        store: Arc::new(
            SdkCheckpointStore::from_connection_string(&connection_string, &container)
                .expect("Azurite's connection string is valid"),
        ),
        lost_claim_is_error: false,
    }
}

/// Tokens Azurite's `--oauth basic` accepts, from this crate's azure_core
/// (not the one the blob backend's `entra-id` feature would use).
#[derive(Debug, Default)]
struct AzuriteTokens {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenCredential for AzuriteTokens {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let lifetime = Duration::from_secs(3600);
        Ok(AccessToken::new(
            test_jwt(lifetime),
            OffsetDateTime::now_utc() + lifetime,
        ))
    }
}

async fn adapter_over_azurite_with_entra_id(tokens: Arc<AzuriteTokens>) -> Subject {
    let azurite = tokio::task::spawn_blocking(|| Azurite::shared(Transport::HttpsOAuth))
        .await
        .expect("Azurite starts");
    let options = AzureBlobOptions {
        root_certificates_pem: vec![azurite.ca_certificate_pem().unwrap().as_bytes().to_vec()],
        ..AzureBlobOptions::default()
    };
    let container = unique_container_name("sdk-contract-entra");
    // The container, through a backend built by hand with the public
    // wrapper; then the store, through the one-liner.
    let source = Arc::new(TokenCredentialSource::new(tokens.clone()));
    AzureBlobBackend::new(
        azurite.blob_endpoint(),
        &container,
        Credential::token_source(source),
        options.clone(),
    )
    .expect("an https endpoint and a credential")
    .create_container()
    .await
    .expect("container created with a bearer token");
    let store =
        SdkCheckpointStore::from_token_credential(azurite.blob_endpoint(), &container, tokens, options)
            .expect("an https endpoint and a credential");
    Subject {
        name: "SdkCheckpointStore over Azurite with Entra ID",
        store: Arc::new(store),
        lost_claim_is_error: false,
    }
}

fn print(transcript: &Transcript, name: &str) {
    println!("--- {name}");
    for (step, observed) in transcript {
        println!("{step}: {observed}");
    }
}

/// Asserts `ours` matches the SDK's transcript, but for the listed
/// divergences, where each side must show what the table says.
fn assert_matches_sdk(sdk: &Transcript, ours: &Transcript, name: &str) {
    assert_eq!(sdk.len(), ours.len(), "{name}: same number of steps");
    for ((step, sdk_observed), (our_step, our_observed)) in sdk.iter().zip(ours) {
        assert_eq!(step, our_step);
        match DIVERGENCES.iter().find(|(s, _, _)| s == step) {
            Some((_, sdk_expected, ours_expected)) => {
                assert_eq!(sdk_observed, sdk_expected, "SDK store, step {step:?}");
                assert_eq!(our_observed, ours_expected, "{name}, step {step:?}");
            }
            None => assert_eq!(
                our_observed, sdk_observed,
                "{name} differs from the SDK store at {step:?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn adapter_over_memory_and_azurite_behaves_like_the_sdk_store() {
    let sdk = run_script(&sdk_in_memory()).await;
    let memory = run_script(&adapter_in_memory()).await;
    let azurite = run_script(&adapter_over_azurite().await).await;
    let tokens = Arc::new(AzuriteTokens::default());
    let entra_id = run_script(&adapter_over_azurite_with_entra_id(tokens.clone()).await).await;
    print(&sdk, "SDK InMemoryCheckpointStore");
    print(&memory, "SdkCheckpointStore over InMemoryBackend");
    print(&azurite, "SdkCheckpointStore over Azurite");
    print(&entra_id, "SdkCheckpointStore over Azurite with Entra ID");

    // The script's expectations, on the SDK's own store.
    let expected_sdk: &[(&str, &str)] = &[
        (
            "a claims new partitions 0, 1, 2",
            "[0=a etag:new time:ok,1=a etag:new time:ok,2=a etag:new time:ok]",
        ),
        (
            "a renews 0 and 1 with their etags",
            "[0=a etag:new time:ok,1=a etag:new time:ok]",
        ),
        ("stale etag: b claims 0 with its first etag", "[]"),
        ("no etag on an existing partition: b claims 2", "[]"),
        ("list ownership", "[0=a,1=a,2=a]"),
        ("update checkpoints", "ok"),
        ("list checkpoints", "[0:8192/33,1:-/5,2:100/-]"),
        ("b steals 1 with the listed etag", "[1=b etag:new time:ok]"),
        ("a renews 1 with its now stale etag", "[]"),
        ("list after the steal", "[0=a,1=b,2=a]"),
        ("checkpoint in another consumer group", "ok"),
        ("list checkpoints of $Default", "[0:8192/33,1:-/5,2:100/-]"),
        ("list checkpoints of analytics", "[0:10/1]"),
        ("list ownership of analytics", "[]"),
        ("mixed case: update checkpoint", "ok"),
        ("mixed case: c claims 0", "[0=c etag:new time:ok]"),
        ("mixed case: list checkpoints in the same case", "[0:7/7]"),
        ("mixed case: list ownership in the same case", "[0=c]"),
        ("mixed case: list checkpoints in lower case", "[]"),
        ("mixed case: list ownership in lower case", "[]"),
        ("a releases 0 (no owner)", "[0=- etag:new time:ok]"),
        ("list after the release", "[0=-,1=b,2=a]"),
        ("b claims released 0", "[0=b etag:new time:ok]"),
        ("mixed batch: b renews 0 and claims 1 with a stale etag", "error"),
        ("list after the mixed batch", "[0=b,1=b,2=a]"),
        (
            "release with an empty owner id: a releases 2",
            "[2='' etag:new time:ok]",
        ),
        ("list after the empty-owner release", "[0=b,1=b,2='']"),
    ];
    let sdk_view: Vec<(&str, &str)> = sdk.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        sdk_view, expected_sdk,
        "the SDK's store behaves as the script expects"
    );

    assert_matches_sdk(&sdk, &memory, "SdkCheckpointStore over InMemoryBackend");
    assert_matches_sdk(&sdk, &azurite, "SdkCheckpointStore over Azurite");
    assert_eq!(memory, azurite, "the adapter behaves the same over both backends");
    assert_eq!(azurite, entra_id, "and with either credential");
    // One token per backend (the container's and the store's), each cached
    // for the whole script.
    assert_eq!(tokens.calls.load(Ordering::SeqCst), 2);
}
