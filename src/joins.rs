//! Which containers share namespaces (`--pid`, `--ipc`, `--network container:<other>`).
//!
//! dockerd records a join only on the container that joins: the container it joins looks as
//! plain as ever. Whoever acts in that one (an exec, a copy) acts alongside the joiner's
//! processes, and through `/proc/<pid>/root` reaches what they hold (their host mounts). So a
//! container is only as harmless as every container that shares a namespace with it, directly
//! or through another.
//!
//! The joins of a container are part of its create and never change, so they are remembered by
//! container ID: acting on a container costs one list of containers, plus an inspect of each
//! container not seen before.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::policy::inspect::Json;

/// The joins of every container seen so far, by container ID.
#[derive(Debug, Default)]
pub struct Joins {
    refs: Mutex<HashMap<String, Vec<String>>>,
}

/// One container as dockerd's list gives it: full ID and name (without the leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
}

impl Joins {
    /// The IDs of `all` whose joins are not known yet.
    pub fn unknown<'a>(&self, all: &'a [Listed]) -> Vec<&'a str> {
        let refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter(|c| !refs.contains_key(&c.id))
            .map(|c| c.id.as_str())
            .collect()
    }

    /// Remembers the joins of container `id`, from its inspect.
    pub fn remember(&self, id: &str, inspect: &Json) {
        let found = refs_of(inspect);
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        refs.insert(id.to_string(), found);
    }

    /// The containers of `all` that share a namespace with `target` (one of them), directly or
    /// through others, `target` left out. Containers whose joins are not known are taken to
    /// join none. What is remembered of containers no longer in `all` is forgotten.
    pub fn sharing_with<'a>(&self, target: &str, all: &'a [Listed]) -> Vec<&'a Listed> {
        let mut refs = self.refs.lock().unwrap_or_else(|p| p.into_inner());
        let live: HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
        refs.retain(|id, _| live.contains(id.as_str()));
        let mut group: Vec<&Listed> = all.iter().filter(|c| c.id == target).collect();
        let mut grew = true;
        while grew {
            grew = false;
            for c in all {
                if group.iter().any(|g| g.id == c.id) {
                    continue;
                }
                let joins_group = refs
                    .get(&c.id)
                    .is_some_and(|r| r.iter().any(|v| group.iter().any(|g| refers_to(v, g))));
                let joined_by_group = group.iter().any(|g| {
                    refs.get(&g.id)
                        .is_some_and(|r| r.iter().any(|v| refers_to(v, c)))
                });
                if joins_group || joined_by_group {
                    group.push(c);
                    grew = true;
                }
            }
        }
        group.retain(|c| c.id != target);
        group
    }
}

/// What follows `container:` in a container's `PidMode`, `IpcMode` and `NetworkMode`.
pub fn refs_of(inspect: &Json) -> Vec<String> {
    let hc = inspect.cursor().field("HostConfig");
    ["PidMode", "IpcMode", "NetworkMode"]
        .iter()
        .filter_map(|f| {
            let mode = hc.as_ref().ok()?.field(f).ok()?.as_str().ok()??;
            mode.strip_prefix("container:").map(str::to_string)
        })
        .collect()
}

/// Whether a `container:<v>` reference names `c` as dockerd would find it: by full ID, name or
/// ID prefix (dockerd stores the full ID since 1.13, the name as given when it found none).
pub fn refers_to(v: &str, c: &Listed) -> bool {
    let v = v.strip_prefix('/').unwrap_or(v);
    !v.is_empty() && (v == c.name || c.id.starts_with(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::inspect::parse_optional;

    fn listed(id: &str, name: &str) -> Listed {
        Listed {
            id: id.into(),
            name: name.into(),
        }
    }

    fn inspect(hc: &str) -> Json {
        parse_optional(format!(r#"{{"HostConfig":{{{hc}}}}}"#).as_bytes())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_containers_joins_are_what_follows_container_in_its_namespace_modes() {
        let i = inspect(
            r#""PidMode":"container:aaa","IpcMode":"private","NetworkMode":"container:web""#,
        );
        assert_eq!(refs_of(&i), ["aaa", "web"]);
        assert!(refs_of(&inspect(r#""NetworkMode":"bridge""#)).is_empty());
    }

    #[test]
    fn containers_sharing_a_namespace_with_one_are_found_directly_and_through_others() {
        let all = [
            listed("aaa111", "app"),
            listed("bbb222", "sidecar"),
            listed("ccc333", "behind-sidecar"),
            listed("ddd444", "joined-by-app"),
            listed("eee555", "apart"),
        ];
        let joins = Joins::default();
        joins.remember("bbb222", &inspect(r#""PidMode":"container:aaa111""#));
        joins.remember("ccc333", &inspect(r#""NetworkMode":"container:sidecar""#));
        joins.remember("aaa111", &inspect(r#""IpcMode":"container:ddd""#));
        joins.remember("eee555", &inspect(r#""NetworkMode":"bridge""#));
        joins.remember("gone", &inspect(r#""PidMode":"container:aaa111""#));
        let ids: Vec<&str> = joins
            .sharing_with("aaa111", &all)
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["bbb222", "ccc333", "ddd444"]);
        assert!(joins.sharing_with("eee555", &all).is_empty());
        // Containers gone from the list are forgotten; new ones are unknown.
        assert!(!joins.refs.lock().unwrap().contains_key("gone"));
        let more = [listed("aaa111", "app"), listed("fff666", "new")];
        assert_eq!(joins.unknown(&more), ["fff666"]);
    }

    #[test]
    fn a_reference_names_a_container_by_full_id_name_or_id_prefix() {
        let c = listed("abc123", "web");
        for v in ["abc123", "abc", "web", "/web"] {
            assert!(refers_to(v, &c), "{v}");
        }
        for v in ["", "web2", "bc", "abc1234"] {
            assert!(!refers_to(v, &c), "{v}");
        }
    }
}
