//! Which containers share namespaces (`--pid`, `--ipc`, `--network container:<other>`).
//!
//! dockerd records a join only on the container that joins: the container it joins looks as
//! plain as ever. Whoever works inside that one (an exec, an attach) works alongside the
//! joiner's processes, and through `/proc/<pid>/root` reaches what they hold (their host
//! mounts). So a container is only as harmless as every container that shares a namespace with
//! it, directly or through another.
//!
//! The joins of a container are part of its create and never change, so they are remembered by
//! container ID. It must not decide anything: it says which containers belong together; the
//! policy judges them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::policy::inspect::{InspectError, Json};

/// The joins of the containers seen so far, by container ID.
#[derive(Debug, Default)]
pub struct Joins {
    refs: Mutex<HashMap<String, Vec<String>>>,
    /// Held while a request lists containers and looks at unseen ones: one list in memory at a
    /// time, and a request that waited finds the containers the one before it looked at
    /// remembered (it lists them again). Waiting counts towards the request's lookup deadline.
    pub scan: tokio::sync::Mutex<()>,
    /// The latest list of containers, and when it was asked for: a request that waited for the
    /// scan takes it instead of listing again when it was asked for after that request came
    /// (every container made before then is in it), so a burst of execs lists once.
    latest: Mutex<Option<(std::time::Instant, Arc<Vec<Listed>>)>>,
}

/// One container as dockerd's list gives it: full ID, and its names without the leading `/`
/// (a linked container is also listed under `<parent>/<alias>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub names: Vec<String>,
}

impl Listed {
    /// Its name as the docker CLI shows it (the one without an inner `/`), else its short ID.
    pub fn name(&self) -> &str {
        self.names
            .iter()
            .find(|n| !n.contains('/'))
            .map_or_else(|| &self.id[..self.id.len().min(12)], String::as_str)
    }
}

/// The joins of listed containers as remembered, and the containers whose joins are not.
pub type Known = HashMap<String, Vec<String>>;

impl Joins {
    /// What is remembered of `all`'s joins (a copy: other requests may change the memory
    /// meanwhile), and the IDs of those not seen yet.
    pub fn known<'a>(&self, all: &'a [Listed]) -> (Known, Vec<&'a str>) {
        let refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        let mut known = Known::new();
        let mut unseen = Vec::new();
        for c in all {
            match refs.get(&c.id) {
                Some(r) => {
                    known.insert(c.id.clone(), r.clone());
                }
                None => unseen.push(c.id.as_str()),
            }
        }
        (known, unseen)
    }

    /// The latest list of containers, when it was asked for at or after `since`.
    pub fn listed_since(&self, since: std::time::Instant) -> Option<Arc<Vec<Listed>>> {
        let latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        latest
            .as_ref()
            .filter(|(asked, _)| *asked >= since)
            .map(|(_, all)| all.clone())
    }

    /// Keeps `all`, a list of containers asked for at `asked`, for requests already waiting.
    pub fn listed(&self, asked: std::time::Instant, all: Arc<Vec<Listed>>) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        *latest = Some((asked, all));
    }

    /// Remembers the joins of container `id` (its inspect's, see [`refs_of`]).
    pub fn remember(&self, id: &str, found: Vec<String>) {
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        refs.insert(id.to_string(), found);
    }

    /// Forgets containers that are not in `all` (removed since they were seen; one created
    /// after this list was taken is seen again later).
    pub fn forget_others(&self, all: &[Listed]) {
        let live: HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        refs.retain(|id, _| live.contains(id.as_str()));
    }
}

/// The containers of `all` that share a namespace with `target` (one of them), directly or
/// through others, `target` left out, given every listed container's joins in `known`.
pub fn sharing_with<'a>(target: &str, all: &'a [Listed], known: &Known) -> Vec<&'a Listed> {
    let joins = |c: &Listed, other: &Listed| {
        known
            .get(&c.id)
            .is_some_and(|r| r.iter().any(|v| refers_to(v, other)))
    };
    let mut group: Vec<&Listed> = all.iter().filter(|c| c.id == target).collect();
    let mut grew = true;
    while grew {
        grew = false;
        for c in all {
            if group.iter().any(|g| g.id == c.id) {
                continue;
            }
            if group.iter().any(|g| joins(c, g) || joins(g, c)) {
                group.push(c);
                grew = true;
            }
        }
    }
    group.retain(|c| c.id != target);
    group
}

/// dockerd's list of containers (`GET /containers/json?all=1`), read for IDs and names only:
/// every other value is skipped as it is parsed, never built, so a list made large by
/// containers' command lines costs its bytes and no more.
pub fn parse_list(bytes: &[u8]) -> Result<Vec<Listed>, String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "Id")]
        id: String,
        #[serde(rename = "Names", default)]
        names: Option<Vec<String>>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    entries
        .into_iter()
        .map(|e| {
            if e.id.is_empty() || !e.id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("a container Id {:?} is not hexadecimal", e.id));
            }
            let names = e.names.unwrap_or_default();
            Ok(Listed {
                id: e.id,
                names: names
                    .into_iter()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .collect(),
            })
        })
        .collect()
}

/// The joins of a container from dockerd's inspect of it, reading its namespace modes only
/// (the rest is skipped as it is parsed, as in [`parse_list`]).
pub fn parse_joins(bytes: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Inspect {
        #[serde(rename = "HostConfig")]
        host_config: Option<Modes>,
    }
    #[derive(Deserialize)]
    struct Modes {
        #[serde(rename = "PidMode")]
        pid: Option<String>,
        #[serde(rename = "IpcMode")]
        ipc: Option<String>,
        #[serde(rename = "NetworkMode")]
        network: Option<String>,
    }
    let inspect: Inspect = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Some(modes) = inspect.host_config else {
        return Ok(Vec::new());
    };
    Ok([modes.pid, modes.ipc, modes.network]
        .into_iter()
        .flatten()
        .filter_map(|m| m.strip_prefix("container:").map(str::to_string))
        .collect())
}

