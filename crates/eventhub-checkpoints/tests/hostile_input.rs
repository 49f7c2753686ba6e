//! Hostile and malformed input to the model and the on-blob format,
//! table-driven: every bad name or value is a specific `ValidationError`
//! when it is built, every blob name the store can build fits Blob
//! Storage's limits, and every unreadable blob a peer wrote is a
//! `SkipReason`, never a panic. The `metadata_decoder` fuzz target's seed
//! corpus (`fuzz/corpus/metadata_decoder/`) is replayed here.

use std::path::Path;
use std::time::SystemTime;

use eventhub_checkpoints::format::{self, BlobKind};
use eventhub_checkpoints::model::MAX_NAME_CHARS;
use eventhub_checkpoints::{
    BlobItem, BlobProperties, Checkpoint, ETag, Metadata, Offset, OwnerId, PartitionId, Scope, SkipReason,
    ValidationError,
};

#[path = "../../../fuzz/src/metadata_decoder.rs"]
mod metadata_decoder;

/// The longest blob name Blob Storage accepts, in characters.
const MAX_BLOB_NAME_CHARS: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Empty,
    TooLong,
    Invalid,
}

fn kind_of(error: &ValidationError) -> Expect {
    match error {
        ValidationError::Empty { .. } => Expect::Empty,
        ValidationError::TooLong { .. } => Expect::TooLong,
        ValidationError::Invalid { .. } => Expect::Invalid,
        other => panic!("unexpected {other:?}"),
    }
}

fn check<T: std::fmt::Debug>(what: &str, result: Result<T, ValidationError>, expected: Expect) {
    match result {
        Ok(value) => panic!("{what}: accepted as {value:?}, expected {expected:?}"),
        Err(error) => {
            assert_eq!(kind_of(&error), expected, "{what}: {error}");
            assert!(!error.to_string().is_empty());
        }
    }
}

/// Names that no component of a scope and no partition id may be.
fn bad_names() -> Vec<(String, Expect)> {
    use Expect::*;
    vec![
        (String::new(), Empty),
        ("/".into(), Invalid),
        ("a/b".into(), Invalid),
        ("a\\b".into(), Invalid),
        (".".into(), Invalid),
        ("..".into(), Invalid),
        ("\0".into(), Invalid),
        ("a\0b".into(), Invalid),
        ("a\r\nx-ms-meta-evil: 1".into(), Invalid),
        ("a\nb".into(), Invalid),
        ("tab\there".into(), Invalid),
        ("\u{7f}".into(), Invalid),
        ("\u{85}".into(), Invalid),
        ("a".repeat(MAX_NAME_CHARS + 1), TooLong),
        ("ü".repeat(MAX_NAME_CHARS + 1), TooLong),
        ("x".repeat(2_000), TooLong),
    ]
}

