//! HTTPS served by the server itself, for a single-host install with no TLS terminator in
//! front: a certificate chain and key from PEM files, read again when either file changes
//! (a renewal by certbot or an ACME client needs no restart), and handshakes run beside the
//! accept loop so that a slow or silent client holds up no one else.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

/// How often the certificate and key files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(5);
/// Longest a client may take over its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once.
const MAX_HANDSHAKES: usize = 256;
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 128;

/// The certificate chain and private key files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate, then the intermediates that sign it (a "fullchain" file).
    pub certificate: PathBuf,
    /// Its private key (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no PEM of the expected kind.
    #[error("cannot read the TLS {what} from {path}: {reason}")]
    File {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not fit the certificate, or is of a kind rustls cannot sign with.
    #[error("the TLS private key {key} does not belong to the certificate {certificate}: {reason}")]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The cryptography TLS uses here (fixed, since more than one provider is compiled in).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain in `path`, first the end-entity certificate.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |reason: String| TlsError::File {
        what: "certificate",
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|error| unreadable(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unreadable(error.to_string()))?;
    if chain.is_empty() {
        return Err(unreadable("it holds no PEM certificate".into()));
    }
    Ok(chain)
}

/// The chain and key in `files`, checked to belong together.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_chain(&files.certificate)?;
    // The key's parse error says nothing of its bytes, so it may be shown.
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|error| TlsError::File {
        what: "private key",
        path: files.key.clone(),
        reason: error.to_string(),
    })?;
    let certified =
        CertifiedKey::from_der(chain, key, provider).map_err(|error| TlsError::Mismatch {
            certificate: files.certificate.clone(),
            key: files.key.clone(),
            reason: error.to_string(),
        })?;
    Ok(Arc::new(certified))
}

/// Whether the chain and key in `files` read and belong together.
pub fn check(files: &TlsFiles) -> Result<(), TlsError> {
    load(files, &provider()).map(drop)
}

/// When each file last changed, as far as its metadata tells.
fn stamps(files: &TlsFiles) -> Option<[(SystemTime, u64); 2]> {
    let stamp = |path: &Path| {
        let metadata = std::fs::metadata(path).ok()?;
        Some((metadata.modified().ok()?, metadata.len()))
    };
    Some([stamp(&files.certificate)?, stamp(&files.key)?])
}

/// The certificate the server presents, replaced when its files change.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A TCP listener that hands out connections once their TLS handshake is done.
#[derive(Debug)]
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    tasks: [tokio::task::AbortHandle; 2],
}

impl TlsListener {
    /// Serves TLS on `tcp` with the certificate and key in `files`, read now (an error
    /// here stops the start) and again whenever they change.
    pub fn new(tcp: TcpListener, files: TlsFiles) -> Result<Self, TlsError> {
        let provider = provider();
        // Stamped before reading, so a renewal that lands meanwhile is read again.
        let stamped = stamps(&files);
        let current = Arc::new(Current(RwLock::new(load(&files, &provider)?)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the provider supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let local = tcp.local_addr().map_err(|error| TlsError::File {
            what: "certificate",
            path: files.certificate.clone(),
            reason: format!("the listener has no address: {error}"),
        })?;
        let (hand_over, accepted) = tokio::sync::mpsc::channel(ACCEPTED_BACKLOG);
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let accepting = tokio::spawn(accept(tcp, acceptor, hand_over));
        let reloading = tokio::spawn(reload_on_change(files, stamped, provider, current));
        Ok(Self {
            accepted,
            local,
            tasks: [accepting.abort_handle(), reloading.abort_handle()],
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accepting task ends only when aborted, which dropping this listener does.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts TCP connections and runs each one's handshake in a task of its own, at most
/// [`MAX_HANDSHAKES`] at a time (clients that open connections and say nothing then wait
/// for their turn in the kernel's backlog, not in this process).
async fn accept(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    hand_over: tokio::sync::mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(turn) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            // One connection's trouble: go on with the next.
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, hand_over) = (acceptor.clone(), hand_over.clone());
        tokio::spawn(async move {
            let _turn = turn;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let _ = hand_over.send((stream, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Whether an accept error concerns only the connection being accepted.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Checks the files every [`RELOAD_CHECK`] and presents their certificate once both read
/// and belong together; until then (a renewal half-written, a wrong key) the certificate
/// in use stays, and the problem is logged once per change.
async fn reload_on_change(
    files: TlsFiles,
    mut seen: Option<[(SystemTime, u64); 2]>,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
) {
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = stamps(&files);
        if now.is_none() || now == seen {
            continue;
        }
        seen = now;
        match load(&files, &provider) {
            Ok(certified) => {
                *current
                    .0
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = certified;
                tracing::info!(certificate = %files.certificate.display(), "TLS certificate reloaded");
            }
            Err(error) => tracing::warn!(
                %error,
                "the changed TLS files are not used; the certificate in use stays until they are fixed"
            ),
        }
    }
}

/// The probe's view of the server's certificate: whichever it presents is accepted, and the
/// handshake's signature is still checked with it. The probe asks its own server on this
/// host, sends nothing secret and reads only the status line, while the certificate names
/// the public host rather than the address asked, and may be one just renewed or (after a
/// renewal half done) one the server no longer reads from its files.
#[derive(Debug)]
pub struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl AnyCertificate {
    /// A client configuration for the probe.
    pub fn client_config() -> rustls::ClientConfig {
        let provider = provider();
        let verifier = Arc::new(Self {
            provider: provider.clone(),
        });
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the provider supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    }
}

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
