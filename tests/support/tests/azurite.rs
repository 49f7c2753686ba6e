//! Starts Azurite over both transports and checks that it answers, and checks
//! the helpers that need no server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use eventhub_checkpoints_test_support::{
    ACCOUNT_KEY, ACCOUNT_NAME, Azurite, Transport, test_jwt, unique_container_name,
};

/// `scheme://127.0.0.1:port/devstoreaccount1` -> (scheme, 127.0.0.1:port).
fn split_endpoint(endpoint: &str) -> (&str, SocketAddr) {
    let (scheme, rest) = endpoint.split_once("://").expect("endpoint has a scheme");
    let (authority, path) = rest.split_once('/').expect("endpoint has a path");
    assert_eq!(path, ACCOUNT_NAME);
    (scheme, authority.parse().expect("endpoint authority is ip:port"))
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("Azurite accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

#[test]
fn http_azurite_answers() {
    let azurite = Azurite::shared(Transport::Http);
    let (scheme, addr) = split_endpoint(azurite.blob_endpoint());
    assert_eq!(scheme, "http");
    assert!(addr.ip().is_loopback());
    assert_eq!(azurite.ca_certificate_pem(), None);
    assert_eq!(
        azurite.connection_string(),
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};BlobEndpoint={};",
            azurite.blob_endpoint()
        )
    );

    // An anonymous request is refused, but by Azurite.
    let mut stream = connect(addr);
    write!(
        stream,
        "GET /{ACCOUNT_NAME}?comp=list HTTP/1.1\r\nHost: {addr}\r\nx-ms-version: 2021-12-02\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 "),
        "not an HTTP response: {response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("x-ms-request-id"),
        "not Azurite: {response}"
    );

    // Shared: the same server for every caller.
    assert!(std::ptr::eq(azurite, Azurite::shared(Transport::Http)));
}

#[test]
fn https_oauth_azurite_answers() {
    let azurite = Azurite::shared(Transport::HttpsOAuth);
    let (scheme, addr) = split_endpoint(azurite.blob_endpoint());
    assert_eq!(scheme, "https");
    let pem = azurite.ca_certificate_pem().expect("https has a certificate");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(
        azurite
            .connection_string()
            .starts_with("DefaultEndpointsProtocol=https;")
    );
    connect(addr);

    let http = Azurite::shared(Transport::Http);
    assert_ne!(http.blob_endpoint(), azurite.blob_endpoint());
}

#[test]
fn container_names_follow_the_rules() {
    let long = "A".repeat(100);
    for prefix in [
        "checkpoints",
        "",
        "Ab",
        "my_Test::case name",
        "--x--",
        "ünïcode",
        "9lives",
        long.as_str(),
    ] {
        let name = unique_container_name(prefix);
        assert!(
            (3..=63).contains(&name.len()),
            "{name:?} has {} characters",
            name.len()
        );
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name:?} has other characters"
        );
        assert!(!name.starts_with('-') && !name.ends_with('-'), "{name:?}");
        assert!(!name.contains("--"), "{name:?}");
        assert_ne!(name, unique_container_name(prefix), "not unique");
    }
    assert!(unique_container_name("checkpoints").starts_with("checkpoints-"));
    assert!(unique_container_name("My_Test").starts_with("my-test-"));
}

#[test]
fn test_jwt_has_the_claims_azurite_checks() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = test_jwt(Duration::from_secs(3600));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[2], "", "unsigned: the token ends with '.'");

    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    };
    assert_eq!(decode(parts[0]), serde_json::json!({"alg": "none"}));
    let claims = decode(parts[1]);
    assert_eq!(claims["aud"], "https://storage.azure.com");
    let iss = claims["iss"].as_str().unwrap();
    assert!(
        iss.starts_with("https://sts.windows.net/") && iss.ends_with('/'),
        "{iss}"
    );
    let (iat, nbf, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["nbf"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(iat, nbf);
    assert!(nbf < now && now - nbf <= 120, "nbf {nbf}, now {now}");
    assert!(exp > now + 3500 && exp <= now + 3700, "exp {exp}, now {now}");
}
