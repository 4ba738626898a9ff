//! TLS: the rustls server configuration built from the configured files, and the client
//! certificate verifier (chains to a configured CA, valid now, clientAuth usage required).
//!
//! It must not map certificates to identities or roles; `identity` does that after the handshake.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use sha2::{Digest, Sha256};
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

/// The server's TLS configuration, and which client CA bundle verified a chain.
#[derive(Clone, Debug)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub client_cas: ClientCas,
}

/// The client CA bundles as the verifier holds them (`tls.client_ca`, in order).
#[derive(Clone, Debug)]
pub struct ClientCas(Arc<ClientAuthVerifier>);

/// The client CA bundles alone (for `policy explain`: no server certificate or key needed).
/// Every problem is reported into `problems`; `None` when there was any.
pub fn client_cas(files: &TlsFiles, problems: &mut Problems) -> Option<ClientCas> {
    let found = problems.0.len();
    let verifier = client_verifier(files, &provider(), problems)?;
    (problems.0.len() == found).then(|| ClientCas(Arc::new(verifier)))
}

/// One webpki verifier per `tls.client_ca` bundle, so an identity rule can name the bundle a
/// certificate must come from; `None` when no bundle can be used. Every problem goes to
/// `problems`.
fn client_verifier(
    files: &TlsFiles,
    provider: &Arc<CryptoProvider>,
    problems: &mut Problems,
) -> Option<ClientAuthVerifier> {
    let found = problems.0.len();
    let mut bundles = Vec::new();
    for (index, path) in files.client_ca.iter().enumerate() {
        let mut roots = RootCertStore::empty();
        match load_certs("tls.client_ca", path) {
            Ok(cas) => {
                for ca in cas {
                    if let Err(e) = check_dates("tls.client_ca", path, &ca)
                        .and_then(|()| check_is_ca(path, &ca))
                    {
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
        if !roots.is_empty() {
            match WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
            {
                Ok(webpki) => bundles.push((index, webpki)),
                Err(e) => problems.push("", TlsError::Verifier(e)),
            }
        }
    }
    // An empty bundle list says so; a bundle that failed has said why already.
    if bundles.is_empty() && problems.0.len() == found {
        problems.push(
            "",
            TlsError::Empty {
                field: "tls.client_ca",
                path: files.client_ca.first().cloned().unwrap_or_default(),
                what: "CA certificate",
            },
        );
    }
    (!bundles.is_empty()).then(|| ClientAuthVerifier::new(bundles))
}

impl ClientCas {
    /// The index in `tls.client_ca` of the bundle a chain the handshake just accepted verified
    /// to. With one bundle, that one; otherwise the bundle the verifier remembered with the
    /// chain, or (once forgotten) the chain verified again, which gives `None` when no bundle
    /// verifies it now. Whether the chain is still valid is not asked here, with one bundle or
    /// several: every request checks the chain's end of validity itself.
    pub fn which(&self, chain: &[CertificateDer<'_>]) -> Option<usize> {
        let verifier = &self.0;
        if verifier.bundles.len() == 1 {
            return Some(verifier.bundles[0].0);
        }
        let (leaf, intermediates) = chain.split_first()?;
        let key = VerifiedChains::key(leaf, intermediates);
        if let Some(bundle) = verifier.verified.remembered(&key) {
            return Some(bundle);
        }
        verifier
            .verify(key, leaf, intermediates, UnixTime::now())
            .ok()
    }

    /// The bundle `chain` verifies to now (with the leaf's clientAuth usage), or why none
    /// does: what a handshake presenting it would find.
    pub fn verify(&self, chain: &[CertificateDer<'_>]) -> Result<usize, rustls::Error> {
        let verifier = &self.0;
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(rustls::Error::NoCertificatesPresented);
        };
        let now = UnixTime::now();
        let key = VerifiedChains::key(leaf, intermediates);
        if let Some(bundle) = verifier.verified.bundle(&key, now) {
            return Ok(bundle);
        }
        verifier.verify(key, leaf, intermediates, now)
    }
}

/// Builds the server configuration. Every problem is reported into `problems` (so `dockgate
/// check` lists them all); `None` is returned when there was any.
pub fn server_config(files: &TlsFiles, problems: &mut Problems) -> Option<Tls> {
    let provider = provider();
    // Each part reports its own problems, in the config's order, before any is given up on.
    let certified = server_key(files, &provider, problems);
    let verifier = client_verifier(files, &provider, problems);
    let (certified, verifier) = (certified?, Arc::new(verifier?));
    match server_config_with(provider, certified, verifier.clone()) {
        Ok(config) => Some(Tls {
            config,
            client_cas: ClientCas(verifier),
        }),
        Err(e) => {
            problems.push("", e);
            None
        }
    }
}

/// The crypto provider every TLS object in dockgate uses: aws-lc-rs, with AES-128-GCM preferred
/// (as Go's crypto/tls does on AES-NI hardware). It is as strong as needed here and
/// noticeably cheaper per byte than AES-256-GCM on streams (`docker cp`, logs, builds).
///
/// Key exchange offers the post-quantum hybrid X25519MLKEM768 besides X25519 and the NIST
/// curves. rustls takes the first group in the client's list that it supports, so a client that
/// prefers the hybrid (the Go 1.24 docker CLI, as with dockerd) gets it; others get X25519.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    use rustls::crypto::aws_lc_rs::kx_group as kx;
    Arc::new(CryptoProvider {
        kx_groups: vec![kx::X25519MLKEM768, kx::X25519, kx::SECP256R1, kx::SECP384R1],
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
        ..rustls::crypto::aws_lc_rs::default_provider()
    })
}

/// The server's certificate chain and key, checked; every problem goes to `problems`.
fn server_key(
    files: &TlsFiles,
    provider: &Arc<CryptoProvider>,
    problems: &mut Problems,
) -> Option<rustls::sign::CertifiedKey> {
    let chain = load_certs("tls.cert", &files.cert);
    let key = load_key(&files.key);
    let (chain, key) = match (chain, key) {
        (Ok(c), Ok(k)) => (c, k),
        (c, k) => {
            problems.push(
                "",
                c.err().unwrap_or(TlsError::Empty {
                    field: "tls.key",
                    path: files.key.clone(),
                    what: "private key",
                }),
            );
            if let Err(e) = k {
                problems.push("", e);
            }
            return None;
        }
    };
    if let Some(Err(e)) = chain
        .first()
        .map(|leaf| check_dates("tls.cert", &files.cert, leaf))
    {
        problems.push("", e);
        return None;
    }
    rustls::sign::CertifiedKey::from_der(chain, key, provider)
        .map_err(|source| {
            problems.push(
                "",
                TlsError::KeyMismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    source,
                },
            )
        })
        .ok()
}

fn server_config_with(
    provider: Arc<CryptoProvider>,
    certified: rustls::sign::CertifiedKey,
    verifier: Arc<ClientAuthVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption. Docker clients do not resume (the Go CLI sets no session cache;
    // the Python SDK opens plain new connections), so tickets would be work and bytes for
    // nothing on every handshake; and a resumed session would skip the client-chain check, so
    // a CA or revocation change could not reach it.
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
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

/// A trust anchor must be a CA certificate: rustls trusts any certificate it is given as one,
/// so a client certificate in a `client_ca` bundle (`cat client.pem ca.pem`) would let that
/// client's key issue certificates for any identity.
fn check_is_ca(path: &Path, der: &CertificateDer<'_>) -> Result<(), TlsError> {
    let bad = |reason: String| TlsError::BadCert {
        field: "tls.client_ca",
        path: path.to_path_buf(),
        reason,
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| bad(e.to_string()))?
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(bad(format!(
            "{} is not a CA certificate (no basicConstraints CA:TRUE; an X.509 v1 root has none: reissue it as v3); list only the CAs that issue client certificates",
            cert.subject()
        )));
    }
    Ok(())
}

/// The webpki verifier, plus a requirement rustls does not make: the leaf must carry the
/// clientAuth extended key usage (webpki accepts a certificate with no EKU extension at all).
///
/// Chains it accepted are remembered (see [`VerifiedChains`]), so a client that reconnects with
/// the same certificate skips the chain's signature check. Its CertificateVerify signature, the
/// proof that it holds the key, is still checked on every handshake.
///
/// Each `tls.client_ca` bundle has a webpki verifier of its own, tried in order: the chain is
/// remembered with the bundle that verified it, for identity rules that name one.
#[derive(Debug)]
struct ClientAuthVerifier {
    /// (index in `tls.client_ca`, its verifier); never empty.
    bundles: Vec<(usize, Arc<dyn ClientCertVerifier>)>,
    /// Every bundle's CA names, for the certificate request.
    hints: Vec<DistinguishedName>,
    verified: VerifiedChains,
}

impl ClientAuthVerifier {
    fn new(bundles: Vec<(usize, Arc<dyn ClientCertVerifier>)>) -> Self {
        let hints = bundles
            .iter()
            .flat_map(|(_, v)| v.root_hint_subjects().iter().cloned())
            .collect();
        ClientAuthVerifier {
            bundles,
            hints,
            verified: VerifiedChains::default(),
        }
    }

    /// The first bundle that verifies the chain (and the leaf's clientAuth usage), remembered
    /// with it; else the most telling refusal: one from a bundle that knows the issuer
    /// (expired, revoked, wrong usage) over "unknown issuer".
    fn verify(
        &self,
        key: [u8; 32],
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<usize, rustls::Error> {
        let unknown = |e: &rustls::Error| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            )
        };
        let mut refusal: Option<rustls::Error> = None;
        let mut verified = None;
        for (index, bundle) in &self.bundles {
            match bundle.verify_client_cert(end_entity, intermediates, now) {
                Ok(_) => {
                    verified = Some(*index);
                    break;
                }
                Err(e) => {
                    if refusal.as_ref().is_none_or(unknown) {
                        refusal = Some(e);
                    }
                }
            }
        }
        let Some(index) = verified else {
            return Err(refusal.unwrap_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )));
        };
        let Ok((_, leaf)) = X509Certificate::from_der(end_entity) else {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ));
        };
        if !matches!(leaf.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose,
            ));
        }
        if let Some(window) = Validity::of_chain(&leaf, intermediates) {
            self.verified.remember(key, window, index);
        }
        Ok(index)
    }

    /// The verifier whose provider checks handshake signatures (the same for every bundle).
    fn signatures(&self) -> &dyn ClientCertVerifier {
        self.bundles[0].1.as_ref()
    }
}

