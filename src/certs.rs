//! Certificate generation: a throwaway CA, server and client certificates (for `certs-example/`,
//! `dockgate certs example` and the tests).
//!
//! It must not be used to judge certificates: verification lives in `tls` and `identity`.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// What went wrong while making or writing certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("generating certificate {what}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("{what} would be valid until {not_after}, before it becomes valid ({not_before}); give a later end")]
    Validity {
        what: String,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    },
    #[error("SAN {value:?} of {what} is not a valid IA5 string")]
    San { what: String, value: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading CA from {path}")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A generated certificate with its private key, both PEM.
#[derive(Clone, Debug)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that can issue server and client certificates.
pub struct Ca {
    pub pem: Pem,
    issuer: Issuer<'static, KeyPair>,
}

/// What goes into a client (or server) certificate. Defaults: valid from one hour ago for a year,
/// with the clientAuth extended key usage.
#[derive(Clone, Debug)]
pub struct Subject {
    pub cn: String,
    pub o: Option<String>,
    pub ou: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    /// Further subject attributes, in any string type, after CN, O and OU.
    pub names: Vec<(DnType, rcgen::DnValue)>,
}

impl Subject {
    /// A client certificate subject with the clientAuth usage, valid now.
    pub fn client(cn: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Subject {
            cn: cn.to_string(),
            o: None,
            ou: Vec::new(),
            dns: Vec::new(),
            ips: Vec::new(),
            emails: Vec::new(),
            uris: Vec::new(),
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(365),
            extended_key_usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
            names: Vec::new(),
        }
    }

    /// A server certificate subject for `localhost` and the loopback addresses.
    pub fn server_localhost() -> Self {
        let mut s = Subject::client("localhost");
        s.dns = vec!["localhost".into()];
        s.ips = vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
        ];
        s.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        s
    }

    pub fn ou(mut self, ou: &str) -> Self {
        self.ou.push(ou.to_string());
        self
    }

    pub fn org(mut self, o: &str) -> Self {
        self.o = Some(o.to_string());
        self
    }

    pub fn uri(mut self, uri: &str) -> Self {
        self.uris.push(uri.to_string());
        self
    }

    fn params(&self) -> Result<CertificateParams, CertsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.cn.as_str());
        if let Some(o) = &self.o {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        for ou in &self.ou {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        for (ty, value) in &self.names {
            dn.push(ty.clone(), value.clone());
        }
        params.distinguished_name = dn;
        let ia5 = |v: &String| {
            v.clone().try_into().map_err(|_| CertsError::San {
                what: self.cn.clone(),
                value: v.clone(),
            })
        };
        for d in &self.dns {
            params.subject_alt_names.push(SanType::DnsName(ia5(d)?));
        }
        for ip in &self.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        for e in &self.emails {
            params.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
        }
        for u in &self.uris {
            params.subject_alt_names.push(SanType::URI(ia5(u)?));
        }
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.serial_number = Some(random_serial());
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = self.extended_key_usages.clone();
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }
}

impl Ca {
    /// A new self-signed CA, valid from one hour ago for ten years.
    pub fn generate(cn: &str) -> Result<Ca, CertsError> {
        let now = OffsetDateTime::now_utc();
        let (params, key) = ca_params(
            cn,
            BasicConstraints::Unconstrained,
            now + Duration::days(3650),
        )?;
        let cert = params
            .self_signed(&key)
            .map_err(|source| CertsError::Generate {
                what: cn.to_string(),
                source,
            })?;
        Ok(Ca::from_parts(cert.pem(), params, key))
    }

    /// An intermediate CA signed by this one, valid from one hour ago until `not_after`, that
    /// may issue end-entity certificates only (path length 0), and those only for clients (its
    /// extended key usage is clientAuth: a server certificate it signed is not trusted by
    /// clients that check usages along the chain, as Go and webpki do). Its `pem.cert` is its
    /// own certificate: a client presents it after its leaf.
    pub fn intermediate(&self, cn: &str, not_after: OffsetDateTime) -> Result<Ca, CertsError> {
        let (mut params, key) = ca_params(cn, BasicConstraints::Constrained(0), not_after)?;
        if params.not_after <= params.not_before {
            return Err(CertsError::Validity {
                what: cn.to_string(),
                not_before: params.not_before,
                not_after: params.not_after,
            });
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| CertsError::Generate {
                what: cn.to_string(),
                source,
            })?;
        Ok(Ca::from_parts(cert.pem(), params, key))
    }

    fn from_parts(cert: String, params: CertificateParams, key: KeyPair) -> Ca {
        Ca {
            pem: Pem {
                cert,
                key: key.serialize_pem(),
            },
            issuer: Issuer::new(params, key),
        }
    }

