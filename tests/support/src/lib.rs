//! Test support for the Event Hubs checkpoint store: starts the Azurite blob
//! emulator (pinned in `tests/azurite/package.json`) for integration tests,
//! and [`FaultProxy`], an HTTP proxy that injects scripted faults between a
//! client and Azurite.
//!
//! [`Azurite::shared`] starts one in-memory Azurite blob service per
//! [`Transport`] and per test process, the first time a test asks for it, and
//! shares it with every other test of that process. The server stops when the
//! test process exits: it runs under a `sh` that waits on a pipe only this
//! process writes to, and kills Azurite once that pipe closes.
//!
//! Install Azurite first with `tests/run.sh` (or `npm ci --prefix tests/azurite`),
//! or point `AZURITE_BLOB_BIN` at an `azurite-blob` executable.
//!
//! ```no_run
//! use eventhub_checkpoints_test_support::{Azurite, Transport, unique_container_name};
//!
//! let azurite = Azurite::shared(Transport::Http);
//! let connection_string = azurite.connection_string();
//! let container = unique_container_name("checkpoints");
//! # let _ = (connection_string, container);
//! ```

pub mod fault_proxy;

pub use fault_proxy::{Fault, FaultProxy, Match, ObservedRequest, Outcome, Rule};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;

/// The storage account name Azurite serves by default.
pub const ACCOUNT_NAME: &str = "devstoreaccount1";

/// The well-known key of Azurite's default account [`ACCOUNT_NAME`].
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Environment variable naming the `azurite-blob` executable to run instead of
/// the one installed in `tests/azurite/node_modules`.
const BIN_ENV: &str = "AZURITE_BLOB_BIN";

/// How long to wait for Azurite to report that it listens.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The line prefix Azurite prints on stdout once the blob service listens.
const LISTENING: &str = "Azurite Blob service successfully listens on ";

/// Runs Azurite (`"$@"`) in the background and kills it once our stdin pipe
/// closes, which happens when the test process exits; exits itself (and so
/// closes our stdout pipe) if Azurite exits first. Removes the temporary
/// directory it runs in (the current directory) at the end.
///
/// A background list gets `/dev/null` as stdin, so the watcher reads our
/// stdin through fd 3. Once Azurite runs, the shell itself writes nothing to
/// our pipes (whose reader may be gone: a "Terminated" notice would kill it
/// with SIGPIPE before the cleanup) and stops Azurite on a signal.
const SUPERVISOR: &str = r#"dir=$(pwd)
exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
exec 2>/dev/null
trap '' PIPE
trap 'kill "$pid"' HUP INT TERM
{ read _ignored <&3; kill "$pid"; } >/dev/null &
watcher=$!
exec 3<&-
wait "$pid"
status=$?
wait "$pid"
kill "$watcher"
cd /
rm -rf -- "$dir"
exit "$status"
"#;

/// How tests reach Azurite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain HTTP; authenticate with the shared key ([`ACCOUNT_KEY`]) or SAS.
    Http,
    /// HTTPS with a self-signed certificate ([`Azurite::ca_certificate_pem`]),
    /// with OAuth enabled (`--oauth basic`): bearer tokens such as
    /// [`test_jwt`] are accepted, as well as the shared key.
    HttpsOAuth,
}

/// A running Azurite blob service, shared by the tests of one process.
#[derive(Debug)]
pub struct Azurite {
    blob_endpoint: String,
    transport: Transport,
    ca_certificate_pem: Option<String>,
    /// The supervising `sh`; its stdin pipe stays open for as long as this
    /// process lives.
    _supervisor: Child,
}

