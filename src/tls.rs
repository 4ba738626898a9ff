//! TLS: the rustls server configuration built from the configured files, and the client
//! certificate verifier (chains to a configured CA, valid now, clientAuth usage required).
//!
//! It must not map certificates to identities or roles; `identity` does that after the handshake.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{Problems, TlsFiles};

/// Why the TLS configuration could not be built; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{field}: cannot read {path}: {source}")]
    Read {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: {path} holds no PEM {what}")]
    Empty {
        field: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{field}: {path}: invalid PEM: {source}")]
    Pem {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{field}: {path}: certificate cannot be used: {reason}")]
    BadCert {
        field: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls.key: {key} does not match the certificate in {cert}: {source}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("tls.client_ca: {path}: {source}")]
    Ca {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("tls.client_ca: building the client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the server configuration. Every problem is reported into `problems` (so `dockgate
/// check` lists them all); `None` is returned when there was any.
pub fn server_config(files: &TlsFiles, problems: &mut Problems) -> Option<Arc<ServerConfig>> {
    match build(files, problems) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            problems.push("", e);
            None
        }
    }
}

/// The crypto provider every TLS object in dockgate uses: ring, with AES-128-GCM preferred
/// (as Go's crypto/tls does on AES-NI hardware). It is as strong as needed here and
/// noticeably cheaper per byte than AES-256-GCM on streams (`docker cp`, logs, builds).
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as cs;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    })
}

fn build(files: &TlsFiles, problems: &mut Problems) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let chain = load_certs("tls.cert", &files.cert);
    let key = load_key(&files.key);
    let mut roots = RootCertStore::empty();
    for path in &files.client_ca {
        match load_certs("tls.client_ca", path) {
            Ok(cas) => {
                for ca in cas {
                    if let Err(e) = check_dates("tls.client_ca", path, &ca) {
                        problems.push("", e);
                    }
                    if let Err(source) = roots.add(ca) {
                        problems.push(
                            "",
                            TlsError::Ca {
                                path: path.clone(),
                                source,
                            },
                        );
                    }
                }
            }
            Err(e) => problems.push("", e),
        }
    }
    let (chain, key) = match (chain, key) {
        (Ok(c), Ok(k)) => (c, k),
        (c, k) => {
            // Report both, then give up.
            if let Err(e) = k {
                problems.push("", e);
            }
            return Err(c.err().unwrap_or(TlsError::Empty {
                field: "tls.key",
                path: files.key.clone(),
                what: "private key",
            }));
        }
    };
    if let Some(leaf) = chain.first() {
        check_dates("tls.cert", &files.cert, leaf)?;
    }
    let certified =
        rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|source| {
            TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
                source,
            }
        })?;
    if roots.is_empty() {
        return Err(TlsError::Empty {
            field: "tls.client_ca",
            path: files.client_ca.first().cloned().unwrap_or_default(),
            what: "CA certificate",
        });
    }
    let webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier = Arc::new(ClientAuthVerifier { inner: webpki });
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Our cipher order (see `provider`), not the client's.
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}

fn load_certs(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = fs::read(path).map_err(|source| TlsError::Read {
        field,
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            field,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            field,
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = fs::read(path).map_err(|source| TlsError::Read {
        field: "tls.key",
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            field: "tls.key",
            path: path.to_path_buf(),
            what: "private key",
        },
        source => TlsError::Pem {
            field: "tls.key",
            path: path.to_path_buf(),
            source,
        },
    })
}

/// A certificate that is expired or not yet valid is a configuration error, reported by `check`.
fn check_dates(field: &'static str, path: &Path, der: &CertificateDer<'_>) -> Result<(), TlsError> {
    let bad = |reason: String| TlsError::BadCert {
        field,
        path: path.to_path_buf(),
        reason,
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
    let validity = cert.validity();
    if !validity.is_valid() {
        return Err(bad(format!(
            "not valid now (valid from {} to {})",
            validity.not_before, validity.not_after
        )));
    }
    Ok(())
}

/// The webpki verifier, plus a requirement rustls does not make: the leaf must carry the
/// clientAuth extended key usage (webpki accepts a certificate with no EKU extension at all).
#[derive(Debug)]
struct ClientAuthVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ClientAuthVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if has_client_auth_eku(end_entity) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn has_client_auth_eku(der: &CertificateDer<'_>) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth)
}
