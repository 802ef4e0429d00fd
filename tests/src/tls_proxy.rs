//! A TLS-terminating proxy in front of a host, as DEPLOY.md advises for a host reached over a
//! network: `https://127.0.0.1:PORT` with a certificate made for the test, forwarding each
//! connection's bytes to the host's plain HTTP address. The clients under test trust the
//! certificate through `SSL_CERT_FILE` (the Rust tools' native roots read it), never by
//! turning verification off.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_rustls::rustls;

/// A running proxy; it stops with the test process.
pub struct TlsProxy {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The PEM certificate the proxy presents (self-signed, for 127.0.0.1 and localhost).
    pub cert_pem: PathBuf,
    /// Connections whose TLS handshake completed.
    pub handshakes: Arc<AtomicUsize>,
}

impl TlsProxy {
    /// Start in front of `upstream` (`http://127.0.0.1:PORT`), writing the certificate into
    /// `dir`.
    pub fn start(upstream: &str, dir: &Path) -> TlsProxy {
        let target: SocketAddr = upstream
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("upstream {upstream} is not http://IP:PORT"));
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let ck = rcgen::generate_simple_self_signed(names).expect("a test certificate");
        let cert_pem = dir.join("tls-proxy.pem");
        std::fs::write(&cert_pem, ck.cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
        // ring, as the clients' reqwest uses (rustls 0.23.48 deprecates it only for its lack
        // of post-quantum key exchange, which a loopback test does not need).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .expect("the test certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else { continue };
                    let (acceptor, counted) = (acceptor.clone(), counted.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        counted.fetch_add(1, Ordering::SeqCst);
                        let Ok(mut up) = tokio::net::TcpStream::connect(target).await else { return };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    });
                }
            });
        });
        TlsProxy { url, cert_pem, handshakes }
    }

    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
