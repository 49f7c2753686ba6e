//! Interop with the Python store, azure-eventhub-checkpointstoreblob-aio
//! 1.2.0, on one Azurite: each side reads what the other wrote, and an etag
//! obtained on one side wins (or, stale, loses) a claim on the other.
//!
//! The Python store runs in `tests/interop/driver.py` under the venv
//! `tests/run.sh` creates (`tests/.venv`, pinned by
//! `tests/interop/requirements.txt`), or under `$INTEROP_PYTHON`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventhub_checkpoints::{
    Checkpoint, CheckpointStore, ClaimResult, ETag, Offset, OwnerId, Ownership, OwnershipClaim, PartitionId,
    Scope,
};
use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions};
use eventhub_checkpoints_test_support::{Azurite, Transport, unique_container_name};
use serde_json::{Value, json};

mod common;

/// How long one driver command may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// The Python store, in a driver process answering one JSON line per command.
/// The process is killed when this is dropped.
struct PythonStore {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    /// What the Python store logged (WARNING and above) during the last
    /// command.
    last_log: Vec<Value>,
}

impl PythonStore {
    /// Starts the driver and connects it to `container` on the shared Azurite
    /// with the Python store's default API version (2019-07-07).
    fn connect(container: &str) -> Self {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = match std::env::var_os("INTEROP_PYTHON") {
            Some(python) if !python.is_empty() => PathBuf::from(python),
            _ => workspace.join("tests/.venv/bin/python"),
        };
        if !python.is_file() {
            panic!(
                "no Python for the interop tests: run tests/run.sh to create tests/.venv \
                 (or set INTEROP_PYTHON) [looked for {}]",
                python.display()
            );
        }
        let mut child = Command::new(&python)
            .arg(workspace.join("tests/interop/driver.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut store = Self {
            child,
            stdin,
            replies,
            last_log: Vec::new(),
        };
        let connection_string = Azurite::shared(Transport::Http).connection_string();
        store
            .call(json!({"cmd": "connect", "connection_string": connection_string, "container": container}))
            .expect("connect the Python store");
        store
    }

    /// Sends one command; its `result`, or the exception it raised as
    /// `<type>: <message>`.
    fn call(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write to the Python driver: {e}"));
        let line = self.replies.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|e| {
            panic!("no answer from the Python driver to {command} ({e}); its stderr is in the test output")
        });
        let mut reply: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver answered {line:?}: {e}"));
        self.last_log = match reply["log"].take() {
            Value::Array(log) => log,
            _ => Vec::new(),
        };
        if !self.last_log.is_empty() {
            eprintln!("Python store logged, for {command}: {:?}", self.last_log);
        }
        match reply.get("error") {
            Some(message) => Err(format!(
                "{}: {}",
                reply["error_type"].as_str().unwrap_or_default(),
                message.as_str().unwrap_or_default()
            )),
            None => Ok(reply["result"].take()),
        }
    }

    fn list_ownership(&mut self, scope: &Scope) -> Result<Vec<Value>, String> {
        let mut command = scope_json(scope);
        command["cmd"] = json!("list_ownership");
        self.call(command).map(into_vec)
    }

    fn list_checkpoints(&mut self, scope: &Scope) -> Result<Vec<Value>, String> {
        let mut command = scope_json(scope);
        command["cmd"] = json!("list_checkpoints");
        self.call(command).map(into_vec)
    }

    /// Claims as the Python API takes claims; returns the claims won (the
    /// Python store leaves lost ones out).
    ///
    /// Fails the test if the Python store swallowed an error: it then logs a
    /// warning and returns the claim as if won, without an etag.
    fn claim_ownership(&mut self, ownerships: Vec<Value>) -> Vec<Value> {
        let claimed = self
            .call(json!({"cmd": "claim_ownership", "ownerships": ownerships}))
            .map(into_vec)
            .expect("Python claim_ownership");
        assert!(
            self.last_log.is_empty(),
            "the Python store swallowed an error: {:?}",
            self.last_log
        );
        claimed
    }

    /// Claims one partition; the claimed ownership, or `None` if lost.
    fn claim(&mut self, scope: &Scope, partition: &str, owner: &str, etag: Option<&str>) -> Option<Value> {
        let mut claimed = self.claim_ownership(vec![py_claim(scope, partition, owner, etag)]);
        assert!(claimed.len() <= 1, "{claimed:?}");
        claimed.pop()
    }