/// A client certificate the verifier refused, as presented: what the audit record of the
/// refused handshake says about it. Nothing in it is vouched for by a CA (a forger can write
/// any subject); the fingerprint names the exact certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// SHA-256 of the leaf's DER, as identities and audit records write fingerprints.
    pub fingerprint: String,
    /// As the leaf states them; absent when it is not a readable X.509 certificate.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::audit::clipped"
    )]
    pub subject: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::audit::clipped"
    )]
    pub issuer: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::audit::clipped"
    )]
    pub serial: Option<String>,
}

thread_local! {
    /// The certificate the last refused verification on this thread was about. The verifier
    /// runs within the poll of a connection's handshake that then returns its error (as
    /// tokio-rustls does: the error of `process_new_packets` ends the handshake in that poll),
    /// so that connection's error path takes the certificate in the same poll, on the same
    /// thread, before any other connection is polled there.
    static REFUSED: std::cell::RefCell<Option<Refused>> = const { std::cell::RefCell::new(None) };
}

/// Forgets what an earlier handshake on this thread left (one refused by rustls after the
/// verifier had noted a certificate, without the certificate error this is taken on).
pub fn forget_refused() {
    REFUSED.with(|r| r.borrow_mut().take());
}

/// The certificate this thread's verifier refused, when `error` (a handshake's) is that
/// refusal.
pub fn take_refused(error: &std::io::Error) -> Option<Refused> {
    let refused = REFUSED.with(|r| r.borrow_mut().take());
    let rustls_error = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    matches!(rustls_error, rustls::Error::InvalidCertificate(_)).then_some(refused)?
}

