//! Owns reading Docker Engine API JSON request bodies exactly as dockerd's Go `encoding/json`
//! reads them (struct fields by Go's case fold, `map[string]T` keys exactly), so the policy judges
//! the fields dockerd will act on however the client spells the keys.
//! It must never guess and never decide: whatever Go could read in more than one way, or this
//! reader cannot read with certainty (duplicate keys, a byte-order mark, invalid UTF-8, lone
//! surrogates, trailing data, deep nesting), is refused with a typed error rather than
//! interpreted, and allowing or denying a request is left to the policy.
//!
//! # Go semantics mirrored here
//!
//! * A struct field is found by exact key first, else by Go's fold (see [`go_fold_eq`]). When
//!   several keys of one object reach the same field Go lets the last one win — and for nested
//!   structs and maps it *merges* them, so `{"HostConfig":{"Privileged":true},
//!   "hostconfig":{"Memory":1}}` gives a privileged container. [`Object::field`] refuses such
//!   objects with [`InspectError::AmbiguousKey`].
//! * A `map[string]T` (Labels, Sysctls, PortBindings, EndpointsConfig, ...) keys exactly:
//!   `{"a":1,"A":2}` is two entries. Read maps with [`Object::entries`] / [`Object::entry`].
//! * Exact duplicate keys are refused at parse time everywhere (Go would let the last win).
//! * JSON `null` for a field means "leave the zero value": typed getters return `Ok(None)` for
//!   null and for absent fields, `Ok(Some(_))` for a present value, `Err` for a wrong type.
//! * Numbers keep their value exactly when they are integer literals in `i64`/`u64` range; any
//!   other number is held as the `f64` Go's `strconv.ParseFloat` would produce (both round
//!   correctly), so `serde_json`'s `arbitrary_precision` feature is not needed. Go decodes an
//!   integer field with `strconv.ParseInt`/`ParseUint` on the literal, which refuses fractions and
//!   exponents even when integral (`1e2`, `100.0`), and so do [`Json::as_i64`] / [`Json::as_u64`].
//!
//! This reader is stricter than Go where Go would silently substitute or ignore (U+FFFD for
//! invalid UTF-8 and lone surrogates, merged duplicates, data after the value in older dockerd):
//! dockerd would accept those bodies, so refusing them can only block a request, never widen one.

use std::fmt::{self, Write as _};

use serde_json::Number;

/// Deepest nesting of arrays and objects accepted; Docker API bodies stay far below it.
pub const MAX_DEPTH: usize = 128;

/// Parses a request body that must hold a JSON value; an empty or whitespace-only body is
/// refused with [`InspectError::Empty`].
pub fn parse(bytes: &[u8]) -> Result<Json, InspectError> {
    parse_optional(bytes)?.ok_or(InspectError::Empty)
}

/// Parses a request body where "no body" is allowed: empty or whitespace-only input gives
/// `Ok(None)`. dockerd treats a zero-length body as "no config", and a decoder that reaches EOF
/// after only whitespace as no body in the handlers that allow one.
pub fn parse_optional(bytes: &[u8]) -> Result<Option<Json>, InspectError> {
    if bytes.starts_with(UTF8_BOM) {
        return Err(InspectError::ByteOrderMark);
    }
    let text = std::str::from_utf8(bytes).map_err(|err| InspectError::InvalidUtf8 {
        offset: err.valid_up_to(),
    })?;
    let mut parser = Parser {
        text,
        bytes,
        pos: 0,
        entry_stack: Vec::new(),
        item_stack: Vec::new(),
    };
    parser.skip_whitespace();
    if parser.pos >= bytes.len() {
        return Ok(None);
    }
    let value = parser.value(0).map_err(|failure| failure.into_error())?;
    parser.skip_whitespace();
    if parser.pos < bytes.len() {
        return Err(InspectError::TrailingData { offset: parser.pos });
    }
    Ok(Some(value))
}

/// Whether object key `key` names the struct field `field` under Go's `encoding/json` fold.
///
/// Go folds every rune to the smallest rune of its `unicode.SimpleFold` orbit (ASCII letters to
/// upper case) and compares the results. The only non-ASCII runes whose orbit holds an ASCII
/// letter are U+017F LATIN SMALL LETTER LONG S (orbit S s ſ) and U+212A KELVIN SIGN (orbit K k K):
/// in Unicode's CaseFolding.txt the only C/S (simple) lines that map a non-ASCII rune to an ASCII
/// letter are `017F; C; 0073` and `212A; C; 006B`. U+0130 `İ` has only F (full) and T (Turkic)
/// lines and U+0131 `ı` appears only as the target of the Turkic line `0049; T; 0131`; neither is
/// simple folding, and Go's `caseOrbit` table pins both to themselves. Checked by enumerating every
/// rune with Go's `unicode.SimpleFold` (Go 1.19, Unicode 13) and against Go's `encoding/json`
/// itself: only U+017F and U+212A fold into ASCII. Unicode's case-folding stability policy keeps
/// existing mappings fixed, and a test below re-checks the case tables of Rust's std (a newer
/// Unicode) so a future addition would be noticed.
///
/// So for the ASCII field names Docker uses this is exact: same number of runes, each equal
/// ASCII-case-insensitively, or `ſ` against `s`/`S`, or `K` against `k`/`K`. Non-ASCII runes
/// other than those two compare exactly, which is narrower than Go for non-ASCII field names
/// (e.g. `é`/`É`); Docker has none.
#[inline]
pub fn go_fold_eq(key: &str, field: &str) -> bool {
    // Most keys of an object are other fields: reject on the first byte when both are ASCII.
    if let (Some(k), Some(f)) = (key.as_bytes().first(), field.as_bytes().first()) {
        if k.is_ascii() && f.is_ascii() && !k.eq_ignore_ascii_case(f) {
            return false;
        }
    }
    if key.len() == field.len() && key.eq_ignore_ascii_case(field) {
        return true;
    }
    // Two ASCII strings fold-match only if they are equal ignoring ASCII case (checked above).
    if key.is_ascii() && field.is_ascii() {
        return false;
    }
    let mut key_chars = key.chars();
    let mut field_chars = field.chars();
    loop {
        match (key_chars.next(), field_chars.next()) {
            (None, None) => return true,
            (Some(k), Some(f)) if fold_rune(k) == fold_rune(f) => {}
            _ => return false,
        }
    }
}

/// FNV-1a over the key as Go folds it for an ASCII field name: ASCII letters lower-cased, `ſ`
/// as `s`, `K` as `k`. A key holding any other non-ASCII character can match no ASCII field;
/// it hashes its raw bytes (a collision only costs one [`go_fold_eq`] call). Keys that
/// [`go_fold_eq`] an ASCII field name hash alike.
pub fn fold_hash(key: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    };
    if key.is_ascii() {
        key.bytes().for_each(|b| eat(b.to_ascii_lowercase()));
    } else {
        for c in key.chars() {
            match c {
                '\u{17f}' => eat(b's'),
                '\u{212a}' => eat(b'k'),
                c if c.is_ascii() => eat((c as u8).to_ascii_lowercase()),
                c => {
                    let mut buf = [0u8; 4];
                    c.encode_utf8(&mut buf).bytes().for_each(&mut eat);
                }
            }
        }
    }
    h
}

/// Text of a key, string value or path: inline up to 24 bytes (most of a Docker body's keys and
/// values), so reading a body allocates per container rather than per string.
pub type Text = compact_str::CompactString;

/// A JSON value as dockerd's decoder would see it, with object entries kept in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(Text),
    Array(Vec<Json>),
    Object(Object),
}

impl Json {
    /// About what the parsed value holds in memory beyond its text's bytes: a few dozen bytes
    /// per value and per object entry (`[[],[],…]` holds many times its text).
    pub fn overhead(&self) -> usize {
        const PER_VALUE: usize = std::mem::size_of::<Json>() + 16;
        match self {
            Json::Array(items) => items
                .iter()
                .fold(PER_VALUE, |sum, v| sum.saturating_add(v.overhead())),
            Json::Object(o) => o.entries.iter().fold(PER_VALUE, |sum, (_, v)| {
                sum.saturating_add(std::mem::size_of::<(Text, Json)>() + 8)
                    .saturating_add(v.overhead())
            }),
            _ => PER_VALUE,
        }
    }

    /// The JSON type name used in error messages: `null`, `boolean`, `number`, `string`,
    /// `array` or `object`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// A root cursor for walking this document with paths in every error.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor::new(self)
    }

    /// Go `bool`: `Ok(None)` for null, `WrongType` for anything but a boolean. `path` is where
    /// this value sits, for the error message.
    pub fn as_bool(&self, path: &Path) -> Result<Option<bool>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Bool(b) => Ok(Some(*b)),
            other => Err(other.wrong_type(path, "boolean")),
        }
    }

    /// Go `int64`: only an integer literal within range (no fraction, no exponent), as
    /// `strconv.ParseInt` accepts; `Ok(None)` for null.
    pub fn as_i64(&self, path: &Path) -> Result<Option<i64>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Number(n) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| not_an_integer(path, "int64", n)),
            other => Err(other.wrong_type(path, "int64")),
        }
    }

    /// Go `uint64`: only a non-negative integer literal within range; `Ok(None)` for null.
    pub fn as_u64(&self, path: &Path) -> Result<Option<u64>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Number(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| not_an_integer(path, "uint64", n)),
            other => Err(other.wrong_type(path, "uint64")),
        }
    }

    /// Go `string`: `Ok(None)` for null.
    pub fn as_str(&self, path: &Path) -> Result<Option<&str>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::String(s) => Ok(Some(s)),
            other => Err(other.wrong_type(path, "string")),
        }
    }

    /// Go slice: `Ok(None)` for null (a nil slice).
    pub fn as_array(&self, path: &Path) -> Result<Option<&[Json]>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Array(items) => Ok(Some(items)),
            other => Err(other.wrong_type(path, "array")),
        }
    }

    pub fn as_array_mut(&mut self, path: &Path) -> Result<Option<&mut Vec<Json>>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Array(items) => Ok(Some(items)),
            other => Err(other.wrong_type(path, "array")),
        }
    }

    /// Go struct or map: `Ok(None)` for null (a nil pointer or map).
    pub fn as_object(&self, path: &Path) -> Result<Option<&Object>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Object(obj) => Ok(Some(obj)),
            other => Err(other.wrong_type(path, "object")),
        }
    }

    pub fn as_object_mut(&mut self, path: &Path) -> Result<Option<&mut Object>, InspectError> {
        match self {
            Json::Null => Ok(None),
            Json::Object(obj) => Ok(Some(obj)),
            other => Err(other.wrong_type(path, "object")),
        }
    }

    /// Compact JSON: keys as stored and in stored order, strings escaped as valid JSON.
    /// Integer numbers are written as they were read; other numbers in their shortest form that
    /// reads back as the same `f64` (`1e2` becomes `100.0`: equal for Go's float64, and refused
    /// by Go's int64 either way). Recurses once per nesting level: parsed values are at most
    /// [`MAX_DEPTH`] deep.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = String::with_capacity(1024);
        write_json(self, &mut out);
        out.into_bytes()
    }

    fn wrong_type(&self, path: &Path, expected: &'static str) -> InspectError {
        InspectError::WrongType {
            path: path.clone(),
            expected,
            found: self.type_name(),
        }
    }
}

