//! Owns the mapping from the exact request path that is forwarded to dockerd to one known Engine API route, its group, its API version prefix and its captured parameters.
//! It must never normalise, rewrite or guess: a path that dockerd could read differently from this module is refused, and the raw path is forwarded untouched.
//!
//! # How dockerd reads a path, and how this module follows it
//!
//! dockerd routes with gorilla/mux on the *decoded* path (Go's `req.URL.Path`). Every route is
//! registered twice, once as is and once behind the prefix matcher `/v{version:[0-9.]+}`, and the
//! first registered route whose path and method both match wins. A path that matches only with
//! another method is answered 405 (dockerd turns that into a 404). Before matching, mux cleans the
//! path and answers `301` to the cleaned form, so `//`, `/./` and `/../` reach another route
//! than the one they spell.
//!
//! [`classify`] therefore:
//! 1. accepts printable ASCII only (no space, `#` or `?`), decodes `%XX` escapes the way Go does,
//!    and refuses an escape that decodes to path syntax (`/`, `.`, `%`, `?`, `#`), to a space, a
//!    control character or a non-ASCII byte, or that is malformed;
//! 2. refuses empty segments (`//`, a trailing `/`) and `.`/`..` segments instead of cleaning them;
//! 3. records a `/vMAJOR.MINOR` prefix and refuses any other segment that dockerd's `[0-9.]+`
//!    matcher would take as a version (`/v1/`, `/v1..41/`, `/v1.41.0/`, `/v01.41/`);
//! 4. scans [`routes`] in dockerd's registration order and returns the first route whose method
//!    (exact, case-sensitive) and template both match.
//!
//! Most parameters match one segment (mux `{id}` is `[^/]+`). Those that dockerd declares as
//! `{name:.*}` (or `{id:.+}`) match one or more segments, greedily, followed by the route's fixed
//! suffix: every container, exec, image, network, volume, plugin and distribution parameter (image
//! references contain `/`; legacy links give containers names like `web/db`). Swarm objects
//! (services, tasks, nodes, secrets, configs) and both parameters of the checkpoint `DELETE` use
//! one segment.
//! [`Route::multi_segment`] records which; empty parameters cannot occur since empty segments are
//! refused.

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

/// The most parameters any route in [`routes`] captures (`/containers/{id}/checkpoints/{checkpoint}`).
pub const MAX_PARAMS: usize = 2;

/// The most segments a path may have; deeper paths are refused rather than scanned.
pub const MAX_SEGMENTS: usize = 32;

/// The longest path accepted, in bytes; the longest image reference is far shorter.
pub const MAX_PATH_LEN: usize = 8192;

/// An Engine API version, from a `/vMAJOR.MINOR` path prefix or a configuration value.
///
/// Ordered numerically, major first: `1.9 < 1.41 < 2.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

impl ApiVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ApiVersion {
    type Err = ApiVersionError;

    /// Parses `MAJOR.MINOR` with 1–3 digit numbers and no leading zeros, as in the path prefix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_version(s.bytes()).ok_or_else(|| ApiVersionError {
            input: s.to_owned(),
        })
    }
}

/// A named set of routes, the unit that policies grant.
///
/// [`Group::as_str`] gives the kebab-case name used in configuration; [`FromStr`] reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    ContainersRead,
    ContainersWrite,
    Exec,
    Attach,
    Logs,
    Archive,
    ImagesRead,
    /// Saving images as tarballs: every layer's files, as `archive` reads a container's.
    ImagesExport,
    ImagesPull,
    ImagesPush,
    ImagesWrite,
    Build,
    Volumes,
    Networks,
    SystemRead,
    Events,
    Auth,
    Swarm,
    Services,
    Nodes,
    Secrets,
    Configs,
    Plugins,
    Distribution,
}

impl Group {
    /// Every group, in declaration order.
    pub const ALL: [Group; 24] = [
        Group::ContainersRead,
        Group::ContainersWrite,
        Group::Exec,
        Group::Attach,
        Group::Logs,
        Group::Archive,
        Group::ImagesRead,
        Group::ImagesExport,
        Group::ImagesPull,
        Group::ImagesPush,
        Group::ImagesWrite,
        Group::Build,
        Group::Volumes,
        Group::Networks,
        Group::SystemRead,
        Group::Events,
        Group::Auth,
        Group::Swarm,
        Group::Services,
        Group::Nodes,
        Group::Secrets,
        Group::Configs,
        Group::Plugins,
        Group::Distribution,
    ];

    /// The kebab-case name used in configuration, e.g. `"containers-read"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Group::ContainersRead => "containers-read",
            Group::ContainersWrite => "containers-write",
            Group::Exec => "exec",
            Group::Attach => "attach",
            Group::Logs => "logs",
            Group::Archive => "archive",
            Group::ImagesRead => "images-read",
            Group::ImagesExport => "images-export",
            Group::ImagesPull => "images-pull",
            Group::ImagesPush => "images-push",
            Group::ImagesWrite => "images-write",
            Group::Build => "build",
            Group::Volumes => "volumes",
            Group::Networks => "networks",
            Group::SystemRead => "system-read",
            Group::Events => "events",
            Group::Auth => "auth",
            Group::Swarm => "swarm",
            Group::Services => "services",
            Group::Nodes => "nodes",
            Group::Secrets => "secrets",
            Group::Configs => "configs",
            Group::Plugins => "plugins",
            Group::Distribution => "distribution",
        }
    }

    /// The routes of this group, in table order.
    pub fn routes(self) -> impl Iterator<Item = &'static Route> {
        ROUTES.iter().filter(move |route| route.group == self)
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Group {
    type Err = UnknownGroup;

    /// Reads a kebab-case group name exactly as [`Group::as_str`] writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Group::ALL
            .into_iter()
            .find(|group| group.as_str() == s)
            .ok_or_else(|| UnknownGroup { name: s.to_owned() })
    }
}

/// One route that dockerd serves: a method and a path template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// The HTTP method, upper case, compared exactly.
    pub method: &'static str,
    /// The path template as the Engine API reference writes it, without a version prefix.
    pub template: &'static str,
    /// The group that policies grant this route through.
    pub group: Group,
    /// Whether the template's first parameter matches one or more whole segments (dockerd's
    /// `{name:.*}`), greedily, leaving the fixed segments after it to the rest of the template.
    pub multi_segment: bool,
    /// `method` as a [`Verb`], so that the scan compares a byte rather than a string. Private,
    /// so routes come only from the table.
    verb: Verb,
    /// The number of segments in `template`.
    segment_count: usize,
    /// The length and first byte of the template's first (always fixed) segment, for a quick
    /// test in the scan.
    head: (usize, u8),
}

impl Route {
    /// Whether dockerd answers this route with a stream that may run for long or carry much
    /// (followed logs and events, stats, waits, attach and exec output, archives and exports,
    /// image and plugin transfers, build output), as opposed to a JSON answer.
    pub fn streams(&self) -> bool {
        matches!(
            (self.method, self.template),
            ("GET", "/containers/{id}/logs")
                | ("GET", "/containers/{id}/stats")
                | ("GET", "/containers/{id}/export")
                | ("GET", "/containers/{id}/archive")
                | ("POST", "/containers/{id}/wait")
                | ("POST", "/containers/{id}/attach")
                | ("POST", "/exec/{id}/start")
                | ("GET", "/events")
                | ("GET", "/images/get")
                | ("GET", "/images/{name}/get")
                | ("POST", "/images/load")
                | ("POST", "/images/create")
                | ("POST", "/images/{name}/push")
                | ("POST", "/build")
                | ("GET", "/services/{id}/logs")
                | ("GET", "/tasks/{id}/logs")
                | ("POST", "/plugins/pull")
                | ("POST", "/plugins/{name}/push")
                | ("POST", "/plugins/{name}/upgrade")
        )
    }

    /// The route's identifier, `"METHOD /template"`, as configuration writes it and
    /// [`parse_route_spec`] reads it.
    pub fn id(&self) -> String {
        self.to_string()
    }

    /// Whether dockerd may switch protocols on this route and hand the connection over to a
    /// raw stream: attach and exec start (`Upgrade: tcp`), BuildKit's `/session` and `/grpc`
    /// (`Upgrade: h2c`).
    pub fn hijacks(&self) -> bool {
        matches!(
            (self.method, self.template),
            ("POST", "/containers/{id}/attach")
                | ("POST", "/exec/{id}/start")
                | ("POST", "/session")
                | ("POST", "/grpc")
        )
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.template)
    }
}

/// A classified request: the route dockerd will run, the API version prefix, and the parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub route: &'static Route,
    /// The `/vMAJOR.MINOR` prefix, or `None` when the path had none (dockerd then uses its
    /// default version).
    pub version: Option<ApiVersion>,
    /// The template's parameters, percent-decoded, e.g. `("id", "web")`.
    pub params: Params,
}

impl Endpoint {
    pub fn group(&self) -> Group {
        self.route.group
    }

    /// The decoded value of the parameter `name` (as written in the template, without braces).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }
}

/// The parameters captured from a path: at most [`MAX_PARAMS`] `(name, decoded value)` pairs,
/// stored inline so that classifying allocates nothing but the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    len: usize,
    items: [(&'static str, String); MAX_PARAMS],
}

impl Params {
    /// The decoded value of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(param, _)| *param == name)
            .map(|(_, value)| value)
    }

    /// The parameters in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.items
            .iter()
            .take(self.len)
            .map(|(name, value)| (*name, value.as_str()))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a parameter. The table holds no template with more than [`MAX_PARAMS`]
    /// parameters (a test checks it), so a further one cannot occur and would be dropped.
    fn push(&mut self, name: &'static str, value: String) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (name, value);
            self.len += 1;
        }
    }
}