    /// Loads an existing CA (certificate and key PEM files) to issue more certificates.
    pub fn load(cert: &Path, key: &Path) -> Result<Ca, CertsError> {
        let read = |path: &Path| {
            fs::read_to_string(path).map_err(|source| CertsError::ReadCa {
                path: path.to_path_buf(),
                source,
            })
        };
        let (cert_pem, key_pem) = (read(cert)?, read(key)?);
        let gen_err = |source| CertsError::Generate {
            what: cert.display().to_string(),
            source,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(gen_err)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(gen_err)?;
        Ok(Ca {
            pem: Pem {
                cert: cert_pem,
                key: key_pem,
            },
            issuer,
        })
    }

    /// Issues a certificate for `subject`, signed by this CA.
    pub fn issue(&self, subject: &Subject) -> Result<Pem, CertsError> {
        let gen_err = |source| CertsError::Generate {
            what: subject.cn.clone(),
            source,
        };
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = subject
            .params()?
            .signed_by(&key, &self.issuer)
            .map_err(gen_err)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// The parameters and a new key for a CA certificate named `cn`, valid from one hour ago.
fn ca_params(
    cn: &str,
    constraints: BasicConstraints,
    not_after: OffsetDateTime,
) -> Result<(CertificateParams, KeyPair), CertsError> {
    let key = KeyPair::generate().map_err(|source| CertsError::Generate {
        what: cn.to_string(),
        source,
    })?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = not_after;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    Ok((params, key))
}

/// Writes `pem` as `cert.pem`/`key.pem` in `dir`, with the CA as `ca.pem` (the layout the docker
/// CLI expects for `DOCKER_CERT_PATH`).
pub fn write_client_dir(dir: &Path, ca: &Ca, pem: &Pem) -> Result<(), CertsError> {
    write(&dir.join("ca.pem"), &ca.pem.cert)?;
    write(&dir.join("cert.pem"), &pem.cert)?;
    write(&dir.join("key.pem"), &pem.key)
}

/// Regenerates the `certs-example/` tree: a CA (with its key), a localhost server pair, and the
/// `admin` and `dev` client directories.
pub fn write_example(out: &Path) -> Result<(), CertsError> {
    let ca = Ca::generate("dockgate example CA (not for production)")?;
    write(&out.join("ca.pem"), &ca.pem.cert)?;
    write(&out.join("ca-key.pem"), &ca.pem.key)?;
    let server = ca.issue(&Subject::server_localhost())?;
    write(&out.join("server/cert.pem"), &server.cert)?;
    write(&out.join("server/key.pem"), &server.key)?;
    let admin = ca.issue(
        &Subject::client("admin")
            .org("dockgate-example")
            .ou("admins"),
    )?;
    write_client_dir(&out.join("clients/admin"), &ca, &admin)?;
    let dev = ca.issue(
        &Subject::client("dev")
            .org("dockgate-example")
            .ou("developers")
            .uri("spiffe://example.org/team/dev"),
    )?;
    write_client_dir(&out.join("clients/dev"), &ca, &dev)?;
    let ro = ca.issue(
        &Subject::client("monitor")
            .org("dockgate-example")
            .ou("monitoring"),
    )?;
    write_client_dir(&out.join("clients/monitor"), &ca, &ro)
}

/// Writes a file, creating its parent directories.
pub fn write(path: &Path, contents: &str) -> Result<(), CertsError> {
    let err = |source| CertsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(err)?;
    }
    fs::write(path, contents).map_err(err)
}

fn random_serial() -> SerialNumber {
    // 16 bytes from the OS-seeded hasher state: unique enough for throwaway certificates.
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = Vec::with_capacity(16);
    for _ in 0..2 {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(OffsetDateTime::now_utc().unix_timestamp_nanos() as u128);
        bytes.extend_from_slice(&h.finish().to_be_bytes());
    }
    bytes[0] &= 0x7f; // positive
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn der(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn an_intermediate_issues_client_certificates_only_and_no_further_cas() {
        let root = Ca::generate("root").unwrap();
        let until = OffsetDateTime::now_utc() + Duration::days(30);
        let intermediate = root.intermediate("intermediate", until).unwrap();
        let der = der(&intermediate.pem.cert);
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let constraints = cert.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
        let usages = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(usages.client_auth);
        assert!(!usages.server_auth && !usages.any);
        assert_eq!(cert.issuer().to_string(), "CN=root");
        assert_eq!(
            cert.validity().not_after.timestamp(),
            until.unix_timestamp()
        );
    }

    #[test]
    fn an_intermediate_that_would_end_before_it_begins_is_an_error() {
        let root = Ca::generate("root").unwrap();
        let before_it_begins = OffsetDateTime::now_utc() - Duration::days(1);
        let err = root
            .intermediate("backwards", before_it_begins)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("give a later end"), "{err}");
    }
}