impl Azurite {
    /// Starts (once per test process, lazily; shared by all tests in that
    /// process) an Azurite blob service reached over `transport`.
    ///
    /// # Panics
    ///
    /// If Azurite is not installed, or does not report that it listens within
    /// 60 seconds; the message includes Azurite's stderr.
    pub fn shared(transport: Transport) -> &'static Azurite {
        static HTTP: OnceLock<Azurite> = OnceLock::new();
        static HTTPS_OAUTH: OnceLock<Azurite> = OnceLock::new();
        let cell = match transport {
            Transport::Http => &HTTP,
            Transport::HttpsOAuth => &HTTPS_OAUTH,
        };
        cell.get_or_init(|| Azurite::start(transport))
    }

    /// The blob service URL of the account [`ACCOUNT_NAME`], e.g.
    /// `http://127.0.0.1:41234/devstoreaccount1` (no trailing slash).
    pub fn blob_endpoint(&self) -> &str {
        &self.blob_endpoint
    }

    /// A storage connection string for the account [`ACCOUNT_NAME`] with its
    /// key [`ACCOUNT_KEY`] and [`blob_endpoint`](Self::blob_endpoint).
    pub fn connection_string(&self) -> String {
        let protocol = match self.transport {
            Transport::Http => "http",
            Transport::HttpsOAuth => "https",
        };
        format!(
            "DefaultEndpointsProtocol={protocol};AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};\
             BlobEndpoint={};",
            self.blob_endpoint
        )
    }

    /// The PEM of the self-signed certificate Azurite serves (for
    /// [`Transport::HttpsOAuth`]; `None` over HTTP). Trust it as a root
    /// certificate; it is valid for `127.0.0.1` and `localhost`.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_certificate_pem.as_deref()
    }

    fn start(transport: Transport) -> Azurite {
        let bin = azurite_bin();
        let dir = tempfile::Builder::new()
            .prefix("eventhub-checkpoints-azurite-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for Azurite: {e}"));

        let mut args: Vec<String> = [
            "--inMemoryPersistence",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--silent",
            "--disableTelemetry",
        ]
        .map(String::from)
        .to_vec();
        let ca_certificate_pem = match transport {
            Transport::Http => None,
            Transport::HttpsOAuth => {
                let (cert, key) = write_self_signed_certificate(dir.path());
                args.extend([
                    "--oauth".into(),
                    "basic".into(),
                    "--cert".into(),
                    cert.0,
                    "--key".into(),
                    key,
                ]);
                Some(cert.1)
            }
        };

        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&bin)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Azurite ({}) through sh: {e}", bin.display()));

        // Collect stderr for error messages, and keep draining stdout so that
        // Azurite never blocks on a full pipe.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut stderr_pipe = supervisor.stderr.take().expect("stderr is piped");
        let stderr_sink = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                let mut sink = stderr_sink.lock().unwrap_or_else(|e| e.into_inner());
                sink.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout_pipe = supervisor.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout_pipe).lines() {
                let Ok(line) = line else { break };
                // Nobody listens once the server has started: keep draining.
                let _ = lines_tx.send(line);
            }
        });

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut stdout_seen = String::new();
        let url = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(url) = parse_listening_line(&line) {
                        break url;
                    }
                    stdout_seen.push_str(&line);
                    stdout_seen.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = supervisor
                        .wait()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string());
                    let _ = stderr_thread.join();
                    panic!(
                        "Azurite ({}) exited ({status}) before listening\n--- stdout ---\n{stdout_seen}\
                         --- stderr ---\n{}",
                        bin.display(),
                        stderr.lock().unwrap_or_else(|e| e.into_inner())
                    );
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Closing stdin makes the supervisor stop Azurite.
                    drop(supervisor.stdin.take());
                    let _ = supervisor.wait();
                    panic!(
                        "Azurite ({}) did not report listening within {STARTUP_TIMEOUT:?}\n--- stdout ---\n\
                         {stdout_seen}--- stderr ---\n{}",
                        bin.display(),
                        stderr.lock().unwrap_or_else(|e| e.into_inner())
                    );
                }
            }
        };

        // From here on the supervisor removes the directory when it ends.
        let _ = dir.keep();
        Azurite {
            blob_endpoint: format!("{}/{ACCOUNT_NAME}", url.trim_end_matches('/')),
            transport,
            ca_certificate_pem,
            _supervisor: supervisor,
        }
    }
}

