//! Identity: the verified client leaf certificate read into names (CN, O, OU, SANs, serial,
//! fingerprint), and the configured rules that map an identity to a role.
//!
//! It must not verify certificates (rustls did that in `tls`) nor decide requests (`policy`).

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::Problems;
use crate::policy::Policy;

/// Who is calling, as read from the verified leaf certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub cn: Option<String>,
    pub o: Vec<String>,
    pub ou: Vec<String>,
    pub san_dns: Vec<String>,
    pub san_email: Vec<String>,
    pub san_uri: Vec<String>,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub fingerprint: String,
    /// The end of the certificate's validity (`notAfter`), Unix seconds.
    pub not_after: i64,
    /// The `tls.client_ca` bundle its chain verified to (as configured, resolved), once the
    /// handshake has told.
    pub client_ca: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the client certificate cannot be parsed: {0}")]
pub struct IdentityError(String);

impl Identity {
    /// Reads an identity from a DER certificate (already verified by the TLS layer).
    pub fn from_der(der: &[u8]) -> Result<Identity, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| IdentityError(e.to_string()))?;
        let subject = cert.subject();
        // A name roles are matched on is read as text, or the certificate is refused: a value
        // skipped here could be one a deny or a narrower grant was meant to see.
        let texts = |field: &str, attrs: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
            attrs
                .map(|attr| {
                    attr.as_str().map(str::to_string).map_err(|_| {
                        IdentityError(format!("the subject's {field} is not readable as text (a Teletex or BMP string); reissue the certificate with UTF8String names"))
                    })
                })
                .collect::<Result<Vec<String>, IdentityError>>()
        };
        let mut cns = texts("CN", &mut subject.iter_common_name())?;
        // Readers disagree on which of several CNs is the name (Go's crypto/x509 takes the last,
        // others the first): refuse rather than pick one.
        if cns.len() > 1 {
            return Err(IdentityError(format!(
                "the subject has {} common names (CN); a client certificate must have at most one",
                cns.len()
            )));
        }
        let cn = cns.pop();
        let o = texts("O", &mut subject.iter_organization())?;
        let ou = texts("OU", &mut subject.iter_organizational_unit())?;
        let mut id = Identity {
            cn,
            o,
            ou,
            serial: hex(cert.raw_serial()),
            not_after: cert.validity().not_after.timestamp(),
            fingerprint: fingerprint_of(der),
            ..Identity::default()
        };
        // As with the subject: a SAN that cannot be read would silently match no rule, and a
        // later, broader rule could then take the certificate.
        let san = cert.subject_alternative_name().map_err(|e| {
            IdentityError(format!(
                "its subjectAltName extension cannot be read ({e}); reissue the certificate"
            ))
        })?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => id.san_dns.push(Field::SanDns.normalise(d)),
                    GeneralName::RFC822Name(e) => {
                        id.san_email.push(Field::SanEmail.normalise(e));
                    }
                    GeneralName::URI(u) => id.san_uri.push(Field::SanUri.normalise(u)),
                    _ => {}
                }
            }
        }
        Ok(id)
    }

    /// When the certificate (or an intermediate it came with) stops being valid: the first
    /// instant past `not_after`. What the connection still carries then (a hijacked stream, a
    /// streamed body) is ended there.
    pub fn expiry(&self) -> tokio::time::Instant {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        // In whole seconds, as the check of each request counts them (refused once the clock's
        // second is past `not_after`); far-future dates (9999-12-31, no limit) stay in range.
        let left = self
            .not_after
            .saturating_add(1)
            .saturating_sub(now)
            .clamp(0, 100 * 365 * 86_400);
        tokio::time::Instant::now() + std::time::Duration::from_secs(left as u64)
    }

    /// A short name for logs and messages: the CN, else the fingerprint prefix.
    pub fn display_name(&self) -> &str {
        match &self.cn {
            Some(cn) => cn,
            None => self.fingerprint.get(..16).unwrap_or(&self.fingerprint),
        }
    }

    fn values(&self, field: Field) -> &[String] {
        match field {
            Field::Cn => self.cn.as_slice(),
            Field::O => &self.o,
            Field::Ou => &self.ou,
            Field::SanDns => &self.san_dns,
            Field::SanEmail => &self.san_email,
            Field::SanUri => &self.san_uri,
            Field::Fingerprint => std::slice::from_ref(&self.fingerprint),
            Field::ClientCa => &self.client_ca,
        }
    }
}

