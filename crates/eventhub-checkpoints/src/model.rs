//! The checkpoint and ownership model.
//!
//! Every value here is validated once, when it is built, so the rest of the
//! crate (and every backend) can rely on it: a [`PartitionId`] never contains
//! `/`, an [`OwnerId`] is always a valid HTTP header value, and a
//! [`Checkpoint`] always carries an offset, a sequence number, or both.

use std::fmt;
use std::time::SystemTime;

use crate::error::ValidationError;

/// Longest accepted name component (a namespace, event hub, consumer group
/// or partition id), in characters once lower-cased.
pub const MAX_NAME_CHARS: usize = 256;

/// Longest accepted namespace, event hub and consumer group together, in
/// characters once lower-cased.
///
/// With the separators and the longer fixed segment (`/checkpoint/`, 14
/// characters in all) and a partition id of [`MAX_NAME_CHARS`], every blob
/// name stays within the 1,024-character limit of Blob Storage.
pub const MAX_SCOPE_CHARS: usize = 1_024 - 14 - MAX_NAME_CHARS;

/// Which consumer group of which event hub the checkpoints belong to.
///
/// The names are kept exactly as given (listings report them back unchanged);
/// blob names use their lower-cased form, as the Python, .NET and JavaScript
/// stores do.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    fully_qualified_namespace: String,
    event_hub: String,
    consumer_group: String,
}

impl Scope {
    /// Builds a scope, rejecting empty names, `/` and `\`, `.` and `..`,
    /// control characters, names longer than [`MAX_NAME_CHARS`] and, all
    /// three together, longer than [`MAX_SCOPE_CHARS`].
    ///
    /// ```
    /// # use eventhub_checkpoints::Scope;
    /// let scope = Scope::new("contoso.servicebus.windows.net", "telemetry", "$Default")?;
    /// assert_eq!(scope.consumer_group(), "$Default");
    /// assert!(Scope::new("ns", "a/b", "$Default").is_err());
    /// # Ok::<(), eventhub_checkpoints::ValidationError>(())
    /// ```
    pub fn new(
        fully_qualified_namespace: impl Into<String>,
        event_hub: impl Into<String>,
        consumer_group: impl Into<String>,
    ) -> Result<Self, ValidationError> {
        let fully_qualified_namespace = fully_qualified_namespace.into();
        let event_hub = event_hub.into();
        let consumer_group = consumer_group.into();
        validate_name("fully qualified namespace", &fully_qualified_namespace)?;
        validate_name("event hub name", &event_hub)?;
        validate_name("consumer group", &consumer_group)?;
        let together: usize = [&fully_qualified_namespace, &event_hub, &consumer_group]
            .iter()
            .map(|name| lower_cased_chars(name))
            .sum();
        if together > MAX_SCOPE_CHARS {
            return Err(ValidationError::TooLong {
                what: "namespace, event hub and consumer group together",
                max: MAX_SCOPE_CHARS,
            });
        }
        Ok(Self {
            fully_qualified_namespace,
            event_hub,
            consumer_group,
        })
    }

    /// The fully qualified namespace, e.g. `contoso.servicebus.windows.net`.
    pub fn fully_qualified_namespace(&self) -> &str {
        &self.fully_qualified_namespace
    }

    /// The event hub name.
    pub fn event_hub(&self) -> &str {
        &self.event_hub
    }

    /// The consumer group name, e.g. `$Default`.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }

    /// The same event hub with another consumer group.
    pub fn with_consumer_group(&self, consumer_group: impl Into<String>) -> Result<Self, ValidationError> {
        Self::new(
            self.fully_qualified_namespace.clone(),
            self.event_hub.clone(),
            consumer_group,
        )
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.fully_qualified_namespace, self.event_hub, self.consumer_group
        )
    }
}

/// A partition id such as `"0"`: non-empty, no `/` or `\`, no control
/// characters, at most [`MAX_NAME_CHARS`] characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(String);

