//! Storage connection strings, as the Azure portal and SDKs write them.

use crate::credential::{Credential, SasToken};
use crate::error::ConfigError;

/// The emulator's well-known account.
pub const DEVELOPMENT_ACCOUNT: &str = "devstoreaccount1";
/// The emulator's well-known, public account key.
pub const DEVELOPMENT_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEVELOPMENT_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// What a connection string says: where the blob service is and how to sign.
///
/// Keys are matched case-insensitively and unknown keys are ignored, as the
/// Azure SDKs do. Understood: `AccountName`, `AccountKey`,
/// `DefaultEndpointsProtocol`, `EndpointSuffix` (public cloud, China,
/// Government or an Azure Stack Hub suffix such as
/// `local.azurestack.external`), `BlobEndpoint`, `SharedAccessSignature`,
/// `UseDevelopmentStorage=true`. With both a key and a SAS, the key is used.
///
/// ```
/// # use eventhub_checkpoints_blob::ConnectionString;
/// let cs = ConnectionString::parse(
///     "DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=a2V5;EndpointSuffix=local.azurestack.external",
/// )?;
/// assert_eq!(cs.blob_endpoint, "https://contoso.blob.local.azurestack.external");
/// assert!(!format!("{cs:?}").contains("a2V5"));
/// # Ok::<(), eventhub_checkpoints_blob::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionString {
    /// The blob service endpoint (account URL), without a trailing `/`.
    pub blob_endpoint: String,
    /// The credential the string carries (`Anonymous` if none).
    pub credential: Credential,
}

#[derive(Default)]
struct Fields<'a> {
    account_name: Option<&'a str>,
    account_key: Option<&'a str>,
    protocol: Option<&'a str>,
    suffix: Option<&'a str>,
    blob_endpoint: Option<&'a str>,
    sas: Option<&'a str>,
    development: bool,
}

impl ConnectionString {
    /// Parses a connection string. Errors name the field at fault and never
    /// repeat a key or signature.
    pub fn parse(connection_string: &str) -> Result<Self, ConfigError> {
        let fields = split(connection_string)?;
        if let Some(account) = fields.account_name {
            crate::credential::validate_account_name(account)?;
        }
        if fields.development {
            return Ok(Self {
                blob_endpoint: DEVELOPMENT_BLOB_ENDPOINT.to_owned(),
                credential: Credential::shared_key(DEVELOPMENT_ACCOUNT, DEVELOPMENT_ACCOUNT_KEY)?,
            });
        }
        let blob_endpoint = match (fields.blob_endpoint, fields.account_name) {
            (Some(endpoint), _) => endpoint.trim_end_matches('/').to_owned(),
            (None, Some(account)) => {
                let protocol = fields.protocol.unwrap_or("https");
                if !protocol.eq_ignore_ascii_case("https") && !protocol.eq_ignore_ascii_case("http") {
                    return Err(ConfigError::InvalidField {
                        field: "DefaultEndpointsProtocol",
                        reason: format!("{protocol:?} is neither https nor http"),
                    });
                }
                let suffix = fields.suffix.unwrap_or("core.windows.net").trim_matches('.');
                // A DNS suffix: anything else (`/`, `@`, `?`, `#`, `:`)
                // would move the host or add to the URL.
                let dns = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
                if suffix.is_empty() || !suffix.bytes().all(dns) || suffix.contains("..") {
                    return Err(ConfigError::InvalidField {
                        field: "EndpointSuffix",
                        reason: format!("{suffix:?} is not a DNS suffix"),
                    });
                }
                format!("{}://{account}.blob.{suffix}", protocol.to_ascii_lowercase())
            }
            (None, None) => return Err(ConfigError::NoBlobEndpoint),
        };
        let credential = match (fields.account_key, fields.sas) {
            (Some(key), _) => {
                let account = fields.account_name.ok_or(ConfigError::MissingField {
                    field: "AccountName",
                    why: "AccountKey needs the account name to sign requests",
                })?;
                Credential::shared_key(account, key)?
            }
            (None, Some(sas)) => Credential::Sas(SasToken::new(sas)?),
            (None, None) => Credential::Anonymous,
        };
        Ok(Self {
            blob_endpoint,
            credential,
        })
    }
}