/// One identity → role rule as written in the config file. Every given field must match; the
/// role may be a template such as `"{ou}"` or `"{*}"` (the text a trailing `*` matched).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityRule {
    #[serde(default, deserialize_with = "given")]
    cn: Option<String>,
    #[serde(default, deserialize_with = "given")]
    o: Option<String>,
    #[serde(default, deserialize_with = "given")]
    ou: Option<String>,
    #[serde(default, deserialize_with = "given")]
    san_dns: Option<String>,
    #[serde(default, deserialize_with = "given")]
    san_email: Option<String>,
    #[serde(default, deserialize_with = "given")]
    san_uri: Option<String>,
    #[serde(default, deserialize_with = "given")]
    fingerprint: Option<String>,
    /// One of `tls.client_ca`: the certificate's chain must verify to that bundle.
    #[serde(default, deserialize_with = "given")]
    client_ca: Option<String>,
    role: String,
}

/// A rule field that is written must have a value: `cn:` with nothing after it (or `~`, or a
/// variable substituted to nothing) would otherwise drop the condition silently and widen the
/// rule to every certificate that meets the rest.
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(v) if !v.is_empty() => Ok(Some(v)),
        _ => Err(serde::de::Error::custom(
            "an identity rule field is empty: give it a value, or leave the field out",
        )),
    }
}

/// A compiled identity rule.
#[derive(Clone, Debug)]
pub struct IdentityMatcher {
    conditions: Vec<(Field, Pattern)>,
    role: RoleTemplate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Cn,
    O,
    Ou,
    SanDns,
    SanEmail,
    SanUri,
    Fingerprint,
    ClientCa,
}

impl Field {
    /// The form values of this field are compared in, for certificates and rules alike: the
    /// parts that compare without case do so (a DNS name; an email's domain; a URI's scheme and
    /// host), so `CI.Example.com` cannot step past a rule written `ci.example.com`. Other
    /// fields are compared exactly.
    fn normalise(self, value: &str) -> String {
        match self {
            Field::SanDns => value.to_ascii_lowercase(),
            Field::SanEmail => match value.rsplit_once('@') {
                Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
                None => value.to_string(),
            },
            Field::SanUri => normalise_uri(value),
            Field::Fingerprint => normalise_fingerprint(value),
            Field::ClientCa => value.to_string(),
            Field::Cn | Field::O | Field::Ou => value.to_string(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Cn => "cn",
            Field::O => "o",
            Field::Ou => "ou",
            Field::SanDns => "san_dns",
            Field::SanEmail => "san_email",
            Field::SanUri => "san_uri",
            Field::Fingerprint => "fingerprint",
            Field::ClientCa => "client_ca",
        }
    }
}

/// An exact value, or a prefix followed by `*`.
#[derive(Clone, Debug)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    /// Reads a rule's value for `field`: compared in the field's normal form; a `*` may only
    /// end it (a prefix), and a fingerprint is a whole SHA-256 (64 hex digits, `:` allowed).
    fn parse(field: Field, s: &str) -> Result<Pattern, String> {
        let (text, prefix) = match s.strip_suffix('*') {
            Some(text) => (text, true),
            None => (s, false),
        };
        if text.contains('*') {
            return Err(format!(
                "{s:?}: a '*' may only end a value (a prefix match); there are no other wildcards"
            ));
        }
        let text = field.normalise(text);
        if field == Field::Fingerprint
            && (prefix || text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!(
                "{s:?} is not a SHA-256 fingerprint: 64 hex digits (colons and a sha256: prefix allowed), as `openssl x509 -noout -fingerprint -sha256` prints"
            ));
        }
        Ok(if prefix {
            Pattern::Prefix(text)
        } else {
            Pattern::Exact(text)
        })
    }

    /// Returns the wildcard capture ("" for exact) when `value` matches.
    fn matches<'v>(&self, value: &'v str) -> Option<&'v str> {
        match self {
            Pattern::Exact(e) => (e == value).then_some(""),
            Pattern::Prefix(p) => value.strip_prefix(p.as_str()),
        }
    }
}

