//! Reading one page of a List Blobs response with quick-xml.
//!
//! Only what the store needs is kept: each blob's name, etag, last-modified
//! time and metadata, and the next marker. Unknown elements are skipped, so
//! newer service versions that add properties still parse.

use std::time::SystemTime;

use eventhub_checkpoints::{BlobItem, BlobProperties, ETag, Metadata};
use percent_encoding::percent_decode_str;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One parsed page.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) blobs: Vec<BlobItem>,
    /// The marker of the next page; `None` on the last page.
    pub(crate) next_marker: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("malformed List Blobs XML: {0}")]
    Xml(String),
    #[error("blob {name:?} in List Blobs response lacks {field}")]
    MissingField { name: String, field: &'static str },
    #[error("blob {name:?} has an unreadable {field}: {value:?}")]
    BadField {
        name: String,
        field: &'static str,
        value: String,
    },
}

#[derive(Default)]
struct PartialBlob {
    name: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    metadata: Metadata,
}

#[derive(Clone, Copy, PartialEq)]
enum Field {
    Name,
    Etag,
    LastModified,
    NextMarker,
    Metadata,
}

/// Parses a List Blobs response body.
pub(crate) fn parse_page(body: &[u8]) -> Result<Page, PageError> {
    let body = std::str::from_utf8(body).map_err(|e| PageError::Xml(format!("not UTF-8: {e}")))?;
    let mut reader = Reader::from_str(body);
    let mut page = Page::default();
    let mut path: Vec<String> = Vec::with_capacity(8);
    let mut blob: Option<PartialBlob> = None;
    let mut name_encoded = false;
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| PageError::Xml(format!("{e} at byte {}", reader.buffer_position())))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                if path.is_empty() {
                    if name != "EnumerationResults" || saw_root {
                        return Err(PageError::Xml(format!("unexpected root element <{name}>")));
                    }
                    saw_root = true;
                }
                if path_is(&path, &["EnumerationResults", "Blobs"]) && name == "Blob" {
                    blob = Some(PartialBlob::default());
                }
                if name == "Name" && path_is(&path, &["EnumerationResults", "Blobs", "Blob"]) {
                    name_encoded = is_encoded(&start)?;
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(_) => {}
            Event::Text(t) => {
                text.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| PageError::Xml(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => match r.as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "apos" => "'".into(),
                        "quot" => "\"".into(),
                        other => return Err(PageError::Xml(format!("unknown entity &{other};"))),
                    },
                };
                text.push_str(&resolved);
            }
            Event::CData(c) => text.push_str(&c),
            Event::End(_) => {
                let field = field_of(&path);
                let closed = path.pop().unwrap_or_default();
                match (field, blob.as_mut()) {
                    (Some(Field::Name), Some(b)) => {
                        b.name = Some(if name_encoded {
                            percent_decode_str(&text).decode_utf8_lossy().into_owned()
                        } else {
                            std::mem::take(&mut text)
                        });
                    }
                    (Some(Field::Etag), Some(b)) => b.etag = Some(std::mem::take(&mut text)),
                    (Some(Field::LastModified), Some(b)) => b.last_modified = Some(std::mem::take(&mut text)),
                    // Invalid names come back as x-ms-invalid-name; they cannot be ours.
                    (Some(Field::Metadata), Some(b)) if closed != "x-ms-invalid-name" => {
                        b.metadata.insert(closed.clone(), std::mem::take(&mut text));
                    }
                    (Some(Field::NextMarker), _) => {
                        page.next_marker = Some(std::mem::take(&mut text)).filter(|m| !m.is_empty());
                    }
                    _ => {}
                }
                if closed == "Blob"
                    && path_is(&path, &["EnumerationResults", "Blobs"])
                    && let Some(b) = blob.take()
                {
                    page.blobs.push(finish(b)?);
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(PageError::Xml("document ended inside an element".into()));
    }
    if !saw_root {
        return Err(PageError::Xml("no EnumerationResults element".into()));
    }
    Ok(page)
}

fn path_is(path: &[String], expected: &[&str]) -> bool {
    path.len() == expected.len() && path.iter().zip(expected).all(|(a, b)| a == b)
}

fn field_of(path: &[String]) -> Option<Field> {
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    match names.as_slice() {
        ["EnumerationResults", "NextMarker"] => Some(Field::NextMarker),
        ["EnumerationResults", "Blobs", "Blob", "Name"] => Some(Field::Name),
        ["EnumerationResults", "Blobs", "Blob", "Properties", "Etag"] => Some(Field::Etag),
        [
            "EnumerationResults",
            "Blobs",
            "Blob",
            "Properties",
            "Last-Modified",
        ] => Some(Field::LastModified),
        ["EnumerationResults", "Blobs", "Blob", "Metadata", _] => Some(Field::Metadata),
        _ => None,
    }
}