    fn update_checkpoint(&mut self, scope: &Scope, partition: &str, offset: Value, sequence_number: i64) {
        let mut checkpoint = scope_json(scope);
        checkpoint["partition_id"] = json!(partition);
        checkpoint["offset"] = offset;
        checkpoint["sequence_number"] = json!(sequence_number);
        self.call(json!({"cmd": "update_checkpoint", "checkpoint": checkpoint}))
            .expect("Python update_checkpoint");
    }
}

impl Drop for PythonStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn into_vec(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("expected a list from the Python store, got {other}"),
    }
}

fn scope_json(scope: &Scope) -> Value {
    json!({
        "fully_qualified_namespace": scope.fully_qualified_namespace(),
        "eventhub_name": scope.event_hub(),
        "consumer_group": scope.consumer_group(),
    })
}

/// An ownership dict as the Python `claim_ownership` takes it.
fn py_claim(scope: &Scope, partition: &str, owner: &str, etag: Option<&str>) -> Value {
    let mut claim = scope_json(scope);
    claim["partition_id"] = json!(partition);
    claim["owner_id"] = json!(owner);
    if let Some(etag) = etag {
        claim["etag"] = json!(etag);
    }
    claim
}

/// A fresh container on the shared Azurite, our store on it (through a
/// connection string, as users configure it) and the Python store on it.
async fn setup(prefix: &str) -> (CheckpointStore, PythonStore) {
    let container = unique_container_name(prefix);
    let created = common::shared_key_backend_for(&container, AzureBlobOptions::default())
        .create_container()
        .await
        .expect("create container");
    assert!(created);
    let backend = AzureBlobBackend::from_connection_string(
        &Azurite::shared(Transport::Http).connection_string(),
        &container,
        AzureBlobOptions::default(),
    )
    .unwrap();
    (
        CheckpointStore::new(Arc::new(backend)),
        PythonStore::connect(&container),
    )
}

fn scope(namespace: &str, hub: &str, group: &str) -> Scope {
    Scope::new(namespace, hub, group).unwrap()
}

fn owner(id: &str) -> OwnerId {
    OwnerId::new(id).unwrap()
}

fn partition(id: &str) -> PartitionId {
    PartitionId::new(id).unwrap()
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn str_field<'a>(item: &'a Value, field: &str) -> &'a str {
    item[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {item}"))
}

fn etag_of(item: &Value) -> ETag {
    ETag::new(str_field(item, "etag")).unwrap_or_else(|e| panic!("etag of {item}: {e}"))
}

async fn claim(store: &CheckpointStore, claim: OwnershipClaim) -> ClaimResult {
    store.claim(&claim).await
}

async fn claimed(store: &CheckpointStore, claim: OwnershipClaim) -> Ownership {
    match store.claim(&claim).await {
        ClaimResult::Claimed(ownership) => ownership,
        other => panic!("our claim {claim:?} was not won: {other:?}"),
    }
}

async fn our_ownership(store: &CheckpointStore, scope: &Scope) -> BTreeMap<String, Ownership> {
    let listing = store.list_ownership(scope).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    for item in &listing.items {
        assert_eq!(&item.scope, scope, "listed items carry the scope as given");
    }
    listing
        .items
        .into_iter()
        .map(|o| (o.partition_id.to_string(), o))
        .collect()
}

async fn our_checkpoints(store: &CheckpointStore, scope: &Scope) -> BTreeMap<String, Checkpoint> {
    let listing = store.list_checkpoints(scope).await.unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    for item in &listing.items {
        assert_eq!(item.scope(), scope, "listed items carry the scope as given");
    }
    listing
        .items
        .into_iter()
        .map(|c| (c.partition_id().to_string(), c))
        .collect()
}

fn python_by_partition(items: Vec<Value>, scope: &Scope) -> BTreeMap<String, Value> {
    let expected_scope = scope_json(scope);
    items
        .into_iter()
        .map(|item| {
            for field in ["fully_qualified_namespace", "eventhub_name", "consumer_group"] {
                assert_eq!(
                    item[field], expected_scope[field],
                    "Python reports the scope as given"
                );
            }
            (str_field(&item, "partition_id").to_owned(), item)
        })
        .collect()
}

