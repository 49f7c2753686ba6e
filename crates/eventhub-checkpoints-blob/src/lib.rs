//! The Azure Blob Storage REST backend of
//! [`eventhub_checkpoints`](https://docs.rs/eventhub-checkpoints): the
//! [`BlobBackend`](eventhub_checkpoints::BlobBackend) trait on the raw Blob
//! REST API, with reqwest.
//!
//! - Credentials: SharedKey (account key), SAS, and Entra ID bearer tokens
//!   from any `azure_core` `TokenCredential` (feature `entra-id`, on by
//!   default) or any [`TokenSource`]; storage connection strings.
//! - [`ApiVersion`] is first class: Azure Stack Hub sites pinned to
//!   2017-11-09 or 2019-02-02 work.
//! - Bounded retries that cannot lie: a write whose response was lost is
//!   reported as possibly applied, and the store reads it back.
//!
//! ```no_run
//! use std::sync::Arc;
//! use eventhub_checkpoints::{CheckpointStore, Scope};
//! use eventhub_checkpoints_blob::{AzureBlobBackend, AzureBlobOptions, Credential};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = AzureBlobBackend::new(
//!     "https://contoso.blob.core.windows.net",
//!     "checkpoints",
//!     Credential::shared_key("contoso", &std::env::var("AZURE_STORAGE_KEY")?)?,
//!     AzureBlobOptions::default(),
//! )?;
//! let store = CheckpointStore::new(Arc::new(backend));
//! let scope = Scope::new("contoso.servicebus.windows.net", "telemetry", "$Default")?;
//! for checkpoint in store.list_checkpoints(&scope).await?.items {
//!     println!("{checkpoint:?}");
//! }
//! # Ok(()) }
//! ```

mod api_version;
mod bearer;
mod client;
mod connection_string;
mod credential;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod list_xml;
mod options;
mod retry;
mod shared_key;

pub use api_version::ApiVersion;
pub use bearer::{BearerToken, STORAGE_SCOPE, TokenSource};
pub use client::AzureBlobBackend;
pub use connection_string::{ConnectionString, DEVELOPMENT_ACCOUNT, DEVELOPMENT_ACCOUNT_KEY};
pub use credential::{AccountKey, Credential, SasToken};
pub use error::ConfigError;
pub use options::AzureBlobOptions;
pub use retry::RetryOptions;
pub use shared_key::SharedKeySigner;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
