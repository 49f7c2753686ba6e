//! The on-blob format shared with the Azure SDKs' blob checkpoint stores.
//!
//! ```text
//! <namespace>/<event hub>/<consumer group>/ownership/<partition id>   metadata: ownerid
//! <namespace>/<event hub>/<consumer group>/checkpoint/<partition id>  metadata: offset, sequencenumber
//! ```
//!
//! Blob names are lower-cased whole, as azure-eventhub-checkpointstoreblob-aio
//! 1.2.0, .NET and JavaScript do. Blobs are empty. Metadata names are written
//! lower-case and read case-insensitively (early Java wrote `OwnerId`).
//! `docs/format.md` records the whole contract and what each SDK does.

use std::fmt;

use crate::backend::{BlobItem, Metadata};
use crate::model::{Checkpoint, Offset, OwnerId, Ownership, PartitionId, Scope};

/// Metadata name of the owner id on ownership blobs.
pub const OWNER_ID: &str = "ownerid";
/// Metadata name of the offset on checkpoint blobs.
pub const OFFSET: &str = "offset";
/// Metadata name of the sequence number on checkpoint blobs.
pub const SEQUENCE_NUMBER: &str = "sequencenumber";

/// The two kinds of blob a consumer group has per partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    /// `.../ownership/<partition>`: who owns the partition.
    Ownership,
    /// `.../checkpoint/<partition>`: how far it was read.
    Checkpoint,
}

impl BlobKind {
    fn segment(self) -> &'static str {
        match self {
            BlobKind::Ownership => "ownership",
            BlobKind::Checkpoint => "checkpoint",
        }
    }
}

/// The listing prefix for one kind of blob of a scope, lower-cased and with
/// a trailing `/` (without it, accounts with a hierarchical namespace list
/// the directory itself).
///
/// ```
/// # use eventhub_checkpoints::{Scope, format::{prefix, BlobKind}};
/// let scope = Scope::new("NS.servicebus.windows.net", "Hub", "$Default")?;
/// assert_eq!(prefix(&scope, BlobKind::Checkpoint), "ns.servicebus.windows.net/hub/$default/checkpoint/");
/// # Ok::<(), eventhub_checkpoints::ValidationError>(())
/// ```
pub fn prefix(scope: &Scope, kind: BlobKind) -> String {
    format!(
        "{}/{}/{}/{}/",
        scope.fully_qualified_namespace(),
        scope.event_hub(),
        scope.consumer_group(),
        kind.segment()
    )
    .to_lowercase()
}

/// The blob name of one partition's ownership or checkpoint, lower-cased.
pub fn blob_name(scope: &Scope, kind: BlobKind, partition_id: &PartitionId) -> String {
    let mut name = prefix(scope, kind);
    name.push_str(&partition_id.as_str().to_lowercase());
    name
}

/// The metadata of an ownership blob: `ownerid`, empty when released.
pub fn ownership_metadata(owner_id: Option<&OwnerId>) -> Metadata {
    let mut metadata = Metadata::new();
    metadata.insert(OWNER_ID, owner_id.map_or("", OwnerId::as_str));
    metadata
}

/// The metadata of a checkpoint blob: `offset` and `sequencenumber` as
/// decimal strings. Without an offset, `offset` is written empty (the .NET
/// placeholder): azure-eventhub-checkpointstoreblob-aio 1.2.0 reads
/// `metadata["offset"]` unconditionally, and a missing key fails its whole
/// listing.
pub fn checkpoint_metadata(checkpoint: &Checkpoint) -> Metadata {
    let mut metadata = Metadata::new();
    metadata.insert(OFFSET, checkpoint.offset().map_or("", Offset::as_str));
    if let Some(sequence_number) = checkpoint.sequence_number() {
        metadata.insert(SEQUENCE_NUMBER, sequence_number.to_string());
    }
    metadata
}

/// Whether an `offset` value is one of the placeholders that mean "no
/// offset": `""` or `no offset` (.NET 5.11), and `None` (what the Python
/// store writes when given no offset: `str(None)`).
pub fn is_no_offset_placeholder(value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || value.eq_ignore_ascii_case("no offset") || value == "None"
}