/// Both stores' ownership listings of `scope` agree, partition by partition:
/// owner, etag (normalized) and last-modified time (within 1 s). Returns
/// ours.
async fn assert_same_ownership(
    store: &CheckpointStore,
    python: &mut PythonStore,
    scope: &Scope,
) -> BTreeMap<String, Ownership> {
    let ours = our_ownership(store, scope).await;
    let theirs = python_by_partition(
        python.list_ownership(scope).expect("Python list_ownership"),
        scope,
    );
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "same partitions"
    );
    for (id, o) in &ours {
        let p = &theirs[id];
        // Python lists a released partition (ownerid "") with owner_id None:
        // its XML reader turns the empty <ownerid/> element into None.
        let python_owner = match &p["owner_id"] {
            Value::Null => None,
            Value::String(owner) => Some(owner.as_str()),
            other => panic!("owner_id {other} of {id}"),
        };
        assert_eq!(
            python_owner,
            o.owner_id.as_ref().map(OwnerId::as_str),
            "owner of {id}"
        );
        assert_eq!(etag_of(p), o.etag, "etag of {id}");
        let python_time = p["last_modified_time"]
            .as_f64()
            .expect("last_modified_time is a float");
        let delta = (python_time - unix_seconds(o.last_modified)).abs();
        assert!(delta <= 1.0, "last-modified of {id} differs by {delta} s");
    }
    ours
}

/// Both stores' checkpoint listings of `scope` agree and hold exactly
/// `expected` (partition, offset, sequence number).
async fn assert_same_checkpoints(
    store: &CheckpointStore,
    python: &mut PythonStore,
    scope: &Scope,
    expected: &[(&str, &str, i64)],
) {
    let ours = our_checkpoints(store, scope).await;
    let theirs = python_by_partition(
        python.list_checkpoints(scope).expect("Python list_checkpoints"),
        scope,
    );
    let ours: Vec<_> = ours
        .values()
        .map(|c| {
            (
                c.partition_id().to_string(),
                c.offset().map(|o| o.as_str().to_owned()),
                c.sequence_number(),
            )
        })
        .collect();
    let theirs: Vec<_> = theirs
        .values()
        .map(|c| {
            (
                str_field(c, "partition_id").to_owned(),
                Some(str_field(c, "offset").to_owned()),
                Some(c["sequence_number"].as_i64().expect("sequence_number is an int")),
            )
        })
        .collect();
    let mut expected: Vec<_> = expected
        .iter()
        .map(|&(p, offset, seq)| (p.to_owned(), Some(offset.to_owned()), Some(seq)))
        .collect();
    expected.sort();
    assert_eq!(ours, expected, "our listing");
    assert_eq!(theirs, expected, "Python's listing");
}

/// (a) What Python claims and checkpoints, we list identically.
#[tokio::test]
async fn python_writes_we_read() {
    let (store, mut python) = setup("interop-py-writes").await;
    let s = scope("contoso.servicebus.windows.net", "telemetry", "$Default");

    // New claims (no etag: Set Blob Metadata 404s, then a create).
    let first = python.claim_ownership(
        (0..3)
            .map(|p| py_claim(&s, &p.to_string(), "py-1", None))
            .collect(),
    );
    assert_eq!(first.len(), 3, "{first:?}");
    let first = python_by_partition(first, &s);
    // Renewals with an etag: the quoted one the claim returned (partition 1)
    // and the bare one a listing returns (partition 2).
    let listed = python_by_partition(python.list_ownership(&s).unwrap(), &s);
    let renewed_1 = python
        .claim(&s, "1", "py-2", Some(str_field(&first["1"], "etag")))
        .expect("renewal with the claim's etag");
    let renewed_2 = python
        .claim(&s, "2", "py-2", Some(str_field(&listed["2"], "etag")))
        .expect("renewal with the listed etag");

    let ours = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(ours["0"].owner_id, Some(owner("py-1")));
    assert_eq!(ours["0"].etag, etag_of(&first["0"]));
    assert_eq!(ours["1"].owner_id, Some(owner("py-2")));
    assert_eq!(
        ours["1"].etag,
        etag_of(&renewed_1),
        "the etag Python's claim returned"
    );
    assert_eq!(ours["2"].owner_id, Some(owner("py-2")));
    assert_eq!(ours["2"].etag, etag_of(&renewed_2));
    let delta =
        (renewed_1["last_modified_time"].as_f64().unwrap() - unix_seconds(ours["1"].last_modified)).abs();
    assert!(delta <= 1.0, "claim's last_modified_time differs by {delta} s");

    python.update_checkpoint(&s, "0", json!("4096"), 10);
    python.update_checkpoint(&s, "1", json!("8192"), 20);
    python.update_checkpoint(&s, "1", json!("8448"), 21); // an update of an existing blob
    python.update_checkpoint(&s, "2", json!("12345"), 30);
    assert_same_checkpoints(
        &store,
        &mut python,
        &s,
        &[("0", "4096", 10), ("1", "8448", 21), ("2", "12345", 30)],
    )
    .await;
}