#[test]
fn bad_scope_names_are_validation_errors() {
    for (name, expected) in bad_names() {
        check(
            &format!("namespace {name:?}"),
            Scope::new(name.clone(), "hub", "$Default"),
            expected,
        );
        check(
            &format!("event hub {name:?}"),
            Scope::new("ns", name.clone(), "$Default"),
            expected,
        );
        check(
            &format!("consumer group {name:?}"),
            Scope::new("ns", "hub", name.clone()),
            expected,
        );
        let scope = Scope::new("ns", "hub", "$Default").unwrap();
        check(
            &format!("with_consumer_group {name:?}"),
            scope.with_consumer_group(name),
            expected,
        );
    }
    // Non-ASCII is allowed in names (Blob Storage names are Unicode).
    for name in ["hüb", "日本語", "$Default", "a b", "a..b", "...", "%2F", "+&=?#"] {
        Scope::new("ns", name, "$Default").unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
}

#[test]
fn bad_partition_ids_are_validation_errors() {
    for (name, expected) in bad_names() {
        check(
            &format!("partition {name:?}"),
            PartitionId::new(name.clone()),
            expected,
        );
        check(
            &format!("partition {name:?}"),
            name.parse::<PartitionId>(),
            expected,
        );
    }
    assert_eq!(PartitionId::from(u32::MAX).as_str(), "4294967295");
}

#[test]
fn owner_ids_offsets_and_etags_that_are_not_header_values_are_refused() {
    use Expect::*;
    for (owner, expected) in [
        ("", Empty),
        ("a\r\nx-ms-meta-evil: 1", Invalid),
        ("a\rb", Invalid),
        ("a\nb", Invalid),
        ("a\0b", Invalid),
        ("\u{7f}", Invalid),
        ("zoë", Invalid),
        ("\u{200b}", Invalid),
        // HTTP drops whitespace at either end of a header value: such an
        // owner id would be stored (and signed by the service) without it.
        (" me", Invalid),
        ("me ", Invalid),
        ("\tme", Invalid),
    ] {
        check(&format!("owner {owner:?}"), OwnerId::new(owner), expected);
    }
    assert_eq!(
        OwnerId::new("a\r\nx-ms-meta-evil: 1").unwrap_err(),
        ValidationError::Invalid {
            what: "owner id",
            reason: "contains a control character (such as CR or LF)",
        }
    );
    for (offset, expected) in [
        ("", Empty),
        ("  ", Empty),
        ("None", Empty),
        ("no offset", Empty),
        ("NO OFFSET", Empty),
        ("1\r\n2", Invalid),
        ("ü", Invalid),
        ("\0", Invalid),
        (" 5", Invalid),
        ("5\t", Invalid),
    ] {
        check(&format!("offset {offset:?}"), Offset::new(offset), expected);
    }
    for (etag, expected) in [
        ("", Empty),
        ("\"\"", Empty),
        ("  ", Empty),
        ("a\"b", Invalid),
        ("\"a\"b\"", Invalid),
        ("0x1\r\nx-ms-meta-evil: 1", Invalid),
        ("0xü", Invalid),
        ("\" 0x1 \"", Invalid),
    ] {
        check(&format!("etag {etag:?}"), ETag::new(etag), expected);
    }
    let scope = Scope::new("ns", "hub", "$Default").unwrap();
    assert_eq!(
        Checkpoint::new(scope, PartitionId::from(0), None, None).unwrap_err(),
        ValidationError::EmptyCheckpoint
    );
}

/// `MAX_NAME_CHARS` promises that the longest names the model accepts still
/// make a blob name Blob Storage takes (at most 1,024 characters), also
/// after lower-casing, which can lengthen a name (`İ` becomes two
/// characters).
#[test]
fn every_blob_name_the_store_builds_fits_blob_storage() {
    let longest = "a".repeat(MAX_NAME_CHARS);
    let scopes: Vec<Scope> = [
        Scope::new(longest.clone(), longest.clone(), longest.clone()),
        Scope::new("İ".repeat(MAX_NAME_CHARS), "hub", "$Default"),
        Scope::new("ns", "İ".repeat(MAX_NAME_CHARS / 2), longest.clone()),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    let partitions: Vec<PartitionId> = [
        PartitionId::new(longest.clone()),
        PartitionId::new("İ".repeat(MAX_NAME_CHARS)),
        PartitionId::new("0"),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    assert!(!partitions.is_empty());
    for scope in &scopes {
        for partition in &partitions {
            for kind in [BlobKind::Ownership, BlobKind::Checkpoint] {
                let name = format::blob_name(scope, kind, partition);
                assert!(
                    name.chars().count() <= MAX_BLOB_NAME_CHARS,
                    "{} characters: {name}",
                    name.chars().count()
                );
            }
        }
    }
    // A namespace, event hub and consumer group as long as Event Hubs allows
    // (50, 256 and 50 characters) are accepted with a long partition id.
    let real = Scope::new(
        format!("{}.servicebus.windows.net", "n".repeat(50)),
        "h".repeat(256),
        "c".repeat(50),
    )
    .unwrap();
    let name = format::blob_name(
        &real,
        BlobKind::Checkpoint,
        &PartitionId::new("p".repeat(256)).unwrap(),
    );
    assert!(name.chars().count() <= MAX_BLOB_NAME_CHARS);
    // Whatever is refused is refused as too long.
    for result in [
        Scope::new(longest.clone(), longest.clone(), longest.clone()).map(|_| ()),
        Scope::new("İ".repeat(MAX_NAME_CHARS), "hub", "$Default").map(|_| ()),
        PartitionId::new("İ".repeat(MAX_NAME_CHARS)).map(|_| ()),
    ] {
        if let Err(error) = result {
            assert_eq!(kind_of(&error), Expect::TooLong, "{error}");
        }
    }
}

fn item(name: &str, metadata: &[(&str, &str)]) -> BlobItem {
    BlobItem {
        name: name.to_owned(),
        metadata: metadata.iter().copied().collect::<Metadata>(),
        properties: BlobProperties {
            etag: ETag::new("0x1").unwrap(),
            last_modified: SystemTime::UNIX_EPOCH,
        },
    }
}

type Pairs = Vec<(&'static str, &'static str)>;
/// A blob name, its metadata, and the offset and sequence number read (or
/// why the blob is skipped).
type CheckpointCase = (
    String,
    Pairs,
    Result<(Option<&'static str>, Option<i64>), SkipReason>,
);
/// A blob name, its metadata, and the owner read (or why it is skipped).
type OwnerCase = (String, Pairs, Result<Option<&'static str>, SkipReason>);

#[test]
fn blobs_a_broken_peer_wrote_are_skip_reasons() {
    let scope = Scope::new("NS.servicebus.windows.net", "Hub", "$Default").unwrap();
    let cp = format::prefix(&scope, BlobKind::Checkpoint);
    let own = format::prefix(&scope, BlobKind::Ownership);
    let checkpoints: Vec<CheckpointCase> = vec![
        (format!("{cp}0"), vec![], Err(SkipReason::EmptyCheckpoint)),
        (
            format!("{cp}0"),
            vec![("offset", "None"), ("sequencenumber", "")],
            Err(SkipReason::EmptyCheckpoint),
        ),
        (
            format!("{cp}0"),
            vec![("sequencenumber", "seven")],
            Err(SkipReason::InvalidSequenceNumber("seven".into())),
        ),
        (
            format!("{cp}0"),
            vec![("offset", "1"), ("sequencenumber", "9223372036854775808")],
            Err(SkipReason::InvalidSequenceNumber("9223372036854775808".into())),
        ),
        (
            format!("{cp}0"),
            vec![("offset", "1"), ("sequencenumber", "1.5")],
            Err(SkipReason::InvalidSequenceNumber("1.5".into())),
        ),
        (
            format!("{cp}0"),
            vec![("offset", "1"), ("sequencenumber", "٣")],
            Err(SkipReason::InvalidSequenceNumber("٣".into())),
        ),
        (
            format!("{cp}0"),
            vec![("offset", "1\r\nx-ms-meta-evil: 1")],
            Err(SkipReason::InvalidOffset("1\r\nx-ms-meta-evil: 1".into())),
        ),
        (
            format!("{cp}0"),
            vec![("offset", "ü")],
            Err(SkipReason::InvalidOffset("ü".into())),
        ),
        (
            format!("{cp}0/extra"),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            format!("{cp}/0"),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (cp.clone(), vec![("offset", "1")], Err(SkipReason::UnexpectedName)),
        (
            format!("{cp}.."),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            format!("{cp}a\nb"),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            format!("{cp}{}", "x".repeat(300)),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            format!("{own}0"),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            "elsewhere/0".into(),
            vec![("offset", "1")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            format!("{cp}0"),
            vec![("sequencenumber", " +42 ")],
            Ok((None, Some(42))),
        ),
        // HTTP cannot store whitespace around a value: it is not part of it.
        (format!("{cp}0"), vec![("offset", " 7\t")], Ok((Some("7"), None))),
        (
            format!("{cp}0"),
            vec![("OFFSET", "g:1"), ("SequenceNumber", "-9223372036854775808")],
            Ok((Some("g:1"), Some(i64::MIN))),
        ),
    ];
    for (name, metadata, expected) in checkpoints {
        let read = format::read_checkpoint(&scope, &cp, &item(&name, &metadata));
        let read = read
            .as_ref()
            .map(|c| (c.offset().map(Offset::as_str), c.sequence_number()));
        assert_eq!(read, expected.as_ref().map(|e| *e), "{name:?} {metadata:?}");
    }
    let owners: Vec<OwnerCase> = vec![
        (format!("{own}0"), vec![], Ok(None)),
        (format!("{own}0"), vec![("ownerid", "")], Ok(None)),
        (format!("{own}0"), vec![("OwnerId", "alice")], Ok(Some("alice"))),
        (
            format!("{own}0"),
            vec![("ownerid", " alice\t")],
            Ok(Some("alice")),
        ),
        (format!("{own}0"), vec![("ownerid", "  ")], Ok(None)),
        (
            format!("{own}0"),
            vec![("ownerid", "a\r\nx-ms-meta-evil: 1")],
            Err(SkipReason::InvalidOwnerId("a\r\nx-ms-meta-evil: 1".into())),
        ),
        (
            format!("{own}0"),
            vec![("ownerid", "zoë")],
            Err(SkipReason::InvalidOwnerId("zoë".into())),
        ),
        (
            format!("{own}0/1"),
            vec![("ownerid", "a")],
            Err(SkipReason::UnexpectedName),
        ),
        (
            own.clone(),
            vec![("ownerid", "a")],
            Err(SkipReason::UnexpectedName),
        ),
    ];
    for (name, metadata, expected) in owners {
        let read = format::read_ownership(&scope, &own, &item(&name, &metadata));
        let read = read.as_ref().map(|o| o.owner_id.as_ref().map(OwnerId::as_str));
        assert_eq!(read, expected.as_ref().map(|e| *e), "{name:?} {metadata:?}");
    }
}

#[test]
fn skip_reasons_show_the_value_escaped() {
    let reason = SkipReason::InvalidOwnerId("a\r\nx-ms-meta-evil: 1".into());
    let shown = reason.to_string();
    assert!(!shown.contains('\r') && !shown.contains('\n'), "{shown:?}");
}

#[test]
fn the_metadata_decoder_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/metadata_decoder");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{} has {} files", dir.display(), files.len());
    for path in files {
        eprintln!("{}", path.display());
        metadata_decoder::run(&std::fs::read(&path).unwrap());
    }
}