impl fmt::Display for Json {
    /// The same compact JSON as [`Json::to_vec`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_json(self, &mut out);
        f.write_str(&out)
    }
}

/// A JSON object: its entries in document order, never two with exactly the same key.
///
/// Read it as a Go struct with the `field*` methods (fold matching, ambiguity refused) or as a Go
/// `map[string]T` with the `entr*` methods (exact keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object {
    entries: Vec<(Text, Json)>,
    /// [`fold_hash`] of each entry's key, kept in step with `entries`: a field lookup compares
    /// these integers and runs [`go_fold_eq`] only on a hash match.
    folds: Vec<u64>,
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    fn from_entries(entries: Vec<(Text, Json)>) -> Self {
        let folds = entries.iter().map(|(k, _)| fold_hash(k)).collect();
        Object { entries, folds }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Go struct-field lookup: `Ok(None)` when absent, `Err(AmbiguousKey)` when two or more keys
    /// fold-match `name`. `name` is the field's canonical (ASCII) spelling.
    pub fn field(&self, name: &str) -> Result<Option<&Json>, InspectError> {
        self.field_at(name, &Path::root())
    }

    /// [`Object::field`] for changing the value in place.
    pub fn field_mut(&mut self, name: &str) -> Result<Option<&mut Json>, InspectError> {
        self.field_mut_at(name, &Path::root())
    }

    /// Walks nested struct fields, e.g. `&["HostConfig", "Privileged"]`, with fold matching and
    /// the ambiguity check at every level. `Ok(None)` when any step is absent or null (Go leaves a
    /// nil pointer); `WrongType` when an intermediate value is not an object. Errors carry the
    /// path from this object. An empty `names` gives `Ok(None)`.
    pub fn field_path(&self, names: &[&str]) -> Result<Option<&Json>, InspectError> {
        let Some((last, parents)) = names.split_last() else {
            return Ok(None);
        };
        let mut obj = self;
        let mut path = Path::root();
        for name in parents {
            let child = obj.field_at(name, &path)?;
            path.push_key(name);
            match child {
                None | Some(Json::Null) => return Ok(None),
                Some(Json::Object(inner)) => obj = inner,
                Some(other) => return Err(other.wrong_type(&path, "object")),
            }
        }
        obj.field_at(last, &path)
    }

    /// [`Object::field_path`] for changing the value in place.
    pub fn field_path_mut(&mut self, names: &[&str]) -> Result<Option<&mut Json>, InspectError> {
        let Some((last, parents)) = names.split_last() else {
            return Ok(None);
        };
        let mut obj = self;
        let mut path = Path::root();
        for name in parents {
            let child = obj.field_mut_at(name, &path)?;
            path.push_key(name);
            match child {
                None | Some(Json::Null) => return Ok(None),
                Some(Json::Object(inner)) => obj = inner,
                Some(other) => return Err(other.wrong_type(&path, "object")),
            }
        }
        obj.field_mut_at(last, &path)
    }

    /// Sets a struct field: removes every key that fold-matches `name` and puts `name` (the
    /// canonical spelling) where the first of them was, or at the end.
    pub fn set_field(&mut self, name: &str, value: Json) {
        let want = fold_hash(name);
        let matches =
            |at: usize, key: &str| self.folds.get(at) == Some(&want) && go_fold_eq(key, name);
        let found: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(at, (key, _))| matches(*at, key))
            .map(|(at, _)| at)
            .collect();
        match found.split_first() {
            // The usual case, one spelling already there: replace it in place.
            Some((&first, rest)) => {
                for &at in rest.iter().rev() {
                    self.entries.remove(at);
                    self.folds.remove(at);
                }
                self.entries[first] = (Text::from(name), value);
                self.folds[first] = want;
            }
            None => {
                self.entries.push((Text::from(name), value));
                self.folds.push(want);
            }
        }
    }

    pub fn remove_field(&mut self, name: &str) -> Option<Json> {
        let want = fold_hash(name);
        let mut removed = None;
        let mut at = 0;
        while at < self.entries.len() {
            if self.folds.get(at) == Some(&want) && go_fold_eq(&self.entries[at].0, name) {
                self.folds.remove(at);
                removed = Some(self.entries.remove(at).1);
            } else {
                at += 1;
            }
        }
        removed
    }

    /// Every key, as written, that Go would decode into the struct field `name`.
    pub fn keys_folding_to<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.entries
            .iter()
            .map(|(key, _)| key.as_str())
            .filter(move |key| go_fold_eq(key, name))
    }

    /// Map view (Go `map[string]T`): every entry in document order, keys exactly as written.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value))
    }

    /// Map view, mutable values.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = (&str, &mut Json)> {
        self.entries
            .iter_mut()
            .map(|(key, value)| (key.as_str(), value))
    }

    /// Map lookup by exact key (Go map keys are case-sensitive).
    pub fn entry(&self, key: &str) -> Option<&Json> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    /// Map insert by exact key: replaces the value in place if the key exists, else appends.
    pub fn set_entry(&mut self, key: &str, value: Json) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => {
                self.entries.push((Text::from(key), value));
                self.folds.push(fold_hash(key));
            }
        }
    }

    /// Map removal by exact key.
    pub fn remove_entry(&mut self, key: &str) -> Option<Json> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        self.folds.remove(at);
        Some(self.entries.remove(at).1)
    }

    fn field_at(&self, name: &str, parent: &Path) -> Result<Option<&Json>, InspectError> {
        self.field_or(name, || parent.clone())
    }

    /// [`Object::field`] for an object at the path `parent` gives, asked for only on failure.
    fn field_or(
        &self,
        name: &str,
        parent: impl FnOnce() -> Path,
    ) -> Result<Option<&Json>, InspectError> {
        let found = self.find_field(name, parent)?;
        Ok(found
            .and_then(|at| self.entries.get(at))
            .map(|(_, value)| value))
    }

    fn field_mut_at(
        &mut self,
        name: &str,
        parent: &Path,
    ) -> Result<Option<&mut Json>, InspectError> {
        let found = self.find_field(name, || parent.clone())?;
        Ok(found
            .and_then(|at| self.entries.get_mut(at))
            .map(|(_, value)| value))
    }

    fn find_field(
        &self,
        name: &str,
        parent: impl FnOnce() -> Path,
    ) -> Result<Option<usize>, InspectError> {
        // Only a key with the same fold hash can fold to `name`. The hashes sit apart from the
        // entries, in a dense run of integers: scan those, and compare keys on a match.
        let want = fold_hash(name);
        let mut found = None;
        for (at, fold) in self.folds.iter().enumerate() {
            if *fold != want {
                continue;
            }
            let Some((key, _)) = self.entries.get(at) else {
                continue;
            };
            if go_fold_eq(key, name) {
                if found.is_some() {
                    return Err(InspectError::AmbiguousKey {
                        path: parent().field(name),
                        keys: self.keys_folding_to(name).map(str::to_owned).collect(),
                    });
                }
                found = Some(at);
            }
        }
        Ok(found)
    }
}

/// A position in a document — the value there, or nothing when absent — and its path, so every
/// lookup and typed read names where it failed. Absent and null both read as `Ok(None)`.
///
/// The path is kept as the steps taken (keys borrowed from the document or the caller, indices)
/// and rendered only when asked for: a policy reads many fields and fails on few.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    value: Option<&'a Json>,
    trail: Trail<'a>,
}

/// The steps from the top-level value to a cursor's position.
type Trail<'a> = smallvec::SmallVec<[Step<'a>; 4]>;