/// (b) What we claim and checkpoint, Python lists identically.
#[tokio::test]
async fn we_write_python_reads() {
    let (store, mut python) = setup("interop-we-write").await;
    let s = scope("contoso.servicebus.windows.net", "telemetry", "$Default");

    let outcomes = store
        .claim_ownership(
            (0..3).map(|p| OwnershipClaim::new(s.clone(), PartitionId::from(p), owner("rs-1"), None)),
        )
        .await;
    let first: Vec<Ownership> = outcomes
        .iter()
        .map(|o| o.result.claimed().cloned().expect("new claim won"))
        .collect();
    let renewed = claimed(&store, OwnershipClaim::from_listed(&first[1], owner("rs-2"))).await;

    let listed = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(listed["0"].owner_id, Some(owner("rs-1")));
    assert_eq!(listed["1"].owner_id, Some(owner("rs-2")));
    assert_eq!(listed["1"].etag, renewed.etag);
    assert_eq!(listed["2"].etag, first[2].etag);

    for (p, offset, seq) in [(0, 4096, 10), (1, 8192, 20), (1, 8448, 21), (2, 12345, 30)] {
        let cp = Checkpoint::new(
            s.clone(),
            PartitionId::from(p),
            Some(Offset::from(offset)),
            Some(seq),
        )
        .unwrap();
        store.update_checkpoint(&cp).await.unwrap();
    }
    assert_same_checkpoints(
        &store,
        &mut python,
        &s,
        &[("0", "4096", 10), ("1", "8448", 21), ("2", "12345", 30)],
    )
    .await;
}

/// (c) An etag from one side wins a claim on the other; a stale one loses,
/// both ways.
#[tokio::test]
async fn etags_cross_over() {
    let (store, mut python) = setup("interop-etags").await;
    let s = scope("contoso.servicebus.windows.net", "telemetry", "$Default");
    let p0 = partition("0");

    // Ours → Python: the etag of our claim wins Python's claim.
    let e1 = claimed(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs"), None),
    )
    .await
    .etag;
    let won = python
        .claim(&s, "0", "py", Some(e1.as_str()))
        .expect("Python claim with our etag wins");
    let e2 = etag_of(&won);
    assert_ne!(e2, e1);
    // ... and that makes ours stale, for us and for Python.
    let stale = claim(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs"), Some(e1.clone())),
    )
    .await;
    assert!(matches!(stale, ClaimResult::Lost), "{stale:?}");
    assert!(python.claim(&s, "0", "py-x", Some(&e1.header_value())).is_none());
    // A create-only claim of ours loses to the blob Python wrote.
    let create = claim(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs"), None),
    )
    .await;
    assert!(matches!(create, ClaimResult::Lost), "{create:?}");

    // Python → ours: the etag Python's claim returned (quoted) wins ours.
    let e3 = claimed(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs"), Some(e2.clone())),
    )
    .await
    .etag;
    assert_ne!(e3, e2);
    // ... and that makes Python's stale: Python leaves the lost claim out.
    assert!(
        python
            .claim(&s, "0", "py", Some(str_field(&won, "etag")))
            .is_none()
    );
    let stale = claim(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs-x"), Some(e2)),
    )
    .await;
    assert!(matches!(stale, ClaimResult::Lost), "{stale:?}");

    // The etag Python lists (bare) wins ours too; ours, in either form, wins Python's.
    let listed = python_by_partition(python.list_ownership(&s).unwrap(), &s);
    assert_eq!(etag_of(&listed["0"]), e3);
    let e4 = claimed(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs-2"), Some(etag_of(&listed["0"]))),
    )
    .await
    .etag;
    let won = python
        .claim(&s, "0", "py-2", Some(&e4.header_value()))
        .expect("Python claim with our quoted etag wins");

    let ours = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(ours["0"].owner_id, Some(owner("py-2")));
    assert_eq!(ours["0"].etag, etag_of(&won));

    // Several partitions in one Python call: only the won ones come back.
    let p1 = claimed(
        &store,
        OwnershipClaim::new(s.clone(), partition("1"), owner("rs"), None),
    )
    .await;
    let p2 = claimed(
        &store,
        OwnershipClaim::new(s.clone(), partition("2"), owner("rs"), None),
    )
    .await;
    let stale_p2 = p2.etag.clone();
    claimed(&store, OwnershipClaim::from_listed(&p2, owner("rs"))).await;
    let results = python.claim_ownership(vec![
        py_claim(&s, "1", "py", Some(p1.etag.as_str())),
        py_claim(&s, "2", "py", Some(stale_p2.as_str())),
    ]);
    let results = python_by_partition(results, &s);
    assert_eq!(
        results.keys().collect::<Vec<_>>(),
        ["1"],
        "the stale claim of 2 is left out"
    );
    let ours = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(ours["1"].owner_id, Some(owner("py")));
    assert_eq!(ours["2"].owner_id, Some(owner("rs")));
}

