//! Turns the store and scope options into a [`CheckpointStore`] and a
//! [`Scope`].

use std::sync::Arc;

use eventhub_checkpoints::{BlobBackend, CheckpointStore, Scope};
use eventhub_checkpoints_blob::{ApiVersion, AzureBlobBackend, AzureBlobOptions, Credential};
use eventhub_checkpoints_fs::FileBackend;

use crate::cli::{ScopeArgs, StoreArgs};
use crate::error::CliError;

/// The backend a command works on.
pub enum Backend {
    /// A local directory.
    File(Arc<FileBackend>),
    /// An Azure Blob Storage container.
    Azure(AzureBlobBackend),
}

impl Backend {
    /// Opens the backend the options name. A local store is created for a
    /// command that writes; one that only reads needs it to exist (so a
    /// mistyped `--store` is an error, not an empty store).
    pub fn open(args: &StoreArgs, writes: bool) -> Result<Self, CliError> {
        let azure = args.connection_string.is_some() || args.account_url.is_some();
        if !azure {
            if args.container.is_some() || args.sas.is_some() || args.api_version.is_some() {
                return Err(CliError::Usage(
                    "--container, --sas and --api-version need --connection-string or --account-url".into(),
                ));
            }
            let opened = if writes {
                FileBackend::open(&args.store)
            } else {
                FileBackend::open_existing(&args.store)
            };
            let backend = opened.map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    return CliError::Usage(format!(
                        "no checkpoint store at {}: a command that writes creates one; check --store, \
                         or pass --connection-string or --account-url",
                        args.store.display()
                    ));
                }
                let what = format!("cannot open the local store {}", args.store.display());
                // A directory that is not a store is a wrong --store
                // (usage); anything else (permissions, a full disk) is a
                // failure.
                if source.kind() == std::io::ErrorKind::InvalidInput {
                    CliError::Usage(format!("{what}: {source}"))
                } else {
                    CliError::Io { what, source }
                }
            })?;
            return Ok(Self::File(Arc::new(backend)));
        }
        let container = args.container.as_deref().ok_or_else(|| {
            CliError::Usage("--container is required with --connection-string or --account-url".into())
        })?;
        let mut options = AzureBlobOptions::default();
        if let Some(version) = &args.api_version {
            options.api_version = version.parse::<ApiVersion>()?;
        }
        let backend = match (&args.connection_string, &args.account_url) {
            (Some(_), Some(_)) => {
                return Err(CliError::Usage(
                    "give --connection-string (or AZURE_STORAGE_CONNECTION_STRING) or --account-url, not both"
                        .into(),
                ));
            }
            (Some(cs), None) => AzureBlobBackend::from_connection_string(cs, container, options)?,
            (None, Some(url)) => {
                let credential = match (&args.sas, &args.account_key) {
                    (Some(_), Some(_)) => {
                        return Err(CliError::Usage(
                            "give a SAS (--sas or AZURE_STORAGE_SAS_TOKEN) or an account key \
                             (--account-key or AZURE_STORAGE_KEY), not both"
                                .into(),
                        ));
                    }
                    (Some(sas), None) => Credential::sas(sas)?,
                    (None, Some(key)) => {
                        let account = match &args.account_name {
                            Some(name) => name.clone(),
                            None => account_name_from_url(url).ok_or_else(|| {
                                CliError::Usage(
                                    "cannot tell the account name from --account-url; pass --account-name"
                                        .into(),
                                )
                            })?,
                        };
                        Credential::shared_key(account, key)?
                    }
                    (None, None) => {
                        let developer_tools = azure_identity::DeveloperToolsCredential::new(None)
                            .map_err(|e| CliError::Usage(format!("Entra ID sign-in is unavailable: {e}")))?;
                        Credential::bearer(developer_tools)
                    }
                };
                AzureBlobBackend::new(url, container, credential, options)?
            }
            (None, None) => unreachable!("checked above"),
        };
        Ok(Self::Azure(backend))
    }

    /// A store over this backend.
    pub fn store(&self) -> CheckpointStore {
        let backend: Arc<dyn BlobBackend> = match self {
            Backend::File(b) => b.clone(),
            Backend::Azure(b) => Arc::new(b.clone()),
        };
        CheckpointStore::new(backend)
    }
}

/// `contoso` from `https://contoso.blob.core.windows.net`, or the first path
/// segment of a path-style URL such as `http://127.0.0.1:10000/devstoreaccount1`.
fn account_name_from_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host_name = host.split(':').next()?;
    let first_path_segment = path.split('/').find(|s| !s.is_empty());
    let is_ip = host_name.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    if is_ip || host_name == "localhost" {
        first_path_segment.map(str::to_owned)
    } else {
        host_name
            .split('.')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// The scope the options name; namespace and event hub are required.
pub fn scope(args: &ScopeArgs) -> Result<Scope, CliError> {
    scope_with_group(args, args.consumer_group())
}

/// The scope the options name, with defaults for namespace and event hub.
pub fn scope_with_defaults(args: &ScopeArgs, namespace: &str, eventhub: &str) -> Result<Scope, CliError> {
    Ok(Scope::new(
        args.namespace.as_deref().unwrap_or(namespace),
        args.eventhub.as_deref().unwrap_or(eventhub),
        args.consumer_group(),
    )?)
}

/// The scope with another consumer group.
pub fn scope_with_group(args: &ScopeArgs, consumer_group: &str) -> Result<Scope, CliError> {
    let namespace = args
        .namespace
        .as_deref()
        .ok_or_else(|| CliError::Usage("--namespace is required".into()))?;
    let eventhub = args
        .eventhub
        .as_deref()
        .ok_or_else(|| CliError::Usage("--eventhub is required".into()))?;
    Ok(Scope::new(namespace, eventhub, consumer_group)?)
}

#[cfg(test)]
mod tests {
    use super::account_name_from_url;

    #[test]
    fn account_names_from_urls() {
        let cases = [
            ("https://contoso.blob.core.windows.net", Some("contoso")),
            ("https://contoso.blob.local.azurestack.external/", Some("contoso")),
            (
                "http://127.0.0.1:10000/devstoreaccount1",
                Some("devstoreaccount1"),
            ),
            (
                "http://localhost:10000/devstoreaccount1/",
                Some("devstoreaccount1"),
            ),
            ("http://[::1]:10000/acct", Some("acct")),
            ("http://127.0.0.1:10000", None),
            ("nonsense", None),
        ];
        for (url, expected) in cases {
            assert_eq!(account_name_from_url(url).as_deref(), expected, "{url}");
        }
    }
}