#[derive(Clone, Debug)]
enum RoleTemplate {
    Fixed(String),
    Template(Vec<Piece>),
}

/// A part of a role template, parsed once when the config is loaded.
#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    /// `{cn}`, `{ou}`, …: the value the rule matched for that field.
    Value(Field),
    /// `{*}`: what the rule's one trailing `*` matched.
    Star,
}

impl RoleTemplate {
    /// Reads a rule's `role`: fixed unless it holds a `{`. Every placeholder must be closed and
    /// name `*` or a field the rule matches: otherwise the rule could never produce a role, and
    /// would fail silently.
    fn parse(role: String, conditions: &[(Field, Pattern)]) -> Result<RoleTemplate, String> {
        if !role.contains('{') {
            return Ok(RoleTemplate::Fixed(role));
        }
        let mut pieces = Vec::new();
        let mut rest = role.as_str();
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let Some(len) = rest[open..].find('}') else {
                return Err(format!(
                    "role template {role:?} has a '{{' without its '}}'"
                ));
            };
            let name = &rest[open + 1..open + len];
            pieces.push(if name == "*" {
                Piece::Star
            } else if name == Field::ClientCa.name() {
                return Err(format!(
                    "role template {role:?} names {{client_ca}}, a file path, not a name a role could have"
                ));
            } else if let Some((field, _)) = conditions.iter().find(|(f, _)| f.name() == name) {
                Piece::Value(*field)
            } else {
                let fields: Vec<&str> = conditions.iter().map(|(f, _)| f.name()).collect();
                return Err(format!(
                    "role template {role:?} names {{{name}}}, which is not a field this rule matches ({}); use one of those or {{*}}",
                    fields.join(", ")
                ));
            });
            rest = &rest[open + len + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(RoleTemplate::Template(pieces))
    }
}

/// Maps an identity to a role name with the first rule that matches and names a defined role.
pub fn resolve_role(rules: &[IdentityMatcher], id: &Identity, policy: &Policy) -> Option<String> {
    rules.iter().find_map(|rule| rule.role_for(id, policy))
}

impl IdentityMatcher {
    fn role_for(&self, id: &Identity, policy: &Policy) -> Option<String> {
        let mut captured: Vec<(Field, &str, &str)> = Vec::with_capacity(self.conditions.len());
        for (field, pattern) in &self.conditions {
            let hit = id
                .values(*field)
                .iter()
                .find_map(|v| pattern.matches(v).map(|cap| (v.as_str(), cap)))?;
            captured.push((*field, hit.0, hit.1));
        }
        let role = match &self.role {
            RoleTemplate::Fixed(r) => r.clone(),
            RoleTemplate::Template(t) => fill_template(t, &captured)?,
        };
        // A template may only produce roles declared under `roles:`, never a built-in name such
        // as `admin` (even redeclared) nor a role that may do more than read without the
        // baseline: a certificate's free-form text must not be able to name unrestricted
        // access. Map admins with a fixed role.
        let allowed = match &self.role {
            RoleTemplate::Fixed(_) => policy.has_role(&role),
            RoleTemplate::Template(_) => policy
                .role(&role)
                .is_some_and(crate::policy::Role::may_come_from_a_template),
        };
        allowed.then_some(role)
    }
}

/// A role template with its placeholders filled in: `{cn}`, `{ou}`, … are the matched values,
/// `{*}` the text the rule's one trailing `*` matched. Inserted text is never read for
/// placeholders again. `None` when `{*}` matched nothing.
fn fill_template(pieces: &[Piece], captured: &[(Field, &str, &str)]) -> Option<String> {
    let mut out = String::new();
    for piece in pieces {
        out.push_str(match piece {
            Piece::Text(text) => text,
            Piece::Value(field) => captured.iter().find(|(f, _, _)| f == field)?.1,
            Piece::Star => captured.iter().find(|(_, _, cap)| !cap.is_empty())?.2,
        });
    }
    Some(out)
}

/// The networks from which some identity rule's role may connect: `None` when at least one
/// reachable role has no network restriction (a template rule can reach every role).
pub fn reachable_networks(
    rules: &[IdentityMatcher],
    policy: &Policy,
) -> Option<crate::net::Networks> {
    let mut union = Vec::new();
    let templated = rules
        .iter()
        .any(|r| matches!(r.role, RoleTemplate::Template(_)));
    let mut visit = |role: &crate::policy::Role| {
        if role.networks.is_any() {
            return false;
        }
        union.extend(role.networks.iter().copied());
        true
    };
    let all_restricted = if templated {
        policy.roles().all(&mut visit)
    } else {
        rules.iter().all(|r| match &r.role {
            RoleTemplate::Fixed(name) => policy.role(name).is_none_or(&mut visit),
            RoleTemplate::Template(_) => true,
        })
    };
    all_restricted.then(|| crate::net::Networks::new(union))
}

/// Compiles the identity rules, checking that fixed roles exist.
pub fn compile_rules(
    raw: Vec<RawIdentityRule>,
    policy: &Policy,
    tls: &crate::config::TlsFiles,
    base: &Path,
    problems: &mut Problems,
) -> Vec<IdentityMatcher> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let field = format!("identities[{i}]");
        let conditions: Vec<(Field, Pattern)> = [
            (Field::Cn, r.cn),
            (Field::O, r.o),
            (Field::Ou, r.ou),
            (Field::SanDns, r.san_dns),
            (Field::SanEmail, r.san_email),
            (Field::SanUri, r.san_uri),
            (Field::Fingerprint, r.fingerprint),
            (Field::ClientCa, r.client_ca),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.map(|v| (f, v)))
        .filter_map(|(f, v)| {
            let pattern = match f {
                Field::ClientCa => client_ca_of(&v, tls, base).map(Pattern::Exact),
                _ => Pattern::parse(f, &v),
            };
            match pattern {
                Ok(pattern) => Some((f, pattern)),
                Err(why) => {
                    problems.push(format!("{field}.{}", f.name()), why);
                    None
                }
            }
        })
        .collect();
        if conditions.is_empty() {
            problems.push(
                field.clone(),
                "a rule needs at least one of cn, o, ou, san_dns, san_email, san_uri, fingerprint, client_ca",
            );
        }
        let role = match RoleTemplate::parse(r.role, &conditions) {
            Ok(role) => role,
            Err(why) => {
                problems.push(format!("{field}.role"), why);
                RoleTemplate::Template(Vec::new())
            }
        };
        match &role {
            RoleTemplate::Template(pieces) if pieces.iter().any(|p| matches!(p, Piece::Star)) => {
                let wildcards = conditions
                    .iter()
                    .filter(|(_, p)| matches!(p, Pattern::Prefix(_)))
                    .count();
                if wildcards != 1 {
                    problems.push(
                        format!("{field}.role"),
                        format_args!("{{*}} needs exactly one field ending in '*' in this rule ({wildcards} here): name the field instead, e.g. {{ou}}"),
                    );
                }
            }
            RoleTemplate::Fixed(name) if !policy.has_role(name) => {
                problems.push(
                    format!("{field}.role"),
                    format_args!("unknown role {name:?}: define it under roles:"),
                );
            }
            _ => {}
        }
        out.push(IdentityMatcher { conditions, role });
    }
    out
}

