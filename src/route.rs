//! TEMPORARY stub until the route table lands.
use std::fmt;
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion { pub major: u16, pub minor: u16 }
impl fmt::Display for ApiVersion { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "{}.{}", self.major, self.minor) } }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group { ContainersRead, ContainersWrite, Exec, Attach, Logs, Archive, ImagesRead, ImagesPull, ImagesPush, ImagesWrite, Build, Volumes, Networks, SystemRead, Events, Auth, Swarm, Services, Nodes, Secrets, Configs, Plugins, Distribution }
impl Group { pub fn as_str(&self) -> &'static str { "x" } }
impl std::str::FromStr for Group { type Err = (); fn from_str(_s: &str) -> Result<Self, ()> { Err(()) } }
#[derive(Debug)]
pub struct Route { pub method: &'static str, pub template: &'static str, pub group: Group }
impl fmt::Display for Route { fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, "{} {}", self.method, self.template) } }
#[derive(Debug)]
pub struct Endpoint { pub route: &'static Route, pub version: Option<ApiVersion>, pub params: Vec<(&'static str, String)> }
#[derive(Debug, thiserror::Error)]
pub enum PathError { #[error("unknown")] UnknownRoute }
static R: Route = Route { method: "GET", template: "/_ping", group: Group::SystemRead };
pub fn classify(_m: &str, _p: &str) -> Result<Endpoint, PathError> { Ok(Endpoint { route: &R, version: None, params: vec![] }) }
pub fn parse_route_spec(_s: &str) -> Result<&'static Route, PathError> { Err(PathError::UnknownRoute) }