/// The `azurite-blob` executable: `$AZURITE_BLOB_BIN`, else the one installed
/// in `tests/azurite/node_modules`.
fn azurite_bin() -> PathBuf {
    let bin = match std::env::var_os(BIN_ENV) {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        // This crate is `<workspace>/tests/support`.
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/support has a parent")
            .join("azurite/node_modules/.bin/azurite-blob"),
    };
    if !bin.is_file() {
        panic!(
            "Azurite is not installed: run tests/run.sh (or `npm ci --prefix tests/azurite`) \
             [looked for {}]",
            bin.display()
        );
    }
    bin
}

/// The URL in Azurite's "successfully listens on <url>" line.
fn parse_listening_line(line: &str) -> Option<String> {
    let start = line.find(LISTENING)? + LISTENING.len();
    let url = line[start..].split_whitespace().next()?;
    Some(url.to_owned())
}

/// Writes a self-signed certificate for `127.0.0.1` and `localhost` and its
/// key to `dir`; returns ((certificate path, certificate PEM), key path).
fn write_self_signed_certificate(dir: &Path) -> ((String, String), String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap_or_else(|e| panic!("cannot generate a self-signed certificate: {e}"));
    let cert_pem = certified.cert.pem();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert_pem)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", cert_path.display()));
    std::fs::write(&key_path, certified.signing_key.serialize_pem())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", key_path.display()));
    let path = |p: PathBuf| {
        p.into_os_string()
            .into_string()
            .expect("temporary paths are UTF-8")
    };
    ((path(cert_path), cert_pem), path(key_path))
}

/// A new container name starting with `prefix`, unique per call: a random
/// suffix is appended.
///
/// The name follows the blob container rules: 3 to 63 characters, lowercase
/// letters, digits and single hyphens, starting and ending with a letter or
/// digit. `prefix` is lowercased, other characters become hyphens, and it is
/// shortened if needed.
pub fn unique_container_name(prefix: &str) -> String {
    const SUFFIX_LEN: usize = 16;
    const MAX_LEN: usize = 63;
    let mut name = String::new();
    for c in prefix.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (name.is_empty() || name.ends_with('-')) {
            continue;
        }
        if name.len() == MAX_LEN - SUFFIX_LEN - 1 {
            break;
        }
        name.push(c);
    }
    if !name.is_empty() && !name.ends_with('-') {
        name.push('-');
    }
    let suffix: u64 = rand::rng().random();
    name.push_str(&format!("{suffix:0SUFFIX_LEN$x}"));
    name
}

/// An unsigned JWT that Azurite's `--oauth basic` accepts (it checks the
/// claims, not the signature) for the lifetime given, from now.
///
/// Header `{"alg":"none"}`; claims `aud` `https://storage.azure.com`, `iss`
/// `https://sts.windows.net/<tenant>/`, and `iat`/`nbf` a minute ago, `exp`
/// `lifetime` from now. The signature is empty: the token ends with `.`.
pub fn test_jwt(lifetime: Duration) -> String {
    const TENANT: &str = "9d0a1f6e-3c55-4e6b-8a8e-5f3b2c1d0e7a";
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let issued = now.saturating_sub(60);
    let expires = now.saturating_add(lifetime.as_secs());
    let header = r#"{"alg":"none"}"#;
    let claims = format!(
        r#"{{"aud":"https://storage.azure.com","iss":"https://sts.windows.net/{TENANT}/","iat":{issued},"nbf":{issued},"exp":{expires}}}"#
    );
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            parse_listening_line("Azurite Blob service successfully listens on http://127.0.0.1:36899")
                .as_deref(),
            Some("http://127.0.0.1:36899")
        );
        assert_eq!(
            parse_listening_line("Azurite Blob service is starting on 127.0.0.1:0"),
            None
        );
    }
}
