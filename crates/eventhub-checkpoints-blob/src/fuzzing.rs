//! Entry points for the fuzz targets in `fuzz/` and the tests that replay
//! their corpora. Not part of the supported API: hidden from the docs and
//! free to change.

use crate::error::ConfigError;

/// Reads `body` as one List Blobs response page, as the backend does: the
/// number of blobs on it, or why it is unreadable.
pub fn parse_list_page(body: &[u8]) -> Result<usize, String> {
    crate::list_xml::parse_page(body)
        .map(|page| page.blobs.len())
        .map_err(|e| e.to_string())
}

/// The container URL a backend for `account_url` and `container` would
/// send its requests to, or the `ConfigError` building it would give.
pub fn container_url(account_url: &str, container: &str) -> Result<String, ConfigError> {
    crate::client::container_url(account_url, container).map(|(url, _)| url)
}