/// What follows `container:` in a container's `PidMode`, `IpcMode` and `NetworkMode` (the
/// namespaces dockerd 20.10 lets one container join of another); an error when one of them is
/// not readable (not taken as no join).
pub fn refs_of(inspect: &Json) -> Result<Vec<String>, InspectError> {
    let hc = inspect.cursor().field("HostConfig")?;
    let mut found = Vec::new();
    for field in ["PidMode", "IpcMode", "NetworkMode"] {
        if let Some(mode) = hc.field(field)?.as_str()? {
            found.extend(mode.strip_prefix("container:").map(str::to_string));
        }
    }
    Ok(found)
}

/// Whether a `container:<v>` reference names `c` as dockerd would find it: by full ID, a name or
/// an ID prefix (dockerd stores the full ID, or the name as given when it found none then).
pub fn refers_to(v: &str, c: &Listed) -> bool {
    let v = v.strip_prefix('/').unwrap_or(v);
    !v.is_empty() && (c.names.iter().any(|n| n == v) || c.id.starts_with(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::inspect::parse_optional;

    #[test]
    fn a_waiting_request_takes_only_a_list_asked_for_after_it_came() {
        let joins = Joins::default();
        let came_before = std::time::Instant::now();
        let asked = std::time::Instant::now();
        joins.listed(asked, Arc::new(vec![listed("a", &["web"])]));
        let came_after = std::time::Instant::now();
        assert_eq!(joins.listed_since(came_before).unwrap()[0].id, "a");
        assert_eq!(joins.listed_since(asked).unwrap().len(), 1);
        assert!(joins.listed_since(came_after).is_none() || came_after == asked);
    }

    fn listed(id: &str, names: &[&str]) -> Listed {
        Listed {
            id: id.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn refs(hc: &str) -> Vec<String> {
        let doc = format!(r#"{{"HostConfig":{{{hc}}}}}"#);
        refs_of(&parse_optional(doc.as_bytes()).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn a_containers_joins_are_what_follows_container_in_its_namespace_modes() {
        let found =
            refs(r#""PidMode":"container:aaa","IpcMode":"private","NetworkMode":"container:web""#);
        assert_eq!(found, ["aaa", "web"]);
        assert!(refs(r#""NetworkMode":"bridge""#).is_empty());
    }

    #[test]
    fn containers_sharing_a_namespace_with_one_are_found_directly_and_through_others() {
        let all = [
            listed("aaa111", &["app"]),
            listed("bbb222", &["app/side", "sidecar"]),
            listed("ccc333", &["behind-sidecar"]),
            listed("ddd444", &["joined-by-app"]),
            listed("eee555", &["apart"]),
        ];
        let joins = Joins::default();
        joins.remember("bbb222", refs(r#""PidMode":"container:aaa111""#));
        joins.remember("ccc333", refs(r#""NetworkMode":"container:sidecar""#));
        joins.remember("aaa111", refs(r#""IpcMode":"container:ddd""#));
        joins.remember("eee555", Vec::new());
        joins.remember("gone", refs(r#""PidMode":"container:aaa111""#));
        let (known, unseen) = joins.known(&all);
        assert_eq!(unseen, ["ddd444"]);
        let ids: Vec<&str> = sharing_with("aaa111", &all, &known)
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["bbb222", "ccc333", "ddd444"]);
        assert!(sharing_with("eee555", &all, &known).is_empty());
        // Containers gone from the list are forgotten.
        joins.forget_others(&all);
        assert!(!joins.refs.lock().unwrap().contains_key("gone"));
        assert_eq!(all[1].name(), "sidecar");
        assert_eq!(listed("0123456789abcdef", &[]).name(), "0123456789ab");
    }

    #[test]
    fn dockerds_list_and_inspect_are_read_for_ids_names_and_namespace_modes_only() {
        let list = br#"[{"Id":"abc123","Names":["/web","/app/db"],"Command":"sh -c \u2028","Labels":{"a":"b"}},{"Id":"def456","Names":null}]"#;
        let all = parse_list(list).unwrap();
        assert_eq!(
            all,
            [listed("abc123", &["web", "app/db"]), listed("def456", &[])]
        );
        assert!(parse_list(br#"[{"Id":"not hex"}]"#).is_err());
        assert!(parse_list(br#"{"message":"oops"}"#).is_err());
        let inspect = br#"{"Id":"x","Args":["\u2028"],"HostConfig":{"PidMode":"container:abc","IpcMode":"private","NetworkMode":"container:web","Binds":null}}"#;
        assert_eq!(parse_joins(inspect).unwrap(), ["abc", "web"]);
        assert!(parse_joins(br#"{"HostConfig":{"PidMode":7}}"#).is_err());
    }

    #[test]
    fn a_reference_names_a_container_by_full_id_any_name_or_id_prefix() {
        let c = listed("abc123", &["web", "app/db"]);
        for v in ["abc123", "abc", "web", "/web", "app/db", "/abc"] {
            assert!(refers_to(v, &c), "{v}");
        }
        for v in ["", "/", "web2", "bc", "abc1234", "ABC", "db"] {
            assert!(!refers_to(v, &c), "{v}");
        }
    }
}
