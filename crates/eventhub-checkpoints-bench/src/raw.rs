//! The raw-HTTP floor: the exact requests the store makes, built and signed
//! with SharedKey before the timer starts, then sent with reqwest and no
//! store logic (no name or metadata formatting, no signing, no retries, no
//! timeouts, no semaphore, no XML parsing).
//!
//! Also the untimed helpers every client uses: creating, filling and
//! deleting containers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use eventhub_checkpoints_blob::{AccountKey, ApiVersion, SharedKeySigner};
use futures::{StreamExt as _, TryStreamExt as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Request, StatusCode};
use url::Url;

use crate::cpu::measure;
use crate::workloads::{self, Params, Run};
use crate::{BenchError, Result};

/// As the backend encodes path segments and query values.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The standard headers of the SharedKey string-to-sign, in order.
/// The user agent the backend sends, so the floor's requests are the same bytes.
const USER_AGENT: &str = concat!("eventhub-checkpoints-blob/", env!("CARGO_PKG_VERSION"));

/// An account reached with SharedKey: builds signed requests.
#[derive(Clone)]
pub struct Raw {
    /// `http://127.0.0.1:<port>/<account>`, no trailing slash.
    pub endpoint: String,
    /// The account name.
    pub account: String,
    /// The account key, base64 (as in a connection string).
    pub key_base64: String,
    /// Signs with the backend's own signer (outside the timed sections).
    signer: SharedKeySigner,
    /// [`api_version`](Self::api_version), parsed.
    version: ApiVersion,
    /// `x-ms-version`.
    pub api_version: String,
    /// Requests in flight at once for the claim workload (the store's
    /// `claim_concurrency` and the backend's `max_concurrent_requests`).
    pub concurrency: usize,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw")
            .field("endpoint", &self.endpoint)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Raw {
    /// An account at `endpoint` with the base64 `key`.
    pub fn new(endpoint: &str, account: &str, key_base64: &str, api_version: &str) -> Result<Self> {
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            account: account.to_owned(),
            key_base64: key_base64.to_owned(),
            signer: SharedKeySigner::new(account.to_owned(), &AccountKey::from_base64(key_base64)?),
            api_version: api_version.to_owned(),
            version: ApiVersion::new(api_version)?,
            concurrency: 64,
        })
    }

    /// A storage connection string for the account.
    pub fn connection_string(&self) -> String {
        let protocol = if self.endpoint.starts_with("https:") {
            "https"
        } else {
            "http"
        };
        format!(
            "DefaultEndpointsProtocol={protocol};AccountName={};AccountKey={};BlobEndpoint={};",
            self.account, self.key_base64, self.endpoint
        )
    }

    /// An HTTP client configured as the backend configures its own.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        let builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(self.concurrency.max(1));
        // Like the backend, no system roots for a plain-HTTP endpoint.
        let builder = if self.endpoint.starts_with("http://") {
            builder.tls_certs_only([])
        } else {
            builder
        };
        Ok(builder.build()?)
    }

    /// A signed request with the headers the backend sends: `x-ms-version`,
    /// `x-ms-date`, `x-ms-client-request-id`, `Content-Length: 0` on PUT,
    /// then `headers`, then `Authorization`.
    pub fn request(
        &self,
        method: Method,
        container: &str,
        blob: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Request {
        let mut url = format!("{}/{container}", self.endpoint);
        if let Some(blob) = blob {
            url.push('/');
            for (i, segment) in blob.split('/').enumerate() {
                if i > 0 {
                    url.push('/');
                }
                url.extend(utf8_percent_encode(segment, ENCODE));
            }
        }
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.extend(utf8_percent_encode(name, ENCODE));
            url.push('=');
            url.extend(utf8_percent_encode(value, ENCODE));
        }
        let url = Url::parse(&url).expect("a valid endpoint and encoded parts");
        let mut map = HeaderMap::with_capacity(headers.len() + 6);
        map.insert(
            "x-ms-version",
            HeaderValue::from_str(&self.api_version).expect("a valid version"),
        );
        map.insert(
            "x-ms-date",
            HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())).expect("an HTTP date"),
        );
        map.insert(
            "x-ms-client-request-id",
            HeaderValue::from_str(&format!("{:032x}", rand::random::<u128>())).expect("hex"),
        );
        if method == Method::PUT {
            map.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
                HeaderValue::from_str(value).expect("a valid header value"),
            );
        }
        let signature = self
            .signer
            .authorization(method.as_str(), &url, &map, self.version);
        map.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&signature).expect("base64"),
        );
        let mut request = Request::new(method, url);
        *request.headers_mut() = map;
        request
    }

    /// Sends one request and reads the whole answer; fails unless its status is `expect`.
    async fn call(&self, http: &reqwest::Client, request: Request, expect: StatusCode) -> Result<Answer> {
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let response = http.execute(request).await?;
        let status = response.status();
        let etag = response.headers().get(reqwest::header::ETAG).cloned();
        let body = response.bytes().await?;
        if status != expect {
            return Err(format!(
                "{method} {path}: {status} (expected {expect}): {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )
            .into());
        }
        Ok(Answer { etag, body })
    }

    /// Creates `container`.
    pub async fn create_container(&self, container: &str) -> Result<()> {
        let http = self.http_client()?;
        let request = self.request(Method::PUT, container, None, &[("restype", "container")], &[]);
        self.call(&http, request, StatusCode::CREATED).await.map(drop)
    }

    /// Deletes `container` and every blob in it.
    pub async fn delete_container(&self, container: &str) -> Result<()> {
        let http = self.http_client()?;
        let request = self.request(Method::DELETE, container, None, &[("restype", "container")], &[]);
        self.call(&http, request, StatusCode::ACCEPTED).await.map(drop)
    }

    /// Writes `count` checkpoint blobs (partitions `0..count`) as the store
    /// writes them, `concurrency` at a time.
    pub async fn fill_checkpoints(&self, container: &str, count: u32) -> Result<()> {
        let http = self.http_client()?;
        futures::stream::iter(0..count)
            .map(|p| {
                let offset = (u64::from(p) * 100).to_string();
                let sequence = p.to_string();
                let request = self.request(
                    Method::PUT,
                    container,
                    Some(&workloads::checkpoint_blob(p)),
                    &[],
                    &[
                        ("x-ms-meta-offset", &offset),
                        ("x-ms-meta-sequencenumber", &sequence),
                        ("x-ms-blob-type", "BlockBlob"),
                    ],
                );
                self.call(&http, request, StatusCode::CREATED)
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect::<Vec<_>>()
            .await
            .map(drop)
    }

    /// The `marker` of every page of a checkpoint listing (`None` for the first).
    async fn list_markers(
        &self,
        http: &reqwest::Client,
        container: &str,
        page_size: &str,
    ) -> Result<Vec<Option<String>>> {
        let prefix = workloads::checkpoint_prefix();
        let mut markers = vec![None];
        loop {
            let marker = markers.last().cloned().flatten();
            let request = self.list_request(container, &prefix, page_size, marker.as_deref());
            let answer = self.call(http, request, StatusCode::OK).await?;
            let body = String::from_utf8_lossy(&answer.body);
            match xml_text(&body, "NextMarker").filter(|m| !m.is_empty()) {
                Some(next) => markers.push(Some(next)),
                None => return Ok(markers),
            }
        }
    }

    fn list_request(&self, container: &str, prefix: &str, page_size: &str, marker: Option<&str>) -> Request {
        let mut query = vec![
            ("restype", "container"),
            ("comp", "list"),
            ("prefix", prefix),
            ("include", "metadata"),
            ("maxresults", page_size),
        ];
        if let Some(marker) = marker {
            query.push(("marker", marker));
        }
        self.request(Method::GET, container, None, &query, &[])
    }
}

/// A successful answer.
struct Answer {
    etag: Option<HeaderValue>,
    body: bytes::Bytes,
}

/// The text of the first `<name>` element (enough for `NextMarker`).
fn xml_text(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_owned())
}

fn tally(requests: &mut BTreeMap<String, u64>, kind: &str, count: u64) {
    *requests.entry(kind.to_owned()).or_default() += count;
}

/// Workload 1: create-only Put Blob for every partition, then Set Blob
/// Metadata with `If-Match` on the etag each got; `concurrency` in flight.
/// The renewals can only be signed once the etags are known: the timer
/// stops while they are signed, and the two timed phases are added.
pub async fn claim_renew(raw: &Raw, container: &str, params: &Params) -> Result<Run> {
    let http = raw.http_client()?;
    let n = params.claim_partitions;
    let names: Vec<String> = (0..n).map(workloads::ownership_blob).collect();
    let claims: Vec<Request> = names
        .iter()
        .map(|name| {
            raw.request(
                Method::PUT,
                container,
                Some(name),
                &[],
                &[
                    ("x-ms-meta-ownerid", workloads::OWNER),
                    ("x-ms-blob-type", "BlockBlob"),
                    ("if-none-match", "*"),
                ],
            )
        })
        .collect();
    let (etags, claim_span) = measure(send_window(raw, &http, claims, StatusCode::CREATED)).await;
    let etags = etags?;
    let renewals: Vec<Request> = names
        .iter()
        .zip(&etags)
        .map(|(name, etag)| {
            let etag = etag.as_ref().and_then(|e| e.to_str().ok()).unwrap_or("");
            raw.request(
                Method::PUT,
                container,
                Some(name),
                &[("comp", "metadata")],
                &[("x-ms-meta-ownerid", workloads::OWNER), ("if-match", etag)],
            )
        })
        .collect();
    let (renewed, renew_span) = measure(send_window(raw, &http, renewals, StatusCode::OK)).await;
    renewed?;
    let mut requests = BTreeMap::new();
    tally(&mut requests, "PUT 201", u64::from(n));
    tally(&mut requests, "PUT 200", u64::from(n));
    Ok(Run {
        span: claim_span.plus(renew_span),
        ops: 2 * u64::from(n),
        requests: Some(requests),
    })
}

/// Sends `requests` with at most `raw.concurrency` in flight, in order;
/// returns each answer's etag.
async fn send_window(
    raw: &Raw,
    http: &reqwest::Client,
    requests: Vec<Request>,
    expect: StatusCode,
) -> Result<Vec<Option<HeaderValue>>> {
    futures::stream::iter(requests)
        .map(|request| async move { raw.call(http, request, expect).await.map(|a| a.etag) })
        .buffered(raw.concurrency.max(1))
        .try_collect()
        .await
}

/// Workload 2: per partition, Set Blob Metadata (404: no blob yet), Put
/// Blob, then a Set Blob Metadata per further update; partitions
/// concurrently (one task each), each partition's requests in sequence.
pub async fn checkpoints(raw: &Raw, container: &str, params: &Params) -> Result<Run> {
    let http = raw.http_client()?;
    let mut per_partition: Vec<Vec<(Request, StatusCode)>> = Vec::new();
    for p in 0..params.checkpoint_partitions {
        let name = workloads::checkpoint_blob(p);
        let mut requests = Vec::with_capacity(params.checkpoint_updates as usize + 1);
        for u in 0..params.checkpoint_updates {
            let offset = (u64::from(u) * 100).to_string();
            let sequence = u.to_string();
            let metadata = [
                ("x-ms-meta-offset", offset.as_str()),
                ("x-ms-meta-sequencenumber", &sequence),
            ];
            let set = raw.request(
                Method::PUT,
                container,
                Some(&name),
                &[("comp", "metadata")],
                &metadata,
            );
            if u == 0 {
                requests.push((set, StatusCode::NOT_FOUND));
                let mut put_headers = metadata.to_vec();
                put_headers.push(("x-ms-blob-type", "BlockBlob"));
                let put = raw.request(Method::PUT, container, Some(&name), &[], &put_headers);
                requests.push((put, StatusCode::CREATED));
            } else {
                requests.push((set, StatusCode::OK));
            }
        }
        per_partition.push(requests);
    }
    let total: u64 = per_partition.iter().map(|r| r.len() as u64).sum();
    let (done, span) = measure(async {
        let tasks: Vec<_> = per_partition
            .into_iter()
            .map(|requests| {
                let raw = raw.clone();
                let http = http.clone();
                tokio::spawn(async move {
                    for (request, expect) in requests {
                        raw.call(&http, request, expect).await?;
                    }
                    Ok::<(), BenchError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok::<(), BenchError>(())
    })
    .await;
    done?;
    let parts = u64::from(params.checkpoint_partitions);
    let mut requests = BTreeMap::new();
    tally(&mut requests, "PUT 404", parts);
    tally(&mut requests, "PUT 201", parts);
    tally(&mut requests, "PUT 200", total - 2 * parts);
    Ok(Run {
        span,
        ops: parts * u64::from(params.checkpoint_updates),
        requests: Some(requests),
    })
}

/// Workload 3: `list_repeats` listings of the checkpoints, one after the
/// other, every page read whole (not parsed). The page markers are learnt
/// by an untimed listing first, so that every page can be signed ahead.
pub async fn list(raw: &Raw, container: &str, params: &Params, page_size: u32) -> Result<Run> {
    let http = raw.http_client()?;
    let page_size = page_size.to_string();
    let prefix = workloads::checkpoint_prefix();
    let markers = raw.list_markers(&http, container, &page_size).await?;
    let listings: Vec<Vec<Request>> = (0..params.list_repeats)
        .map(|_| {
            markers
                .iter()
                .map(|m| raw.list_request(container, &prefix, &page_size, m.as_deref()))
                .collect()
        })
        .collect();
    // A fresh client, as for the other clients: the marker listing above
    // leaves no warm connection behind.
    let http = raw.http_client()?;
    let (bodies, span) = measure(async {
        let mut bodies = Vec::with_capacity(listings.len());
        for listing in listings {
            let mut pages = Vec::with_capacity(listing.len());
            for request in listing {
                pages.push(raw.call(&http, request, StatusCode::OK).await?.body);
            }
            bodies.push(pages);
        }
        Ok::<_, BenchError>(bodies)
    })
    .await;
    for pages in bodies? {
        let found: usize = pages
            .iter()
            .map(|b| String::from_utf8_lossy(b).matches("<Blob>").count())
            .sum();
        if found != params.list_count as usize {
            return Err(format!("the floor listed {found} blobs, expected {}", params.list_count).into());
        }
    }
    let mut requests = BTreeMap::new();
    tally(
        &mut requests,
        "GET 200",
        markers.len() as u64 * u64::from(params.list_repeats),
    );
    Ok(Run {
        span,
        ops: u64::from(params.list_repeats),
        requests: Some(requests),
    })
}
