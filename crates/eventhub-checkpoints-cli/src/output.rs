//! Rendering: aligned tables for people, JSON with the Python store's keys
//! for scripts.

use std::io::Write;
use std::time::{Duration, SystemTime};

use eventhub_checkpoints::{Checkpoint, Offset, OwnerId, Ownership, PartitionId, Scope};
use serde::{Deserialize, Serialize};

/// An ownership as the Python store's dictionaries spell it.
#[derive(Debug, Serialize)]
pub struct OwnershipRecord {
    pub fully_qualified_namespace: String,
    pub eventhub_name: String,
    pub consumer_group: String,
    pub partition_id: String,
    /// Empty when the partition was released.
    pub owner_id: String,
    pub etag: String,
    /// Seconds since the epoch.
    pub last_modified_time: f64,
}

impl From<&Ownership> for OwnershipRecord {
    fn from(o: &Ownership) -> Self {
        Self {
            fully_qualified_namespace: o.scope.fully_qualified_namespace().to_owned(),
            eventhub_name: o.scope.event_hub().to_owned(),
            consumer_group: o.scope.consumer_group().to_owned(),
            partition_id: o.partition_id.to_string(),
            owner_id: o.owner_id.as_ref().map_or("", OwnerId::as_str).to_owned(),
            etag: o.etag.to_string(),
            last_modified_time: epoch_seconds(o.last_modified),
        }
    }
}

/// A checkpoint as the Python store's dictionaries spell it; also the line
/// format of `checkpoints export` and `import`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub fully_qualified_namespace: String,
    pub eventhub_name: String,
    pub consumer_group: String,
    pub partition_id: String,
    pub offset: Option<String>,
    pub sequence_number: Option<i64>,
}

impl From<&Checkpoint> for CheckpointRecord {
    fn from(c: &Checkpoint) -> Self {
        Self {
            fully_qualified_namespace: c.scope().fully_qualified_namespace().to_owned(),
            eventhub_name: c.scope().event_hub().to_owned(),
            consumer_group: c.scope().consumer_group().to_owned(),
            partition_id: c.partition_id().to_string(),
            offset: c.offset().map(|o| o.as_str().to_owned()),
            sequence_number: c.sequence_number(),
        }
    }
}

/// What `checkpoints import` replaces in each record's scope.
#[derive(Debug, Default)]
pub struct Retarget<'a> {
    pub namespace: Option<&'a str>,
    pub eventhub: Option<&'a str>,
    pub consumer_group: Option<&'a str>,
}

impl CheckpointRecord {
    /// The checkpoint, in the record's scope with the parts `to` names
    /// replaced.
    pub fn to_checkpoint(
        &self,
        to: &Retarget<'_>,
    ) -> Result<Checkpoint, eventhub_checkpoints::ValidationError> {
        let scope = Scope::new(
            to.namespace.unwrap_or(&self.fully_qualified_namespace),
            to.eventhub.unwrap_or(&self.eventhub_name),
            to.consumer_group.unwrap_or(&self.consumer_group),
        )?;
        let offset = self.offset.as_deref().map(Offset::new).transpose()?;
        Checkpoint::new(
            scope,
            PartitionId::new(self.partition_id.as_str())?,
            offset,
            self.sequence_number,
        )
    }
}

/// Seconds since the epoch, as the Python store reports times.
pub fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How long ago `time` was, to the second.
pub fn age(now: SystemTime, time: SystemTime) -> Duration {
    Duration::from_secs(now.duration_since(time).unwrap_or_default().as_secs())
}

/// `1m 5s`, or `0s`.
pub fn human(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Orders partition ids numerically when they are numbers.
pub fn partition_order(a: &PartitionId, b: &PartitionId) -> std::cmp::Ordering {
    match (a.as_str().parse::<u64>(), b.as_str().parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Writes rows under headers, each column as wide as its widest cell.
pub fn write_table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        text.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&mut headers.iter().copied()))?;
    for row in rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["0".into(), "alice".into(), "".into()],
            vec!["10".into(), "b".into(), "x".into()],
        ];
        write_table(&mut out, &["PARTITION", "OWNER", "ETAG"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PARTITION  OWNER  ETAG\n0          alice\n10         b      x\n"
        );
    }

    #[test]
    fn partitions_sort_numerically() {
        let mut ids: Vec<PartitionId> = ["10", "2", "1", "a"]
            .iter()
            .map(|s| PartitionId::new(*s).unwrap())
            .collect();
        ids.sort_by(partition_order);
        let sorted: Vec<&str> = ids.iter().map(PartitionId::as_str).collect();
        assert_eq!(sorted, ["1", "2", "10", "a"]);
    }
}