/// Whose move a [`PathError`] calls for: the caller answers each differently (and denies all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathErrorKind {
    /// The path could be read more than one way, or is not a path at all: answer 400.
    Malformed,
    /// The path is well formed but no route serves it.
    UnknownRoute,
    /// Some route serves the path, but not with this method.
    MethodNotAllowed,
}

/// Why a request path was not classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "request path {path:?} does not start with '/'; send an origin-form path such as \
         \"/v1.41/containers/json\""
    )]
    NotAbsolute { path: String },

    #[error(
        "request path {path:?} has {found:?} at byte {index}; a path may hold only printable \
         ASCII without spaces, '#' or '?', so percent-encode the character or drop it"
    )]
    ForbiddenCharacter {
        path: String,
        index: usize,
        found: char,
    },

    #[error(
        "request path {path:?} has a malformed escape at byte {index}; '%' must be followed \
         by two hex digits, so write a literal '%' as \"%25\" only where it is meant as data"
    )]
    MalformedEscape { path: String, index: usize },

    #[error(
        "request path {path:?} has the escape {escape:?} at byte {index}, which decodes to a \
         character that changes how the path is split or is never part of an Engine API path \
         ('/', '.', '%', '?', '#', a space, a control character or a non-ASCII byte); send the \
         path without it"
    )]
    ForbiddenEscape {
        path: String,
        index: usize,
        escape: String,
    },

    #[error(
        "request path {path:?} has an empty segment ('//' or a trailing '/'), which dockerd \
         would redirect to another path; remove the extra '/'"
    )]
    EmptySegment { path: String },

    #[error(
        "request path {path:?} has a '.' or '..' segment, which dockerd would resolve to \
         another path; send the resolved path instead"
    )]
    DotSegment { path: String },

    #[error(
        "request path {path:?} starts with {segment:?}, which dockerd takes as an API version \
         but is not exactly vMAJOR.MINOR (1-3 digits each, no leading zeros); use a prefix \
         such as \"/v1.41\""
    )]
    AmbiguousVersion { path: String, segment: String },

    #[error(
        "request path {path:?} has more than {max} segments, deeper than any Engine API \
         route this proxy accepts; shorten the path"
    )]
    TooManySegments { path: String, max: usize },

    #[error(
        "request path starting {start:?} is {len} bytes long, longer than the {max} bytes \
         this proxy accepts; shorten the path"
    )]
    TooLong {
        start: String,
        len: usize,
        max: usize,
    },

    #[error(
        "request path {path:?} (method {method:?}) matches no Engine API route known to \
         dockgate; check the path and its version prefix against the Engine API reference"
    )]
    UnknownRoute { method: String, path: String },

    #[error(
        "method {method:?} has no route for request path {path:?}, which is served only for \
         {}; methods are upper case and compared exactly",
        .allowed.join(", ")
    )]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: Vec<&'static str>,
    },
}

impl PathError {
    pub fn kind(&self) -> PathErrorKind {
        match self {
            PathError::UnknownRoute { .. } => PathErrorKind::UnknownRoute,
            PathError::MethodNotAllowed { .. } => PathErrorKind::MethodNotAllowed,
            PathError::NotAbsolute { .. }
            | PathError::ForbiddenCharacter { .. }
            | PathError::MalformedEscape { .. }
            | PathError::ForbiddenEscape { .. }
            | PathError::EmptySegment { .. }
            | PathError::DotSegment { .. }
            | PathError::AmbiguousVersion { .. }
            | PathError::TooManySegments { .. }
            | PathError::TooLong { .. } => PathErrorKind::Malformed,
        }
    }
}

/// A route identifier in configuration that names no route in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteSpecError {
    #[error(
        "route {spec:?} is not of the form \"METHOD /template\"; write it like \
         \"POST /containers/{{id}}/start\""
    )]
    Malformed { spec: String },

    #[error(
        "route {spec:?}: the template is known only with the method(s) {}; methods are upper \
         case and exact",
        .methods.join(", ")
    )]
    UnknownMethod {
        spec: String,
        methods: Vec<&'static str>,
    },

    #[error(
        "route {spec:?} is not a known Engine API route; write the template as the Engine API \
         reference does, without a version prefix (e.g. \"GET /containers/{{id}}/json\")"
    )]
    Unknown { spec: String },
}

/// A group name in configuration that is not one of [`Group::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown route group {name:?}; expected one of: {}",
    Group::ALL.map(Group::as_str).join(", ")
)]
pub struct UnknownGroup {
    pub name: String,
}

/// An API version in configuration that is not `MAJOR.MINOR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid API version {input:?}; expected MAJOR.MINOR with 1-3 digits each and no leading \
     zeros, e.g. \"1.41\""
)]
pub struct ApiVersionError {
    pub input: String,
}

/// Classifies `method` and the raw request path (the request target up to, not including, the
/// first `?`) into the route dockerd will run.
///
/// The raw path is only read; forward it unchanged. Parameters are returned decoded.
pub fn classify(method: &str, raw_path: &str) -> Result<Endpoint, PathError> {
    let mut path = Path::parse(raw_path)?;
    let version = path.strip_version()?;

    // dockerd's mux takes the first registered route whose method and path both match.
    if let Some(verb) = Verb::parse(method) {
        let head = path.head();
        for route in ROUTES {
            if route.verb == verb && head.is_none_or(|head| head == route.head) {
                if let Some(shape) = Shape::matching(route, &path) {
                    return Ok(Endpoint {
                        route,
                        version,
                        params: shape.capture(&path),
                    });
                }
            }
        }
    }

    // Not served: tell a path no route knows from a method no route of this path has.
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        let path_matches = Shape::matching(route, &path).is_some();
        if path_matches && !allowed.contains(&route.method) {
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Err(PathError::UnknownRoute {
            method: method.to_owned(),
            path: raw_path.to_owned(),
        })
    } else {
        Err(PathError::MethodNotAllowed {
            method: method.to_owned(),
            path: raw_path.to_owned(),
            allowed,
        })
    }
}

/// Every route dockerd serves that this proxy knows, in dockerd's registration order.
pub fn routes() -> &'static [Route] {
    ROUTES
}

/// Reads a route identifier from configuration, `"METHOD /template"` exactly as [`Route::id`]
/// writes it (e.g. `"POST /containers/{id}/start"`).
pub fn parse_route_spec(s: &str) -> Result<&'static Route, RouteSpecError> {
    let (method, template) = s
        .split_once(' ')
        .filter(|(method, template)| !method.is_empty() && template.starts_with('/'))
        .ok_or_else(|| RouteSpecError::Malformed { spec: s.to_owned() })?;
    if let Some(route) = ROUTES
        .iter()
        .find(|route| route.method == method && route.template == template)
    {
        return Ok(route);
    }
    let methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|route| route.template == template)
        .map(|route| route.method)
        .collect();
    if methods.is_empty() {
        Err(RouteSpecError::Unknown { spec: s.to_owned() })
    } else {
        Err(RouteSpecError::UnknownMethod {
            spec: s.to_owned(),
            methods,
        })
    }
}