#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Cursor<'a> {
    /// A cursor on `value`, the top-level value of its document.
    pub fn new(value: &'a Json) -> Self {
        Self {
            value: Some(value),
            trail: Trail::new(),
        }
    }

    /// The value here: `None` when absent, `Some(Json::Null)` when explicitly null.
    pub fn value(&self) -> Option<&'a Json> {
        self.value
    }

    /// Where this cursor sits, rendered.
    pub fn path(&self) -> Path {
        let mut path = Path::root();
        for step in &self.trail {
            match *step {
                Step::Key(key) => path.push_key(key),
                Step::Index(at) => path.push_index(at),
            }
        }
        path
    }

    /// True when absent or null: Go leaves the zero value in both cases.
    pub fn is_unset(&self) -> bool {
        self.value.is_none_or(Json::is_null)
    }

    /// Struct field `name` of the object here (fold matching, ambiguity refused). Absent or null
    /// here gives an absent child; a non-object here is `WrongType`.
    pub fn field(&self, name: &'a str) -> Result<Cursor<'a>, InspectError> {
        let value = match self.as_object()? {
            Some(obj) => obj.field_or(name, || self.path())?,
            None => None,
        };
        Ok(self.step(value, Step::Key(name)))
    }

    /// Map entry `key` of the object here, matched exactly (map keys are not folded). Absent or
    /// null here gives an absent child; a non-object here is `WrongType`.
    pub fn entry(&self, key: &'a str) -> Result<Cursor<'a>, InspectError> {
        let value = self.as_object()?.and_then(|obj| obj.entry(key));
        Ok(self.step(value, Step::Key(key)))
    }

    /// [`Cursor::field`] repeated, e.g. `&["HostConfig", "Privileged"]`.
    pub fn field_path(&self, names: &[&'a str]) -> Result<Cursor<'a>, InspectError> {
        let mut here = self.clone();
        for name in names {
            here = here.field(name)?;
        }
        Ok(here)
    }

    pub fn as_bool(&self) -> Result<Option<bool>, InspectError> {
        self.read(Json::as_bool)
    }

    pub fn as_i64(&self) -> Result<Option<i64>, InspectError> {
        self.read(Json::as_i64)
    }

    pub fn as_u64(&self) -> Result<Option<u64>, InspectError> {
        self.read(Json::as_u64)
    }

    pub fn as_str(&self) -> Result<Option<&'a str>, InspectError> {
        self.read(Json::as_str)
    }

    pub fn as_array(&self) -> Result<Option<&'a [Json]>, InspectError> {
        self.read(Json::as_array)
    }

    pub fn as_object(&self) -> Result<Option<&'a Object>, InspectError> {
        self.read(Json::as_object)
    }

    /// The elements of the array here, each with its `[i]` path; none when absent or null.
    pub fn items(&self) -> Result<impl Iterator<Item = Cursor<'a>>, InspectError> {
        let items = self.as_array()?.unwrap_or_default();
        let here = self.clone();
        Ok(items
            .iter()
            .enumerate()
            .map(move |(at, value)| here.step(Some(value), Step::Index(at))))
    }

    /// Map view of the object here: entries with exact keys, each with its path; none when
    /// absent or null.
    pub fn entries(&self) -> Result<impl Iterator<Item = (&'a str, Cursor<'a>)>, InspectError> {
        let entries = self.as_object()?.map(|obj| obj.entries.as_slice());
        let here = self.clone();
        Ok(entries.unwrap_or_default().iter().map(move |(key, value)| {
            let key = key.as_str();
            (key, here.step(Some(value), Step::Key(key)))
        }))
    }

    /// A cursor one step below this one.
    fn step(&self, value: Option<&'a Json>, step: Step<'a>) -> Cursor<'a> {
        let mut trail = self.trail.clone();
        trail.push(step);
        Cursor { value, trail }
    }

    /// Reads the value here with `get`, which names `path` in its error. The path is rendered
    /// only for a read that fails: `get` is run once more with it, so it must be pure (it is
    /// always one of the `Json::as_*` readers).
    fn read<T: 'a>(
        &self,
        get: impl Fn(&'a Json, &Path) -> Result<Option<T>, InspectError>,
    ) -> Result<Option<T>, InspectError> {
        match self.value {
            Some(value) => get(value, &Path::root()).or_else(|_| get(value, &self.path())),
            None => Ok(None),
        }
    }
}

/// Where a value sits in a document, rendered like `HostConfig.Binds[2]` or
/// `HostConfig.PortBindings["80/tcp"][0].HostPort`; keys that are not plain identifiers are
/// quoted, and long keys shortened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path {
    text: Text,
}

impl Path {
    pub fn root() -> Self {
        Self::default()
    }

    /// A path of object keys, e.g. `Path::of(&["HostConfig", "Binds"])`.
    pub fn of(keys: &[&str]) -> Self {
        let mut path = Self::root();
        for key in keys {
            path.push_key(key);
        }
        path
    }

    /// This path extended by an object key (struct field or map key).
    pub fn field(&self, key: &str) -> Self {
        let mut path = self.clone();
        path.push_key(key);
        path
    }

    pub fn is_root(&self) -> bool {
        self.text.is_empty()
    }

    /// The rendered path; empty for the top-level value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn push_key(&mut self, key: &str) {
        if is_plain_name(key) {
            if !self.text.is_empty() {
                self.text.push('.');
            }
            self.text.push_str(key);
        } else {
            self.text.push('[');
            push_shown_key(&mut self.text, key);
            self.text.push(']');
        }
    }

    fn push_index(&mut self, at: usize) {
        let _ = write!(self.text, "[{at}]");
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            f.write_str("(top level)")
        } else {
            f.write_str(&self.text)
        }
    }
}

/// Why a body was refused. Every variant is the client's fault (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("empty JSON body: expected a JSON value; send a JSON document")]
    Empty,

    #[error("JSON body starts with a UTF-8 byte-order mark; send it without the BOM")]
    ByteOrderMark,

    #[error("JSON body is not valid UTF-8 (first bad byte at offset {offset}); send UTF-8 text")]
    InvalidUtf8 { offset: usize },

    #[error("invalid JSON at byte {offset} in {path}: {reason}")]
    Syntax {
        path: Path,
        offset: usize,
        reason: &'static str,
    },

    #[error(
        "unpaired UTF-16 surrogate escape at byte {offset} in {path}; write characters outside \
         the Basic Multilingual Plane as a \\uD8xx\\uDCxx pair, or as plain UTF-8"
    )]
    LoneSurrogate { path: Path, offset: usize },

    #[error("unexpected data after the JSON value at byte {offset}; send exactly one JSON value")]
    TrailingData { offset: usize },

    #[error("JSON nested deeper than {limit} levels at {path}; send a shallower document")]
    TooDeep { path: Path, limit: usize },

    #[error("number {literal} at {path} is out of float64 range; send a smaller number")]
    NumberOutOfRange { path: Path, literal: String },

    #[error("duplicate key {key} in the object at {path}; send each key once")]
    DuplicateKey {
        path: Path,
        /// The key as a (possibly shortened) JSON string, for display.
        key: String,
    },

    #[error(
        "ambiguous duplicate key at {path}: keys {} all name this field and dockerd would \
         silently keep the last or merge them; send the field once",
        quoted_list(.keys)
    )]
    AmbiguousKey { path: Path, keys: Vec<String> },

    #[error("wrong type at {path}: expected {expected}, found {found}; send {expected} or null")]
    WrongType {
        path: Path,
        expected: &'static str,
        found: &'static str,
    },

    #[error(
        "number {number} at {path} is not a valid {target}; send a plain integer literal \
         (no fraction or exponent) within {target} range"
    )]
    NotAnInteger {
        path: Path,
        target: &'static str,
        number: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Parser: a strict recursive-descent reader over text already checked to be UTF-8.
// ---------------------------------------------------------------------------------------------

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Longest key or literal quoted in an error message, in characters.
const SHOWN_CHARS: usize = 64;

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Scratch stacks shared by all containers: entries are pushed here while a container is
    /// read and moved into one exactly-sized `Vec` when it closes, instead of regrowing a `Vec`
    /// per container.
    entry_stack: Vec<(Text, Json)>,
    item_stack: Vec<Json>,
}

/// A parse failure on its way up: each enclosing container adds its key or index to `trail`
/// (innermost first), so the path is only built when something fails.
struct Failure {
    kind: FailureKind,
    trail: Vec<Segment>,
}