impl PartitionId {
    /// Validates and wraps a partition id.
    pub fn new(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        validate_name("partition id", &id)?;
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<u32> for PartitionId {
    fn from(index: u32) -> Self {
        Self(index.to_string())
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for PartitionId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The id of a consumer instance that owns partitions: a non-empty, ASCII,
/// valid HTTP header value (it is stored as blob metadata).
///
/// An empty owner id on a blob means the partition was released; it is
/// represented as the absence of an `OwnerId` (`Option<OwnerId>`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(String);

impl OwnerId {
    /// Validates and wraps an owner id.
    pub fn new(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        if id.is_empty() {
            return Err(ValidationError::Empty { what: "owner id" });
        }
        validate_header_value("owner id", &id)?;
        Ok(Self(id))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for OwnerId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An event offset, kept as an opaque string: numeric on most hubs, but
/// geo-replicated hubs use non-numeric offsets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Offset(String);

impl Offset {
    /// Validates and wraps an offset: non-empty, ASCII, valid header value,
    /// and not one of the .NET "no offset" placeholders.
    pub fn new(offset: impl Into<String>) -> Result<Self, ValidationError> {
        let offset = offset.into();
        if offset.is_empty() || crate::format::is_no_offset_placeholder(&offset) {
            return Err(ValidationError::Empty { what: "offset" });
        }
        validate_header_value("offset", &offset)?;
        Ok(Self(offset))
    }

    /// The offset as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<i64> for Offset {
    fn from(offset: i64) -> Self {
        Self(offset.to_string())
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Offset {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// An entity tag identifying one version of a blob.
///
/// Blob Storage returns etags quoted in response headers (`"0x8D..."`) and
/// unquoted in listings (`0x8D...`); both forms build the same `ETag`, and
/// [`ETag::header_value`] gives the quoted form for conditions.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps an etag in either its quoted or unquoted form.
    pub fn new(etag: impl AsRef<str>) -> Result<Self, ValidationError> {
        let raw = etag.as_ref().trim();
        let inner = raw
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(raw);
        if inner.is_empty() {
            return Err(ValidationError::Empty { what: "etag" });
        }
        if inner.contains('"') {
            return Err(ValidationError::Invalid {
                what: "etag",
                reason: "contains a quote inside the value",
            });
        }
        validate_header_value("etag", inner)?;
        Ok(Self(inner.to_owned()))
    }

    /// The etag without quotes, as listings show it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quoted form used in `If-Match`.
    pub fn header_value(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::str::FromStr for ETag {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// How far a consumer group has read one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    scope: Scope,
    partition_id: PartitionId,
    offset: Option<Offset>,
    sequence_number: Option<i64>,
}

impl Checkpoint {
    /// Builds a checkpoint; at least one of `offset` and `sequence_number`
    /// must be given (.NET 5.11+ writes checkpoints without an offset).
    ///
    /// ```
    /// # use eventhub_checkpoints::{Checkpoint, Offset, PartitionId, Scope};
    /// let scope = Scope::new("ns.servicebus.windows.net", "hub", "$Default")?;
    /// let cp = Checkpoint::new(scope.clone(), PartitionId::from(0), Some(Offset::from(4096)), Some(17))?;
    /// assert_eq!(cp.sequence_number(), Some(17));
    /// assert!(Checkpoint::new(scope, PartitionId::from(0), None, None).is_err());
    /// # Ok::<(), eventhub_checkpoints::ValidationError>(())
    /// ```
    pub fn new(
        scope: Scope,
        partition_id: PartitionId,
        offset: Option<Offset>,
        sequence_number: Option<i64>,
    ) -> Result<Self, ValidationError> {
        if offset.is_none() && sequence_number.is_none() {
            return Err(ValidationError::EmptyCheckpoint);
        }
        Ok(Self {
            scope,
            partition_id,
            offset,
            sequence_number,
        })
    }

    /// The consumer group and event hub.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The partition.
    pub fn partition_id(&self) -> &PartitionId {
        &self.partition_id
    }

    /// The offset of the last processed event, if known.
    pub fn offset(&self) -> Option<&Offset> {
        self.offset.as_ref()
    }

    /// The sequence number of the last processed event, if known.
    pub fn sequence_number(&self) -> Option<i64> {
        self.sequence_number
    }
}

/// A checkpoint as listed from the store, with its blob's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The checkpoint blob's etag.
    pub etag: ETag,
    /// When the checkpoint was last written.
    pub last_modified: SystemTime,
}

/// The recorded owner of one partition, as listed from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The consumer group and event hub.
    pub scope: Scope,
    /// The partition.
    pub partition_id: PartitionId,
    /// The owner, or `None` when the partition was released (empty or
    /// missing `ownerid`).
    pub owner_id: Option<OwnerId>,
    /// The blob's current etag: the condition for the next claim.
    pub etag: ETag,
    /// When the ownership blob was last written (claimed or renewed).
    pub last_modified: SystemTime,
}

/// A request to take (or renew, or release) ownership of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnershipClaim {
    /// The consumer group and event hub.
    pub scope: Scope,
    /// The partition to claim.
    pub partition_id: PartitionId,
    /// The new owner; `None` releases the partition.
    pub owner_id: Option<OwnerId>,
    /// The etag last seen for this partition's ownership, or `None` when it
    /// had no ownership blob: the claim then only succeeds if none exists yet.
    pub etag: Option<ETag>,
}

impl OwnershipClaim {
    /// A claim for `owner_id`, conditional on `etag` (or on the blob not
    /// existing yet when `etag` is `None`).
    pub fn new(scope: Scope, partition_id: PartitionId, owner_id: OwnerId, etag: Option<ETag>) -> Self {
        Self {
            scope,
            partition_id,
            owner_id: Some(owner_id),
            etag,
        }
    }

    /// Renews or steals a listed ownership: same partition, new owner,
    /// conditional on the listed etag.
    pub fn from_listed(ownership: &Ownership, owner_id: OwnerId) -> Self {
        Self::new(
            ownership.scope.clone(),
            ownership.partition_id.clone(),
            owner_id,
            Some(ownership.etag.clone()),
        )
    }

    /// Releases a partition (owner id set to empty), conditional on `etag`.
    pub fn release(scope: Scope, partition_id: PartitionId, etag: ETag) -> Self {
        Self {
            scope,
            partition_id,
            owner_id: None,
            etag: Some(etag),
        }
    }
}

fn validate_name(what: &'static str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() {
        return Err(ValidationError::Empty { what });
    }
    if lower_cased_chars(name) > MAX_NAME_CHARS {
        return Err(ValidationError::TooLong {
            what,
            max: MAX_NAME_CHARS,
        });
    }
    let reason = if name.contains('/') {
        Some("contains '/'")
    } else if name.contains('\\') {
        Some("contains '\\' (Blob Storage turns it into '/')")
    } else if name == "." || name == ".." {
        Some("is a '.' or '..' path segment")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ValidationError::Invalid { what, reason }),
        None => Ok(()),
    }
}

/// The length of a name in blob names, which are lower-cased (that can
/// lengthen it: `İ` becomes two characters).
fn lower_cased_chars(name: &str) -> usize {
    name.chars().flat_map(char::to_lowercase).count()
}

/// Accepts visible ASCII and spaces/tabs, as an HTTP header value must be,
/// but no space or tab at either end: HTTP drops those, so the value would
/// be stored (and signed by the service) without them.
pub(crate) fn validate_header_value(what: &'static str, value: &str) -> Result<(), ValidationError> {
    if !value.is_ascii() {
        return Err(ValidationError::Invalid {
            what,
            reason: "contains non-ASCII characters",
        });
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ValidationError::Invalid {
            what,
            reason: "contains a control character (such as CR or LF)",
        });
    }
    if value.trim_matches([' ', '\t']).len() != value.len() {
        return Err(ValidationError::Invalid {
            what,
            reason: "starts or ends with whitespace, which HTTP drops",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_rejects_bad_names() {
        for (ns, hub, cg) in [
            ("", "hub", "cg"),
            ("ns", "", "cg"),
            ("ns", "hub", ""),
            ("ns", "a/b", "cg"),
            ("ns", "hub", "a\\b"),
            ("ns", "..", "cg"),
            ("ns", "hub\r\nx-ms-meta-evil: 1", "cg"),
        ] {
            assert!(Scope::new(ns, hub, cg).is_err(), "{ns:?} {hub:?} {cg:?}");
        }
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        assert!(matches!(
            Scope::new(long, "hub", "cg"),
            Err(ValidationError::TooLong { .. })
        ));
        assert!(Scope::new("ns", "hüb", "$Default").is_ok());
    }

    #[test]
    fn partition_id_validation() {
        assert!(PartitionId::new("0").is_ok());
        assert!(PartitionId::new("").is_err());
        assert!(PartitionId::new("1/2").is_err());
        assert!(PartitionId::new("a\n").is_err());
    }

    #[test]
    fn owner_id_must_be_a_header_value() {
        assert!(OwnerId::new("c5bd6d7e-4ad3-4c5b-9a9a-0b9c8bd1d4a1").is_ok());
        assert!(OwnerId::new("").is_err());
        assert!(OwnerId::new("a\r\nb").is_err());
        assert!(OwnerId::new("zoë").is_err());
    }

    #[test]
    fn offset_rejects_placeholders_and_bad_values() {
        assert!(Offset::new("123").is_ok());
        assert!(Offset::new("geo:1:2").is_ok());
        assert!(Offset::new("").is_err());
        assert!(Offset::new("No Offset").is_err());
        assert!(Offset::new("None").is_err());
        assert!(Offset::new("1\n2").is_err());
    }

    #[test]
    fn etag_quoted_and_unquoted_are_equal() {
        let quoted = ETag::new("\"0x8DC1\"").unwrap();
        let bare = ETag::new("0x8DC1").unwrap();
        assert_eq!(quoted, bare);
        assert_eq!(bare.header_value(), "\"0x8DC1\"");
        assert_eq!(bare.to_string(), "0x8DC1");
        assert!(ETag::new("\"\"").is_err());
        assert!(ETag::new("a\"b").is_err());
    }

    #[test]
    fn checkpoint_needs_offset_or_sequence_number() {
        let scope = Scope::new("ns", "hub", "cg").unwrap();
        let p = PartitionId::from(1);
        assert!(Checkpoint::new(scope.clone(), p.clone(), None, Some(0)).is_ok());
        assert!(Checkpoint::new(scope.clone(), p.clone(), Some(Offset::from(5)), None).is_ok());
        assert!(matches!(
            Checkpoint::new(scope, p, None, None),
            Err(ValidationError::EmptyCheckpoint)
        ));
    }
}