/// The route table: the union of the routes of Engine API 1.41 (the dockerd under test) and 1.56
/// (the newest), plus those dockerd serves that the reference omits (marked "not in the
/// reference"). It follows dockerd's registration order (checkpoint, container, image, system,
/// volume, build, session, swarm, plugin, distribution, grpc, network), so that the first match
/// is mux's match. The only overlap of two templates with one method is the checkpoint `DELETE`
/// ahead of the container `DELETE`, as in dockerd (a test keeps it so).
///
/// Not listed, hence refused: `OPTIONS /{anyroute:.*}` (dockerd's CORS preflight answer) and the
/// `/debug/...` routes (expvar and pprof).
static ROUTES: &[Route] = &[
    // Checkpoints (experimental; with experimental off dockerd still matches them and answers an
    // error). Not in the reference. Listing is a read; creating (CRIU dump) and deleting write.
    spanning(GET, "/containers/{id}/checkpoints", Group::ContainersRead),
    spanning(POST, "/containers/{id}/checkpoints", Group::ContainersWrite),
    single(
        DELETE,
        "/containers/{id}/checkpoints/{checkpoint}",
        Group::ContainersWrite,
    ),
    // Containers.
    spanning(HEAD, "/containers/{id}/archive", Group::Archive),
    single(GET, "/containers/json", Group::ContainersRead),
    // Export streams the whole filesystem: it reads files out like GET archive.
    spanning(GET, "/containers/{id}/export", Group::Archive),
    spanning(GET, "/containers/{id}/changes", Group::ContainersRead),
    spanning(GET, "/containers/{id}/json", Group::ContainersRead),
    spanning(GET, "/containers/{id}/top", Group::ContainersRead),
    spanning(GET, "/containers/{id}/logs", Group::Logs),
    spanning(GET, "/containers/{id}/stats", Group::ContainersRead),
    spanning(GET, "/containers/{id}/attach/ws", Group::Attach),
    spanning(GET, "/exec/{id}/json", Group::Exec),
    spanning(GET, "/containers/{id}/archive", Group::Archive),
    single(POST, "/containers/create", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/kill", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/pause", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/unpause", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/restart", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/start", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/stop", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/wait", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/resize", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/attach", Group::Attach),
    // The pre-1.20 copy-out: dockerd 20.10 still serves it for API versions below 1.24 (and
    // answers 404 above). Not in the reference; it reads files out, so it is archive.
    spanning(POST, "/containers/{id}/copy", Group::Archive),
    spanning(POST, "/containers/{id}/exec", Group::Exec),
    spanning(POST, "/exec/{id}/start", Group::Exec),
    spanning(POST, "/exec/{id}/resize", Group::Exec),
    spanning(POST, "/containers/{id}/rename", Group::ContainersWrite),
    spanning(POST, "/containers/{id}/update", Group::ContainersWrite),
    single(POST, "/containers/prune", Group::ContainersWrite),
    // Commit makes an image from a container: an image write.
    single(POST, "/commit", Group::ImagesWrite),
    spanning(PUT, "/containers/{id}/archive", Group::Archive),
    spanning(DELETE, "/containers/{id}", Group::ContainersWrite),
    // Images. Saving tarballs (`get`) reads every file of every layer, as export does a
    // container's: a group of its own, in neither read-only nor baseline.
    single(GET, "/images/json", Group::ImagesRead),
    single(GET, "/images/search", Group::ImagesRead),
    single(GET, "/images/get", Group::ImagesExport),
    spanning(GET, "/images/{name}/get", Group::ImagesExport),
    spanning(GET, "/images/{name}/history", Group::ImagesRead),
    spanning(GET, "/images/{name}/json", Group::ImagesRead),
    spanning(GET, "/images/{name}/attestations", Group::ImagesRead),
    single(POST, "/images/load", Group::ImagesWrite),
    // Pull, and also import (`fromSrc`): the policy looks at the query to tell them apart.
    single(POST, "/images/create", Group::ImagesPull),
    spanning(POST, "/images/{name}/push", Group::ImagesPush),
    spanning(POST, "/images/{name}/tag", Group::ImagesWrite),
    single(POST, "/images/prune", Group::ImagesWrite),
    spanning(DELETE, "/images/{name}", Group::ImagesWrite),
    // System.
    single(GET, "/_ping", Group::SystemRead),
    single(HEAD, "/_ping", Group::SystemRead),
    single(GET, "/events", Group::Events),
    single(GET, "/info", Group::SystemRead),
    single(GET, "/version", Group::SystemRead),
    single(GET, "/system/df", Group::SystemRead),
    single(POST, "/auth", Group::Auth),
    // Volumes.
    single(GET, "/volumes", Group::Volumes),
    spanning(GET, "/volumes/{name}", Group::Volumes),
    single(POST, "/volumes/create", Group::Volumes),
    single(POST, "/volumes/prune", Group::Volumes),
    spanning(PUT, "/volumes/{name}", Group::Volumes),
    spanning(DELETE, "/volumes/{name}", Group::Volumes),
    // Build. `/build/cancel` is not in the reference.
    single(POST, "/build", Group::Build),
    single(POST, "/build/prune", Group::Build),
    single(POST, "/build/cancel", Group::Build),
    // BuildKit session, upgraded to h2c.
    single(POST, "/session", Group::Build),
    // Swarm. Tasks are the units services run, so they belong to services, as do service logs.
    single(POST, "/swarm/init", Group::Swarm),
    single(POST, "/swarm/join", Group::Swarm),
    single(POST, "/swarm/leave", Group::Swarm),
    single(GET, "/swarm", Group::Swarm),
    single(GET, "/swarm/unlockkey", Group::Swarm),
    single(POST, "/swarm/update", Group::Swarm),
    single(POST, "/swarm/unlock", Group::Swarm),
    single(GET, "/services", Group::Services),
    single(GET, "/services/{id}", Group::Services),
    single(POST, "/services/create", Group::Services),
    single(POST, "/services/{id}/update", Group::Services),
    single(DELETE, "/services/{id}", Group::Services),
    single(GET, "/services/{id}/logs", Group::Services),
    single(GET, "/nodes", Group::Nodes),
    single(GET, "/nodes/{id}", Group::Nodes),
    single(DELETE, "/nodes/{id}", Group::Nodes),
    single(POST, "/nodes/{id}/update", Group::Nodes),
    single(GET, "/tasks", Group::Services),
    single(GET, "/tasks/{id}", Group::Services),
    single(GET, "/tasks/{id}/logs", Group::Services),
    single(GET, "/secrets", Group::Secrets),
    single(POST, "/secrets/create", Group::Secrets),
    single(DELETE, "/secrets/{id}", Group::Secrets),
    single(GET, "/secrets/{id}", Group::Secrets),
    single(POST, "/secrets/{id}/update", Group::Secrets),
    single(GET, "/configs", Group::Configs),
    single(POST, "/configs/create", Group::Configs),
    single(DELETE, "/configs/{id}", Group::Configs),
    single(GET, "/configs/{id}", Group::Configs),
    single(POST, "/configs/{id}/update", Group::Configs),
    // Plugins, including their privileges query, pull and create.
    single(GET, "/plugins", Group::Plugins),
    spanning(GET, "/plugins/{name}/json", Group::Plugins),
    single(GET, "/plugins/privileges", Group::Plugins),
    spanning(DELETE, "/plugins/{name}", Group::Plugins),
    spanning(POST, "/plugins/{name}/enable", Group::Plugins),
    spanning(POST, "/plugins/{name}/disable", Group::Plugins),
    single(POST, "/plugins/pull", Group::Plugins),
    spanning(POST, "/plugins/{name}/push", Group::Plugins),
    spanning(POST, "/plugins/{name}/upgrade", Group::Plugins),
    spanning(POST, "/plugins/{name}/set", Group::Plugins),
    single(POST, "/plugins/create", Group::Plugins),
    // Distribution: asks the registry for an image's manifest.
    spanning(GET, "/distribution/{name}/json", Group::Distribution),
    // BuildKit gRPC over h2c. Not in the reference.
    single(POST, "/grpc", Group::Build),
    // Networks.
    single(GET, "/networks", Group::Networks),
    spanning(GET, "/networks/{id}", Group::Networks),
    single(POST, "/networks/create", Group::Networks),
    spanning(POST, "/networks/{id}/connect", Group::Networks),
    spanning(POST, "/networks/{id}/disconnect", Group::Networks),
    single(POST, "/networks/prune", Group::Networks),
    spanning(DELETE, "/networks/{id}", Group::Networks),
];

const GET: Verb = Verb::Get;
const HEAD: Verb = Verb::Head;
const POST: Verb = Verb::Post;
const PUT: Verb = Verb::Put;
const DELETE: Verb = Verb::Delete;

/// A route whose parameters each match exactly one segment (mux `{id}`).
const fn single(verb: Verb, template: &'static str, group: Group) -> Route {
    Route {
        method: verb.as_str(),
        template,
        group,
        multi_segment: false,
        verb,
        segment_count: count_segments(template),
        head: head_of(template),
    }
}

/// A route whose first parameter matches one or more segments (mux `{name:.*}`).
const fn spanning(verb: Verb, template: &'static str, group: Group) -> Route {
    Route {
        method: verb.as_str(),
        template,
        group,
        multi_segment: true,
        verb,
        segment_count: count_segments(template),
        head: head_of(template),
    }
}

/// The number of `/`-separated segments of a template (each begins with `/`).
const fn count_segments(template: &str) -> usize {
    let bytes = template.as_bytes();
    let mut count = 0;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'/' {
            count += 1;
        }
        index += 1;
    }
    count
}

/// The length and first byte of a template's first segment.
const fn head_of(template: &str) -> (usize, u8) {
    let bytes = template.as_bytes();
    let mut end = 1;
    while end < bytes.len() && bytes[end] != b'/' {
        end += 1;
    }
    (end - 1, bytes[1])
}

/// The methods that the table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Verb {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

impl Verb {
    const ALL: [Verb; 5] = [Verb::Get, Verb::Head, Verb::Post, Verb::Put, Verb::Delete];

    const fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }

    /// The verb spelled exactly `method`; none for any other spelling (`get`, `PATCH`).
    fn parse(method: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|verb| verb.as_str() == method)
    }
}

/// A validated path, split into segments stored inline as offsets into the raw path.
struct Path<'a> {
    raw: &'a str,
    segments: [Segment; MAX_SEGMENTS],
    len: usize,
    /// The first segment after the version prefix, if any.
    first: usize,
}

/// One segment of a validated path: where it lies in the raw path.
#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    start: u16,
    end: u16,
    /// Whether the segment holds `%XX` escapes (all valid), so it must be decoded to compare.
    escaped: bool,
}

