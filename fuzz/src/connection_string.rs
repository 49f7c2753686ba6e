//! Fuzz target `connection_string`: storage connection strings. Parsing
//! never panics; neither the parsed value's `Debug` nor an error's `Display`
//! or `Debug` shows the `AccountKey` or the SAS `sig` given; an endpoint that
//! parsed either gives a container URL that parses again or a `ConfigError`.

use std::sync::OnceLock;

use eventhub_checkpoints_blob::ConnectionString;
use eventhub_checkpoints_blob::fuzzing::container_url;

/// Parses `data` (if it is UTF-8) as a connection string.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shown = match ConnectionString::parse(text) {
        Ok(parsed) => {
            match container_url(&parsed.blob_endpoint, "checkpoints") {
                Ok(url) => {
                    if let Err(e) = url::Url::parse(&url) {
                        panic!(
                            "container URL {url:?} from {:?} does not parse: {e}",
                            parsed.blob_endpoint
                        );
                    }
                }
                Err(error) => assert!(!error.to_string().is_empty()),
            }
            format!("{parsed:?}")
        }
        Err(error) => format!("{error} {error:?}"),
    };
    for secret in secrets(text) {
        assert!(!shown.contains(secret), "{secret:?} shown in {shown:?}");
    }
}

/// The `AccountKey` values and SAS `sig` values in `text` that are long
/// enough to be told apart and appear nowhere else in it.
fn secrets(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for segment in text.split(';') {
        let Some((key, value)) = segment.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("accountkey") {
            found.push(value.trim());
        } else if key.eq_ignore_ascii_case("sharedaccesssignature") {
            found.extend(
                value
                    .split('&')
                    .filter_map(|pair| pair.trim().strip_prefix("sig="))
                    .map(|sig| sig.trim()),
            );
        }
    }
    // A "secret" that is also part of the fixed wording (`ointSuffi` is in
    // "EndpointSuffix") or appears elsewhere in the input proves nothing.
    found.retain(|secret| {
        secret.len() >= 8
            && text.matches(*secret).count() == 1
            && !vocabulary().iter().any(|words| words.contains(*secret))
    });
    found
}

/// What the parser shows for inputs that hold no secret: every error it
/// can give and the `Debug` of each kind of credential.
fn vocabulary() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words = Vec::new();
        for input in [
            "",
            "x",
            "=x",
            "AccountName=a;AccountKey=!",
            "AccountName=a;AccountKey=",
            "BlobEndpoint=h;AccountKey=a2V5",
            "AccountName=a;AccountKey=a2V5",
            "AccountName=a;DefaultEndpointsProtocol=p",
            "AccountName=a;EndpointSuffix=/",
            "AccountName=a b",
            "AccountName=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "BlobEndpoint=h;SharedAccessSignature=sv=1",
            "BlobEndpoint=h;SharedAccessSignature=",
            "BlobEndpoint=h;SharedAccessSignature=sig=",
            "BlobEndpoint=h;SharedAccessSignature==x&sig=y",
            "BlobEndpoint=h;SharedAccessSignature=sig=%01",
            "BlobEndpoint=h;SharedAccessSignature=sv=1&sig=y",
            "BlobEndpoint=h",
            "UseDevelopmentStorage=true",
        ] {
            words.push(match ConnectionString::parse(input) {
                Ok(parsed) => format!("{parsed:?}"),
                Err(error) => format!("{error} {error:?}"),
            });
        }
        for url in ["h", "ftp://h", "https://h?q", "https://u@h"] {
            if let Err(error) = container_url(url, "checkpoints") {
                words.push(format!("{error} {error:?}"));
            }
        }
        words
    })
}