enum FailureKind {
    Syntax { offset: usize, reason: &'static str },
    LoneSurrogate { offset: usize },
    TooDeep,
    NumberOutOfRange { literal: String },
    DuplicateKey { key: String },
}

enum Segment {
    Key(String),
    Index(usize),
}

type Parsed<T> = Result<T, Box<Failure>>;

impl Parser<'_> {
    /// One value; `depth` is the number of containers around it.
    fn value(&mut self, depth: usize) -> Parsed<Json> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.syntax("expected a JSON value")),
            None => Err(self.syntax("unexpected end of input, expected a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Parsed<Json> {
        if depth > MAX_DEPTH {
            return Err(Failure::new(FailureKind::TooDeep));
        }
        self.pos += 1; // '{'
        self.skip_whitespace();
        if self.eat(b'}') {
            return Ok(Json::Object(Object::new()));
        }
        let base = self.entry_stack.len();
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a string key"));
            }
            let key = self.string()?;
            let value = self.entry_value(depth).map_err(|mut failure| {
                failure.trail.push(Segment::Key(key.to_string()));
                failure
            })?;
            self.entry_stack.push((key, value));
            self.skip_whitespace();
            if self.eat(b',') {
                self.skip_whitespace();
            } else if self.eat(b'}') {
                break;
            } else {
                return Err(self.syntax("expected ',' or '}' after an object entry"));
            }
        }
        let object = Object::from_entries(take_from(&mut self.entry_stack, base));
        if let Some(key) = first_duplicate(&object.entries, &object.folds) {
            return Err(Failure::new(FailureKind::DuplicateKey {
                key: shown_key(key),
            }));
        }
        Ok(Json::Object(object))
    }

    /// The `: value` part of an object entry.
    fn entry_value(&mut self, depth: usize) -> Parsed<Json> {
        self.skip_whitespace();
        if !self.eat(b':') {
            return Err(self.syntax("expected ':' after an object key"));
        }
        self.skip_whitespace();
        self.value(depth)
    }

    fn array(&mut self, depth: usize) -> Parsed<Json> {
        if depth > MAX_DEPTH {
            return Err(Failure::new(FailureKind::TooDeep));
        }
        self.pos += 1; // '['
        self.skip_whitespace();
        if self.eat(b']') {
            return Ok(Json::Array(Vec::new()));
        }
        let base = self.item_stack.len();
        loop {
            let at = self.item_stack.len().saturating_sub(base);
            let item = self.value(depth).map_err(|mut failure| {
                failure.trail.push(Segment::Index(at));
                failure
            })?;
            self.item_stack.push(item);
            self.skip_whitespace();
            if self.eat(b',') {
                self.skip_whitespace();
            } else if self.eat(b']') {
                return Ok(Json::Array(take_from(&mut self.item_stack, base)));
            } else {
                return Err(self.syntax("expected ',' or ']' after an array element"));
            }
        }
    }

    /// A string starting at its opening quote. Plain runs are copied as slices; escapes are
    /// decoded; raw control characters and unpaired surrogate escapes are refused.
    fn string(&mut self) -> Parsed<Text> {
        let open = self.pos;
        self.pos += 1; // '"'
        let run_start = self.pos;
        self.skip_plain_run();
        if self.peek() == Some(b'"') {
            let text = Text::from(self.slice(run_start, self.pos)?);
            self.pos += 1;
            return Ok(text);
        }
        let mut out = Text::from(self.slice(run_start, self.pos)?);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(0x00..=0x1F) => {
                    return Err(self.syntax("raw control character in a string; escape it"))
                }
                Some(_) => {
                    let start = self.pos;
                    self.skip_plain_run();
                    out.push_str(self.slice(start, self.pos)?);
                }
                None => {
                    self.pos = open;
                    return Err(self.syntax("unterminated string"));
                }
            }
        }
    }

    /// Moves past bytes that need no decoding: eight at a time while a word holds no `"`, `\\`
    /// or control byte, then one at a time.
    fn skip_plain_run(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        const QUOTES: u64 = ONES * b'"' as u64;
        const BACKSLASHES: u64 = ONES * b'\\' as u64;
        while let Some(Ok(chunk)) = self
            .bytes
            .get(self.pos..self.pos + 8)
            .map(<[u8; 8]>::try_from)
        {
            let word = u64::from_le_bytes(chunk);
            let quote = word ^ QUOTES;
            let backslash = word ^ BACKSLASHES;
            // Per byte: zero after the XOR, or below 0x20. Exact for "is there any such byte".
            let special = (quote.wrapping_sub(ONES) & !quote)
                | (backslash.wrapping_sub(ONES) & !backslash)
                | (word.wrapping_sub(ONES * 0x20) & !word);
            if special & HIGHS != 0 {
                break;
            }
            self.pos += 8;
        }
        while let Some(&byte) = self.bytes.get(self.pos) {
            if byte == b'"' || byte == b'\\' || byte < 0x20 {
                break;
            }
            self.pos += 1;
        }
    }

    /// One escape sequence starting at its backslash.
    fn escape(&mut self, out: &mut Text) -> Parsed<()> {
        let start = self.pos;
        self.pos += 1; // '\\'
        let decoded = match self.bump() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => self.unicode_escape(start)?,
            _ => {
                self.pos = start;
                return Err(self.syntax("invalid escape sequence in a string"));
            }
        };
        out.push(decoded);
        Ok(())
    }

    /// The rest of a `\u` escape (its four hex digits), joining a surrogate pair into one character.
    fn unicode_escape(&mut self, start: usize) -> Parsed<char> {
        let lone = || Failure::new(FailureKind::LoneSurrogate { offset: start });
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !(self.eat(b'\\') && self.eat(b'u')) {
                    return Err(lone());
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(lone());
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone()),
            _ => first,
        };
        char::from_u32(code).ok_or_else(lone)
    }

    fn hex4(&mut self) -> Parsed<u32> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|byte| char::from(byte).to_digit(16))
                .ok_or_else(|| self.syntax("expected four hex digits after \\u"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// A number per the JSON grammar. Integer literals in i64/u64 range are kept exactly (`-0`
    /// reads as 0, as Go's `strconv.ParseInt` has it); the rest become the correctly rounded f64
    /// (as Go's `strconv.ParseFloat`), refused if out of float64 range.
    fn number(&mut self) -> Parsed<Json> {
        let start = self.pos;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return Err(self.syntax("leading zeros are not allowed in a number"));
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.syntax("expected a digit in a number")),
        }
        let mut integral = true;
        if self.eat(b'.') {
            integral = false;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit after the decimal point"));
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integral = false;
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit in the exponent"));
            }
            self.skip_digits();
        }
        let literal = self.slice(start, self.pos)?;
        if integral {
            let exact = if literal.starts_with('-') {
                literal.parse::<i64>().ok().map(Number::from)
            } else {
                literal.parse::<u64>().ok().map(Number::from)
            };
            if let Some(number) = exact {
                return Ok(Json::Number(number));
            }
        }
        literal
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| {
                Failure::new(FailureKind::NumberOutOfRange {
                    literal: shortened(literal),
                })
            })
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static str, value: Json) -> Parsed<Json> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word.as_bytes()) {
            self.pos = end;
            Ok(value)
        } else {
            Err(self.syntax("expected a JSON value (true, false and null are lower case)"))
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.pos += 1;
        }
        matched
    }

    /// Text between two positions the parser stopped at; both sit next to ASCII bytes, so on
    /// character boundaries.
    fn slice(&self, start: usize, end: usize) -> Parsed<&str> {
        self.text
            .get(start..end)
            .ok_or_else(|| self.syntax("internal error: position is not on a character boundary"))
    }

    fn syntax(&self, reason: &'static str) -> Box<Failure> {
        Failure::new(FailureKind::Syntax {
            offset: self.pos,
            reason,
        })
    }
}

impl Failure {
    fn new(kind: FailureKind) -> Box<Self> {
        Box::new(Self {
            kind,
            trail: Vec::new(),
        })
    }

    fn into_error(self) -> InspectError {
        let mut path = Path::root();
        for segment in self.trail.iter().rev() {
            match segment {
                Segment::Key(key) => path.push_key(key),
                Segment::Index(at) => path.push_index(*at),
            }
        }
        match self.kind {
            FailureKind::Syntax { offset, reason } => InspectError::Syntax {
                path,
                offset,
                reason,
            },
            FailureKind::LoneSurrogate { offset } => InspectError::LoneSurrogate { path, offset },
            FailureKind::TooDeep => InspectError::TooDeep {
                path,
                limit: MAX_DEPTH,
            },
            FailureKind::NumberOutOfRange { literal } => {
                InspectError::NumberOutOfRange { path, literal }
            }
            FailureKind::DuplicateKey { key } => InspectError::DuplicateKey { path, key },
        }
    }
}

/// Takes what a container pushed since `base` off a scratch stack. Nested containers have
/// already taken theirs, so `base <= stack.len()`; the result is allocated at its exact size.
fn take_from<T>(stack: &mut Vec<T>, base: usize) -> Vec<T> {
    if base >= stack.len() {
        return Vec::new();
    }
    stack.split_off(base)
}