/// Why a listed blob was not turned into an ownership or checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The name is not `<prefix><partition id>` with a valid partition id.
    UnexpectedName,
    /// A metadata value is not a valid header value or owner id.
    InvalidOwnerId(String),
    /// `sequencenumber` is present but not a 64-bit integer.
    InvalidSequenceNumber(String),
    /// `offset` is present but not a valid header value.
    InvalidOffset(String),
    /// Neither an offset nor a sequence number.
    EmptyCheckpoint,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::UnexpectedName => f.write_str("blob name is not <prefix><partition id>"),
            SkipReason::InvalidOwnerId(v) => write!(f, "invalid ownerid {v:?}"),
            SkipReason::InvalidSequenceNumber(v) => write!(f, "sequencenumber {v:?} is not a 64-bit integer"),
            SkipReason::InvalidOffset(v) => write!(f, "invalid offset {v:?}"),
            SkipReason::EmptyCheckpoint => f.write_str("checkpoint has neither offset nor sequencenumber"),
        }
    }
}

/// A listed blob the store could not read, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedBlob {
    /// The blob's full name.
    pub name: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

fn partition_of(item: &BlobItem, prefix: &str) -> Result<PartitionId, SkipReason> {
    let rest = item.name.strip_prefix(prefix).ok_or(SkipReason::UnexpectedName)?;
    PartitionId::new(rest).map_err(|_| SkipReason::UnexpectedName)
}

/// Reads one listed ownership blob. A missing or empty `ownerid` reads as
/// released, so the partition can be claimed with the blob's etag. Spaces
/// and tabs around a value are ignored (HTTP cannot store them).
pub fn read_ownership(scope: &Scope, prefix: &str, item: &BlobItem) -> Result<Ownership, SkipReason> {
    let partition_id = partition_of(item, prefix)?;
    let owner_id = match item.metadata.get(OWNER_ID).map(trim_value) {
        None | Some("") => None,
        Some(value) => Some(OwnerId::new(value).map_err(|_| SkipReason::InvalidOwnerId(value.to_owned()))?),
    };
    Ok(Ownership {
        scope: scope.clone(),
        partition_id,
        owner_id,
        etag: item.properties.etag.clone(),
        last_modified: item.properties.last_modified,
    })
}

/// Reads one listed checkpoint blob. The offset placeholders read as no
/// offset; any other offset is kept as an opaque string.
pub fn read_checkpoint(scope: &Scope, prefix: &str, item: &BlobItem) -> Result<Checkpoint, SkipReason> {
    let partition_id = partition_of(item, prefix)?;
    let offset = match item.metadata.get(OFFSET).map(trim_value) {
        Some(value) if !is_no_offset_placeholder(value) => {
            Some(Offset::new(value).map_err(|_| SkipReason::InvalidOffset(value.to_owned()))?)
        }
        _ => None,
    };
    // .NET writes an empty `sequencenumber` when it has none.
    let sequence_number = match item
        .metadata
        .get(SEQUENCE_NUMBER)
        .filter(|v| !v.trim().is_empty())
    {
        Some(value) => Some(
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| SkipReason::InvalidSequenceNumber(value.to_owned()))?,
        ),
        None => None,
    };
    Checkpoint::new(scope.clone(), partition_id, offset, sequence_number)
        .map_err(|_| SkipReason::EmptyCheckpoint)
}