fn split(connection_string: &str) -> Result<Fields<'_>, ConfigError> {
    let mut fields = Fields::default();
    let mut any = false;
    for (index, segment) in connection_string.split(';').enumerate() {
        let segment = segment.trim();
        if segment.is_empty() {
            continue;
        }
        let (key, value) = segment
            .split_once('=')
            .ok_or(ConfigError::MalformedConnectionString { index: index + 1 })?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(ConfigError::MalformedConnectionString { index: index + 1 });
        }
        any = true;
        let key = key.to_ascii_lowercase();
        // An empty key or signature (an unset variable in a template) is
        // an error, not "no credential".
        let secret_field = match key.as_str() {
            "accountkey" => Some("AccountKey"),
            "sharedaccesssignature" => Some("SharedAccessSignature"),
            _ => None,
        };
        if let Some(field) = secret_field.filter(|_| value.is_empty()) {
            return Err(ConfigError::InvalidField {
                field,
                reason: "is empty".into(),
            });
        }
        let slot = match key.as_str() {
            "accountname" => &mut fields.account_name,
            "accountkey" => &mut fields.account_key,
            "defaultendpointsprotocol" => &mut fields.protocol,
            "endpointsuffix" => &mut fields.suffix,
            "blobendpoint" => &mut fields.blob_endpoint,
            "sharedaccesssignature" => &mut fields.sas,
            "usedevelopmentstorage" => {
                fields.development = value.eq_ignore_ascii_case("true");
                continue;
            }
            _ => continue,
        };
        *slot = Some(value).filter(|v| !v.is_empty());
    }
    if !any {
        return Err(ConfigError::NoBlobEndpoint);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = DEVELOPMENT_ACCOUNT_KEY;

    fn endpoint(cs: &str) -> String {
        ConnectionString::parse(cs).unwrap().blob_endpoint
    }

    #[test]
    fn derives_endpoints_for_every_cloud() {
        let key = format!("AccountKey={KEY}");
        assert_eq!(
            endpoint(&format!("AccountName=acct;{key}")),
            "https://acct.blob.core.windows.net"
        );
        for suffix in [
            "core.chinacloudapi.cn",
            "core.usgovcloudapi.net",
            "local.azurestack.external",
        ] {
            assert_eq!(
                endpoint(&format!(
                    "DefaultEndpointsProtocol=https;AccountName=acct;{key};EndpointSuffix={suffix}"
                )),
                format!("https://acct.blob.{suffix}")
            );
        }
        assert_eq!(
            endpoint(&format!("defaultendpointsprotocol=HTTP;accountname=acct;{key}")),
            "http://acct.blob.core.windows.net"
        );
        assert_eq!(
            endpoint(&format!(
                "AccountName=acct;{key};BlobEndpoint=https://proxy.example/acct/;QueueEndpoint=x;Foo=bar;"
            )),
            "https://proxy.example/acct"
        );
        assert_eq!(endpoint("UseDevelopmentStorage=true"), DEVELOPMENT_BLOB_ENDPOINT);
    }

    #[test]
    fn picks_the_credential() {
        let cs = ConnectionString::parse(&format!("AccountName=acct;AccountKey={KEY}")).unwrap();
        assert!(matches!(cs.credential, Credential::SharedKey { ref account, .. } if account == "acct"));
        let cs = ConnectionString::parse(
            "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2021-12-02&sig=abc%3D",
        )
        .unwrap();
        assert!(matches!(cs.credential, Credential::Sas(_)));
        let cs = ConnectionString::parse("BlobEndpoint=https://a.blob.core.windows.net").unwrap();
        assert!(matches!(cs.credential, Credential::Anonymous));
    }

    #[test]
    fn malformed_strings_are_clear_errors_without_secrets() {
        type Expectation = fn(&ConfigError) -> bool;
        let cases: &[(&str, Expectation)] = &[
            ("", |e| matches!(e, ConfigError::NoBlobEndpoint)),
            (";;", |e| matches!(e, ConfigError::NoBlobEndpoint)),
            ("Foo=bar", |e| matches!(e, ConfigError::NoBlobEndpoint)),
            ("AccountName=a;garbage", |e| {
                matches!(e, ConfigError::MalformedConnectionString { index: 2 })
            }),
            ("=x;AccountName=a", |e| {
                matches!(e, ConfigError::MalformedConnectionString { index: 1 })
            }),
            ("AccountName=a;AccountKey=s3cr3t-not-base64!", |e| {
                matches!(
                    e,
                    ConfigError::InvalidField {
                        field: "AccountKey",
                        ..
                    }
                )
            }),
            ("BlobEndpoint=https://x;AccountKey=a2V5", |e| {
                matches!(
                    e,
                    ConfigError::MissingField {
                        field: "AccountName",
                        ..
                    }
                )
            }),
            ("AccountName=a;DefaultEndpointsProtocol=ftp", |e| {
                matches!(
                    e,
                    ConfigError::InvalidField {
                        field: "DefaultEndpointsProtocol",
                        ..
                    }
                )
            }),
            ("AccountName=a;EndpointSuffix=bad/suffix", |e| {
                matches!(
                    e,
                    ConfigError::InvalidField {
                        field: "EndpointSuffix",
                        ..
                    }
                )
            }),
            ("BlobEndpoint=https://x;SharedAccessSignature=sv=1&sp=r", |e| {
                matches!(
                    e,
                    ConfigError::InvalidField {
                        field: "SharedAccessSignature",
                        ..
                    }
                )
            }),
        ];
        for (cs, expected) in cases {
            let err = ConnectionString::parse(cs).expect_err(cs);
            assert!(expected(&err), "{cs:?} gave {err:?}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }
}