fn note_refused(end_entity: &CertificateDer<'_>) {
    let fingerprint = crate::identity::fingerprint_of(end_entity);
    let refused = match X509Certificate::from_der(end_entity) {
        Ok((_, cert)) => Refused {
            fingerprint,
            subject: Some(distinguished_name(cert.subject())),
            issuer: Some(distinguished_name(cert.issuer())),
            serial: Some(crate::identity::hex(cert.raw_serial())),
        },
        Err(_) => Refused {
            fingerprint,
            subject: None,
            issuer: None,
            serial: None,
        },
    };
    REFUSED.with(|r| *r.borrow_mut() = Some(refused));
}

/// A presented certificate's distinguished name with RFC 4514's escaping, in the
/// certificate's order (RFC 4514 writes the last RDN first): `,` between RDNs, `+` within one,
/// and in each value `,+";<>\\`, a leading `#` or space and a trailing space escaped with a
/// backslash, control characters as `\XX`; a value that is not a UTF8, Printable, IA5 or
/// Numeric string is `#` and its DER encoding in hex. Two different names never read alike
/// (unlike x509-parser's `Display`, which writes `CN=a, O=b` for the single CN `a, O=b` too).
fn distinguished_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut out = String::new();
    for (i, rdn) in name.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match x509_parser::objects::oid2abbrev(attr.attr_type(), registry) {
                Ok(abbrev) => out.push_str(abbrev),
                Err(_) => out.push_str(&attr.attr_type().to_id_string()),
            }
            out.push('=');
            match attr.as_str() {
                Ok(text) => escape_dn_value(&mut out, text),
                Err(_) => {
                    use x509_parser::der_parser::asn1_rs::ToDer;
                    out.push('#');
                    let der = attr.attr_value().to_der_vec().unwrap_or_default();
                    out.push_str(&crate::identity::hex(&der));
                }
            }
        }
    }
    out
}

