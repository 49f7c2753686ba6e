//! Fuzz target `list_xml`: the List Blobs page reader of the blob backend
//! over arbitrary bytes. It must never panic, and must give the same answer
//! twice (it keeps no state).

use eventhub_checkpoints_blob::fuzzing::parse_list_page;

/// Reads `data` as a List Blobs response body.
pub fn run(data: &[u8]) {
    let first = parse_list_page(data);
    assert_eq!(first, parse_list_page(data), "the reader is deterministic");
    if let Ok(blobs) = first {
        assert!(blobs <= data.len(), "{blobs} blobs out of {} bytes", data.len());
    }
}