impl<'a> Path<'a> {
    /// Splits `raw` at `/` after checking every byte, escape and segment; see the module doc.
    fn parse(raw: &'a str) -> Result<Self, PathError> {
        let mut path = Path {
            raw,
            segments: [Segment::default(); MAX_SEGMENTS],
            len: 0,
            first: 0,
        };
        let bytes = raw.as_bytes();
        if bytes.first() != Some(&b'/') {
            return Err(PathError::NotAbsolute {
                path: raw.to_owned(),
            });
        }
        if bytes.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong {
                start: raw.chars().take(64).collect(),
                len: bytes.len(),
                max: MAX_PATH_LEN,
            });
        }
        if raw == "/" {
            // The root is a well-formed path that no route serves.
            return Ok(path);
        }
        let mut start = 1;
        let mut escaped = false;
        let mut index = 1;
        loop {
            match bytes.get(index) {
                None | Some(b'/') => {
                    path.push(start, index, escaped)?;
                    if index >= bytes.len() {
                        return Ok(path);
                    }
                    index += 1;
                    start = index;
                    escaped = false;
                }
                Some(b'%') => {
                    let decoded =
                        decode_escape(bytes, index).ok_or_else(|| PathError::MalformedEscape {
                            path: raw.to_owned(),
                            index,
                        })?;
                    if !is_segment_byte(decoded) || decoded == b'.' {
                        return Err(PathError::ForbiddenEscape {
                            path: raw.to_owned(),
                            index,
                            escape: raw.get(index..index + 3).unwrap_or("%").to_owned(),
                        });
                    }
                    escaped = true;
                    index += 3;
                }
                Some(&byte) if is_segment_byte(byte) => index += 1,
                Some(_) => {
                    // Every byte before `index` is ASCII, so `index` is a char boundary.
                    let found = raw
                        .get(index..)
                        .and_then(|rest| rest.chars().next())
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    return Err(PathError::ForbiddenCharacter {
                        path: raw.to_owned(),
                        index,
                        found,
                    });
                }
            }
        }
    }

    fn push(&mut self, start: usize, end: usize, escaped: bool) -> Result<(), PathError> {
        let text = self.raw.get(start..end).unwrap_or("");
        if text.is_empty() {
            return Err(PathError::EmptySegment {
                path: self.raw.to_owned(),
            });
        }
        if text == "." || text == ".." {
            return Err(PathError::DotSegment {
                path: self.raw.to_owned(),
            });
        }
        // Both fit: the path is at most MAX_PATH_LEN bytes long.
        let (Ok(start), Ok(end)) = (u16::try_from(start), u16::try_from(end)) else {
            return Err(PathError::TooLong {
                start: self.raw.chars().take(64).collect(),
                len: self.raw.len(),
                max: MAX_PATH_LEN,
            });
        };
        let Some(slot) = self.segments.get_mut(self.len) else {
            return Err(PathError::TooManySegments {
                path: self.raw.to_owned(),
                max: MAX_SEGMENTS,
            });
        };
        *slot = Segment {
            start,
            end,
            escaped,
        };
        self.len += 1;
        Ok(())
    }

    /// Splits off a leading version segment. dockerd takes any first segment `v` + `[0-9.]+`
    /// as a version; only `vMAJOR.MINOR` is accepted, any other such segment is refused.
    fn strip_version(&mut self) -> Result<Option<ApiVersion>, PathError> {
        let Some(first) = self.text(0) else {
            return Ok(None);
        };
        let mut bytes = Decoded::new(first);
        if bytes.next() != Some(b'v') {
            return Ok(None);
        }
        let mut digits = bytes.clone().peekable();
        let version_like =
            digits.peek().is_some() && digits.all(|byte| byte.is_ascii_digit() || byte == b'.');
        if !version_like {
            return Ok(None);
        }
        match parse_version(bytes) {
            Some(version) => {
                self.first += 1;
                Ok(Some(version))
            }
            None => Err(PathError::AmbiguousVersion {
                path: self.raw.to_owned(),
                segment: first.to_owned(),
            }),
        }
    }

    /// The number of segments after the version prefix.
    fn len(&self) -> usize {
        self.len.saturating_sub(self.first)
    }

    fn segment(&self, index: usize) -> Option<Segment> {
        self.segments
            .get(..self.len)?
            .get(self.first.checked_add(index)?)
            .copied()
    }

    /// The raw text of segment `index` (after the version prefix).
    fn text(&self, index: usize) -> Option<&'a str> {
        self.span(index, index)
    }

    /// The raw text from the start of segment `first` to the end of segment `last`.
    fn span(&self, first: usize, last: usize) -> Option<&'a str> {
        let (first, last) = (self.segment(first)?, self.segment(last)?);
        self.raw
            .get(usize::from(first.start)..usize::from(last.end))
    }

    /// The length and first byte of the first segment, when it has no escapes, to compare
    /// with [`Route::head`] before anything else.
    fn head(&self) -> Option<(usize, u8)> {
        if self.segment(0)?.escaped {
            return None;
        }
        let text = self.text(0)?;
        Some((text.len(), *text.as_bytes().first()?))
    }

    /// Whether segment `index`, decoded, equals `literal`.
    fn is(&self, index: usize, literal: &str) -> bool {
        let (Some(segment), Some(text)) = (self.segment(index), self.text(index)) else {
            return false;
        };
        if segment.escaped {
            Decoded::new(text).eq(literal.bytes())
        } else {
            bytes_eq(text.as_bytes(), literal.as_bytes())
        }
    }

    /// Whether the first segment equals the template's first segment, which is always fixed
    /// (a test checks it): a cheap test before the template is split.
    fn leads(&self, template: &'static str) -> bool {
        let (Some(segment), Some(text)) = (self.segment(0), self.text(0)) else {
            return false;
        };
        if segment.escaped {
            return template_segments(template)
                .next()
                .is_some_and(|head| self.is(0, head));
        }
        let template = template.as_bytes();
        let end = text.len() + 1;
        matches!(template.get(end), None | Some(b'/'))
            && template
                .get(1..end)
                .is_some_and(|head| bytes_eq(head, text.as_bytes()))
    }
}

/// How a route's template lines up with a path of a given number of segments.
struct Shape {
    route: &'static Route,
    /// How many segments beyond one the multi-segment parameter takes.
    extra: usize,
}

impl Shape {
    /// How `route`'s template lines up with `path`, if it matches it.
    fn matching(route: &'static Route, path: &Path<'_>) -> Option<Shape> {
        if !path.leads(route.template) {
            return None;
        }
        let shape = Shape::of(route, path.len())?;
        // Another cheap test before the template is split: its last segment, often the only
        // one that tells routes of one resource apart.
        let (_, tail) = route.template.rsplit_once('/')?;
        if !is_param(tail) && !path.is(path.len().checked_sub(1)?, tail) {
            return None;
        }
        shape.matches(path).then_some(shape)
    }

    /// The alignment of `route` with a path of `len` segments, if the lengths can match.
    fn of(route: &'static Route, len: usize) -> Option<Shape> {
        let extra = if route.multi_segment {
            len.checked_sub(route.segment_count)?
        } else if len == route.segment_count {
            0
        } else {
            return None;
        };
        Some(Shape { route, extra })
    }

    /// Pairs each template segment with the path segments it covers, as `(template segment,
    /// first path index, last path index)`.
    fn spans(&self) -> impl Iterator<Item = (&'static str, usize, usize)> {
        let multi_segment = self.route.multi_segment;
        let extra = self.extra;
        let mut spanning_done = false;
        template_segments(self.route.template)
            .enumerate()
            .map(move |(index, part)| {
                let offset = if spanning_done { extra } else { 0 };
                if multi_segment && !spanning_done && is_param(part) {
                    spanning_done = true;
                    (part, index, index + extra)
                } else {
                    (part, index + offset, index + offset)
                }
            })
    }

    fn matches(&self, path: &Path<'_>) -> bool {
        self.spans()
            .all(|(part, first, _)| is_param(part) || path.is(first, part))
    }

    fn capture(&self, path: &Path<'_>) -> Params {
        let mut params = Params::default();
        for (part, first, last) in self.spans() {
            if let Some(text) = path.span(first, last).filter(|_| is_param(part)) {
                // Only ASCII escapes pass validation, so decoding cannot be lossy.
                let value = percent_decode_str(text).decode_utf8_lossy().into_owned();
                params.push(param_name(part), value);
            }
        }
        params
    }
}

/// Byte equality written out, cheaper than a `memcmp` call for the short strings compared here.
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The segments of a template, without the leading empty one.
fn template_segments(template: &'static str) -> impl Iterator<Item = &'static str> {
    template.split('/').skip(1)
}

fn is_param(part: &str) -> bool {
    part.starts_with('{') && part.ends_with('}')
}

/// `"{id}"` → `"id"`.
fn param_name(part: &'static str) -> &'static str {
    part.strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or(part)
}

/// Whether `byte` may stand unescaped inside a segment: printable ASCII other than space, and
/// other than `/` (the separator), `%` (an escape), `?` (the query) and `#` (a fragment).
fn is_segment_byte(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7e) && !matches!(byte, b'/' | b'%' | b'?' | b'#')
}

/// The byte that the escape `%XX` at `index` of `bytes` stands for, if it is well formed.
fn decode_escape(bytes: &[u8], index: usize) -> Option<u8> {
    let high = hex_value(*bytes.get(index + 1)?)?;
    let low = hex_value(*bytes.get(index + 2)?)?;
    Some(high << 4 | low)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The decoded bytes of a validated segment, without allocating.
#[derive(Clone)]
struct Decoded<'a> {
    bytes: &'a [u8],
    index: usize,
}

impl<'a> Decoded<'a> {
    fn new(raw: &'a str) -> Self {
        Decoded {
            bytes: raw.as_bytes(),
            index: 0,
        }
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.index)?;
        if byte == b'%' {
            if let Some(decoded) = decode_escape(self.bytes, self.index) {
                self.index += 3;
                return Some(decoded);
            }
        }
        self.index += 1;
        Some(byte)
    }
}

