//! Blob names to file names and back.
//!
//! A blob name may hold any Unicode, `/`, `$`, `%`, spaces and `..`
//! segments, and be 1,024 characters long. A file name is one path segment
//! of at most 255 bytes, and some file systems ignore case or rewrite
//! Unicode. So every blob is one file in a flat directory, named either
//!
//! - `<encoded name>.json`: every byte of the UTF-8 name other than `a`-`z`,
//!   `0`-`9`, `-`, `_` and `.` written as `%XX`. Upper-case letters are
//!   encoded too, so names differing only in case stay apart on
//!   case-insensitive file systems, and the result is plain ASCII. No `/`
//!   or `\` survives, so a name cannot leave the directory, and decoding
//!   gives the name back; or
//! - `@<SHA-256 of the name, hex>.json` when the encoded form would not fit
//!   in 255 bytes. `@` never appears in an encoded name, so the two forms
//!   cannot collide; the full name is stored inside the file.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The extension of every blob file.
pub(crate) const SUFFIX: &str = ".json";

/// The longest file name most file systems accept, in bytes.
const MAX_FILE_NAME: usize = 255;

/// The bytes that are percent-encoded: all but `a`-`z`, `0`-`9`, `-`, `_`
/// and `.`.
const ENCODED: &AsciiSet = &{
    let mut set = NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
    let mut letter = b'A';
    while letter <= b'Z' {
        set = set.add(letter);
        letter += 1;
    }
    set
};

/// The file name (no directory) that holds the blob `blob_name`.
pub(crate) fn file_name(blob_name: &str) -> String {
    let encoded = utf8_percent_encode(blob_name, ENCODED).to_string();
    if encoded.len() + SUFFIX.len() <= MAX_FILE_NAME {
        return encoded + SUFFIX;
    }
    let mut hashed = String::from("@");
    for byte in Sha256::digest(blob_name.as_bytes()) {
        hashed.push_str(&format!("{byte:02x}"));
    }
    hashed + SUFFIX
}

/// The blob name encoded in `file_name`, if it is the encoded form that
/// [`file_name`] gives. `None` for hashed names (the name is only inside the
/// file) and for any file this crate did not name.
pub(crate) fn blob_name(file_name: &str) -> Option<String> {
    let stem = file_name.strip_suffix(SUFFIX)?;
    let name = percent_decode_str(stem).decode_utf8().ok()?;
    // Only the canonical spelling counts: `%2f` or `A` decode fine but are
    // not what `file_name` writes.
    (self::file_name(&name) == file_name).then(|| name.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
        "",
        ".",
        "..",
        "../../etc/passwd",
        "a/../b",
        "ns.servicebus.windows.net/hub/$default/ownership/0",
        "hub with space+plus%25/$Default #?&=",
        "p:0;ü/日本語/🦀",
        "A",
        "a",
        "%41",
        "back\\slash",
        "nul\0byte",
        "@not-a-hash",
    ];

    #[test]
    fn encoded_names_round_trip() {
        for name in NAMES {
            let file = file_name(name);
            assert!(file.is_ascii() && file.len() <= MAX_FILE_NAME, "{file}");
            assert!(!file.contains(['/', '\\', '\0']), "{file}");
            assert!(file != "." && file != "..");
            assert_eq!(blob_name(&file).as_deref(), Some(*name), "{file}");
        }
    }

    #[test]
    fn names_do_not_collide_even_ignoring_case() {
        let mut files: Vec<String> = NAMES.iter().map(|n| file_name(n).to_lowercase()).collect();
        files.sort();
        files.dedup();
        assert_eq!(files.len(), NAMES.len());
    }

    #[test]
    fn names_too_long_to_encode_are_hashed() {
        // 250 bytes of stem plus ".json" is the longest encoded file name.
        let fits = "a".repeat(MAX_FILE_NAME - SUFFIX.len());
        assert_eq!(file_name(&fits), format!("{fits}.json"));
        let too_long = "a".repeat(MAX_FILE_NAME - SUFFIX.len() + 1);
        let hashed = file_name(&too_long);
        assert!(
            hashed.starts_with('@') && hashed.len() == 1 + 64 + SUFFIX.len(),
            "{hashed}"
        );
        assert_eq!(blob_name(&hashed), None);
        // `é` is two UTF-8 bytes, six encoded ones: 41 fit, 42 do not.
        assert!(!file_name(&"é".repeat(41)).starts_with('@'));
        assert!(file_name(&"é".repeat(42)).starts_with('@'));
        assert_ne!(file_name(&"é".repeat(1024)), file_name(&"è".repeat(1024)));
    }

    #[test]
    fn foreign_file_names_are_not_blob_names() {
        for file in ["notes.txt", "%2fx.json", "Upper.json", "%ZZ.json", "%FF.json"] {
            assert_eq!(blob_name(file), None, "{file}");
        }
    }
}
