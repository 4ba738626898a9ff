//! Query strings read the way dockerd's Go `net/url` reads them (`ParseQuery`, `FormValue`,
//! `httputils.BoolValue`), refusing what Go would read differently or ambiguously.
//!
//! It must not decide anything: rules ask it for values and judge them.

/// A parsed query: every pair, in order, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// Why a query cannot be read with certainty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query contains ';', which Go's url.ParseQuery refuses and skips; use '&' between parameters")]
    Semicolon,
    #[error("query parameter {0:?} has an invalid percent-escape")]
    BadEscape(String),
    #[error("query parameter {0:?} is not valid UTF-8 once decoded")]
    NotUtf8(String),
    #[error("query parameter {0:?} is given more than once; dockerd reads only the first, so send it once")]
    Repeated(String),
}

impl Query {
    /// Parses a raw query (without the `?`). `None` or empty is an empty query.
    pub fn parse(raw: Option<&str>) -> Result<Query, QueryError> {
        let mut pairs = Vec::new();
        let Some(raw) = raw else {
            return Ok(Query { pairs });
        };
        for part in raw.split('&') {
            if part.contains(';') {
                return Err(QueryError::Semicolon);
            }
            if part.is_empty() {
                continue;
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((unescape(k)?, unescape(v)?));
        }
        Ok(Query { pairs })
    }

    /// The value of `key` as dockerd's `r.FormValue(key)` reads it, refusing a repeated key
    /// (keys are case-sensitive, as in Go).
    pub fn get(&self, key: &str) -> Result<Option<&str>, QueryError> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == key {
                if found.is_some() {
                    return Err(QueryError::Repeated(key.to_string()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Every value of `key`, in order, as dockerd's `r.Form[key]` reads a list parameter.
    pub fn all<'q>(&'q self, key: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `httputils.BoolValue`: false for absent, "", "0", "no", "false", "none" (trimmed, any case).
    pub fn bool(&self, key: &str) -> Result<bool, QueryError> {
        Ok(self.get(key)?.is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
        }))
    }
}

/// The raw query (without the `?`) with the value of every `key` pair set to `value`, every
/// other byte as sent. `value` must need no escaping (a full object ID); `key` is matched
/// decoded, as [`Query::parse`] reads it.
pub fn with_value(raw: &str, key: &str, value: &str) -> Result<String, QueryError> {
    debug_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric()));
    let mut out = String::with_capacity(raw.len() + value.len());
    for (i, part) in raw.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let k = part.split_once('=').map_or(part, |(k, _)| k);
        if !part.is_empty() && unescape(k)? == key {
            out.push_str(k);
            out.push('=');
            out.push_str(value);
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a malformed escape is an error.
fn unescape(s: &str) -> Result<String, QueryError> {
    if !s.contains(['%', '+']) {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .ok_or_else(|| QueryError::BadEscape(s.into()))?;
                // Two hex digits exactly, as Go's `ishex` checks (`from_str_radix` would also
                // take a sign: `%+1`).
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(QueryError::BadEscape(s.into()));
                }
                let hex = std::str::from_utf8(hex).map_err(|_| QueryError::BadEscape(s.into()))?;
                let b = u8::from_str_radix(hex, 16).map_err(|_| QueryError::BadEscape(s.into()))?;
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_like_go() {
        let q = Query::parse(Some("fromImage=busybox%3Alocal&msg=a+b")).unwrap();
        assert_eq!(q.get("fromImage").unwrap(), Some("busybox:local"));
        assert_eq!(q.get("msg").unwrap(), Some("a b"));
    }

    #[test]
    fn repeated_key_is_refused_when_read() {
        let q = Query::parse(Some("networkmode=bridge&networkmode=host")).unwrap();
        assert_eq!(
            q.get("networkmode"),
            Err(QueryError::Repeated("networkmode".into()))
        );
    }

    #[test]
    fn keys_are_case_sensitive_as_in_go() {
        let q = Query::parse(Some("NetworkMode=host")).unwrap();
        assert_eq!(q.get("networkmode").unwrap(), None);
    }

    #[test]
    fn semicolon_and_bad_escapes_are_refused() {
        assert_eq!(
            Query::parse(Some("a=1;b=2")).unwrap_err(),
            QueryError::Semicolon
        );
        assert!(matches!(
            Query::parse(Some("a=%zz")),
            Err(QueryError::BadEscape(_))
        ));
        assert!(matches!(
            Query::parse(Some("a=%4")),
            Err(QueryError::BadEscape(_))
        ));
        // A sign is not a hex digit, whatever `from_str_radix` thinks of it.
        for signed in ["a=%+1", "a=%-1", "%+1=x"] {
            assert!(
                matches!(Query::parse(Some(signed)), Err(QueryError::BadEscape(_))),
                "{signed}"
            );
        }
        assert!(matches!(
            Query::parse(Some("a=%ff")),
            Err(QueryError::NotUtf8(_))
        ));
    }

    #[test]
    fn bool_values_follow_dockerd_spellings() {
        for (v, want) in [
            ("1", true),
            ("true", true),
            ("TRUE", true),
            ("yes", true),
            ("0", false),
            ("false", false),
            ("no", false),
            ("none", false),
            ("", false),
            (" False ", false),
        ] {
            let q = Query::parse(Some(&format!("force={v}"))).unwrap();
            assert_eq!(q.bool("force").unwrap(), want, "{v:?}");
        }
        assert!(!Query::parse(None).unwrap().bool("force").unwrap());
    }
}
