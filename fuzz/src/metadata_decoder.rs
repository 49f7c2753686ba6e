//! Fuzz target `metadata_decoder`: the core's `format::read_checkpoint` and
//! `format::read_ownership` over an arbitrary blob name and metadata.
//!
//! Input layout: fields separated by `0xFF` bytes, each read as lossy UTF-8:
//! a partition suffix, then metadata names and values in turn. Each blob is
//! read under both kinds' prefixes and also with the bare suffix as its
//! name. Reading never panics; what it accepts holds the model's invariants
//! and survives a write-then-read round trip through the same format.

use std::time::SystemTime;

use eventhub_checkpoints::format::{self, BlobKind};
use eventhub_checkpoints::{BlobItem, BlobProperties, ETag, Metadata, Scope};

/// Reads `data` as one listed blob of each kind.
pub fn run(data: &[u8]) {
    let mut fields = data
        .split(|b| *b == 0xff)
        .map(|field| String::from_utf8_lossy(field).into_owned());
    let suffix = fields.next().unwrap_or_default();
    let mut metadata = Metadata::new();
    while let Some(name) = fields.next() {
        metadata.insert(name, fields.next().unwrap_or_default());
    }
    let scope = Scope::new("ns.servicebus.windows.net", "Hub", "$Default").expect("a valid scope");
    for kind in [BlobKind::Checkpoint, BlobKind::Ownership] {
        let prefix = format::prefix(&scope, kind);
        for name in [format!("{prefix}{suffix}"), suffix.clone()] {
            let item = item(name, metadata.clone());
            match kind {
                BlobKind::Checkpoint => check_checkpoint(&scope, &prefix, &item),
                BlobKind::Ownership => check_ownership(&scope, &prefix, &item),
            }
        }
    }
}

fn item(name: String, metadata: Metadata) -> BlobItem {
    BlobItem {
        name,
        metadata,
        properties: BlobProperties {
            etag: ETag::new("0x8D0000000000001").expect("a valid etag"),
            last_modified: SystemTime::UNIX_EPOCH,
        },
    }
}

fn check_checkpoint(scope: &Scope, prefix: &str, item: &BlobItem) {
    let checkpoint = match format::read_checkpoint(scope, prefix, item) {
        Ok(checkpoint) => checkpoint,
        Err(reason) => {
            assert!(!reason.to_string().is_empty());
            return;
        }
    };
    assert!(checkpoint.offset().is_some() || checkpoint.sequence_number().is_some());
    assert_eq!(checkpoint.scope(), scope);
    let name = format::blob_name(scope, BlobKind::Checkpoint, checkpoint.partition_id());
    assert_eq!(name, item.name.to_lowercase(), "the name the store writes");
    let written = self::item(name, format::checkpoint_metadata(&checkpoint));
    let again = format::read_checkpoint(scope, prefix, &written)
        .unwrap_or_else(|reason| panic!("{checkpoint:?} written as {written:?} reads as {reason}"));
    assert_eq!(again.offset(), checkpoint.offset());
    assert_eq!(again.sequence_number(), checkpoint.sequence_number());
}

fn check_ownership(scope: &Scope, prefix: &str, item: &BlobItem) {
    let ownership = match format::read_ownership(scope, prefix, item) {
        Ok(ownership) => ownership,
        Err(reason) => {
            assert!(!reason.to_string().is_empty());
            return;
        }
    };
    assert_eq!(&ownership.scope, scope);
    assert_eq!(ownership.etag, item.properties.etag);
    let name = format::blob_name(scope, BlobKind::Ownership, &ownership.partition_id);
    assert_eq!(name, item.name.to_lowercase(), "the name the store writes");
    let written = self::item(name, format::ownership_metadata(ownership.owner_id.as_ref()));
    let again = format::read_ownership(scope, prefix, &written)
        .unwrap_or_else(|reason| panic!("{ownership:?} written as {written:?} reads as {reason}"));
    assert_eq!(again.owner_id, ownership.owner_id);
}