/// (d) Mixed-case names, `$Default`, mixed-case partition ids, extreme
/// sequence numbers and offsets: each side sees the other's blobs, whatever
/// the case of the scope it lists with.
#[tokio::test]
async fn mixed_case_names_and_extreme_values() {
    let (store, mut python) = setup("interop-names").await;
    let mixed = scope("MyNS.ServiceBus.Windows.Net", "Tele-Metry", "$Default");
    let lower = scope("myns.servicebus.windows.net", "tele-metry", "$default");
    let max = i64::MAX;

    assert!(python.claim(&mixed, "0", "py", None).is_some());
    assert!(python.claim(&mixed, "AB", "py", None).is_some());
    claimed(
        &store,
        OwnershipClaim::new(mixed.clone(), partition("1"), owner("rs"), None),
    )
    .await;
    claimed(
        &store,
        OwnershipClaim::new(mixed.clone(), partition("Cd"), owner("rs"), None),
    )
    .await;

    python.update_checkpoint(&mixed, "0", json!("-1"), 0);
    python.update_checkpoint(&mixed, "AB", json!("9223372036854775807"), max);
    for (p, offset, seq) in [("1", "0", max), ("Cd", "-1", 0)] {
        let cp = Checkpoint::new(
            mixed.clone(),
            partition(p),
            Some(Offset::new(offset).unwrap()),
            Some(seq),
        );
        store.update_checkpoint(&cp.unwrap()).await.unwrap();
    }
    // Partition ids list as stored: lower-cased.
    let expected = [
        ("0", "-1", 0),
        ("1", "0", max),
        ("ab", "9223372036854775807", max),
        ("cd", "-1", 0),
    ];
    for s in [&mixed, &lower] {
        let ours = assert_same_ownership(&store, &mut python, s).await;
        assert_eq!(ours.keys().collect::<Vec<_>>(), ["0", "1", "ab", "cd"]);
        assert_eq!(ours["ab"].owner_id, Some(owner("py")));
        assert_eq!(ours["cd"].owner_id, Some(owner("rs")));
        assert_same_checkpoints(&store, &mut python, s, &expected).await;
    }
    // Python's ints carry i64::MAX exactly.
    let theirs = python_by_partition(python.list_checkpoints(&mixed).unwrap(), &mixed);
    assert_eq!(
        theirs["1"]["sequence_number"],
        json!(9_223_372_036_854_775_807_i64)
    );
}

