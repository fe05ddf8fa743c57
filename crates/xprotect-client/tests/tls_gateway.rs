//! TLS towards the gateway against a real TLS server with a private CA: verification is on by
//! default, `--ca-cert` makes the private CA trusted, `--insecure` skips verification.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xprotect_client::gateway::{Gateway, GatewayConfig, GatewayError};
use xprotect_client::login::TokenSource;
use xprotect_client::tls::{TlsError, TlsOptions};
use xprotect_proto::signal::{Credentials, LoginError};
use xprotect_proto::wire::Secret;

struct PrivateCa {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

fn private_ca() -> PrivateCa {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "xprotect-webrtc test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    PrivateCa {
        ca_pem: ca_cert.pem(),
        server_chain: vec![server_cert.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// An IDP on HTTPS that answers every request with a token.
async fn tls_idp(ca: &PrivateCa) -> String {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(ca.server_chain.clone(), ca.server_key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/api",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Handshake failures are what the verifying client is expected to cause.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body =
                    r#"{"access_token":"tls-token","expires_in":3600,"token_type":"Bearer"}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    url
}

async fn login(url: &str, tls: TlsOptions) -> Result<TokenSource, LoginError> {
    let mut config = GatewayConfig::new(url.parse().unwrap());
    config.tls = tls;
    let gateway = Gateway::new(&config).unwrap();
    let credentials = Credentials {
        username: "u".into(),
        password: Secret::new("p"),
        client_id: "VmsClient".into(),
    };
    tokio::time::timeout(
        Duration::from_secs(20),
        TokenSource::login(gateway, credentials),
    )
    .await
    .expect("login ends in time")
}

#[tokio::test]
async fn certificates_are_verified_unless_told_otherwise() {
    let ca = private_ca();
    let url = tls_idp(&ca).await;

    let error = login(&url, TlsOptions::default()).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, LoginError::Transport(_)), "{text}");
    assert!(
        text.contains("--ca-cert"),
        "the error must say how to trust a private CA: {text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let tokens = login(
        &url,
        TlsOptions {
            ca_cert: Some(ca_file),
            danger_accept_invalid_certs: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(tokens.current().unwrap().expose(), "tls-token");

    let tokens = login(
        &url,
        TlsOptions {
            ca_cert: None,
            danger_accept_invalid_certs: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(tokens.current().unwrap().expose(), "tls-token");
}

#[test]
fn unusable_ca_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("not-a-cert.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let mut config = GatewayConfig::new("https://127.0.0.1/api".parse().unwrap());
    config.tls.ca_cert = Some(garbage);
    assert!(matches!(
        Gateway::new(&config),
        Err(GatewayError::Tls(TlsError::NoCertificate { .. }))
    ));
    config.tls.ca_cert = Some(dir.path().join("missing.pem"));
    let error = Gateway::new(&config).unwrap_err().to_string();
    assert!(error.contains("missing.pem"), "{error}");
    let config = GatewayConfig::new("ftp://127.0.0.1/api".parse().unwrap());
    assert!(matches!(
        Gateway::new(&config),
        Err(GatewayError::Scheme(_))
    ));
}