/// A key that appears twice exactly. `folds` are the keys' [`fold_hash`]es: exact duplicates
/// share one, so only keys with equal hashes are compared. Small objects are scanned pairwise;
/// large ones (a big Labels map) are sorted by hash and key, so hostile input (many keys folding
/// alike) cannot make it quadratic.
fn first_duplicate<'e>(entries: &'e [(Text, Json)], folds: &[u64]) -> Option<&'e str> {
    const PAIRWISE_MAX: usize = 16;
    let key = |at: usize| entries.get(at).map_or("", |(key, _)| key.as_str());
    if entries.len() <= PAIRWISE_MAX {
        (0..entries.len()).find_map(|at| {
            let fold = folds.get(at);
            (0..at)
                .any(|earlier| folds.get(earlier) == fold && key(earlier) == key(at))
                .then(|| key(at))
        })
    } else {
        let mut order: Vec<(u64, &str)> = folds.iter().copied().zip((0..).map(key)).collect();
        order.sort_unstable();
        order.windows(2).find_map(|pair| match pair {
            [first, second] if first == second => Some(first.1),
            _ => None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Folding, serialisation and display helpers.
// ---------------------------------------------------------------------------------------------

/// Go's fold target for the runes that can matter against ASCII field names (see
/// [`go_fold_eq`]): ASCII letters to upper case, `ſ` to `S`, `K` to `K`, every other rune itself.
fn fold_rune(c: char) -> char {
    match c {
        '\u{17F}' => 'S',
        '\u{212A}' => 'K',
        _ => c.to_ascii_uppercase(),
    }
}

fn not_an_integer(path: &Path, target: &'static str, number: &Number) -> InspectError {
    InspectError::NotAnInteger {
        path: path.clone(),
        target,
        number: number.to_string(),
    }
}

fn write_json(value: &Json, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(number) => {
            let mut digits = itoa::Buffer::new();
            if let Some(n) = number.as_u64() {
                out.push_str(digits.format(n));
            } else if let Some(n) = number.as_i64() {
                out.push_str(digits.format(n));
            } else {
                let _ = write!(out, "{number}");
            }
        }
        Json::String(text) => write_json_string(text, out),
        Json::Array(items) => {
            out.push('[');
            for (at, item) in items.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(obj) => {
            out.push('{');
            for (at, (key, item)) in obj.entries.iter().enumerate() {
                if at > 0 {
                    out.push(',');
                }
                write_json_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped, the rest as UTF-8.
/// Runs that need no escape are copied whole.
fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    let bytes = text.as_bytes();
    let mut run = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `at` is an ASCII byte, so both slices end on character boundaries.
        out.push_str(text.get(run..at).unwrap_or_default());
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", byte);
        } else {
            out.push_str(escaped);
        }
        run = at + 1;
    }
    out.push_str(text.get(run..).unwrap_or_default());
    out.push('"');
}

/// Whether a key can be shown bare in a path (`HostConfig.Binds`) rather than quoted.
fn is_plain_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    let starts_well = matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'));
    starts_well && key.len() <= SHOWN_CHARS && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A key as a JSON string, shortened to [`SHOWN_CHARS`] characters with `…`.
fn shown_key(key: &str) -> String {
    let mut out = String::new();
    write_json_string(&shortened(key), &mut out);
    out
}

fn push_shown_key(out: &mut Text, key: &str) {
    out.push_str(&shown_key(key));
}

fn shortened(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
        None => text.to_owned(),
    }
}

fn quoted_list(keys: &[String]) -> String {
    let quoted: Vec<String> = keys.iter().map(|key| shown_key(key)).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_parsed_bodys_overhead_grows_with_its_values_not_its_text() {
        let typical = parse_optional(br#"{"Image":"busybox","Env":["A=1","B=2"]}"#)
            .unwrap()
            .unwrap();
        assert!(typical.overhead() < 1024, "{}", typical.overhead());
        let many = format!("[{}[]]", "[],".repeat(10_000));
        let parsed = parse_optional(many.as_bytes()).unwrap().unwrap();
        assert!(
            parsed.overhead() > 10 * many.len(),
            "{} for {} bytes",
            parsed.overhead(),
            many.len()
        );
    }
    use super::*;

    fn doc(src: &str) -> Json {
        parse(src.as_bytes()).unwrap_or_else(|err| panic!("{src:?} should parse: {err}"))
    }

    fn object(src: &str) -> Object {
        match doc(src) {
            Json::Object(obj) => obj,
            other => panic!("{src:?} is not an object: {other}"),
        }
    }

    fn parse_err(src: &[u8]) -> InspectError {
        match parse(src) {
            Ok(value) => panic!(
                "{:?} should be refused, parsed as {value}",
                String::from_utf8_lossy(src)
            ),
            Err(err) => err,
        }
    }

    fn path_of(err: &InspectError) -> String {
        match err {
            InspectError::Syntax { path, .. }
            | InspectError::LoneSurrogate { path, .. }
            | InspectError::TooDeep { path, .. }
            | InspectError::NumberOutOfRange { path, .. }
            | InspectError::DuplicateKey { path, .. }
            | InspectError::AmbiguousKey { path, .. }
            | InspectError::WrongType { path, .. }
            | InspectError::NotAnInteger { path, .. } => path.as_str().to_owned(),
            other => panic!("{other:?} carries no path"),
        }
    }

    // --- Go's fold ---------------------------------------------------------------------------

    #[test]
    fn key_matches_field_exactly_as_go_folds_it() {
        // Expected values checked against Go's encoding/json (unicode.SimpleFold orbits).
        let table: &[(&str, &str, bool)] = &[
            ("Privileged", "Privileged", true),
            ("privileged", "Privileged", true),
            ("PRIVILEGED", "Privileged", true),
            ("privilegeD", "Privileged", true),
            ("PrivIleged", "Privileged", true),
            ("pRiViLeGeD", "Privileged", true),
            ("Ho\u{17F}tconfig", "HostConfig", true),
            ("HO\u{17F}TCONFIG", "HostConfig", true),
            ("\u{212A}ernelMemory", "KernelMemory", true),
            ("\u{212A}ERNELMEMORY", "KernelMemory", true),
            ("kernelmemory", "KernelMemory", true),
            ("\u{17F}", "s", true),
            ("\u{17F}", "S", true),
            ("\u{212A}", "k", true),
            ("\u{212A}", "K", true),
            ("s", "\u{17F}", true),
            ("", "", true),
            // Same letters, different length or order.
            ("Privilege", "Privileged", false),
            ("Privilegedd", "Privileged", false),
            ("Privileged\u{17F}", "Privileged", false),
            ("Privileged\u{0}", "Privileged", false),
            ("Privileged ", "Privileged", false),
            ("a", "", false),
            // Look-alikes that Go does not fold into ASCII.
            ("Pr\u{131}vileged", "Privileged", false), // Turkish dotless ı
            ("Pr\u{130}vileged", "Privileged", false), // Turkish dotted İ
            ("Priv\u{456}leged", "Privileged", false), // Cyrillic і
            ("Privil\u{435}ged", "Privileged", false), // Cyrillic е
            ("Im\u{430}ge", "Image", false),           // Cyrillic а
            ("\u{FF29}mage", "Image", false),          // fullwidth Ｉ
            ("\u{17F}", "k", false),
            ("\u{212A}", "s", false),
            ("\u{212B}", "A", false), // Ångström sign folds to å, not A
            ("\u{DF}", "ss", false),
            ("\u{FB06}", "st", false),
            // Go's v1 decoder does not ignore separators.
            ("Cpu_Shares", "CpuShares", false),
            ("cpu-shares", "CpuShares", false),
        ];
        for &(key, field, expected) in table {
            assert_eq!(
                go_fold_eq(key, field),
                expected,
                "go_fold_eq({key:?}, {field:?})"
            );
        }
    }

    #[test]
    fn only_long_s_kelvin_and_dotless_i_case_map_to_an_ascii_letter() {
        // Every non-ASCII rune whose upper or lower case is a single ASCII letter. A rune can only
        // simple-fold to an ASCII letter through such a mapping. ſ and K do fold (CaseFolding.txt
        // status C); ı reaches `I` only by upper-casing, and its folding is Turkic-only (status T),
        // which Go leaves out — so ı must stay out of `go_fold_eq`.
        fn single_ascii_letter(mut mapped: impl Iterator<Item = char>) -> bool {
            matches!(mapped.next(), Some(m) if m.is_ascii_alphabetic()) && mapped.next().is_none()
        }
        let mapped: Vec<char> = ('\u{80}'..=char::MAX)
            .filter(|c| {
                single_ascii_letter(c.to_lowercase()) || single_ascii_letter(c.to_uppercase())
            })
            .collect();
        assert_eq!(mapped, ['\u{131}', '\u{17F}', '\u{212A}']);
        assert!(!go_fold_eq("\u{131}", "I") && !go_fold_eq("\u{131}", "i"));
    }

    #[test]
    fn keys_that_fold_to_a_field_name_hash_like_it() {
        let fields = [
            "HostConfig",
            "Privileged",
            "CapAdd",
            "SecurityOpt",
            "Binds",
            "Mounts",
            "Image",
            "Cmd",
            "NetworkMode",
            "UsernsMode",
            "PidsLimit",
            "KernelMemoryTCP",
            "Sysctls",
            "Ulimits",
            "x",
            "",
        ];
        for field in fields {
            let spellings = [
                field.to_string(),
                field.to_ascii_lowercase(),
                field.to_ascii_uppercase(),
                field.replace(['s', 'S'], "\u{17f}"),
                field.replace(['k', 'K'], "\u{212a}"),
                field
                    .to_ascii_lowercase()
                    .replace('s', "\u{17f}")
                    .replace('k', "\u{212a}"),
            ];
            for key in spellings {
                assert!(go_fold_eq(&key, field), "{key:?} {field:?}");
                assert_eq!(
                    fold_hash(&key),
                    fold_hash(field),
                    "{key:?} against {field:?}"
                );
            }
            // Other non-ASCII look-alikes name another field, and mostly hash apart.
            let other = field.replace('i', "\u{131}");
            if other != field {
                assert!(!go_fold_eq(&other, field));
                assert_ne!(fold_hash(&other), fold_hash(field), "{other:?}");
            }
        }
        // Length is part of the hash: a key is not its own prefix padded with zero bytes.
        assert_ne!(fold_hash("Binds"), fold_hash("Binds\u{0}"));
    }

    #[test]
    fn fold_spellings_reach_the_struct_field() {
        let table = [
            r#"{"HostConfig":{"Privileged":true}}"#,
            r#"{"hostconfig":{"privileged":true}}"#,
            r#"{"HOSTCONFIG":{"PRIVILEGED":true}}"#,
            r#"{"hostConfig":{"privilegeD":true}}"#,
            r#"{"HostConfig":{"PrivIleged":true}}"#,
            r#"{"Ho\u017ftconfig":{"Privileged":true}}"#,
            "{\"Ho\u{17F}tconfig\":{\"Privileged\":true}}",
            r#"{"\u0048ostConfig":{"Privileged":true}}"#,
        ];
        for src in table {
            let root = doc(src);
            let cursor = root.cursor().field_path(&["HostConfig", "Privileged"]);
            let privileged = cursor.and_then(|c| c.as_bool());
            assert_eq!(privileged, Ok(Some(true)), "{src}");
        }
        let root = doc(r#"{"Ho\u017fTCONFIG":{"\u212aernelMemory":5}}"#);
        let memory = root.cursor().field_path(&["HostConfig", "KernelMemory"]);
        assert_eq!(memory.and_then(|c| c.as_i64()), Ok(Some(5)));
    }

    #[test]
    fn look_alike_keys_do_not_reach_the_struct_field() {
        let table = [
            "{\"Pr\u{131}vileged\":true}",
            "{\"Pr\u{130}vileged\":true}",
            "{\"Priv\u{456}leged\":true}",
            "{\"Privil\u{435}ged\":true}",
            "{\"Privileged\u{17F}\":true}",
            "{\"Privileged \":true}",
            "{\"Privileged\\u0000\":true}",
        ];
        for src in table {
            let obj = object(src);
            assert_eq!(obj.field("Privileged"), Ok(None), "{src}");
        }
    }

    #[test]
    fn keys_folding_to_lists_every_spelling_in_document_order() {
        let obj = object(r#"{"privileged":1,"Image":"x","PRIVILEGED":2}"#);
        let keys: Vec<&str> = obj.keys_folding_to("Privileged").collect();
        assert_eq!(keys, ["privileged", "PRIVILEGED"]);
    }

    // --- duplicates ---------------------------------------------------------------------------

    #[test]
    fn exact_duplicate_keys_are_refused_at_parse() {
        let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        let large = format!("{{\"Labels\":{{{many}\"k7\":0}}}}");
        let table: &[(&str, &str, &str)] = &[
            (r#"{"a":1,"a":2}"#, "", "\"a\""),
            (r#"{"a":1,"\u0061":2}"#, "", "\"a\""),
            (
                r#"{"HostConfig":{"Privileged":true,"Privileged":false}}"#,
                "HostConfig",
                "\"Privileged\"",
            ),
            (r#"{"Labels":{"x":"1","y":"2","x":"3"}}"#, "Labels", "\"x\""),
            (r#"[{"a":1},{"b":1,"b":2}]"#, "[1]", "\"b\""),
            (
                r#"{"PortBindings":{"80/tcp":[{"HostIp":"","HostIp":""}]}}"#,
                "PortBindings[\"80/tcp\"][0]",
                "\"HostIp\"",
            ),
            (&large, "Labels", "\"k7\""),
        ];
        for &(src, path, key) in table {
            match parse_err(src.as_bytes()) {
                InspectError::DuplicateKey { path: p, key: k } => {
                    assert_eq!((p.as_str(), k.as_str()), (path, key), "{src}");
                }
                other => panic!("{src}: expected DuplicateKey, got {other:?}"),
            }
        }
    }

    #[test]
    fn fold_duplicates_are_refused_at_lookup() {
        let obj = object(r#"{"Privileged":false,"privileged":true}"#);
        let expected = InspectError::AmbiguousKey {
            path: Path::of(&["Privileged"]),
            keys: vec!["Privileged".into(), "privileged".into()],
        };
        assert_eq!(obj.field("Privileged"), Err(expected.clone()));
        let mut obj = obj;
        assert_eq!(obj.field_mut("Privileged"), Err(expected));

        let obj = object("{\"HostConfig\":{},\"Ho\u{17F}tConfig\":{\"Privileged\":true}}");
        let err = obj.field_path(&["HostConfig", "Privileged"]).unwrap_err();
        assert_eq!(path_of(&err), "HostConfig");
        let root = Json::Object(obj);
        let err = root
            .cursor()
            .field_path(&["HostConfig", "Privileged"])
            .unwrap_err();
        assert_eq!(path_of(&err), "HostConfig");

        let root = doc(r#"{"HostConfig":{"Privileged":false,"PRIVILEGED":true,"Memory":1}}"#);
        let err = root
            .cursor()
            .field_path(&["HostConfig", "Privileged"])
            .unwrap_err();
        assert_eq!(path_of(&err), "HostConfig.Privileged");
        // Unrelated fields of the same object still read.
        let memory = root.cursor().field_path(&["HostConfig", "Memory"]);
        assert_eq!(memory.and_then(|c| c.as_i64()), Ok(Some(1)));
    }

    #[test]
    fn map_keys_are_exact_case_and_may_differ_only_in_case() {
        let root = doc(r#"{"Labels":{"a":"1","A":"2","\u017f":"3"}}"#);
        let labels = root.cursor().field("Labels").unwrap();
        let entries: Vec<(&str, Option<&str>, String)> = labels
            .entries()
            .unwrap()
            .map(|(key, value)| (key, value.as_str().unwrap(), value.path().to_string()))
            .collect();
        assert_eq!(
            entries,
            [
                ("a", Some("1"), "Labels.a".to_owned()),
                ("A", Some("2"), "Labels.A".to_owned()),
                ("\u{17F}", Some("3"), "Labels[\"\u{17F}\"]".to_owned()),
            ]
        );
        let obj = labels.as_object().unwrap().unwrap();
        assert_eq!(obj.entry("A"), Some(&Json::String("2".into())));
        assert_eq!(obj.entry("s"), None);
        assert_eq!(obj.len(), 3);
    }

    #[test]
    fn map_entries_can_be_set_and_removed_by_exact_key() {
        let mut obj = object(r#"{"a":"1","A":"2"}"#);
        obj.set_entry("A", Json::String("two".into()));
        obj.set_entry("b", Json::Bool(true));
        assert_eq!(obj.remove_entry("a"), Some(Json::String("1".into())));
        assert_eq!(obj.remove_entry("missing"), None);
        for (_, value) in obj.entries_mut() {
            if let Json::Bool(b) = value {
                *b = false;
            }
        }
        assert_eq!(Json::Object(obj).to_string(), r#"{"A":"two","b":false}"#);
    }

    // --- refusing what cannot be read with certainty -----------------------------------------

    #[test]
    fn byte_order_mark_is_refused() {
        for src in [
            &b"\xEF\xBB\xBF{}"[..],
            b"\xEF\xBB\xBF",
            b"\xEF\xBB\xBF null",
        ] {
            assert_eq!(parse(src), Err(InspectError::ByteOrderMark));
            assert_eq!(parse_optional(src), Err(InspectError::ByteOrderMark));
        }
        // A BOM anywhere else is just an unexpected character.
        assert!(matches!(
            parse(b" \xEF\xBB\xBF{}"),
            Err(InspectError::Syntax { offset: 1, .. })
        ));
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_offset() {
        let table: &[(&[u8], usize)] = &[
            (b"\xFF", 0),
            (b"{\"a\":\"\xC3\x28\"}", 6),
            (b"\"\xC0\xAF\"", 1),           // overlong '/'
            (b"\"\xED\xA0\x80\"", 1),       // surrogate encoded as UTF-8
            (b"\"\xE2\x82\"", 1),           // truncated sequence
            (b"{\"k\xF5\":1}", 3),          // beyond U+10FFFF
            (b"{\"Image\":\"x\"}\x80", 13), // after the value
        ];
        for &(src, offset) in table {
            assert_eq!(
                parse(src),
                Err(InspectError::InvalidUtf8 { offset }),
                "{src:?}"
            );
        }
    }

    #[test]
    fn lone_surrogate_escapes_are_refused() {
        let table: &[(&str, usize, &str)] = &[
            (r#""\ud800""#, 1, ""),
            (r#""\udc00""#, 1, ""),
            (r#""ab\uDBFF""#, 3, ""),
            (r#""\ud800\u0041""#, 1, ""),
            (r#""\ud800x""#, 1, ""),
            (r#""\ud800\ud800""#, 1, ""),
            (r#""\ud800\n""#, 1, ""),
            (r#"{"Image":"\ud800"}"#, 10, "Image"),
            (r#"{"\udfff":1}"#, 2, ""),
            (r#"{"Env":["A=1","B=\ude00"]}"#, 17, "Env[1]"),
        ];
        for &(src, offset, path) in table {
            match parse_err(src.as_bytes()) {
                InspectError::LoneSurrogate { path: p, offset: o } => {
                    assert_eq!((p.as_str(), o), (path, offset), "{src}");
                }
                other => panic!("{src}: expected LoneSurrogate, got {other:?}"),
            }
        }
    }

    #[test]
    fn surrogate_pairs_and_escapes_decode_to_characters() {
        let table = [
            (r#""\ud83d\ude00""#, "\u{1F600}"),
            (r#""\uD83D\uDE00""#, "\u{1F600}"),
            (r#""\u00e9\u0000\u001f""#, "\u{e9}\u{0}\u{1f}"),
            (r#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{c}\n\r\t"),
            (r#""plain \u0041 then more""#, "plain A then more"),
            ("\"caf\u{e9} \u{1F600}\"", "caf\u{e9} \u{1F600}"),
        ];
        for (src, expected) in table {
            assert_eq!(doc(src), Json::String(expected.into()), "{src}");
        }
    }

    #[test]
    fn string_scanning_finds_quotes_escapes_and_control_bytes_at_every_offset() {
        for len in 0..40 {
            let plain = "a\u{e9}".repeat(len / 2) + &"b".repeat(len % 2);
            assert_eq!(
                doc(&format!("\"{plain}\"")),
                Json::String(plain.as_str().into()),
                "{len}"
            );
            let escaped = doc(&format!("\"{plain}\\n{plain}\""));
            assert_eq!(
                escaped,
                Json::String(format!("{plain}\n{plain}").into()),
                "{len}"
            );
            for control in ['\u{0}', '\u{1F}', '\n'] {
                let err = parse_err(format!("\"{plain}{control}{plain}\"").as_bytes());
                let offset = 1 + plain.len();
                assert!(
                    matches!(err, InspectError::Syntax { offset: o, .. } if o == offset),
                    "{len}: {err:?}"
                );
            }
            let unterminated = parse_err(format!("\"{plain}").as_bytes());
            assert!(
                matches!(unterminated, InspectError::Syntax { offset: 0, .. }),
                "{len}"
            );
            // Bytes just outside the special ranges (0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0xFF-ish
            // UTF-8) stay plain.
            let edge = format!("{plain} !#[]\u{7F}\u{FFFF}{plain}");
            assert_eq!(
                doc(&format!("\"{edge}\"")),
                Json::String(edge.as_str().into()),
                "{len}"
            );
        }
    }

    #[test]
    fn trailing_data_is_refused_and_trailing_whitespace_is_not() {
        let table: &[(&str, usize)] = &[
            ("{} {}", 3),
            ("{}x", 2),
            ("nullx", 4),
            ("1 2", 2),
            (r#""a""b""#, 3),
            ("{}\u{0}", 2),
            ("[]]", 2),
            ("0x10", 1),
            ("{\"Image\":\"x\"}\n//", 14),
        ];
        for &(src, offset) in table {
            assert_eq!(
                parse(src.as_bytes()),
                Err(InspectError::TrailingData { offset }),
                "{src}"
            );
        }
        assert_eq!(doc("{}\n\t\r "), Json::Object(Object::new()));
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_deeper_is_refused() {
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(at_limit.as_bytes()).is_ok());
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let err = parse_err(over.as_bytes());
        assert!(
            matches!(
                err,
                InspectError::TooDeep {
                    limit: MAX_DEPTH,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(path_of(&err), "[0]".repeat(MAX_DEPTH));

        let objects = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let err = parse_err(objects.as_bytes());
        assert_eq!(path_of(&err), vec!["a"; MAX_DEPTH].join("."));
    }

    #[test]
    fn depth_bomb_is_refused_without_overflowing_a_small_stack() {
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                for bomb in [
                    "[".repeat(1_000_000),
                    r#"{"a":"#.repeat(300_000),
                    "[{\"a\":".repeat(200_000),
                ] {
                    let err = parse_err(bomb.as_bytes());
                    assert!(matches!(err, InspectError::TooDeep { .. }), "{err:?}");
                }
            })
            .unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn empty_body_is_an_error_for_parse_and_no_body_for_parse_optional() {
        for src in [&b""[..], b" ", b"\r\n\t  \n"] {
            assert_eq!(parse(src), Err(InspectError::Empty), "{src:?}");
            assert_eq!(parse_optional(src), Ok(None), "{src:?}");
        }
        // Only JSON's four whitespace characters count as whitespace.
        for src in ["\u{A0}", "\u{C}", "\u{B}", "\u{3000}"] {
            let err = parse_optional(src.as_bytes()).unwrap_err();
            assert!(
                matches!(err, InspectError::Syntax { offset: 0, .. }),
                "{src:?}: {err:?}"
            );
        }
        assert_eq!(
            parse_optional(b" {} "),
            Ok(Some(Json::Object(Object::new())))
        );
    }

    #[test]
    fn top_level_null_is_a_document_with_no_fields() {
        assert_eq!(parse(b"null"), Ok(Json::Null));
        assert_eq!(parse_optional(b" null\n"), Ok(Some(Json::Null)));
        let root = doc("null");
        let privileged = root
            .cursor()
            .field_path(&["HostConfig", "Privileged"])
            .unwrap();
        assert!(privileged.value().is_none());
        assert_eq!(privileged.as_bool(), Ok(None));
    }

    #[test]
    fn malformed_json_is_refused_as_syntax() {
        let table = [
            r#"{"a":1,}"#,
            "[1,]",
            "[1,,2]",
            "{,}",
            "{'a':1}",
            "{a:1}",
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            "[1 2]",
            "01",
            "-01",
            "00",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1e+",
            "1.e5",
            "-a",
            r#""\x""#,
            r#""\u12""#,
            r#""\u12G4""#,
            r#""\U0041""#,
            "\"a\tb\"",
            "\"a\nb\"",
            "\"abc",
            "\"",
            "{",
            "[",
            r#"{"a":1"#,
            r#"{"a""#,
            "tru",
            "True",
            "nul",
            "NULL",
            "NaN",
            "Infinity",
            "-Infinity",
            "/* comment */ {}",
            "'a'",
            "]",
            "}",
            ":",
            ",",
        ];
        for src in table {
            let err = parse_err(src.as_bytes());
            assert!(
                matches!(err, InspectError::Syntax { .. }),
                "{src:?}: {err:?}"
            );
        }
        let err = parse_err(br#"{"HostConfig":{"Binds":["/a:/a",]}}"#);
        assert_eq!(path_of(&err), "HostConfig.Binds[1]");
        assert!(
            err.to_string()
                .contains("at byte 32 in HostConfig.Binds[1]: expected a JSON value"),
            "{err}"
        );
    }

    #[test]
    fn numbers_keep_integers_exactly_and_read_like_go_integers() {
        let int64 = |src: &str| doc(src).as_i64(&Path::of(&["Memory"]));
        let uint64 = |src: &str| doc(src).as_u64(&Path::of(&["Memory"]));
        assert_eq!(int64("0"), Ok(Some(0)));
        assert_eq!(int64("-0"), Ok(Some(0)));
        assert_eq!(int64("9223372036854775807"), Ok(Some(i64::MAX)));
        assert_eq!(int64("-9223372036854775808"), Ok(Some(i64::MIN)));
        assert_eq!(uint64("18446744073709551615"), Ok(Some(u64::MAX)));
        assert_eq!(int64("null"), Ok(None));
        // Go's strconv.ParseInt refuses these literals, so an int64 field refuses them.
        for src in [
            "9223372036854775808",
            "-9223372036854775809",
            "1e2",
            "1E2",
            "100.0",
            "1.5",
            "-0.0",
        ] {
            let err = int64(src).unwrap_err();
            assert!(
                matches!(
                    err,
                    InspectError::NotAnInteger {
                        target: "int64",
                        ..
                    }
                ),
                "{src}: {err:?}"
            );
        }
        for src in ["-1", "18446744073709551616", "1e2", "0.5"] {
            let err = uint64(src).unwrap_err();
            assert!(
                matches!(
                    err,
                    InspectError::NotAnInteger {
                        target: "uint64",
                        ..
                    }
                ),
                "{src}: {err:?}"
            );
        }
        assert_eq!(
            int64(r#""5""#),
            Err(InspectError::WrongType {
                path: Path::of(&["Memory"]),
                expected: "int64",
                found: "string"
            })
        );
        // Beyond float64 range Go refuses every numeric field; so does the parser.
        for src in ["1e400", "-1e400", r#"{"NanoCpus":1e309}"#] {
            let err = parse_err(src.as_bytes());
            assert!(
                matches!(err, InspectError::NumberOutOfRange { .. }),
                "{src}: {err:?}"
            );
        }
        assert_eq!(doc("1e-400").to_string(), "0.0");
        assert_eq!(
            doc("18446744073709551616").to_string(),
            "1.8446744073709552e+19"
        );
    }

    // --- typed reads ---------------------------------------------------------------------------

    #[test]
    fn typed_getters_report_wrong_types_with_their_paths() {
        let root = doc(
            r#"{"HostConfig":{"Privileged":"yes","Binds":["/a:/a","/b:/b",7],
                "Memory":1.5,"CapAdd":null,"PortBindings":{"80/tcp":[{"HostPort":8080}]}},
                "Image":["x"]}"#,
        );
        let at = |names: &[&'static str]| root.cursor().field_path(names).unwrap();
        let wrong = |path: &str, expected: &'static str, found: &'static str| {
            (path.to_owned(), expected, found)
        };
        let as_tuple = |err: InspectError| match err {
            InspectError::WrongType {
                path,
                expected,
                found,
            } => (path.as_str().to_owned(), expected, found),
            other => panic!("expected WrongType, got {other:?}"),
        };

        let err = at(&["HostConfig", "Privileged"]).as_bool().unwrap_err();
        assert_eq!(
            as_tuple(err),
            wrong("HostConfig.Privileged", "boolean", "string")
        );

        let binds: Vec<Cursor<'_>> = at(&["HostConfig", "Binds"]).items().unwrap().collect();
        assert_eq!(binds[0].as_str(), Ok(Some("/a:/a")));
        assert_eq!(
            as_tuple(binds[2].as_str().unwrap_err()),
            wrong("HostConfig.Binds[2]", "string", "number")
        );

        let err = at(&["HostConfig", "Memory"]).as_i64().unwrap_err();
        assert!(
            matches!(&err, InspectError::NotAnInteger { number, .. } if number == "1.5"),
            "{err:?}"
        );
        assert_eq!(path_of(&err), "HostConfig.Memory");

        assert_eq!(at(&["HostConfig", "CapAdd"]).as_array(), Ok(None));
        assert_eq!(at(&["HostConfig", "CapAdd"]).items().unwrap().count(), 0);
        assert!(at(&["HostConfig", "CapAdd"]).is_unset());
        assert_eq!(at(&["HostConfig", "Dns"]).as_array(), Ok(None));
        assert!(at(&["HostConfig", "Dns"]).value().is_none());
        assert_eq!(
            as_tuple(at(&["Image"]).as_str().unwrap_err()),
            wrong("Image", "string", "array")
        );
        assert_eq!(
            as_tuple(at(&["HostConfig"]).as_str().unwrap_err()),
            wrong("HostConfig", "string", "object")
        );
        assert_eq!(
            as_tuple(root.cursor().as_array().unwrap_err()),
            wrong("", "array", "object")
        );

        let bindings = at(&["HostConfig", "PortBindings"]);
        let (key, ports) = bindings.entries().unwrap().next().unwrap();
        assert_eq!(key, "80/tcp");
        let port = ports
            .items()
            .unwrap()
            .next()
            .unwrap()
            .field("HostPort")
            .unwrap();
        let err = port.as_str().unwrap_err();
        assert_eq!(
            path_of(&err),
            r#"HostConfig.PortBindings["80/tcp"][0].HostPort"#
        );
        assert_eq!(
            err.to_string(),
            r#"wrong type at HostConfig.PortBindings["80/tcp"][0].HostPort: expected string, found number; send string or null"#
        );
    }

    #[test]
    fn walking_through_a_non_object_is_a_wrong_type_and_through_null_is_absent() {
        let obj = object(r#"{"HostConfig":5,"NetworkingConfig":null}"#);
        let err = obj.field_path(&["HostConfig", "Privileged"]).unwrap_err();
        assert_eq!(
            err,
            InspectError::WrongType {
                path: Path::of(&["HostConfig"]),
                expected: "object",
                found: "number"
            }
        );
        assert_eq!(
            obj.field_path(&["NetworkingConfig", "EndpointsConfig"]),
            Ok(None)
        );
        assert_eq!(obj.field_path(&["Missing", "Anything"]), Ok(None));
        assert_eq!(obj.field_path(&[]), Ok(None));
        let root = Json::Object(obj);
        let err = root
            .cursor()
            .field_path(&["HostConfig", "Privileged"])
            .unwrap_err();
        assert_eq!(path_of(&err), "HostConfig");
        let endpoints = root
            .cursor()
            .field_path(&["NetworkingConfig", "EndpointsConfig"])
            .unwrap();
        assert_eq!(endpoints.entries().unwrap().count(), 0);
    }

    #[test]
    fn error_messages_name_the_offending_key_and_the_fix() {
        let obj = object(r#"{"HostConfig":{"Privileged":false,"privileged":true}}"#);
        let err = obj.field_path(&["HostConfig", "Privileged"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ambiguous duplicate key at HostConfig.Privileged: keys \"Privileged\", \"privileged\" \
             all name this field and dockerd would silently keep the last or merge them; send the \
             field once"
        );
        let long = "x".repeat(500);
        let err = parse_err(format!("{{\"Labels\":{{\"{long}\":1,\"{long}\":2}}}}").as_bytes());
        let shown = format!("\"{}…\"", "x".repeat(SHOWN_CHARS));
        assert_eq!(
            err.to_string(),
            format!("duplicate key {shown} in the object at Labels; send each key once")
        );
        let err = parse_err(b"{\"a\\nb\":{\"c\":tru}}");
        assert_eq!(err.to_string(), "invalid JSON at byte 13 in [\"a\\nb\"].c: expected a JSON value (true, false and null are lower case)");
        assert_eq!(
            parse_err(b"[1] 2").to_string(),
            "unexpected data after the JSON value at byte 4; send exactly one JSON value"
        );
        let err = parse_err(b"[1,[2,\"\\ud800\"]]");
        assert!(
            err.to_string()
                .starts_with("unpaired UTF-16 surrogate escape at byte 7 in [1][1];"),
            "{err}"
        );
    }

    // --- changing a document -------------------------------------------------------------------

    #[test]
    fn set_field_replaces_every_fold_matching_key_with_the_canonical_one() {
        let mut obj = object(
            "{\"Image\":\"x\",\"privileged\":true,\"PRIVILEGED\":true,\"Memory\":1,\"Privileged\":true}",
        );
        obj.set_field("Privileged", Json::Bool(false));
        assert_eq!(
            Json::Object(obj.clone()).to_string(),
            r#"{"Image":"x","Privileged":false,"Memory":1}"#
        );
        assert_eq!(obj.field("Privileged"), Ok(Some(&Json::Bool(false))));

        let mut obj = object("{\"Ho\u{17F}tconfig\":{},\"Image\":\"x\"}");
        obj.set_field("HostConfig", Json::Null);
        assert_eq!(
            Json::Object(obj.clone()).to_string(),
            r#"{"HostConfig":null,"Image":"x"}"#
        );
        obj.set_field("User", Json::String("1000".into()));
        assert_eq!(
            Json::Object(obj).to_string(),
            r#"{"HostConfig":null,"Image":"x","User":"1000"}"#
        );
    }

    #[test]
    fn remove_field_removes_every_fold_matching_key() {
        let mut obj = object("{\"CapAdd\":[\"A\"],\"Image\":\"x\",\"capadd\":[\"B\"]}");
        assert_eq!(obj.remove_field("CapAdd"), Some(doc(r#"["B"]"#)));
        assert_eq!(Json::Object(obj.clone()).to_string(), r#"{"Image":"x"}"#);
        assert_eq!(obj.remove_field("CapAdd"), None);
    }

    #[test]
    fn field_mut_and_field_path_mut_change_values_in_place() {
        let mut root = doc(r#"{"hostconfig":{"PRIVILEGED":true,"Binds":["/:/host"]}}"#);
        let obj = root.as_object_mut(&Path::root()).unwrap().unwrap();
        if let Some(value) = obj.field_path_mut(&["HostConfig", "Privileged"]).unwrap() {
            *value = Json::Bool(false);
        }
        let binds = obj
            .field_path_mut(&["HostConfig", "Binds"])
            .unwrap()
            .unwrap();
        binds
            .as_array_mut(&Path::of(&["HostConfig", "Binds"]))
            .unwrap()
            .unwrap()
            .clear();
        let host_config = obj.field_mut("HostConfig").unwrap().unwrap();
        let host_config = host_config
            .as_object_mut(&Path::of(&["HostConfig"]))
            .unwrap()
            .unwrap();
        host_config.set_field("ReadonlyRootfs", Json::Bool(true));
        assert_eq!(
            root.to_vec(),
            br#"{"hostconfig":{"PRIVILEGED":false,"Binds":[],"ReadonlyRootfs":true}}"#
        );
        let mut ambiguous = object(r#"{"a":{},"A":{}}"#);
        assert!(matches!(
            ambiguous.field_path_mut(&["A", "b"]),
            Err(InspectError::AmbiguousKey { .. })
        ));
    }

    // --- writing -------------------------------------------------------------------------------

    #[test]
    fn to_vec_writes_compact_json_that_reads_back_the_same() {
        let compact = r#"{"Image":"alpine","Cmd":["sh","-c","echo \"hi\"\\n"],"Env":null,"Tty":true,"Labels":{"a":"1","A":"2"},"Memory":-5,"Big":18446744073709551615,"Ratio":0.25,"HostConfig":{"Binds":[],"Sysctls":{}}}"#;
        assert_eq!(doc(compact).to_vec(), compact.as_bytes());

        let spaced = "{ \"Entrypoint\" : [ \"a\\u0001b\\/c\\td\" ] ,\n \"Weird\\\"Key\" : \"\u{1F600}\\ud83d\\ude00\", \"F\": 1E2 }";
        let value = doc(spaced);
        assert_eq!(
            value.to_string(),
            "{\"Entrypoint\":[\"a\\u0001b/c\\td\"],\"Weird\\\"Key\":\"\u{1F600}\u{1F600}\",\"F\":100.0}"
        );
        assert_eq!(parse(&value.to_vec()), Ok(value));
    }

    // --- robustness ----------------------------------------------------------------------------

    /// A deterministic xorshift generator, so the mutation test needs no extra crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn mutated_bodies_never_panic_and_accepted_ones_agree_with_serde_json() {
        let seed = create_body(8).into_bytes();
        let alphabet = b"{}[]\":,\\ -+.0123456789eEtrufalsn\xC3\xA9\xFF\xEDu\xC5\xBF\t\n";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut body = seed.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(body.len());
                match rng.below(3) {
                    0 => body[at] = alphabet[rng.below(alphabet.len())],
                    1 => body.insert(at, alphabet[rng.below(alphabet.len())]),
                    _ => {
                        body.remove(at);
                    }
                }
            }
            let ours = parse(&body);
            let theirs = serde_json::from_slice::<serde_json::Value>(&body);
            if let Ok(value) = ours {
                accepted += 1;
                assert!(
                    theirs.is_ok(),
                    "we accepted what serde_json refuses: {}",
                    String::from_utf8_lossy(&body)
                );
                assert_eq!(parse(&value.to_vec()).as_ref(), Ok(&value));
            }
        }
        assert!(
            accepted > 1_000,
            "too few mutations parsed ({accepted}) to mean anything"
        );
    }

    #[test]
    fn values_match_serde_json_on_valid_documents() {
        let table = [
            create_body(3),
            r#"[0,1,-1,0.5,-2.5e-3,1E+2,123456789012345678,"\u00e9\n",true,false,null,{}]"#
                .to_owned(),
            r#"{"a":{"b":{"c":[[],[{}],"\/"]}}}"#.to_owned(),
        ];
        for src in table {
            let ours = serde_json::from_slice::<serde_json::Value>(&doc(&src).to_vec()).unwrap();
            let theirs = serde_json::from_str::<serde_json::Value>(&src).unwrap();
            assert_eq!(ours, theirs, "{src}");
        }
    }

    /// A `POST /containers/create` body shaped like the docker CLI's (every field present,
    /// most of them zero), plus `extra` environment variables and labels (~110 bytes each):
    /// `create_body(20)` is ~4 KiB, `create_body(700)` ~64 KiB.
    fn create_body(extra: usize) -> String {
        let env: String = (0..extra)
            .map(|i| format!(",\"APP_SETTING_{i}=value-{i}-\\u00e9\""))
            .collect();
        let labels: Vec<String> = (0..extra)
            .map(|i| format!("\"com.example.team{i}.owner\":\"someone-{i}@example.com\""))
            .collect();
        format!(
            r#"{{"Hostname":"","Domainname":"","User":"1000:1000","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{{"80/tcp":{{}},"443/tcp":{{}}}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"{env}],"Cmd":["nginx","-g","daemon off;"],"Healthcheck":{{"Test":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"Interval":30000000000,"Timeout":5000000000,"Retries":3}},"Image":"nginx:1.27","Volumes":{{"/data":{{}}}},"WorkingDir":"/srv","Entrypoint":null,"OnBuild":null,"Labels":{{{labels}}},"StopSignal":"SIGQUIT","HostConfig":{{"Binds":["/srv/www:/usr/share/nginx/html:ro","cache:/var/cache/nginx"],"ContainerIDFile":"","LogConfig":{{"Type":"json-file","Config":{{"max-size":"10m"}}}},"NetworkMode":"bridge","PortBindings":{{"80/tcp":[{{"HostIp":"127.0.0.1","HostPort":"8080"}}]}},"RestartPolicy":{{"Name":"unless-stopped","MaximumRetryCount":0}},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[50,200],"CapAdd":["NET_BIND_SERVICE"],"CapDrop":["ALL"],"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":true,"SecurityOpt":["no-new-privileges:true"],"UTSMode":"","UsernsMode":"","ShmSize":67108864,"Sysctls":{{"net.core.somaxconn":"1024"}},"Isolation":"","CpuShares":0,"Memory":536870912,"NanoCpus":1500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":256,"Ulimits":[{{"Name":"nofile","Soft":1024,"Hard":2048}}],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null}},"NetworkingConfig":{{"EndpointsConfig":{{"frontend":{{"IPAMConfig":null,"Links":null,"Aliases":["web"],"MacAddress":"","DriverOpts":null,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}}}}}"#,
            labels = labels.join(",")
        )
    }
}