/// A metadata value without the spaces and tabs HTTP would have dropped.
fn trim_value(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::backend::BlobProperties;
    use crate::model::ETag;

    fn scope() -> Scope {
        Scope::new("MyNS.ServiceBus.Windows.NET", "Tele-Metry", "$Default").unwrap()
    }

    fn item(name: &str, metadata: &[(&str, &str)]) -> BlobItem {
        BlobItem {
            name: name.to_owned(),
            metadata: metadata.iter().copied().collect(),
            properties: BlobProperties {
                etag: ETag::new("0x1").unwrap(),
                last_modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            },
        }
    }

    #[test]
    fn blob_names_are_lower_cased_whole() {
        let s = scope();
        assert_eq!(
            blob_name(&s, BlobKind::Ownership, &PartitionId::new("7").unwrap()),
            "myns.servicebus.windows.net/tele-metry/$default/ownership/7"
        );
        assert_eq!(
            blob_name(&s, BlobKind::Checkpoint, &PartitionId::new("AB").unwrap()),
            "myns.servicebus.windows.net/tele-metry/$default/checkpoint/ab"
        );
        assert_eq!(
            prefix(&s, BlobKind::Ownership),
            "myns.servicebus.windows.net/tele-metry/$default/ownership/"
        );
    }

    #[test]
    fn metadata_written_lower_case_decimal() {
        let cp = Checkpoint::new(
            scope(),
            PartitionId::from(0),
            Some(Offset::from(-1)),
            Some(i64::MAX),
        )
        .unwrap();
        let m = checkpoint_metadata(&cp);
        let pairs: Vec<_> = m.iter().collect();
        assert_eq!(
            pairs,
            [("offset", "-1"), ("sequencenumber", "9223372036854775807")]
        );

        let no_offset = Checkpoint::new(scope(), PartitionId::from(0), None, Some(5)).unwrap();
        assert_eq!(
            checkpoint_metadata(&no_offset).iter().collect::<Vec<_>>(),
            [("offset", ""), ("sequencenumber", "5")]
        );

        let owner = OwnerId::new("owner-1").unwrap();
        assert_eq!(
            ownership_metadata(Some(&owner)).iter().collect::<Vec<_>>(),
            [("ownerid", "owner-1")]
        );
        assert_eq!(
            ownership_metadata(None).iter().collect::<Vec<_>>(),
            [("ownerid", "")]
        );
    }

    #[test]
    fn reads_peer_quirks() {
        let s = scope();
        let p = prefix(&s, BlobKind::Checkpoint);
        let camel = item(&format!("{p}3"), &[("Offset", "100"), ("SequenceNumber", "7")]);
        let cp = read_checkpoint(&s, &p, &camel).unwrap();
        assert_eq!(cp.offset().map(Offset::as_str), Some("100"));
        assert_eq!(cp.sequence_number(), Some(7));
        assert_eq!(cp.scope(), &s, "listed items carry the scope as given");

        for placeholder in ["", "no offset", "No Offset", "None"] {
            let it = item(
                &format!("{p}3"),
                &[("offset", placeholder), ("sequencenumber", "7")],
            );
            assert_eq!(read_checkpoint(&s, &p, &it).unwrap().offset(), None);
        }
        let geo = item(&format!("{p}3"), &[("offset", "g1:2:3"), ("sequencenumber", "7")]);
        assert_eq!(
            read_checkpoint(&s, &p, &geo).unwrap().offset().unwrap().as_str(),
            "g1:2:3"
        );

        let dotnet_no_sequence = item(&format!("{p}3"), &[("offset", "12"), ("sequencenumber", "")]);
        let cp = read_checkpoint(&s, &p, &dotnet_no_sequence).unwrap();
        assert_eq!(
            (cp.offset().map(Offset::as_str), cp.sequence_number()),
            (Some("12"), None)
        );

        let missing = item(&format!("{p}3"), &[("sequencenumber", "7")]);
        assert_eq!(read_checkpoint(&s, &p, &missing).unwrap().offset(), None);
    }

    #[test]
    fn reports_broken_blobs() {
        let s = scope();
        let p = prefix(&s, BlobKind::Checkpoint);
        assert_eq!(
            read_checkpoint(&s, &p, &item(&format!("{p}1"), &[("sequencenumber", "x")])),
            Err(SkipReason::InvalidSequenceNumber("x".into()))
        );
        assert_eq!(
            read_checkpoint(&s, &p, &item(&format!("{p}1"), &[])),
            Err(SkipReason::EmptyCheckpoint)
        );
        assert_eq!(
            read_checkpoint(&s, &p, &item(&format!("{p}1/extra"), &[("offset", "1")])),
            Err(SkipReason::UnexpectedName)
        );
        assert_eq!(
            read_checkpoint(&s, &p, &item(&p, &[("offset", "1")])),
            Err(SkipReason::UnexpectedName)
        );
    }

    #[test]
    fn empty_or_missing_owner_reads_as_released() {
        let s = scope();
        let p = prefix(&s, BlobKind::Ownership);
        assert_eq!(
            read_ownership(&s, &p, &item(&format!("{p}0"), &[("ownerid", "")]))
                .unwrap()
                .owner_id,
            None
        );
        assert_eq!(
            read_ownership(&s, &p, &item(&format!("{p}0"), &[]))
                .unwrap()
                .owner_id,
            None
        );
        let o = read_ownership(&s, &p, &item(&format!("{p}0"), &[("OwnerId", "abc")])).unwrap();
        assert_eq!(o.owner_id.unwrap().as_str(), "abc");
        assert_eq!(o.partition_id.as_str(), "0");
    }
}