/// (e) A partition we release (owner id "") lists in Python as released,
/// with the release's etag, and Python can claim it with that etag; a
/// partition Python releases lists as released for us.
///
/// Python 1.2.0 lists a released partition with `owner_id` None, not "":
/// its XML reader turns the empty `<ownerid/>` element into None, for its
/// own releases too. Its load balancer treats both as unowned (`not
/// x["owner_id"]`).
#[tokio::test]
async fn release_is_seen_by_python() {
    let (store, mut python) = setup("interop-release").await;
    let s = scope("contoso.servicebus.windows.net", "telemetry", "$Default");
    let p0 = partition("0");

    let ours = claimed(
        &store,
        OwnershipClaim::new(s.clone(), p0.clone(), owner("rs"), None),
    )
    .await;
    let released = match store.release_ownership(&s, &p0, ours.etag).await {
        ClaimResult::Claimed(ownership) => ownership,
        other => panic!("release failed: {other:?}"),
    };
    assert_eq!(released.owner_id, None);

    let listed = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(listed["0"].owner_id, None);
    assert_eq!(listed["0"].etag, released.etag);
    let theirs = python_by_partition(python.list_ownership(&s).unwrap(), &s);
    assert_eq!(theirs["0"]["owner_id"], Value::Null, "Python lists owner_id None");
    assert_eq!(etag_of(&theirs["0"]), released.etag);

    // Python claims the released partition with the etag it listed ...
    let won = python
        .claim(&s, "0", "py", Some(str_field(&theirs["0"], "etag")))
        .expect("Python claims a partition we released");
    let listed = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(listed["0"].owner_id, Some(owner("py")));

    // ... and releases it as its load balancer does (owner_id ""): we list
    // it as released, and Python lists None again.
    let released = python
        .claim(&s, "0", "", Some(str_field(&won, "etag")))
        .expect("Python release");
    assert_eq!(
        released["owner_id"],
        json!(""),
        "the claim result echoes what was given"
    );
    let listed = assert_same_ownership(&store, &mut python, &s).await;
    assert_eq!(listed["0"].owner_id, None);
    assert_eq!(listed["0"].etag, etag_of(&released));
    let mine = claimed(&store, OwnershipClaim::from_listed(&listed["0"], owner("rs-2"))).await;
    assert_eq!(mine.owner_id, Some(owner("rs-2")));
}

/// (f) A checkpoint without an offset (sequence number only, as .NET 5.11
/// writes and as we write when no offset is known). We read it; Python
/// 1.2.0 cannot: its `list_checkpoints` does `str(metadata["offset"])` and
/// the whole listing fails with `KeyError: 'offset'`. And a Python
/// checkpoint given no offset stores the string "None".
#[tokio::test]
async fn checkpoint_without_offset() {
    let (store, mut python) = setup("interop-no-offset").await;
    let s = scope("contoso.servicebus.windows.net", "telemetry", "$Default");

    python.update_checkpoint(&s, "0", json!("4096"), 10);
    assert_same_checkpoints(&store, &mut python, &s, &[("0", "4096", 10)]).await;

    // We overwrite partition 0 without an offset (Set Blob Metadata replaces
    // all metadata, so Python's offset is gone) and add partition 1 likewise.
    for p in ["0", "1"] {
        let cp = Checkpoint::new(s.clone(), partition(p), None, Some(42)).unwrap();
        store.update_checkpoint(&cp).await.unwrap();
    }
    let ours = our_checkpoints(&store, &s).await;
    assert_eq!(ours.len(), 2);
    for cp in ours.values() {
        assert_eq!(cp.offset(), None);
        assert_eq!(cp.sequence_number(), Some(42));
    }

    // We write `offset: ""` for them, so Python 1.2.0 lists them (its
    // `str(metadata["offset"])` would raise KeyError and fail the whole
    // listing if the key were missing). Its XML reader turns the empty value
    // into None, so it shows "None": what it writes itself for no offset.
    let listed = python
        .list_checkpoints(&s)
        .expect("Python lists offset-less checkpoints");
    assert_eq!(listed.len(), 2, "{listed:?}");
    for cp in &listed {
        assert_eq!(cp["offset"], json!("None"), "{cp:?}");
        assert_eq!(cp["sequence_number"], json!(42), "{cp:?}");
    }

    // Python given no offset writes the string "None": we read it as no offset.
    let other = s.with_consumer_group("python-none").unwrap();
    python.update_checkpoint(&other, "0", Value::Null, 7);
    let ours = our_checkpoints(&store, &other).await;
    assert_eq!(ours["0"].offset(), None);
    assert_eq!(ours["0"].sequence_number(), Some(7));
}