fn is_encoded(start: &BytesStart<'_>) -> Result<bool, PageError> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| PageError::Xml(e.to_string()))?;
        if attribute.key.as_ref() == "Encoded" {
            return Ok(attribute.value.eq_ignore_ascii_case("true"));
        }
    }
    Ok(false)
}

fn finish(blob: PartialBlob) -> Result<BlobItem, PageError> {
    let name = blob.name.ok_or(PageError::MissingField {
        name: String::new(),
        field: "Name",
    })?;
    let etag_text = blob.etag.ok_or_else(|| PageError::MissingField {
        name: name.clone(),
        field: "Etag",
    })?;
    let etag = ETag::new(&etag_text).map_err(|_| PageError::BadField {
        name: name.clone(),
        field: "Etag",
        value: etag_text.clone(),
    })?;
    let modified_text = blob.last_modified.ok_or_else(|| PageError::MissingField {
        name: name.clone(),
        field: "Last-Modified",
    })?;
    let last_modified: SystemTime =
        httpdate::parse_http_date(&modified_text).map_err(|_| PageError::BadField {
            name: name.clone(),
            field: "Last-Modified",
            value: modified_text.clone(),
        })?;
    Ok(BlobItem {
        name,
        metadata: blob.metadata,
        properties: BlobProperties { etag, last_modified },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const AZURITE_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><EnumerationResults ServiceEndpoint="http://127.0.0.1:36899/devstoreaccount1" ContainerName="cont1"><Prefix/><Marker/><MaxResults>2</MaxResults><Blobs><Blob><Name>b1</Name><Properties><Creation-Time>Sun, 29 Nov 2026 02:18:23 GMT</Creation-Time><Last-Modified>Sun, 29 Nov 2026 02:18:23 GMT</Last-Modified><Etag>0x227768A82CDA0E0</Etag><Content-Length>0</Content-Length><Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType></Properties><Metadata><OwnerId>dave</OwnerId></Metadata></Blob><Blob><Name>b2</Name><Properties><Last-Modified>Sun, 29 Nov 2026 02:18:24 GMT</Last-Modified><Etag>"0x1"</Etag></Properties></Blob></Blobs><NextMarker>b2</NextMarker></EnumerationResults>"#;

    #[test]
    fn parses_an_azurite_page() {
        let page = parse_page(AZURITE_PAGE.as_bytes()).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("b2"));
        assert_eq!(page.blobs.len(), 2);
        let b1 = &page.blobs[0];
        assert_eq!(b1.name, "b1");
        assert_eq!(b1.metadata.get("ownerid"), Some("dave"));
        assert_eq!(b1.properties.etag.as_str(), "0x227768A82CDA0E0");
        assert_eq!(
            b1.properties.last_modified,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_918_703)
        );
        assert!(page.blobs[1].metadata.is_empty());
        assert_eq!(page.blobs[1].properties.etag.as_str(), "0x1");
    }

    #[test]
    fn last_page_and_escapes() {
        let xml = r#"<EnumerationResults><Blobs><Blob><Name Encoded="true">a%2Fb%EF%BF%BE</Name><Properties><Last-Modified>Sun, 29 Nov 2026 02:18:23 GMT</Last-Modified><Etag>0x2</Etag></Properties><Metadata><offset>1&amp;2&#x41;</offset><x-ms-invalid-name>bad</x-ms-invalid-name></Metadata></Blob><Blob><Name><![CDATA[c<d]]></Name><Properties><Last-Modified>Sun, 29 Nov 2026 02:18:23 GMT</Last-Modified><Etag>0x3</Etag></Properties></Blob></Blobs><NextMarker/></EnumerationResults>"#;
        let page = parse_page(xml.as_bytes()).unwrap();
        assert_eq!(page.next_marker, None);
        assert_eq!(page.blobs[0].name, "a/b\u{fffe}");
        assert_eq!(page.blobs[0].metadata.get("offset"), Some("1&2A"));
        assert_eq!(page.blobs[0].metadata.len(), 1);
        assert_eq!(page.blobs[1].name, "c<d");
    }

    #[test]
    fn broken_xml_is_an_error_not_a_panic() {
        for body in [
            "<EnumerationResults><Blobs><Blob><Name>x</Name></Blob></Blobs></EnumerationResults>",
            "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties><Etag>0x1</Etag><Last-Modified>yesterday</Last-Modified></Properties></Blob></Blobs></EnumerationResults>",
            "<EnumerationResults><Blobs><Blob>",
            "<EnumerationResults><Blobs></Blob></EnumerationResults>",
            "<EnumerationResults>&bogus;</EnumerationResults>",
            "\u{0}\u{1}not xml",
        ] {
            assert!(parse_page(body.as_bytes()).is_err(), "{body}");
        }
        assert!(parse_page(b"").is_err(), "an empty body is not an empty listing");
        assert!(parse_page(b"<Error><Code>x</Code></Error>").is_err());
        assert!(parse_page(b"\xff\xfe").is_err());
        let empty = parse_page(b"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>").unwrap();
        assert!(empty.blobs.is_empty() && empty.next_marker.is_none());
    }
}