/// Reads `MAJOR.MINOR`, each 1–3 digits without a leading zero, and nothing else.
fn parse_version(bytes: impl Iterator<Item = u8>) -> Option<ApiVersion> {
    let mut bytes = bytes;
    let major = parse_version_number(&mut bytes, Some(b'.'))?;
    let minor = parse_version_number(&mut bytes, None)?;
    Some(ApiVersion { major, minor })
}

/// Reads 1–3 digits without a leading zero, up to `end` (a byte, or `None` for the end).
fn parse_version_number(bytes: &mut impl Iterator<Item = u8>, end: Option<u8>) -> Option<u16> {
    let mut value: u16 = 0;
    let mut digits = 0;
    loop {
        match bytes.next() {
            Some(byte @ b'0'..=b'9') => {
                let leading_zero = digits == 1 && value == 0;
                if digits == 3 || leading_zero {
                    return None;
                }
                value = value * 10 + u16::from(byte - b'0');
                digits += 1;
            }
            next if next == end && digits > 0 => return Some(value),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashSet;
    use std::time::Instant;

    /// Every `METHOD /path` of the Engine API reference 1.41 and 1.56 (their union), as listed by
    /// the `paths` of `shared/reference/docker-engine-api-v1.{41,56}.yaml`.
    const SPEC_ROUTES: &[&str] = &[
        "GET /_ping",
        "HEAD /_ping",
        "POST /auth",
        "POST /build",
        "POST /build/prune",
        "POST /commit",
        "GET /configs",
        "POST /configs/create",
        "DELETE /configs/{id}",
        "GET /configs/{id}",
        "POST /configs/{id}/update",
        "POST /containers/create",
        "GET /containers/json",
        "POST /containers/prune",
        "DELETE /containers/{id}",
        "GET /containers/{id}/archive",
        "HEAD /containers/{id}/archive",
        "PUT /containers/{id}/archive",
        "POST /containers/{id}/attach",
        "GET /containers/{id}/attach/ws",
        "GET /containers/{id}/changes",
        "POST /containers/{id}/exec",
        "GET /containers/{id}/export",
        "GET /containers/{id}/json",
        "POST /containers/{id}/kill",
        "GET /containers/{id}/logs",
        "POST /containers/{id}/pause",
        "POST /containers/{id}/rename",
        "POST /containers/{id}/resize",
        "POST /containers/{id}/restart",
        "POST /containers/{id}/start",
        "GET /containers/{id}/stats",
        "POST /containers/{id}/stop",
        "GET /containers/{id}/top",
        "POST /containers/{id}/unpause",
        "POST /containers/{id}/update",
        "POST /containers/{id}/wait",
        "GET /distribution/{name}/json",
        "GET /events",
        "GET /exec/{id}/json",
        "POST /exec/{id}/resize",
        "POST /exec/{id}/start",
        "POST /images/create",
        "GET /images/get",
        "GET /images/json",
        "POST /images/load",
        "POST /images/prune",
        "GET /images/search",
        "DELETE /images/{name}",
        "GET /images/{name}/attestations",
        "GET /images/{name}/get",
        "GET /images/{name}/history",
        "GET /images/{name}/json",
        "POST /images/{name}/push",
        "POST /images/{name}/tag",
        "GET /info",
        "GET /networks",
        "POST /networks/create",
        "POST /networks/prune",
        "DELETE /networks/{id}",
        "GET /networks/{id}",
        "POST /networks/{id}/connect",
        "POST /networks/{id}/disconnect",
        "GET /nodes",
        "DELETE /nodes/{id}",
        "GET /nodes/{id}",
        "POST /nodes/{id}/update",
        "GET /plugins",
        "POST /plugins/create",
        "GET /plugins/privileges",
        "POST /plugins/pull",
        "DELETE /plugins/{name}",
        "POST /plugins/{name}/disable",
        "POST /plugins/{name}/enable",
        "GET /plugins/{name}/json",
        "POST /plugins/{name}/push",
        "POST /plugins/{name}/set",
        "POST /plugins/{name}/upgrade",
        "GET /secrets",
        "POST /secrets/create",
        "DELETE /secrets/{id}",
        "GET /secrets/{id}",
        "POST /secrets/{id}/update",
        "GET /services",
        "POST /services/create",
        "DELETE /services/{id}",
        "GET /services/{id}",
        "GET /services/{id}/logs",
        "POST /services/{id}/update",
        "POST /session",
        "GET /swarm",
        "POST /swarm/init",
        "POST /swarm/join",
        "POST /swarm/leave",
        "POST /swarm/unlock",
        "GET /swarm/unlockkey",
        "POST /swarm/update",
        "GET /system/df",
        "GET /tasks",
        "GET /tasks/{id}",
        "GET /tasks/{id}/logs",
        "GET /version",
        "GET /volumes",
        "POST /volumes/create",
        "POST /volumes/prune",
        "DELETE /volumes/{name}",
        "GET /volumes/{name}",
        "PUT /volumes/{name}",
    ];

    /// Routes dockerd serves that the reference omits.
    const NOT_IN_REFERENCE: &[&str] = &[
        "GET /containers/{id}/checkpoints",
        "POST /containers/{id}/checkpoints",
        "DELETE /containers/{id}/checkpoints/{checkpoint}",
        "POST /containers/{id}/copy",
        "POST /build/cancel",
        "POST /grpc",
    ];

    /// Pairs of routes with one method whose templates match a common path, the first winning
    /// because dockerd registers it first.
    const ORDERED_OVERLAPS: &[(&str, &str)] = &[(
        "DELETE /containers/{id}/checkpoints/{checkpoint}",
        "DELETE /containers/{id}",
    )];

    fn ok(method: &str, path: &str) -> Endpoint {
        match classify(method, path) {
            Ok(endpoint) => endpoint,
            Err(error) => panic!("{method} {path} was refused: {error}"),
        }
    }

    fn refused(method: &str, path: &str) -> PathError {
        match classify(method, path) {
            Ok(endpoint) => panic!("{method} {path} was classified as {}", endpoint.route),
            Err(error) => error,
        }
    }

    fn route_of(method: &str, path: &str) -> String {
        ok(method, path).route.id()
    }

    fn params_of(endpoint: &Endpoint) -> Vec<(&'static str, String)> {
        endpoint
            .params
            .iter()
            .map(|(name, value)| (name, value.to_owned()))
            .collect()
    }

    /// A concrete path for `route`, with its expected parameters; the multi-segment parameter
    /// (if any) takes `spanning_value`.
    fn concrete_path(route: &Route, spanning_value: &str) -> (String, Vec<(&'static str, String)>) {
        let mut path = String::new();
        let mut params = Vec::new();
        for part in template_segments(route.template) {
            path.push('/');
            if is_param(part) {
                let name = param_name(part);
                let value = if route.multi_segment && params.is_empty() {
                    spanning_value.to_owned()
                } else {
                    format!("p-{name}")
                };
                path.push_str(&value);
                params.push((name, value));
            } else {
                path.push_str(part);
            }
        }
        (path, params)
    }

    #[test]
    fn every_reference_route_is_in_the_table() {
        for spec in SPEC_ROUTES {
            assert!(parse_route_spec(spec).is_ok(), "{spec} is missing");
        }
    }

    #[test]
    fn every_table_route_is_in_the_reference_or_listed_as_omitted_by_it() {
        for route in routes() {
            let id = route.id();
            assert!(
                SPEC_ROUTES.contains(&id.as_str()) || NOT_IN_REFERENCE.contains(&id.as_str()),
                "{id} is neither in the reference nor listed as omitted"
            );
        }
        assert_eq!(routes().len(), SPEC_ROUTES.len() + NOT_IN_REFERENCE.len());
    }

    /// Cross-checks the embedded list against the reference files when they sit beside the
    /// crate (`../shared/reference`, as on developer machines and in CI).
    #[test]
    fn embedded_reference_list_matches_the_reference_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
        let mut from_files = HashSet::new();
        for version in ["1.41", "1.56"] {
            let file = dir.join(format!("docker-engine-api-v{version}.yaml"));
            let Ok(text) = std::fs::read_to_string(&file) else {
                eprintln!("skipped: {} is not readable", file.display());
                return;
            };
            from_files.extend(reference_routes(&text));
        }
        let embedded: HashSet<String> = SPEC_ROUTES.iter().map(|s| s.to_string()).collect();
        assert_eq!(from_files, embedded);
    }

    /// The `METHOD /path` pairs under `paths:` of a Swagger 2.0 YAML file, read line by line.
    fn reference_routes(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut in_paths = false;
        let mut path: Option<&str> = None;
        for line in text.lines() {
            if !line.starts_with(' ') && !line.is_empty() {
                in_paths = line == "paths:";
                path = None;
            } else if let Some(rest) = line.strip_prefix("  ").filter(|_| in_paths) {
                if let Some(p) = rest.strip_suffix(':').filter(|p| p.starts_with('/')) {
                    path = Some(p);
                } else if let (Some(p), Some(method)) = (path, rest.strip_prefix("  ")) {
                    let method = method.trim_end_matches(':');
                    if ["get", "head", "post", "put", "delete", "patch", "options"]
                        .contains(&method)
                    {
                        found.push(format!("{} {p}", method.to_ascii_uppercase()));
                    }
                } else if !rest.starts_with(' ') {
                    path = None;
                }
            }
        }
        found
    }

    #[test]
    fn table_has_no_duplicate_method_and_template() {
        let mut seen = HashSet::new();
        for route in routes() {
            assert!(seen.insert((route.method, route.template)), "{route} twice");
        }
    }

    #[test]
    fn templates_are_well_formed() {
        for route in routes() {
            assert!(
                ["GET", "HEAD", "POST", "PUT", "DELETE"].contains(&route.method),
                "{route}"
            );
            assert!(route.template.starts_with('/'), "{route}");
            let parts: Vec<&str> = template_segments(route.template).collect();
            assert!(parts.iter().all(|part| !part.is_empty()), "{route}");
            let params: Vec<usize> = (0..parts.len()).filter(|&i| is_param(parts[i])).collect();
            assert!(
                params.len() <= MAX_PARAMS,
                "{route} has too many parameters"
            );
            for part in &parts {
                let name = param_name(part);
                assert!(
                    name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{route}: {part:?} is neither a literal nor a parameter"
                );
            }
            assert!(!is_param(parts[0]), "{route} starts with a parameter");
            if route.multi_segment {
                // The spanning parameter is followed by fixed segments only, so the greedy
                // match leaves exactly those to the suffix, as mux's `.*` does.
                assert_eq!(params.len(), 1, "{route} spans with other parameters");
            }
        }
    }

    /// A template as tokens for the overlap search: a spanning parameter is `One` then `Star`.
    #[derive(Clone, Copy, PartialEq)]
    enum Token {
        Literal(&'static str),
        One,
        Star,
    }

    fn tokens(route: &Route) -> Vec<Token> {
        let mut out = Vec::new();
        let mut spanned = false;
        for part in template_segments(route.template) {
            if !is_param(part) {
                out.push(Token::Literal(part));
            } else if route.multi_segment && !spanned {
                spanned = true;
                out.extend([Token::One, Token::Star]);
            } else {
                out.push(Token::One);
            }
        }
        out
    }

    /// Whether some sequence of segments matches both token lists.
    fn overlap(a: &[Token], b: &[Token]) -> bool {
        if a.first() == Some(&Token::Star) && overlap(&a[1..], b) {
            return true;
        }
        if b.first() == Some(&Token::Star) && overlap(a, &b[1..]) {
            return true;
        }
        match (a.first(), b.first()) {
            (None, None) => true,
            (Some(&x), Some(&y)) => {
                let compatible = match (x, y) {
                    (Token::Literal(x), Token::Literal(y)) => x == y,
                    _ => true,
                };
                let next_a = if x == Token::Star { a } else { &a[1..] };
                let next_b = if y == Token::Star { b } else { &b[1..] };
                let progress = next_a.len() < a.len() || next_b.len() < b.len();
                compatible && progress && overlap(next_a, next_b)
            }
            _ => false,
        }
    }

    #[test]
    fn overlap_search_sees_spanning_and_literal_collisions() {
        let containers_delete = parse_route_spec("DELETE /containers/{id}").unwrap();
        let checkpoint_delete =
            parse_route_spec("DELETE /containers/{id}/checkpoints/{checkpoint}").unwrap();
        let containers_list = parse_route_spec("GET /containers/json").unwrap();
        let container_inspect = parse_route_spec("GET /containers/{id}/json").unwrap();
        assert!(overlap(
            &tokens(containers_delete),
            &tokens(checkpoint_delete)
        ));
        assert!(!overlap(
            &tokens(containers_list),
            &tokens(container_inspect)
        ));
    }

    #[test]
    fn only_documented_overlaps_exist_and_the_earlier_route_wins_as_in_dockerd() {
        let table = routes();
        let mut found = Vec::new();
        for (i, a) in table.iter().enumerate() {
            for b in &table[i + 1..] {
                if a.method == b.method && overlap(&tokens(a), &tokens(b)) {
                    found.push((a.id(), b.id()));
                }
            }
        }
        let expected: Vec<(String, String)> = ORDERED_OVERLAPS
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn every_route_classifies_from_a_concrete_path_with_and_without_version() {
        for route in routes() {
            let mut values = vec!["p-one"];
            if route.multi_segment {
                values.push("registry.example:5000/team/p-many");
            }
            for value in values {
                let (path, params) = concrete_path(route, value);
                for (prefix, version) in [
                    ("", None),
                    ("/v1.41", Some(ApiVersion::new(1, 41))),
                    ("/v1.56", Some(ApiVersion::new(1, 56))),
                ] {
                    let full = format!("{prefix}{path}");
                    let endpoint = ok(route.method, &full);
                    assert!(
                        std::ptr::eq(endpoint.route, route),
                        "{full} classified as {} instead of {route}",
                        endpoint.route
                    );
                    assert_eq!(endpoint.version, version, "{full}");
                    assert_eq!(params_of(&endpoint), params, "{full}");
                }
            }
        }
    }

    #[test]
    fn image_references_with_slashes_span_segments_like_mux() {
        let endpoint = ok("GET", "/v1.41/images/docker.io/library/busybox:latest/json");
        assert_eq!(endpoint.route.id(), "GET /images/{name}/json");
        assert_eq!(
            endpoint.param("name"),
            Some("docker.io/library/busybox:latest")
        );

        let endpoint = ok("DELETE", "/images/registry:5000/a/b/c:1.0");
        assert_eq!(endpoint.route.id(), "DELETE /images/{name}");
        assert_eq!(endpoint.param("name"), Some("registry:5000/a/b/c:1.0"));

        // The greedy match leaves only the fixed suffix: an image named `x/json` is pushed.
        let endpoint = ok("POST", "/images/x/json/push");
        assert_eq!(endpoint.route.id(), "POST /images/{name}/push");
        assert_eq!(endpoint.param("name"), Some("x/json"));

        let endpoint = ok("GET", "/images/ghcr.io/o/r/get");
        assert_eq!(endpoint.route.id(), "GET /images/{name}/get");
        assert_eq!(endpoint.param("name"), Some("ghcr.io/o/r"));
    }

    #[test]
    fn plugin_and_distribution_names_span_segments_like_mux() {
        let endpoint = ok("POST", "/v1.41/plugins/vieux/sshfs:latest/enable");
        assert_eq!(endpoint.route.id(), "POST /plugins/{name}/enable");
        assert_eq!(endpoint.param("name"), Some("vieux/sshfs:latest"));

        let endpoint = ok("DELETE", "/plugins/vieux/sshfs:latest");
        assert_eq!(endpoint.param("name"), Some("vieux/sshfs:latest"));

        let endpoint = ok("GET", "/distribution/docker.io/library/alpine:3/json");
        assert_eq!(endpoint.route.id(), "GET /distribution/{name}/json");
        assert_eq!(endpoint.param("name"), Some("docker.io/library/alpine:3"));
    }

    #[test]
    fn container_link_aliases_span_segments_like_mux() {
        // dockerd declares `/containers/{name:.*}/json`; a legacy link alias `web/db` resolves.
        let endpoint = ok("GET", "/containers/web/db/json");
        assert_eq!(endpoint.route.id(), "GET /containers/{id}/json");
        assert_eq!(endpoint.param("id"), Some("web/db"));
        assert_eq!(route_of("POST", "/exec/a/b/start"), "POST /exec/{id}/start");
        assert_eq!(route_of("GET", "/networks/a/b"), "GET /networks/{id}");
        assert_eq!(route_of("GET", "/volumes/a/b"), "GET /volumes/{name}");
    }

    #[test]
    fn swarm_object_ids_match_one_segment_only() {
        for (method, path) in [
            ("GET", "/services/a/b"),
            ("DELETE", "/services/a/b"),
            ("POST", "/nodes/a/b/update"),
            ("GET", "/tasks/a/b/logs"),
            ("GET", "/secrets/a/b"),
            ("GET", "/configs/a/b"),
        ] {
            assert_eq!(
                refused(method, path).kind(),
                PathErrorKind::UnknownRoute,
                "{method} {path}"
            );
        }
        let endpoint = ok("GET", "/services/web/logs");
        assert_eq!(endpoint.route.id(), "GET /services/{id}/logs");
        assert_eq!(endpoint.param("id"), Some("web"));
    }

    #[test]
    fn fixed_segments_and_parameters_never_compete_for_one_path() {
        // `/containers/json` has two segments and `/containers/{id}/json` three, so a container
        // named "json" is inspected at `/containers/json/json`; the two cannot be confused.
        assert_eq!(route_of("GET", "/containers/json"), "GET /containers/json");
        let endpoint = ok("GET", "/containers/json/json");
        assert_eq!(endpoint.route.id(), "GET /containers/{id}/json");
        assert_eq!(endpoint.param("id"), Some("json"));
        assert_eq!(route_of("GET", "/images/json"), "GET /images/json");
        assert_eq!(route_of("GET", "/images/get"), "GET /images/get");
        assert_eq!(
            route_of("GET", "/images/search/json"),
            "GET /images/{name}/json"
        );
        // The method decides between a fixed route and a parameter route, as it does in mux.
        assert_eq!(route_of("POST", "/volumes/create"), "POST /volumes/create");
        let endpoint = ok("GET", "/volumes/create");
        assert_eq!(endpoint.route.id(), "GET /volumes/{name}");
        assert_eq!(endpoint.param("name"), Some("create"));
        assert_eq!(
            route_of("DELETE", "/containers/json"),
            "DELETE /containers/{id}"
        );
    }

    #[test]
    fn checkpoint_delete_is_matched_before_container_delete_as_in_dockerd() {
        let endpoint = ok("DELETE", "/v1.41/containers/web/checkpoints/cp1");
        assert_eq!(
            endpoint.route.id(),
            "DELETE /containers/{id}/checkpoints/{checkpoint}"
        );
        assert_eq!(
            params_of(&endpoint),
            vec![("id", "web".to_owned()), ("checkpoint", "cp1".to_owned())]
        );
        // The checkpoint route's `{name}` is one segment in dockerd, so a longer path falls
        // through to the container delete, whose name spans.
        let endpoint = ok("DELETE", "/containers/a/b/checkpoints/cp1");
        assert_eq!(endpoint.route.id(), "DELETE /containers/{id}");
        assert_eq!(endpoint.param("id"), Some("a/b/checkpoints/cp1"));
    }

    #[test]
    fn routes_the_reference_omits_classify() {
        assert_eq!(route_of("HEAD", "/_ping"), "HEAD /_ping");
        assert_eq!(route_of("GET", "/_ping"), "GET /_ping");
        assert_eq!(route_of("POST", "/session"), "POST /session");
        assert_eq!(route_of("POST", "/grpc"), "POST /grpc");
        assert_eq!(
            route_of("POST", "/v1.41/build/cancel"),
            "POST /build/cancel"
        );
        assert_eq!(
            route_of("POST", "/v1.19/containers/c1/copy"),
            "POST /containers/{id}/copy"
        );
        assert_eq!(
            route_of("HEAD", "/containers/c1/archive"),
            "HEAD /containers/{id}/archive"
        );
    }

    #[test]
    fn streaming_routes_are_routes_of_the_table() {
        let streaming: Vec<String> = routes()
            .iter()
            .filter(|r| r.streams())
            .map(Route::id)
            .collect();
        // Each template in `streams` names a route that exists (a typo would match nothing).
        assert_eq!(streaming.len(), 19, "{streaming:#?}");
        assert!(streaming.contains(&"GET /containers/{id}/logs".to_string()));
        assert!(!routes()
            .iter()
            .any(|r| r.streams() && r.template == "/containers/{id}/json"));
    }

    #[test]
    fn groups_follow_the_documented_mapping() {
        for (id, group) in [
            ("GET /containers/json", Group::ContainersRead),
            ("GET /containers/{id}/stats", Group::ContainersRead),
            ("POST /containers/{id}/wait", Group::ContainersWrite),
            ("POST /containers/{id}/resize", Group::ContainersWrite),
            ("DELETE /containers/{id}", Group::ContainersWrite),
            ("POST /containers/{id}/exec", Group::Exec),
            ("GET /exec/{id}/json", Group::Exec),
            ("GET /containers/{id}/attach/ws", Group::Attach),
            ("GET /containers/{id}/logs", Group::Logs),
            ("GET /containers/{id}/export", Group::Archive),
            ("HEAD /containers/{id}/archive", Group::Archive),
            ("POST /containers/{id}/copy", Group::Archive),
            ("GET /images/get", Group::ImagesExport),
            ("GET /images/search", Group::ImagesRead),
            ("POST /images/create", Group::ImagesPull),
            ("POST /images/{name}/push", Group::ImagesPush),
            ("POST /commit", Group::ImagesWrite),
            ("POST /images/load", Group::ImagesWrite),
            ("POST /grpc", Group::Build),
            ("POST /session", Group::Build),
            ("HEAD /_ping", Group::SystemRead),
            ("GET /system/df", Group::SystemRead),
            ("GET /events", Group::Events),
            ("POST /auth", Group::Auth),
            ("GET /swarm/unlockkey", Group::Swarm),
            ("GET /tasks/{id}/logs", Group::Services),
            ("GET /services/{id}/logs", Group::Services),
            ("POST /nodes/{id}/update", Group::Nodes),
            ("GET /plugins/privileges", Group::Plugins),
            ("GET /distribution/{name}/json", Group::Distribution),
        ] {
            assert_eq!(
                parse_route_spec(id).map(|route| route.group),
                Ok(group),
                "{id}"
            );
        }
        for group in Group::ALL {
            assert!(group.routes().next().is_some(), "{group} has no route");
        }
    }

    #[test]
    fn percent_encoded_at_sign_in_an_image_digest_is_accepted() {
        // Docker's Python SDK quotes `@` in `busybox@sha256:…`.
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let endpoint = ok("GET", &format!("/v1.41/images/busybox%40{digest}/json"));
        assert_eq!(endpoint.route.id(), "GET /images/{name}/json");
        assert_eq!(
            endpoint.param("name"),
            Some(format!("busybox@{digest}").as_str())
        );
    }

    #[test]
    fn escaped_letters_are_classified_as_dockerd_decodes_them() {
        assert_eq!(
            route_of("GET", "/%63ontainers/json"),
            "GET /containers/json"
        );
        assert_eq!(
            route_of("GET", "/containers/%6Ason"),
            "GET /containers/json"
        );
        let endpoint = ok("GET", "/v%31.41/containers/%61bc/json");
        assert_eq!(endpoint.version, Some(ApiVersion::new(1, 41)));
        assert_eq!(endpoint.param("id"), Some("abc"));
        assert_eq!(ok("GET", "/containers/a%3Ab/json").param("id"), Some("a:b"));
    }

    #[test]
    fn escapes_that_decode_to_path_syntax_or_odd_bytes_are_refused() {
        for escape in [
            "%2F", "%2f", "%2e", "%2E", "%25", "%252F", "%3F", "%3f", "%23", "%20", "%00", "%0a",
            "%1F", "%7F", "%80", "%C3%A9", "%ff",
        ] {
            let path = format!("/containers/a{escape}b/json");
            let error = refused("GET", &path);
            assert!(
                matches!(error, PathError::ForbiddenEscape { .. }),
                "{path}: {error:?}"
            );
            assert_eq!(error.kind(), PathErrorKind::Malformed);
        }
        // A dot segment spelled with escapes is refused before it could be resolved.
        assert!(matches!(
            refused("GET", "/containers/%2e%2e/json"),
            PathError::ForbiddenEscape { .. }
        ));
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for path in [
            "/containers/%zz/json",
            "/containers/%g0/json",
            "/containers/%0g/json",
            "/containers/a%",
            "/containers/a%4",
            "/_ping%",
            "/%",
        ] {
            let error = refused("GET", path);
            assert!(
                matches!(error, PathError::MalformedEscape { .. }),
                "{path}: {error:?}"
            );
        }
    }

    #[test]
    fn empty_dot_and_trailing_slash_segments_are_refused() {
        for (path, empty) in [
            ("//containers/json", true),
            ("/containers//json", true),
            ("/containers/json/", true),
            ("/v1.41/", true),
            ("/v1.41//containers/json", true),
            ("/networks/", true),
            ("//", true),
            ("/./containers/json", false),
            ("/containers/./json", false),
            ("/containers/../containers/json", false),
            ("/containers/json/.", false),
            ("/..", false),
            ("/v1.41/../_ping", false),
        ] {
            let error = refused("GET", path);
            let expected = if empty {
                matches!(error, PathError::EmptySegment { .. })
            } else {
                matches!(error, PathError::DotSegment { .. })
            };
            assert!(expected, "{path}: {error:?}");
            assert_eq!(error.kind(), PathErrorKind::Malformed, "{path}");
        }
        // Segments that merely contain dots are names, not dot segments.
        assert_eq!(ok("GET", "/images/.../json").param("name"), Some("..."));
        assert_eq!(ok("GET", "/volumes/..x").param("name"), Some("..x"));
    }

    #[test]
    fn version_prefixes_other_than_major_dot_minor_are_refused() {
        for path in [
            "/v1..41/_ping",
            "/v1/_ping",
            "/v.1/_ping",
            "/v1.41.0/_ping",
            "/v1./_ping",
            "/v.41/_ping",
            "/v./_ping",
            "/v../_ping",
            "/v01.41/_ping",
            "/v1.041/_ping",
            "/v1234.1/_ping",
            "/v1.4100/_ping",
            "/v1.41.",
        ] {
            let error = refused("GET", path);
            assert!(
                matches!(error, PathError::AmbiguousVersion { .. }),
                "{path}: {error:?}"
            );
        }
    }

    #[test]
    fn version_prefix_is_recorded() {
        assert_eq!(
            ok("GET", "/v1.41/_ping").version,
            Some(ApiVersion::new(1, 41))
        );
        assert_eq!(
            ok("GET", "/v1.56/info").version,
            Some(ApiVersion::new(1, 56))
        );
        assert_eq!(ok("GET", "/v1.0/info").version, Some(ApiVersion::new(1, 0)));
        assert_eq!(
            ok("GET", "/v999.999/info").version,
            Some(ApiVersion::new(999, 999))
        );
        assert_eq!(ok("GET", "/info").version, None);
    }

    #[test]
    fn only_v_followed_by_digits_and_dots_is_a_version() {
        assert_eq!(route_of("GET", "/version"), "GET /version");
        assert_eq!(
            ok("GET", "/v1.41/version").version,
            Some(ApiVersion::new(1, 41))
        );
        for path in [
            "/v/_ping",
            "/vx/_ping",
            "/V1.41/_ping",
            "/v1.41a/_ping",
            "/v1.41",
            "/v1.41/v1.41/_ping",
        ] {
            assert_eq!(
                refused("GET", path).kind(),
                PathErrorKind::UnknownRoute,
                "{path}"
            );
        }
    }

    #[test]
    fn non_ascii_control_and_space_characters_are_refused() {
        for path in [
            "/containers/caf\u{e9}/json",
            "/containers/\u{1F600}/json",
            "/containers/a b/json",
            "/containers/a\tb/json",
            "/containers/a\nb/json",
            "/containers/a\u{0}/json",
            "/containers/a\u{7f}/json",
        ] {
            let error = refused("GET", path);
            assert!(
                matches!(error, PathError::ForbiddenCharacter { .. }),
                "{path:?}: {error:?}"
            );
        }
    }

    #[test]
    fn hash_and_question_mark_are_refused() {
        for path in [
            "/_ping#x",
            "/containers/a#b/json",
            "/_ping?x=1",
            "/containers/a?/json",
        ] {
            let error = refused("GET", path);
            assert!(
                matches!(error, PathError::ForbiddenCharacter { .. }),
                "{path}: {error:?}"
            );
        }
    }

    #[test]
    fn paths_not_starting_with_a_slash_are_refused() {
        for path in ["", "_ping", "*", "http://docker/_ping", " /_ping"] {
            let error = refused("GET", path);
            assert!(
                matches!(error, PathError::NotAbsolute { .. }),
                "{path:?}: {error:?}"
            );
        }
    }

    #[test]
    fn the_root_path_is_an_unknown_route() {
        assert_eq!(refused("GET", "/").kind(), PathErrorKind::UnknownRoute);
    }

    #[test]
    fn paths_deeper_than_the_segment_limit_are_refused() {
        let deep = format!("/images{}/json", "/x".repeat(MAX_SEGMENTS));
        assert!(matches!(
            refused("GET", &deep),
            PathError::TooManySegments { .. }
        ));
        let deepest = format!("/images{}/json", "/x".repeat(MAX_SEGMENTS - 2));
        assert_eq!(route_of("GET", &deepest), "GET /images/{name}/json");
    }

    #[test]
    fn paths_longer_than_the_length_limit_are_refused_without_echoing_them_whole() {
        let long = format!("/images/{}/json", "a".repeat(MAX_PATH_LEN));
        let error = refused("GET", &long);
        assert!(matches!(error, PathError::TooLong { .. }), "{error:?}");
        assert!(error.to_string().len() < 400);
        let longest = format!("/volumes/{}", "a".repeat(MAX_PATH_LEN - "/volumes/".len()));
        assert_eq!(route_of("GET", &longest), "GET /volumes/{name}");
    }

    #[test]
    fn lowercase_method_is_refused_as_method_not_allowed() {
        // DELETE is listed too: it would remove a container named "json".
        let error = refused("get", "/containers/json");
        assert_eq!(error.kind(), PathErrorKind::MethodNotAllowed);
        assert_eq!(
            error,
            PathError::MethodNotAllowed {
                method: "get".to_owned(),
                path: "/containers/json".to_owned(),
                allowed: vec!["GET", "DELETE"],
            }
        );
        assert_eq!(
            refused("Post", "/containers/create").kind(),
            PathErrorKind::MethodNotAllowed
        );
    }

    #[test]
    fn unknown_route_and_method_not_allowed_are_distinguished() {
        // DELETE matches too, with the spanning name "c1/start".
        let error = refused("GET", "/containers/c1/start");
        assert_eq!(error.kind(), PathErrorKind::MethodNotAllowed);
        assert!(
            matches!(&error, PathError::MethodNotAllowed { allowed, .. } if allowed == &["POST", "DELETE"])
        );

        let error = refused("POST", "/v1.41/volumes/v1");
        assert!(
            matches!(&error, PathError::MethodNotAllowed { allowed, .. } if allowed == &["GET", "PUT", "DELETE"])
        );

        // GET routes do not answer HEAD in mux.
        assert_eq!(
            refused("HEAD", "/info").kind(),
            PathErrorKind::MethodNotAllowed
        );
        assert_eq!(
            refused("OPTIONS", "/_ping").kind(),
            PathErrorKind::MethodNotAllowed
        );

        for (method, path) in [
            ("GET", "/containers"),
            ("GET", "/debug/vars"),
            ("GET", "/debug/pprof/heap"),
            ("GET", "/Containers/json"),
            ("POST", "/swarm/x"),
            ("GET", "/services/create/x"),
        ] {
            assert_eq!(
                refused(method, path).kind(),
                PathErrorKind::UnknownRoute,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn arbitrary_paths_never_panic() {
        // A small deterministic generator over an alphabet of path syntax, escapes and names.
        let pieces = [
            "/",
            "/",
            "/",
            "%",
            "%2",
            "%2F",
            "%40",
            "%e",
            "%41",
            ".",
            "..",
            "v",
            "1",
            "41",
            "v1.41",
            "containers",
            "images",
            "json",
            "{id}",
            "#",
            "?",
            " ",
            "\u{e9}",
            "a",
            "create",
            "x",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut path = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 9) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                path.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            for method in ["GET", "POST", "DELETE"] {
                if let Ok(endpoint) = classify(method, &path) {
                    assert_eq!(endpoint.route.method, method);
                    assert!(!path.contains("//") && !path.ends_with('/'), "{path}");
                }
            }
        }
    }

    #[test]
    fn route_specs_read_back_every_route_id() {
        for route in routes() {
            let parsed = parse_route_spec(&route.id());
            assert!(
                parsed.is_ok_and(|parsed| std::ptr::eq(parsed, route)),
                "{route}"
            );
        }
    }

    #[test]
    fn route_specs_that_name_no_route_are_refused_with_a_hint() {
        assert_eq!(
            parse_route_spec("post /containers/{id}/start"),
            Err(RouteSpecError::UnknownMethod {
                spec: "post /containers/{id}/start".to_owned(),
                methods: vec!["POST"],
            })
        );
        for spec in [
            "POST /containers/{name}/start",
            "POST /v1.41/containers/{id}/start",
            "POST /containers/abc/start",
            "GET /nope",
        ] {
            assert!(
                matches!(parse_route_spec(spec), Err(RouteSpecError::Unknown { .. })),
                "{spec}"
            );
        }
        for spec in [
            "",
            "POST",
            "POST  /containers/create",
            " POST /containers/create",
            "/containers/json",
        ] {
            assert!(
                matches!(
                    parse_route_spec(spec),
                    Err(RouteSpecError::Malformed { .. })
                ),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn group_names_read_back_and_unknown_names_list_the_choices() {
        for group in Group::ALL {
            assert_eq!(group.as_str().parse::<Group>(), Ok(group));
            assert_eq!(group.to_string(), group.as_str());
        }
        let error = "containers".parse::<Group>().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"containers\""), "{message}");
        assert!(
            message.contains("containers-read, containers-write"),
            "{message}"
        );
        assert!(message.ends_with("distribution"), "{message}");
        assert!("Exec".parse::<Group>().is_err());
    }

    #[test]
    fn api_versions_display_order_and_parse() {
        let v1_41 = ApiVersion::new(1, 41);
        assert_eq!(v1_41.to_string(), "1.41");
        assert!(ApiVersion::new(1, 9) < v1_41);
        assert!(v1_41 < ApiVersion::new(1, 56));
        assert!(ApiVersion::new(1, 56) < ApiVersion::new(2, 0));
        assert_eq!("1.41".parse::<ApiVersion>(), Ok(v1_41));
        for bad in [
            "", "1", "1.", ".41", "1.41.0", "01.41", "1.041", "v1.41", "1.4a", " 1.41",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad:?}");
        }
        let message = "1..41".parse::<ApiVersion>().unwrap_err().to_string();
        assert!(message.contains("\"1..41\""), "{message}");
    }

    #[test]
    fn error_messages_name_the_input() {
        let message = refused("GET", "/containers/a%2Fb/json").to_string();
        assert!(
            message.contains("/containers/a%2Fb/json") && message.contains("%2F"),
            "{message}"
        );
        let message = refused("get", "/info").to_string();
        assert!(
            message.contains("\"get\"") && message.contains("GET"),
            "{message}"
        );
        let message = refused("GET", "/v1/info").to_string();
        assert!(
            message.contains("\"v1\"") && message.contains("/v1.41"),
            "{message}"
        );
        let message = refused("GET", "/containers/a\u{7f}").to_string();
        assert!(message.contains("\\u{7f}"), "{message}");
    }

    /// Prints the mean time of one `classify` over a mix of paths. Only a release build's
    /// figure means anything; there it must stay well under a microsecond (the bound allows for
    /// a busy machine).
    #[test]
    fn classify_is_fast() {
        let requests = [
            ("GET", "/v1.41/_ping"),
            ("GET", "/v1.41/containers/json"),
            ("GET", "/v1.41/containers/4f3c2a1b9e8d/json"),
            ("POST", "/v1.41/containers/create"),
            ("POST", "/v1.41/exec/4f3c2a1b9e8d/start"),
            ("GET", "/v1.41/images/docker.io/library/busybox:latest/json"),
            ("POST", "/v1.41/networks/n1/disconnect"),
            ("DELETE", "/v1.41/volumes/v1"),
        ];
        let rounds = if cfg!(debug_assertions) { 200 } else { 100_000 };
        let start = Instant::now();
        for _ in 0..rounds {
            for (method, path) in requests {
                let endpoint = classify(std::hint::black_box(method), std::hint::black_box(path));
                assert!(std::hint::black_box(endpoint).is_ok());
            }
        }
        let calls = rounds * requests.len();
        let mean_ns = start.elapsed().as_nanos() / calls as u128;
        eprintln!("classify: {mean_ns} ns per call over {calls} calls");
        if !cfg!(debug_assertions) {
            assert!(mean_ns < 2_000, "classify took {mean_ns} ns per call");
        }
    }
}