/// A rule's `client_ca`, resolved like `tls.client_ca` and checked to be one of them; matched
/// exactly (as the resolved path) against the bundle a chain verified to.
fn client_ca_of(
    written: &str,
    tls: &crate::config::TlsFiles,
    base: &Path,
) -> Result<String, String> {
    let path = base.join(written);
    // Named as the listed entry is (`./ca.pem` and `ca.pem` are one path, not one string).
    let listed = tls.client_ca.iter().position(|p| *p == path);
    if let Some(name) = listed.and_then(|i| tls.bundle_name(i)) {
        Ok(name)
    } else {
        Err(format!(
            "{written:?} is not one of tls.client_ca ({}); name a bundle as it is listed there",
            tls.client_ca
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// A URI with its scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`) and host
/// in lower case; user info, port, path, query and fragment as they are. Anything that is not
/// such a URI is kept whole.
fn normalise_uri(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once(':') else {
        return value.to_string();
    };
    let valid = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid {
        return value.to_string();
    }
    let scheme = scheme.to_ascii_lowercase();
    let Some(after) = rest.strip_prefix("//") else {
        return format!("{scheme}:{rest}");
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, tail) = after.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    let host_end = if hostport.starts_with('[') {
        hostport.find(']').map_or(hostport.len(), |i| i + 1)
    } else {
        hostport.rfind(':').unwrap_or(hostport.len())
    };
    let (host, port) = hostport.split_at(host_end);
    format!(
        "{scheme}://{userinfo}{}{port}{tail}",
        host.to_ascii_lowercase()
    )
}

/// Accepts `sha256:AB:CD…`, `AB:CD…` or plain hex; returns lowercase hex.
fn normalise_fingerprint(s: &str) -> String {
    let s = match s.get(..7) {
        Some(head) if head.eq_ignore_ascii_case("sha256:") => &s[7..],
        _ => s,
    };
    let s = match s.split_once('=') {
        // openssl's `sha256 Fingerprint=AB:CD…`
        Some((head, rest)) if head.to_ascii_lowercase().ends_with("fingerprint") => rest,
        _ => s,
    };
    s.chars()
        .filter(|c| *c != ':')
        .flat_map(char::to_lowercase)
        .collect()
}

/// A certificate's SHA-256 fingerprint, as lowercase hex.
pub fn fingerprint_of(der: &[u8]) -> String {
    hex(&Sha256::digest(der))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Ca, Subject};

    fn der_of(pem: &str) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    /// A self-signed certificate with `dn` as its subject (only parsed, never verified here).
    fn der_with_subject(dn: rcgen::DistinguishedName) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[tokio::test(start_paused = true)]
    async fn the_expiry_is_the_second_after_not_after_and_never_out_of_range() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = |not_after: i64| {
            Identity {
                not_after,
                ..Identity::default()
            }
            .expiry()
                - tokio::time::Instant::now()
        };
        // (The clock's second may turn between the two readings.)
        let left = at(now + 9).as_secs();
        assert!(left == 10 || left == 9, "{left}");
        assert_eq!(at(now - 5), std::time::Duration::ZERO);
        assert_eq!(at(i64::MIN), std::time::Duration::ZERO);
        assert!(at(i64::MAX) > std::time::Duration::from_secs(99 * 365 * 86_400));
    }

    /// The role each identity gets under `rules` (YAML identity rules) and `roles` (YAML).
    fn roles_for(rules: &str, roles: &str, ids: &[Identity]) -> (Vec<Option<String>>, Vec<String>) {
        let mut problems = crate::config::Problems::default();
        let roles = serde_norway::from_str(roles).unwrap();
        let policy = Policy::compile(
            roles,
            Default::default(),
            std::path::Path::new("/var/run/docker.sock"),
            &mut problems,
        );
        let tls = crate::config::TlsFiles {
            cert: "/pki/cert.pem".into(),
            key: "/pki/key.pem".into(),
            client_ca: vec!["/pki/corp-ca.pem".into(), "/pki/partner-ca.pem".into()],
        };
        let rules = compile_rules(
            serde_norway::from_str(rules).unwrap(),
            &policy,
            &tls,
            Path::new("/pki"),
            &mut problems,
        );
        let got = ids
            .iter()
            .map(|id| resolve_role(&rules, id, &policy))
            .collect();
        (
            got,
            problems
                .0
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect(),
        )
    }

    fn team(name: &str) -> Identity {
        Identity {
            cn: Some(name.into()),
            o: vec![],
            ou: vec![],
            san_dns: vec![],
            san_email: vec![],
            san_uri: vec![format!("spiffe://t/team/{name}")],
            serial: String::new(),
            fingerprint: String::new(),
            not_after: i64::MAX,
            client_ca: vec![],
        }
    }

    #[test]
    fn a_role_template_never_names_unrestricted_access_even_when_admin_is_redeclared() {
        let rules = r#"[{san_uri: "spiffe://t/team/*", role: "{*}"}]"#;
        let roles = "
admin: {extends: [admin], networks: [10.0.0.0/8]}
ops: {extends: [admin]}
everything: {allow: [all]}
writers: {allow: [containers-write]}
archives: {allow: ['GET /containers/{id}/archive']}
auditors: {extends: [read-only]}
dev: {extends: [baseline]}
";
        let ids = [
            "admin",
            "ops",
            "everything",
            "writers",
            "archives",
            "auditors",
            "dev",
            "read-only",
            "nobody",
        ]
        .map(team);
        let (got, problems) = roles_for(rules, roles, &ids);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            got,
            [
                None,
                None,
                None,
                None,
                None,
                Some("auditors".into()),
                Some("dev".into()),
                None,
                None
            ]
        );
    }

    #[test]
    fn a_template_is_filled_once_and_star_needs_exactly_one_wildcard() {
        let roles = "dev: {extends: [baseline]}\nops: {extends: [read-only]}\n";
        // Inserted text is not read for placeholders again: a CN of "{ou}" is not the OU.
        let mut tricky = team("x");
        tricky.cn = Some("{ou}".into());
        tricky.ou = vec!["dev".into()];
        let (got, _) = roles_for(r#"[{cn: "*", ou: "d*", role: "{cn}"}]"#, roles, &[tricky]);
        assert_eq!(got, [None]);
        let (_, problems) = roles_for(
            r#"[{cn: "svc-*", san_uri: "spiffe://t/team/*", role: "{*}"}]"#,
            roles,
            &[],
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("exactly one field ending in '*'"),
            "{problems:?}"
        );
        for (template, complaint) in [
            ("team-{ou", "without its '}'"),
            (
                "{OU}",
                "names {OU}, which is not a field this rule matches (cn)",
            ),
            ("{san_uri}", "names {san_uri}"),
            ("{client_ca}", "a file path"),
        ] {
            let rules = format!(r#"[{{cn: "x*", role: "{template}"}}]"#);
            let (_, problems) = roles_for(&rules, roles, &[]);
            assert!(
                problems.iter().any(|p| p.contains(complaint)),
                "{template}: {problems:?}"
            );
        }
        let (got, problems) = roles_for(
            r#"[{cn: "ops", san_uri: "spiffe://t/team/*", role: "{*}"}]"#,
            roles,
            &[team("ops"), team("dev")],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(got, [Some("ops".into()), None]);
    }

    #[test]
    fn rule_values_that_would_widen_a_rule_or_never_match_are_refused_at_load() {
        // A field written without a value must not drop its condition.
        for rules in [
            "[{cn: , ou: admins, role: dev}]",
            "[{cn: ~, ou: admins, role: dev}]",
            r#"[{cn: "", ou: admins, role: dev}]"#,
        ] {
            let err = serde_norway::from_str::<Vec<RawIdentityRule>>(rules).unwrap_err();
            assert!(err.to_string().contains("field is empty"), "{rules}: {err}");
        }
        let roles = "dev: {extends: [baseline]}\n";
        for (rules, complaint) in [
            (
                r#"[{san_dns: "*.ops.example.com", role: dev}]"#,
                "may only end a value",
            ),
            (r#"[{fingerprint: "ab:cd", role: dev}]"#, "not a SHA-256"),
            (r#"[{fingerprint: "abcd*", role: dev}]"#, "not a SHA-256"),
            (
                r#"[{fingerprint: "da39a3ee5e6b4b0d3255bfef95601890afd80709", role: dev}]"#,
                "not a SHA-256",
            ),
        ] {
            let (_, problems) = roles_for(rules, roles, &[]);
            assert!(
                problems.iter().any(|p| p.contains(complaint)),
                "{rules}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_client_ca_condition_matches_only_certificates_from_that_bundle() {
        let roles = "ops: {extends: [read-only]}\npartner: {extends: [read-only]}\n";
        // Named as listed, relative or not (`./` is the same path, and matches as one).
        let rules = "[{cn: admin, client_ca: ./corp-ca.pem, role: ops}, {cn: admin, client_ca: /pki/partner-ca.pem, role: partner}]";
        let from = |bundle: &str| {
            let mut id = team("admin");
            id.client_ca = vec![bundle.to_string()];
            id
        };
        let (got, problems) = roles_for(
            rules,
            roles,
            &[
                from("/pki/corp-ca.pem"),
                from("/pki/partner-ca.pem"),
                team("admin"),
            ],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(got, [Some("ops".into()), Some("partner".into()), None]);
        let (_, problems) = roles_for("[{cn: admin, client_ca: other.pem, role: ops}]", roles, &[]);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("is not one of tls.client_ca")),
            "{problems:?}"
        );
    }

    #[test]
    fn fingerprints_are_read_as_openssl_and_people_write_them() {
        let mut id = team("x");
        id.fingerprint = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        for written in [
            "ab".repeat(32),
            colons.clone(),
            format!("sha256:{colons}"),
            format!("SHA256:{colons}"),
            format!("sha256 Fingerprint={colons}"),
        ] {
            let rules = format!(r#"[{{fingerprint: "{written}", role: dev}}]"#);
            let (got, problems) = roles_for(&rules, "dev: {extends: [baseline]}\n", &[id.clone()]);
            assert!(problems.is_empty(), "{written}: {problems:?}");
            assert_eq!(got, [Some("dev".into())], "{written}");
        }
    }

    #[test]
    fn dns_names_email_domains_and_uri_hosts_compare_without_case() {
        let ca = Ca::generate("test CA").unwrap();
        let mut s = Subject::client("ci");
        s.dns.push("CI.Example.COM".into());
        s.emails.push("Bob@Corp.Example".into());
        s.uris.push("SPIFFE://Example.ORG/team/Dev".into());
        let id = Identity::from_der(&der_of(&ca.issue(&s).unwrap().cert)).unwrap();
        assert_eq!(id.san_dns, ["ci.example.com"]);
        assert_eq!(id.san_email, ["Bob@corp.example"]);
        assert_eq!(id.san_uri, ["spiffe://example.org/team/Dev"]);
        let roles = "ci: {extends: [read-only]}\nDev: {extends: [read-only]}\n";
        for rules in [
            r#"[{san_dns: "ci.example.com", role: ci}]"#,
            r#"[{san_dns: "CI.EXAMPLE.com", role: ci}]"#,
            r#"[{san_email: "Bob@CORP.example", role: ci}]"#,
            r#"[{san_uri: "spiffe://EXAMPLE.org/team/D*", role: ci}]"#,
        ] {
            let (got, problems) = roles_for(rules, roles, std::slice::from_ref(&id));
            assert!(problems.is_empty(), "{rules}: {problems:?}");
            assert_eq!(got, [Some("ci".into())], "{rules}");
        }
        for (uri, normal) in [
            (
                "https://User@Host.EXAMPLE:8443/P?Q#F",
                "https://User@host.example:8443/P?Q#F",
            ),
            ("HTTP://[FE80::1]:80/x", "http://[fe80::1]:80/x"),
            // Not an authority: only the scheme folds.
            ("URN:Team/X?u=http://Y", "urn:Team/X?u=http://Y"),
            ("not a scheme://X", "not a scheme://X"),
            ("no-colon", "no-colon"),
        ] {
            assert_eq!(normalise_uri(uri), normal, "{uri}");
        }
        // The local part of an email and a URI's path keep their case.
        for rules in [
            r#"[{san_email: "bob@corp.example", role: ci}]"#,
            r#"[{san_uri: "spiffe://example.org/team/dev", role: ci}]"#,
        ] {
            let (got, _) = roles_for(rules, roles, std::slice::from_ref(&id));
            assert_eq!(got, [None], "{rules}");
        }
    }

    #[test]
    fn a_certificate_with_two_common_names_is_refused() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "alice");
        dn.push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]), "admin");
        let err = Identity::from_der(&der_with_subject(dn)).unwrap_err();
        assert!(err.to_string().contains("2 common names"), "{err}");
    }

    #[test]
    fn an_unreadable_subject_alternative_name_is_refused() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        // subjectAltName (2.5.29.17) whose content is not a GeneralNames sequence.
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                vec![0x04, 0x02, 0xff, 0xff],
            ));
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let err = Identity::from_der(&der).unwrap_err();
        assert!(err.to_string().contains("subjectAltName"), "{err}");
    }

    #[test]
    fn a_subject_name_that_is_not_text_is_refused() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "alice");
        // A BMPString (UTF-16): not a string type the identity reads.
        let ou = rcgen::DnValue::BmpString(rcgen::string::BmpString::try_from("ops").unwrap());
        dn.push(rcgen::DnType::OrganizationalUnitName, ou);
        let err = Identity::from_der(&der_with_subject(dn)).unwrap_err();
        assert!(err.to_string().contains("OU is not readable"), "{err}");
    }

    #[test]
    fn identity_reads_names_sans_serial_and_fingerprint() {
        let ca = Ca::generate("test CA").unwrap();
        let mut s = Subject::client("alice").org("acme").ou("dev");
        s.dns.push("alice.example".into());
        s.emails.push("alice@example.org".into());
        s.uris.push("spiffe://example.org/team/dev".into());
        let pem = ca.issue(&s).unwrap();
        let der = der_of(&pem.cert);
        let id = Identity::from_der(&der).unwrap();
        assert_eq!(id.cn.as_deref(), Some("alice"));
        assert_eq!(id.o, vec!["acme"]);
        assert_eq!(id.ou, vec!["dev"]);
        assert_eq!(id.san_dns, vec!["alice.example"]);
        assert_eq!(id.san_email, vec!["alice@example.org"]);
        assert_eq!(id.san_uri, vec!["spiffe://example.org/team/dev"]);
        assert_eq!(id.fingerprint, hex(&Sha256::digest(&der)));
        assert_eq!(id.fingerprint.len(), 64);
        assert!(!id.serial.is_empty());
    }

    #[test]
    fn garbage_certificate_is_an_error_not_a_panic() {
        assert!(Identity::from_der(b"\x30\x03\x02\x01").is_err());
    }

    #[test]
    fn fingerprints_are_normalised() {
        assert_eq!(normalise_fingerprint("sha256:AB:cd:EF"), "abcdef");
    }

    #[test]
    fn prefix_pattern_captures_the_rest() {
        let p = Pattern::parse(Field::SanUri, "spiffe://example.org/team/*").unwrap();
        assert_eq!(p.matches("spiffe://example.org/team/dev"), Some("dev"));
        assert_eq!(p.matches("spiffe://other/team/dev"), None);
        assert_eq!(
            Pattern::parse(Field::Cn, "admin").unwrap().matches("admin"),
            Some("")
        );
        assert_eq!(
            Pattern::parse(Field::Cn, "admin")
                .unwrap()
                .matches("admins"),
            None
        );
    }
}