fn escape_dn_value(out: &mut String, text: &str) {
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = std::fmt::Write::write_fmt(out, format_args!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

impl ClientCertVerifier for ClientAuthVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let key = VerifiedChains::key(end_entity, intermediates);
        if self.verified.bundle(&key, now).is_none() {
            if let Err(e) = self.verify(key, end_entity, intermediates, now) {
                note_refused(end_entity);
                return Err(e);
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    // A certificate presented without its key (a copy of someone's) fails here, after its
    // chain verified: it is named in the record too.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verified = self.signatures().verify_tls12_signature(message, cert, dss);
        if verified.is_err() {
            note_refused(cert);
        }
        verified
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verified = self.signatures().verify_tls13_signature(message, cert, dss);
        if verified.is_err() {
            note_refused(cert);
        }
        verified
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures().supported_verify_schemes()
    }
}

/// Client chains the verifier has accepted, by the SHA-256 of the exact bytes presented (leaf
/// and intermediates, each length-prefixed), each with the span of time in which every
/// certificate of the chain is valid. A remembered chain is accepted again only within that
/// span; outside it, or for any other bytes, the chain is verified from scratch.
///
/// The memory belongs to one verifier, so it goes with it when the configuration (the CA) is
/// rebuilt. Should CRLs come, a change of the CRL set must empty it, and no entry may outlive
/// a CRL's next update. Only acceptances are remembered. At most [`MAX_VERIFIED_CHAINS`]
/// chains are held; when full, it is emptied and fills again (a fleet of more distinct client
/// chains than that keeps verifying, at the uncached cost).
#[derive(Debug, Default)]
struct VerifiedChains {
    /// Each chain's validity, and the bundle that verified it.
    chains: Mutex<HashMap<[u8; 32], (Validity, usize)>>,
}

/// Distinct client chains remembered per configuration (about 100 bytes each).
const MAX_VERIFIED_CHAINS: usize = 4096;

impl VerifiedChains {
    fn key(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> [u8; 32] {
        let mut h = Sha256::new();
        for der in std::iter::once(end_entity).chain(intermediates) {
            h.update((der.len() as u64).to_be_bytes());
            h.update(der.as_ref());
        }
        h.finalize().into()
    }

    /// The bundle a remembered chain verified to, while it is valid.
    fn bundle(&self, key: &[u8; 32], now: UnixTime) -> Option<usize> {
        let chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        chains
            .get(key)
            .filter(|(v, _)| v.contains(now))
            .map(|(_, bundle)| *bundle)
    }

    /// The bundle a remembered chain verified to, valid now or not.
    fn remembered(&self, key: &[u8; 32]) -> Option<usize> {
        let chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        chains.get(key).map(|(_, bundle)| *bundle)
    }

    fn remember(&self, key: [u8; 32], validity: Validity, bundle: usize) {
        let mut chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        if chains.len() >= MAX_VERIFIED_CHAINS {
            chains.clear();
        }
        chains.insert(key, (validity, bundle));
    }
}

/// The earliest end of validity among the intermediates a client presented (Unix seconds);
/// `None` when there are none, or one cannot be read (webpki has verified them already).
/// A keep-alive connection is refused once its chain, not only its leaf, has expired.
pub fn intermediates_not_after(intermediates: &[CertificateDer<'_>]) -> Option<i64> {
    if intermediates.is_empty() {
        return None;
    }
    Validity::of_intermediates(intermediates).map(|v| v.not_after)
}

/// When every certificate of a chain is valid: from `not_before` (inclusive) to `not_after`
/// (exclusive, one second inside what webpki allows), in Unix seconds.
#[derive(Clone, Copy, Debug)]
struct Validity {
    not_before: i64,
    not_after: i64,
}

impl Validity {
    /// The intersection of the leaf's and every presented intermediate's validity; `None` when
    /// an intermediate cannot be read (the chain is then not remembered).
    fn of_chain(leaf: &X509Certificate<'_>, intermediates: &[CertificateDer<'_>]) -> Option<Self> {
        Some(Validity::of(leaf).and(Validity::of_intermediates(intermediates)?))
    }

    /// The intersection of the intermediates' validity (all time when there are none); `None`
    /// when one cannot be read.
    fn of_intermediates(intermediates: &[CertificateDer<'_>]) -> Option<Self> {
        let mut window = Validity {
            not_before: i64::MIN,
            not_after: i64::MAX,
        };
        for der in intermediates {
            let (_, cert) = X509Certificate::from_der(der).ok()?;
            window = window.and(Validity::of(&cert));
        }
        Some(window)
    }

    fn and(self, other: Validity) -> Validity {
        Validity {
            not_before: self.not_before.max(other.not_before),
            not_after: self.not_after.min(other.not_after),
        }
    }

    fn of(cert: &X509Certificate<'_>) -> Self {
        let v = cert.validity();
        Validity {
            not_before: v.not_before.timestamp(),
            not_after: v.not_after.timestamp(),
        }
    }

    fn contains(&self, now: UnixTime) -> bool {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        self.not_before <= now && now < self.not_after
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::certs::{Ca, Subject};

    /// An inner verifier that answers `accept` and counts how often it was asked.
    #[derive(Debug)]
    struct Counting {
        accept: bool,
        asked: AtomicUsize,
    }

    impl ClientCertVerifier for Counting {
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            &[]
        }
        fn verify_client_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            if self.accept {
                Ok(ClientCertVerified::assertion())
            } else {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                ))
            }
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            unreachable!()
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            unreachable!()
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            Vec::new()
        }
    }

    fn verifier(accept: bool) -> (ClientAuthVerifier, Arc<Counting>) {
        let inner = Arc::new(Counting {
            accept,
            asked: AtomicUsize::new(0),
        });
        (ClientAuthVerifier::new(vec![(0, inner.clone())]), inner)
    }

    fn der(subject: &Subject) -> CertificateDer<'static> {
        let pem = Ca::generate("test CA").unwrap().issue(subject).unwrap();
        CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap()
    }

    fn at(t: time::OffsetDateTime) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.unix_timestamp() as u64))
    }

    fn now() -> UnixTime {
        at(time::OffsetDateTime::now_utc())
    }

    /// The subject of a certificate whose subject is `dn`, as [`distinguished_name`] writes it.
    fn written(dn: rcgen::DistinguishedName) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        distinguished_name(cert.subject())
    }

    #[test]
    fn a_distinguished_name_is_written_so_that_two_names_never_read_alike() {
        let mut one_cn = rcgen::DistinguishedName::new();
        one_cn.push(rcgen::DnType::CommonName, "admin, O=admins");
        let mut two = rcgen::DistinguishedName::new();
        two.push(rcgen::DnType::CommonName, "admin");
        two.push(rcgen::DnType::OrganizationName, "admins");
        assert_eq!(written(one_cn), r"CN=admin\, O=admins");
        assert_eq!(written(two), "CN=admin,O=admins");
        let mut odd = rcgen::DistinguishedName::new();
        odd.push(rcgen::DnType::CommonName, "#a+b\\c\n ");
        assert_eq!(written(odd), r"CN=\#a\+b\\c\0A\ ");
    }

    #[test]
    fn a_client_ca_bundle_holding_a_certificate_that_is_not_a_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate("test CA").unwrap();
        let server = ca.issue(&Subject::server_localhost()).unwrap();
        let client = ca.issue(&Subject::client("alice")).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let files = |bundle: &str| TlsFiles {
            cert: write("cert.pem", &server.cert),
            key: write("key.pem", &server.key),
            client_ca: vec![write("bundle.pem", bundle)],
        };
        let mut problems = Problems::default();
        assert!(server_config(&files(&ca.pem.cert), &mut problems).is_some());
        assert!(problems.0.is_empty(), "{problems:?}");
        let cat = format!("{}{}", client.cert, ca.pem.cert);
        server_config(&files(&cat), &mut problems);
        let text = format!("{problems:?}");
        assert!(text.contains("CN=alice is not a CA certificate"), "{text}");
    }

    #[test]
    fn each_chain_is_told_apart_by_the_client_ca_bundle_it_verifies_to() {
        let dir = tempfile::tempdir().unwrap();
        let corp = Ca::generate("corp CA").unwrap();
        let partner = Ca::generate("partner CA").unwrap();
        let stranger = Ca::generate("stranger CA").unwrap();
        let server = corp.issue(&Subject::server_localhost()).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let files = TlsFiles {
            cert: write("cert.pem", &server.cert),
            key: write("key.pem", &server.key),
            client_ca: vec![
                write("corp.pem", &corp.pem.cert),
                write("partner.pem", &partner.pem.cert),
            ],
        };
        let mut problems = Problems::default();
        let tls = server_config(&files, &mut problems).unwrap();
        assert!(problems.0.is_empty(), "{problems:?}");
        let chain = |ca: &Ca, subject: &Subject| {
            let pem = ca.issue(subject).unwrap();
            vec![CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap()]
        };
        let admin = Subject::client("admin").ou("admins");
        let from_corp = chain(&corp, &admin);
        let from_partner = chain(&partner, &admin);
        for _ in 0..2 {
            assert_eq!(tls.client_cas.which(&from_corp), Some(0));
            assert_eq!(tls.client_cas.which(&from_partner), Some(1));
        }
        assert_eq!(tls.client_cas.verify(&chain(&stranger, &admin)).ok(), None);
        // The verifier leaves the certificate it refused for the handshake's record, as
        // presented, and nothing for one it accepts.
        forget_refused();
        let forged = chain(&stranger, &admin);
        let verifier = &tls.client_cas.0;
        let err = verifier
            .verify_client_cert(&forged[0], &[], now())
            .unwrap_err();
        let err = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        let refused = take_refused(&err).unwrap();
        assert_eq!(
            refused.fingerprint,
            crate::identity::fingerprint_of(&forged[0])
        );
        assert!(refused.subject.as_deref().unwrap().starts_with("CN=admin"));
        assert_eq!(refused.issuer.as_deref(), Some("CN=stranger CA"));
        assert_eq!(take_refused(&err), None, "taken once");
        assert!(verifier
            .verify_client_cert(&from_corp[0], &[], now())
            .is_ok());
        assert_eq!(take_refused(&err), None);
        // Only a certificate error takes it.
        assert!(verifier.verify_client_cert(&forged[0], &[], now()).is_err());
        let other =
            std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(take_refused(&other), None);
        // A chain no bundle verifies (the handshake would have refused it) maps to none.
        assert_eq!(tls.client_cas.which(&chain(&stranger, &admin)), None);
        // A chain remembered from the handshake keeps its bundle even once it has expired (the
        // per-request check refuses it then, with one bundle or several alike).
        let expired = chain(&stranger, &admin);
        let key = VerifiedChains::key(&expired[0], &[]);
        let past = Validity {
            not_before: 0,
            not_after: 1,
        };
        tls.client_cas.0.verified.remember(key, past, 1);
        assert_eq!(tls.client_cas.which(&expired), Some(1));
        // Forgotten chains are verified again.
        tls.client_cas.0.verified.chains.lock().unwrap().clear();
        assert_eq!(tls.client_cas.which(&from_partner), Some(1));
        // Refused by the bundle that knows its issuer's name: the reason is that bundle's (a
        // bad signature, from a CA posing under the partner's name), not "unknown issuer"
        // from the corporate bundle, tried first.
        let impostor = Ca::generate("partner CA").unwrap();
        let leaf = chain(&impostor, &admin).remove(0);
        let key = VerifiedChains::key(&leaf, &[]);
        let err = tls.client_cas.0.verify(key, &leaf, &[], now()).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
            ),
            "{err:?}"
        );
        assert_eq!(tls.client_cas.verify(&[leaf]).ok(), None);
    }

    #[test]
    fn a_chain_accepted_once_is_accepted_again_without_verifying_it_again() {
        let (v, inner) = verifier(true);
        let leaf = der(&Subject::client("alice"));
        for _ in 0..3 {
            v.verify_client_cert(&leaf, &[], now()).unwrap();
        }
        assert_eq!(inner.asked.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_remembered_chain_is_verified_again_outside_its_validity() {
        let (v, inner) = verifier(true);
        let subject = Subject::client("alice");
        let leaf = der(&subject);
        v.verify_client_cert(&leaf, &[], now()).unwrap();
        let _ = v.verify_client_cert(&leaf, &[], at(subject.not_after));
        let before = subject.not_before - time::Duration::seconds(1);
        let _ = v.verify_client_cert(&leaf, &[], at(before));
        assert_eq!(inner.asked.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_refused_chain_is_not_remembered() {
        let (v, inner) = verifier(false);
        let leaf = der(&Subject::client("mallory"));
        for _ in 0..2 {
            assert!(v.verify_client_cert(&leaf, &[], now()).is_err());
        }
        assert_eq!(inner.asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_leaf_without_client_auth_usage_is_refused_every_time() {
        let (v, inner) = verifier(true);
        let mut subject = Subject::client("server-cert");
        subject.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = der(&subject);
        for _ in 0..2 {
            let err = v.verify_client_cert(&leaf, &[], now()).unwrap_err();
            assert!(matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::InvalidPurpose)
            ));
        }
        assert_eq!(inner.asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_same_leaf_with_other_intermediates_is_another_chain() {
        let (v, inner) = verifier(true);
        let leaf = der(&Subject::client("alice"));
        let other = der(&Subject::client("intermediate"));
        v.verify_client_cert(&leaf, &[], now()).unwrap();
        v.verify_client_cert(&leaf, std::slice::from_ref(&other), now())
            .unwrap();
        // The same certificates in another order are another chain too.
        v.verify_client_cert(&other, std::slice::from_ref(&leaf), now())
            .unwrap();
        assert_eq!(inner.asked.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_key_tells_apart_the_same_bytes_split_into_other_certificates() {
        let (a, b) = (
            CertificateDer::from(vec![1, 2, 3]),
            CertificateDer::from(vec![4]),
        );
        let (joined, empty) = (
            CertificateDer::from(vec![1, 2, 3, 4]),
            CertificateDer::from(vec![]),
        );
        let key = VerifiedChains::key;
        assert_ne!(key(&a, std::slice::from_ref(&b)), key(&joined, &[]));
        assert_ne!(
            key(&joined, &[]),
            key(&joined, std::slice::from_ref(&empty))
        );
    }

    #[test]
    fn an_intermediate_that_expires_first_bounds_the_remembered_span() {
        let (v, inner) = verifier(true);
        let leaf = der(&Subject::client("alice"));
        let mut short = Subject::client("intermediate");
        short.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(1);
        let intermediate = der(&short);
        let chain = std::slice::from_ref(&intermediate);
        v.verify_client_cert(&leaf, chain, now()).unwrap();
        v.verify_client_cert(&leaf, chain, now()).unwrap();
        let _ = v.verify_client_cert(&leaf, chain, at(short.not_after));
        assert_eq!(inner.asked.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_connection_lives_no_longer_than_its_earliest_expiring_intermediate() {
        let mut soon = Subject::client("intermediate-1");
        soon.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(1);
        let mut later = Subject::client("intermediate-2");
        later.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(30);
        let chain = [der(&later), der(&soon)];
        assert_eq!(
            intermediates_not_after(&chain),
            Some(soon.not_after.unix_timestamp())
        );
        assert_eq!(intermediates_not_after(&[]), None);
    }

    #[test]
    fn the_memory_is_bounded() {
        let chains = VerifiedChains::default();
        let window = Validity {
            not_before: 0,
            not_after: i64::MAX,
        };
        for i in 0..(MAX_VERIFIED_CHAINS + 10) as u64 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.to_be_bytes());
            chains.remember(key, window, 0);
        }
        assert!(chains.chains.lock().unwrap().len() <= MAX_VERIFIED_CHAINS);
    }
}
