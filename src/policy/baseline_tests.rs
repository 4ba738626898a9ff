//! Table tests for the baseline rules.
//!
//! Every body is written as the bytes a client would send and read with the same JSON reader
//! the proxy uses, so key folding (`hostconfig`, `Hoſtconfig`, `Networ\u212aMode`), duplicate
//! keys and wrong types are exercised exactly as on the wire. Expected outcomes follow what
//! dockerd 20.10 does with the same bytes.

use super::*;
use crate::policy::inspect::parse_optional;

const CREATE: (&str, &str) = ("POST", "/containers/create");
const UPDATE: (&str, &str) = ("POST", "/containers/{id}/update");
const EXEC: (&str, &str) = ("POST", "/containers/{id}/exec");
const START: (&str, &str) = ("POST", "/containers/{id}/start");
const VOLUME_CREATE: (&str, &str) = ("POST", "/volumes/create");
const NETWORK_CREATE: (&str, &str) = ("POST", "/networks/create");
const IMAGE_PULL: (&str, &str) = ("POST", "/images/create");
const BUILD: (&str, &str) = ("POST", "/build");

/// No violations.
const NONE: [Rule; 0] = [];

/// A 64-hex image ID / digest used wherever a full one is needed.
const HEX64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// ---- helpers -----------------------------------------------------------------------------

fn compile(raw: RawBaseline) -> Baseline {
    let mut problems = Problems::default();
    let baseline = Baseline::compile(
        raw,
        "t",
        std::path::Path::new("/var/run/docker.sock"),
        &mut problems,
    );
    assert!(
        problems.0.is_empty(),
        "unexpected problems: {:?}",
        problems.0
    );
    baseline
}

fn default_baseline() -> Baseline {
    compile(RawBaseline::default())
}

/// A baseline compiled from the YAML a role would carry under `baseline:`.
fn configured(yaml: &str) -> Baseline {
    let raw = serde_norway::from_str::<RawBaseline>(yaml)
        .unwrap_or_else(|e| panic!("baseline YAML {yaml:?} should parse: {e}"));
    compile(raw)
}

/// The problems compiling `yaml` reports, as `field: message` lines.
fn problems_of(yaml: &str) -> Vec<String> {
    let raw = serde_norway::from_str::<RawBaseline>(yaml).expect("YAML parses");
    let mut problems = Problems::default();
    Baseline::compile(
        raw,
        "t",
        std::path::Path::new("/var/run/docker.sock"),
        &mut problems,
    );
    problems
        .0
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect()
}

/// Checks one request: `query` is the raw query string, `body` the raw body text ("" = none).
fn try_check(
    b: &Baseline,
    (method, template): (&str, &str),
    query: &str,
    body: &str,
) -> Result<Outcome, Unreadable> {
    let query = Query::parse(Some(query))?;
    let body = parse_optional(body.as_bytes())?;
    b.check(method, template, &query, body)
}

fn check_with(b: &Baseline, route: (&str, &str), query: &str, body: &str) -> Outcome {
    try_check(b, route, query, body)
        .unwrap_or_else(|e| panic!("{route:?} ?{query} {body} should be readable, got: {e}"))
}

/// Checks a request against the default baseline.
fn check(route: (&str, &str), body: &str) -> Outcome {
    check_with(&default_baseline(), route, "", body)
}

fn rules(outcome: &Outcome) -> Vec<Rule> {
    outcome.violations.iter().map(|v| v.rule).collect()
}

/// Asserts that each body, sent on `route`, yields exactly these rules in this order.
fn assert_rules(b: &Baseline, route: (&str, &str), table: &[(&str, &[Rule])]) {
    for (body, want) in table {
        let outcome = check_with(b, route, "", body);
        assert_eq!(rules(&outcome), *want, "{route:?} {body}\n{outcome:#?}");
    }
}

/// Asserts that each query, sent on `route` without a body, yields exactly these rules.
fn assert_query_rules(b: &Baseline, route: (&str, &str), table: &[(&str, &[Rule])]) {
    for (query, want) in table {
        let outcome = check_with(b, route, query, "");
        assert_eq!(rules(&outcome), *want, "{route:?} ?{query}\n{outcome:#?}");
    }
}

/// Why a request could not be judged, coarsely, for tables.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// `Unreadable::Ambiguous`: dockerd could read the request another way (placement, `..`).
    Ambiguous,
    /// Two keys folding to one struct field.
    FoldDuplicate,
    /// The same key twice.
    ExactDuplicate,
    WrongType,
    NotAnInteger,
    Query,
    Other(String),
}

fn refusal(e: &Unreadable) -> Refusal {
    match e {
        Unreadable::Ambiguous(_) => Refusal::Ambiguous,
        Unreadable::Body(InspectError::AmbiguousKey { .. }) => Refusal::FoldDuplicate,
        Unreadable::Body(InspectError::DuplicateKey { .. }) => Refusal::ExactDuplicate,
        Unreadable::Body(InspectError::WrongType { .. }) => Refusal::WrongType,
        Unreadable::Body(InspectError::NotAnInteger { .. }) => Refusal::NotAnInteger,
        Unreadable::Query(_) => Refusal::Query,
        other => Refusal::Other(format!("{other:?}")),
    }
}

/// Asserts that each body, sent on `route`, cannot be judged, for the given reason.
fn assert_refused(b: &Baseline, route: (&str, &str), table: &[(&str, Refusal)]) {
    for (body, want) in table {
        match try_check(b, route, "", body) {
            Ok(outcome) => {
                panic!("{route:?} {body} should be refused ({want:?}), got {outcome:#?}")
            }
            Err(e) => assert_eq!(refusal(&e), *want, "{route:?} {body}: {e}"),
        }
    }
}

/// The rewritten body as compact JSON, or "" when the body is forwarded unchanged.
fn rewritten(outcome: &Outcome) -> String {
    outcome
        .rewritten
        .as_ref()
        .map(|doc| doc.to_string())
        .unwrap_or_default()
}

/// The rewritten body's HostConfig as compact JSON.
fn rewritten_host_config(outcome: &Outcome) -> String {
    let Some(Json::Object(root)) = &outcome.rewritten else {
        panic!("expected a rewritten object body, got {outcome:#?}");
    };
    match root.field("HostConfig") {
        Ok(Some(hc)) => hc.to_string(),
        other => panic!("rewritten body has no single HostConfig: {other:?}"),
    }
}

/// Config that turns off every default injection, so bodies are forwarded unchanged.
const NO_INJECTION: &str = "
rules: { resources: off, host-cgroupns: off }
no_new_privileges: off
";

// ---- container create: privileged and key spellings -------------------------------------

#[test]
fn create_privileged_is_denied_however_the_keys_are_spelled() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"HostConfig":{"Privileged":true}}"#, &[Rule::Privileged]),
            (r#"{"hostconfig":{"privileged":true}}"#, &[Rule::Privileged]),
            (r#"{"HOSTCONFIG":{"PRIVILEGED":true}}"#, &[Rule::Privileged]),
            (r#"{"hostConfig":{"pRiViLeGeD":true}}"#, &[Rule::Privileged]),
            // ſ (U+017F) folds to s, raw UTF-8 and as a JSON escape.
            (r#"{"Hoſtconfig":{"Privileged":true}}"#, &[Rule::Privileged]),
            (
                r#"{"HO\u017fTCONFIG":{"Privileged":true}}"#,
                &[Rule::Privileged],
            ),
            (r#"{"HostConfig":{"Privileged":false}}"#, &[]),
            (r#"{"HostConfig":{"Privileged":null}}"#, &[]),
            (r#"{"HostConfig":null}"#, &[]),
            (r#"{}"#, &[]),
            ("", &[]),
            ("null", &[]),
        ],
    );
}

#[test]
fn look_alike_keys_that_go_does_not_fold_are_not_the_field() {
    // Go's fold maps only ſ and K into ASCII; dotless ı, Cyrillic о and a trailing space name
    // unknown fields, which dockerd ignores.
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"HostConfig":{"Pr\u0131vileged":true}}"#, &[]),
            (r#"{"HostConfig":{"Privileged ":true}}"#, &[]),
            (r#"{"Hostc\u043enfig":{"Privileged":true}}"#, &[]),
            (r#"{"HostConfig":{"Privileged\u0000":true}}"#, &[]),
        ],
    );
}

#[test]
fn create_with_duplicate_or_fold_duplicate_keys_is_refused() {
    assert_refused(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"Privileged":false,"privileged":true}}"#,
                Refusal::FoldDuplicate,
            ),
            (
                r#"{"HostConfig":{"Privileged":false},"hostconfig":{"Privileged":true}}"#,
                Refusal::FoldDuplicate,
            ),
            (
                r#"{"HostConfig":{},"Hoſtconfig":{"Privileged":true}}"#,
                Refusal::FoldDuplicate,
            ),
            (
                r#"{"HostConfig":{"Privileged":false,"Privileged":true}}"#,
                Refusal::ExactDuplicate,
            ),
            (
                r#"{"HostConfig":{"Binds":[],"bindſ":["/:/host"]}}"#,
                Refusal::FoldDuplicate,
            ),
            (
                r#"{"HostConfig":{"NetworkMode":"bridge","Networ\u212aMode":"host"}}"#,
                Refusal::FoldDuplicate,
            ),
        ],
    );
}

#[test]
fn create_with_wrong_types_is_refused() {
    assert_refused(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"Privileged":"true"}}"#,
                Refusal::WrongType,
            ),
            (r#"{"HostConfig":{"Privileged":1}}"#, Refusal::WrongType),
            (r#"{"HostConfig":[]}"#, Refusal::WrongType),
            (r#"{"HostConfig":{"Memory":"1g"}}"#, Refusal::WrongType),
            (r#"{"HostConfig":{"Memory":1e9}}"#, Refusal::NotAnInteger),
            (
                r#"{"HostConfig":{"PidsLimit":100.0}}"#,
                Refusal::NotAnInteger,
            ),
            (r#"[]"#, Refusal::WrongType),
            (r#""busybox""#, Refusal::WrongType),
        ],
    );
}

// ---- placement: where each route reads its fields ----------------------------------------

#[test]
fn create_with_host_config_fields_at_the_top_level_is_refused() {
    // dockerd ≤ 26 reads these as HostConfig when the body has no HostConfig.
    assert_refused(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"Privileged":true}"#, Refusal::Ambiguous),
            (r#"{"privileged":false}"#, Refusal::Ambiguous),
            (r#"{"Binds":["/:/host"]}"#, Refusal::Ambiguous),
            (r#"{"bindſ":["/:/host"]}"#, Refusal::Ambiguous),
            (
                r#"{"ſecurityOpt":["seccomp=unconfined"]}"#,
                Refusal::Ambiguous,
            ),
            (r#"{"Networ\u212aMode":"host"}"#, Refusal::Ambiguous),
            (r#"{"Memory":1}"#, Refusal::Ambiguous),
            (r#"{"PidsLimit":1}"#, Refusal::Ambiguous),
            (r#"{"CapAdd":["SYS_ADMIN"]}"#, Refusal::Ambiguous),
            (r#"{"Image":"busybox","Cpuset":"0"}"#, Refusal::Ambiguous),
            (
                r#"{"HostConfig":{},"Mounts":[{"Type":"bind","Source":"/"}]}"#,
                Refusal::Ambiguous,
            ),
        ],
    );
}

#[test]
fn create_with_only_config_fields_at_the_top_level_is_judged() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"Image":"busybox","Cmd":["sh"],"Env":["A=1"],"Labels":{"Privileged":"true"}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"host":{}}}}"#,
                &[Rule::HostNetwork],
            ),
            (
                r#"{"networkingconfig":{"endpointsconfig":{"container:db":{}}}}"#,
                &[Rule::SharedNamespace],
            ),
            (r#"{"Volumes":{"/data":{}}}"#, &[]),
            (r#"{"volumeſ":{"/etc:/x":{}}}"#, &[Rule::HostMounts]),
        ],
    );
}

#[test]
fn exec_reads_privileged_at_the_top_level_only() {
    assert_rules(
        &default_baseline(),
        EXEC,
        &[
            (
                r#"{"Cmd":["sh"],"Privileged":true}"#,
                &[Rule::ExecPrivileged],
            ),
            (r#"{"privileged":true}"#, &[Rule::ExecPrivileged]),
            (r#"{"PRIVILEGED":true}"#, &[Rule::ExecPrivileged]),
            (r#"{"Privileged":false}"#, &[]),
            (r#"{"Cmd":["sh"]}"#, &[]),
            ("", &[]),
            // An exec body has no HostConfig: dockerd ignores the unknown field.
            (r#"{"HostConfig":{"Privileged":true}}"#, &[]),
        ],
    );
    assert_refused(
        &default_baseline(),
        EXEC,
        &[
            (
                r#"{"Privileged":false,"privileged":true}"#,
                Refusal::FoldDuplicate,
            ),
            (r#"{"Privileged":"yes"}"#, Refusal::WrongType),
        ],
    );
}

#[test]
fn update_reads_resources_and_restart_policy_at_the_top_level() {
    let nine_gib = 9i64 << 30;
    assert_rules(
        &default_baseline(),
        UPDATE,
        &[
            (&format!(r#"{{"Memory":{nine_gib}}}"#), &[Rule::Resources]),
            (&format!(r#"{{"memory":{nine_gib}}}"#), &[Rule::Resources]),
            (r#"{"Memory":0}"#, &[]),
            (r#"{"Memory":1073741824}"#, &[]),
            (r#"{"MemorySwap":-1}"#, &[Rule::Resources]),
            (r#"{"memoryſwap":-1}"#, &[Rule::Resources]),
            (r#"{"NanoCpus":3000000000}"#, &[Rule::Resources]),
            // Removing the PIDs limit on update is refused; on create it is replaced.
            (r#"{"PidsLimit":0}"#, &[Rule::Resources]),
            (r#"{"PidsLimit":-1}"#, &[Rule::Resources]),
            (r#"{"PidſLimit":5000}"#, &[Rule::Resources]),
            (r#"{"PidsLimit":100}"#, &[]),
            (r#"{"PidsLimit":null}"#, &[]),
            // A reservation no limit could hold keeps the container from starting again.
            (r#"{"MemoryReservation":1099511627776}"#, &[Rule::Resources]),
            (r#"{"MemoryReservation":268435456}"#, &[]),
            (r#"{"KernelMemory":1099511627776}"#, &[Rule::Resources]),
            (r#"{"CpuRealtimeRuntime":950000}"#, &[Rule::Resources]),
            (r#"{"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0}"#, &[]),
            (r#"{"CpuShares":-5}"#, &[Rule::Resources]),
            (r#"{"CpuShares":99999999999}"#, &[Rule::Resources]),
            (r#"{"CpuShares":1}"#, &[Rule::Resources]),
            (r#"{"CpuShares":512}"#, &[]),
            (
                r#"{"RestartPolicy":{"Name":"always"}}"#,
                &[Rule::RestartPolicy],
            ),
            (
                r#"{"reſtartpolicy":{"name":"on-failure","maximumretrycount":0}}"#,
                &[Rule::RestartPolicy],
            ),
            (
                r#"{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}"#,
                &[],
            ),
            // dockerd (API 1.55 on) stats block-IO device paths on update too.
            (
                r#"{"BlkioDeviceReadBps":[{"Path":"/root/.ssh/id_ed25519","Rate":1}]}"#,
                &[Rule::Devices],
            ),
            (r#"{"BlkioWeightDevice":null,"BlkioDeviceReadBps":[]}"#, &[]),
            // An update body has no HostConfig: dockerd ignores the unknown field.
            (&format!(r#"{{"HostConfig":{{"Memory":{nine_gib}}}}}"#), &[]),
            ("", &[]),
        ],
    );
    assert_refused(
        &default_baseline(),
        UPDATE,
        &[(
            r#"{"Memory":1,"memory":99999999999}"#,
            Refusal::FoldDuplicate,
        )],
    );
}

#[test]
fn update_is_never_rewritten() {
    let outcome = check(UPDATE, r#"{"CpuShares":512}"#);
    assert!(outcome.rewritten.is_none());
    assert!(outcome.mutations.is_empty());
}

#[test]
fn non_empty_start_body_is_refused_because_old_apis_read_it_as_host_config() {
    let b = default_baseline();
    assert_rules(
        &b,
        START,
        &[("", &[]), ("{}", &[]), ("null", &[]), ("  ", &[])],
    );
    assert_refused(
        &b,
        START,
        &[
            (r#"{"Privileged":true}"#, Refusal::Ambiguous),
            (r#"{"Binds":["/:/host"]}"#, Refusal::Ambiguous),
            (r#"{"Dns":[]}"#, Refusal::Ambiguous),
            (r#"[]"#, Refusal::Ambiguous),
        ],
    );
}

// ---- namespaces --------------------------------------------------------------------------

#[test]
fn sharing_a_host_namespace_is_denied_for_each_mode_field() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"NetworkMode":"host"}}"#,
                &[Rule::HostNetwork],
            ),
            (
                r#"{"HostConfig":{"networkmode":"host"}}"#,
                &[Rule::HostNetwork],
            ),
            (
                r#"{"HostConfig":{"Networ\u212aMode":"host"}}"#,
                &[Rule::HostNetwork],
            ),
            (r#"{"HostConfig":{"PidMode":"host"}}"#, &[Rule::HostPid]),
            (r#"{"HostConfig":{"PIDMODE":"host"}}"#, &[Rule::HostPid]),
            (r#"{"HostConfig":{"IpcMode":"host"}}"#, &[Rule::HostIpc]),
            (r#"{"HostConfig":{"ipcmode":"host"}}"#, &[Rule::HostIpc]),
            (r#"{"HostConfig":{"UTSMode":"host"}}"#, &[Rule::HostUts]),
            (r#"{"HostConfig":{"UTſMode":"host"}}"#, &[Rule::HostUts]),
            (
                r#"{"HostConfig":{"UsernsMode":"host"}}"#,
                &[Rule::HostUserns],
            ),
            (
                r#"{"HostConfig":{"UſernſMode":"host"}}"#,
                &[Rule::HostUserns],
            ),
            (
                r#"{"HostConfig":{"CgroupnsMode":"host"}}"#,
                &[Rule::HostCgroupns],
            ),
            (
                r#"{"HostConfig":{"cgroupnſmode":"host"}}"#,
                &[Rule::HostCgroupns],
            ),
        ],
    );
}

#[test]
fn joining_another_containers_namespace_is_denied() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"NetworkMode":"container:db"}}"#,
                &[Rule::SharedNamespace],
            ),
            (
                r#"{"HostConfig":{"PidMode":"container:db"}}"#,
                &[Rule::SharedNamespace],
            ),
            (
                r#"{"HostConfig":{"IpcMode":"container:db"}}"#,
                &[Rule::SharedNamespace],
            ),
            (
                r#"{"HostConfig":{"Cgroup":"container:db"}}"#,
                &[Rule::SharedNamespace],
            ),
        ],
    );
}

#[test]
fn private_namespace_modes_are_allowed_and_values_compare_exactly_like_dockerd() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"HostConfig":{"NetworkMode":"bridge"}}"#, &[]),
            (r#"{"HostConfig":{"NetworkMode":"default"}}"#, &[]),
            (r#"{"HostConfig":{"NetworkMode":"none"}}"#, &[]),
            (r#"{"HostConfig":{"NetworkMode":"my-net"}}"#, &[]),
            (r#"{"HostConfig":{"NetworkMode":""}}"#, &[]),
            (r#"{"HostConfig":{"IpcMode":"private"}}"#, &[]),
            (r#"{"HostConfig":{"IpcMode":"shareable"}}"#, &[]),
            (r#"{"HostConfig":{"PidMode":""}}"#, &[]),
            (r#"{"HostConfig":{"CgroupnsMode":"private"}}"#, &[]),
            (r#"{"HostConfig":{"Cgroup":""}}"#, &[]),
            // dockerd's IsHost() is `== "host"`: "Host" is a (missing) network name.
            (r#"{"HostConfig":{"NetworkMode":"Host"}}"#, &[]),
        ],
    );
}

// ---- host mounts -------------------------------------------------------------------------

fn binds(spec: &str) -> String {
    format!(r#"{{"HostConfig":{{"Binds":["{spec}"]}}}}"#)
}

#[test]
fn without_bind_allowed_every_host_path_is_refused_and_named_volumes_are_not() {
    let b = default_baseline();
    for (spec, want) in [
        ("/srv/work:/w", &[Rule::HostMounts][..]),
        ("/tmp:/t:ro", &[Rule::HostMounts]),
        ("data:/data", &[]),
        ("data:/data:ro", &[]),
        ("/data", &[]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &binds(spec))),
            want,
            "{spec}"
        );
    }
}

#[test]
fn bind_host_paths_are_judged_against_the_allowed_prefixes_and_the_denylist() {
    let b = configured("bind_allowed: [/srv/work, /var/lib/app/]\nbind_writable: true");
    for (spec, want) in [
        ("/srv/work:/w", &[][..]),
        ("/srv/work/:/w", &[]),
        ("/srv/work/sub/dir:/w:ro", &[]),
        ("/srv//work/./sub:/w", &[]),
        ("/var/lib/app:/a", &[]),
        // Siblings that only share a string prefix, and parents, are outside.
        ("/srv/workshop:/w", &[Rule::HostMounts]),
        ("/srv:/w", &[Rule::HostMounts]),
        // The denylist: the path itself, any child, any parent, however written.
        ("/etc:/e", &[Rule::HostMounts]),
        ("/etc/:/e", &[Rule::HostMounts]),
        ("//etc:/e", &[Rule::HostMounts]),
        ("/./etc:/e", &[Rule::HostMounts]),
        ("/etc/ssl/certs:/e:ro", &[Rule::HostMounts]),
        ("/var:/v", &[Rule::HostMounts]),
        ("/var/lib:/v", &[Rule::HostMounts]),
        ("/var/run:/v", &[Rule::HostMounts]),
        (
            "/var/run/docker.sock:/var/run/docker.sock",
            &[Rule::HostMounts],
        ),
        ("/run/containerd:/c", &[Rule::HostMounts]),
        ("/:/host", &[Rule::HostMounts]),
        ("///:/host", &[Rule::HostMounts]),
        ("/proc/1/root:/p", &[Rule::HostMounts]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &binds(spec))),
            want,
            "{spec}"
        );
    }
}

#[test]
fn bind_paths_that_cannot_be_judged_lexically_are_refused() {
    let b = configured("bind_allowed: [/srv/work]\nbind_writable: true");
    assert_refused(
        &b,
        CREATE,
        &[
            (&binds("/srv/work/../../etc:/e"), Refusal::Ambiguous),
            (&binds("/srv/work/..:/e"), Refusal::Ambiguous),
            // dockerd refuses more than three ':'-separated parts; so do we.
            (&binds("/srv/work:/w:ro:extra"), Refusal::Ambiguous),
        ],
    );
}

#[test]
fn a_denied_path_inside_an_allowed_prefix_wins() {
    let b = configured(
        "
bind_allowed: [/srv]
bind_writable: true
bind_denied_extra: [/srv/secrets]
",
    );
    for (spec, want) in [
        ("/srv/work:/w", &[][..]),
        ("/srv/secrets:/s", &[Rule::HostMounts]),
        ("/srv/secrets/key:/k", &[Rule::HostMounts]),
        // A parent of a denied path exposes it.
        ("/srv:/s", &[Rule::HostMounts]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &binds(spec))),
            want,
            "{spec}"
        );
    }
}

#[test]
fn the_configured_upstream_socket_is_always_a_denied_host_path() {
    let mut problems = Problems::default();
    let b = Baseline::compile(
        serde_norway::from_str("bind_allowed: [/srv]\nbind_writable: true").unwrap(),
        "t",
        std::path::Path::new("/srv/docker/docker.sock"),
        &mut problems,
    );
    assert!(problems.0.is_empty(), "{:?}", problems.0);
    for (spec, want) in [
        ("/srv/work:/w", &[][..]),
        ("/srv/docker/docker.sock:/s", &[Rule::HostMounts]),
        ("/srv/docker:/d", &[Rule::HostMounts]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &binds(spec))),
            want,
            "{spec}"
        );
    }
}

#[test]
fn shared_mount_propagation_is_denied_in_binds_and_mounts() {
    let b = configured("bind_allowed: [/srv/work]\nbind_writable: true");
    for (spec, want) in [
        ("/srv/work:/w:shared", &[Rule::MountPropagation][..]),
        ("/srv/work:/w:rshared", &[Rule::MountPropagation]),
        ("/srv/work:/w:ro,rshared", &[Rule::MountPropagation]),
        ("/srv/work:/w:RSHARED", &[Rule::MountPropagation]),
        ("data:/d:rshared", &[Rule::MountPropagation]),
        ("/srv/work:/w:rslave", &[]),
        ("/srv/work:/w:ro,rprivate", &[]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &binds(spec))),
            want,
            "{spec}"
        );
    }
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/work","Target":"/w","BindOptions":{"Propagation":"rshared"}}]}}"#,
                &[Rule::MountPropagation],
            ),
            (
                r#"{"HostConfig":{"mounts":[{"type":"bind","source":"/srv/work","target":"/w","bindoptions":{"propagation":"shared"}}]}}"#,
                &[Rule::MountPropagation],
            ),
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/work","Target":"/w","BindOptions":{"Propagation":"rslave"}}]}}"#,
                &[],
            ),
        ],
    );
}

#[test]
fn mounts_are_judged_by_type() {
    let b = configured("bind_allowed: [/srv/work]\nbind_writable: true");
    let mount = |m: &str| format!(r#"{{"HostConfig":{{"Mounts":[{m}]}}}}"#);
    for (m, want) in [
        (
            r#"{"Type":"bind","Source":"/srv/work","Target":"/w"}"#,
            &[][..],
        ),
        (
            r#"{"Type":"bind","Source":"/var","Target":"/v"}"#,
            &[Rule::HostMounts],
        ),
        (
            r#"{"type":"bind","source":"/etc","target":"/e"}"#,
            &[Rule::HostMounts],
        ),
        (
            r#"{"TYPE":"bind","ſOURCE":"/","Target":"/h"}"#,
            &[Rule::HostMounts],
        ),
        (r#"{"Type":"volume","Source":"data","Target":"/d"}"#, &[]),
        (r#"{"Type":"tmpfs","Target":"/tmp"}"#, &[]),
        // Named-volume mounts with a bind device in the driver options.
        (
            r#"{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}"#,
            &[Rule::HostMounts],
        ),
        (
            r#"{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Options":{"type":"none","o":"bind","device":"/srv/work/v"}}}}"#,
            &[],
        ),
        (
            r#"{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Options":{"device":"etc"}}}}"#,
            &[Rule::HostMounts],
        ),
        (
            r#"{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Name":"sshfs"}}}"#,
            &[Rule::VolumeDriver],
        ),
        // Types dockerd does not know, or that reach the host some other way.
        (
            r#"{"Type":"npipe","Source":"x","Target":"/x"}"#,
            &[Rule::HostMounts],
        ),
        (
            r#"{"Type":"Bind","Source":"/srv/work","Target":"/w"}"#,
            &[Rule::HostMounts],
        ),
        (
            r#"{"Source":"/srv/work","Target":"/w"}"#,
            &[Rule::HostMounts],
        ),
    ] {
        let body = mount(m);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    assert_refused(
        &b,
        CREATE,
        &[
            (
                &mount(r#"{"Type":"bind","Source":"/srv/work","ſource":"/"}"#),
                Refusal::FoldDuplicate,
            ),
            (
                &mount(r#"{"Type":"bind","Source":"srv/work","Target":"/w"}"#),
                Refusal::Ambiguous,
            ),
            (
                r#"{"HostConfig":{"Mounts":[],"Mountſ":[{"Type":"bind","Source":"/"}]}}"#,
                Refusal::FoldDuplicate,
            ),
        ],
    );
}

#[test]
fn volumes_from_and_foreign_volume_drivers_are_denied() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"VolumesFrom":["db"]}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"HostConfig":{"volumeſfrom":["db:ro"]}}"#,
                &[Rule::HostMounts],
            ),
            (r#"{"HostConfig":{"VolumesFrom":[]}}"#, &[]),
            (
                r#"{"HostConfig":{"VolumeDriver":"convoy"}}"#,
                &[Rule::VolumeDriver],
            ),
            (r#"{"HostConfig":{"VolumeDriver":"local"}}"#, &[]),
            (r#"{"HostConfig":{"VolumeDriver":""}}"#, &[]),
        ],
    );
}

#[test]
fn volume_create_with_a_bind_device_is_judged_as_a_host_mount() {
    let b = configured("bind_allowed: [/srv/work]\nbind_writable: true");
    assert_rules(
        &b,
        VOLUME_CREATE,
        &[
            (
                r#"{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/etc"}}"#,
                &[Rule::HostMounts],
            ),
            (r#"{"driveropts":{"device":"/"}}"#, &[Rule::HostMounts]),
            // Option words in another case or with spaces are read as mount(8) might.
            (
                r#"{"DriverOpts":{"type":"none","o":" BIND ","device":"/etc"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"DriverOpts":{"type":"tmpfs","o":"size=1m,Move"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"DriverOpts":{"type":"tmpfs","o":" BIND "}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"DriverOpts":{"type":"tmpfs","o":"remount"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"DriverOpts":{"type":"none","o":"bind","device":"/srv/work/a"}}"#,
                &[],
            ),
            (
                r#"{"DriverOptſ":{"device":"/var/run"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"DriverOpts":{"device":"//var/lib/docker/"}}"#,
                &[Rule::HostMounts],
            ),
            // `device` alone is not a bind: only type=none,o=bind of an allowed path passes.
            (
                r#"{"DriverOpts":{"device":"/srv/work/v"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"DriverOpts":{"type":"none","o":"bind","device":"/srv/work/v"}}"#,
                &[],
            ),
            // A relative device is mounted relative to dockerd's working directory.
            (r#"{"DriverOpts":{"device":"etc"}}"#, &[Rule::HostMounts]),
            (
                r#"{"DriverOpts":{"device":"nfs.example:/export"}}"#,
                &[Rule::HostMounts],
            ),
            // DriverOpts is a map with exact keys; options other than type/o/device are refused.
            (r#"{"DriverOpts":{"Device":"/etc"}}"#, &[Rule::HostMounts]),
            (r#"{"Name":"v"}"#, &[]),
            (
                r#"{"Driver":"local","DriverOpts":{"size":"1g"}}"#,
                &[Rule::HostMounts],
            ),
            (r#"{"Driver":"rexray"}"#, &[Rule::VolumeDriver]),
            (r#"{"driver":"rexray"}"#, &[Rule::VolumeDriver]),
            ("", &[]),
        ],
    );
    assert_refused(
        &b,
        VOLUME_CREATE,
        &[
            (
                r#"{"DriverOpts":{"type":"none","o":"bind","device":"/srv/work/../../etc"}}"#,
                Refusal::Ambiguous,
            ),
            (
                r#"{"DriverOpts":{},"driveropts":{"device":"/"}}"#,
                Refusal::FoldDuplicate,
            ),
            (r#"{"DriverOpts":{"device":1}}"#, Refusal::WrongType),
        ],
    );
}

// ---- capabilities ------------------------------------------------------------------------

#[test]
fn added_capabilities_are_normalised_like_dockerd_before_the_allowlist() {
    let cap_add = |caps: &str| format!(r#"{{"HostConfig":{{"CapAdd":{caps}}}}}"#);
    let b = default_baseline();
    for (caps, want) in [
        (r#"["CHOWN"]"#, &[][..]),
        (r#"["chown"]"#, &[]),
        (r#"["CAP_CHOWN"]"#, &[]),
        (r#"["cap_chown"]"#, &[]),
        (r#"["Cap_Net_Bind_Service"]"#, &[]),
        (r#""NET_BIND_SERVICE""#, &[]),
        (r#"[]"#, &[]),
        (r#"null"#, &[]),
        (r#"["SYS_ADMIN"]"#, &[Rule::Capabilities]),
        (r#"["sys_admin"]"#, &[Rule::Capabilities]),
        (r#"["CAP_SYS_ADMIN"]"#, &[Rule::Capabilities]),
        // Go's strings.ToUpper maps ſ to S: this is SYS_ADMIN to dockerd.
        (r#"["ſys_admin"]"#, &[Rule::Capabilities]),
        (r#"["cap_\u017fys_admin"]"#, &[Rule::Capabilities]),
        (r#""SYS_PTRACE""#, &[Rule::Capabilities]),
        (r#"["ALL"]"#, &[Rule::Capabilities]),
        (r#"["all"]"#, &[Rule::Capabilities]),
        (r#"["NET_RAW"]"#, &[Rule::Capabilities]),
        (r#"["chown","sys_module"]"#, &[Rule::Capabilities]),
    ] {
        let body = cap_add(caps);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"capadd":["SYS_ADMIN"]}}"#,
                &[Rule::Capabilities],
            ),
            (
                r#"{"HostConfig":{"CAPADD":["SYS_ADMIN"]}}"#,
                &[Rule::Capabilities],
            ),
            (r#"{"HostConfig":{"CapDrop":["ALL"]}}"#, &[]),
            // The 19.03 field, removed in 20.10: refused rather than guessed at.
            (
                r#"{"HostConfig":{"Capabilities":["CAP_SYS_ADMIN"]}}"#,
                &[Rule::Capabilities],
            ),
        ],
    );
}

#[test]
fn capability_denials_name_the_normalised_capability() {
    let outcome = check(CREATE, r#"{"HostConfig":{"CapAdd":["ſys_admin"]}}"#);
    assert_eq!(rules(&outcome), [Rule::Capabilities]);
    assert!(
        outcome.violations[0].reason.contains("SYS_ADMIN"),
        "{}",
        outcome.violations[0].reason
    );
}

#[test]
fn configured_capabilities_replace_the_default_allowlist_in_any_spelling() {
    let b = configured("capabilities_allowed: [cap_net_raw, Sys_Time]");
    let cap_add = |cap: &str| format!(r#"{{"HostConfig":{{"CapAdd":["{cap}"]}}}}"#);
    for (cap, want) in [
        ("NET_RAW", &[][..]),
        ("net_raw", &[]),
        ("CAP_SYS_TIME", &[]),
        ("CHOWN", &[Rule::Capabilities]),
        ("SYS_ADMIN", &[Rule::Capabilities]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &cap_add(cap))),
            want,
            "{cap}"
        );
    }
}

// ---- security options --------------------------------------------------------------------

fn security_opt(opts: &str) -> String {
    format!(r#"{{"HostConfig":{{"SecurityOpt":{opts}}}}}"#)
}

#[test]
fn security_options_are_parsed_like_dockerd() {
    let b = configured(NO_INJECTION);
    for (opts, want) in [
        (r#"["seccomp=unconfined"]"#, &[Rule::SecurityOpt][..]),
        (r#"["seccomp:unconfined"]"#, &[Rule::SecurityOpt]),
        (
            r#"["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]"#,
            &[Rule::SecurityOpt],
        ),
        (r#"["apparmor=unconfined"]"#, &[Rule::SecurityOpt]),
        (r#"["apparmor:unconfined"]"#, &[Rule::SecurityOpt]),
        (r#"["apparmor=docker-default"]"#, &[]),
        (r#"["label=disable"]"#, &[Rule::SecurityOpt]),
        (r#"["label:disable"]"#, &[Rule::SecurityOpt]),
        (r#"["disable"]"#, &[Rule::SecurityOpt]),
        (r#"["label=type:spc_t"]"#, &[Rule::SecurityOpt]),
        (r#"["label:type:unconfined_t"]"#, &[Rule::SecurityOpt]),
        // Any SELinux option may name a type, user or level the host leaves unconfined.
        (r#"["label=level:s0:c100,c200"]"#, &[Rule::SecurityOpt]),
        (r#"["label=level:s0"]"#, &[Rule::SecurityOpt]),
        (r#"["label=user:system_u"]"#, &[Rule::SecurityOpt]),
        (
            r#"["label=type:container_runtime_t"]"#,
            &[Rule::SecurityOpt],
        ),
        // Any AppArmor profile but the default may be a permissive one.
        (r#"["apparmor=lsb_release"]"#, &[Rule::SecurityOpt]),
        (r#"["no-new-privileges"]"#, &[]),
        (r#"["no-new-privileges=true"]"#, &[]),
        (r#"["no-new-privileges:1"]"#, &[]),
        (r#"["no-new-privileges=T"]"#, &[]),
        (r#"["no-new-privileges=false"]"#, &[Rule::NoNewPrivileges]),
        (r#"["no-new-privileges:false"]"#, &[Rule::NoNewPrivileges]),
        (r#"["no-new-privileges=0"]"#, &[Rule::NoNewPrivileges]),
        (r#"["no-new-privileges=F"]"#, &[Rule::NoNewPrivileges]),
        // Not a Go bool: dockerd refuses it, and so do we.
        (r#"["no-new-privileges=yes"]"#, &[Rule::SecurityOpt]),
        (r#"["systempaths=unconfined"]"#, &[Rule::MaskedPaths]),
        // dockerd's option keys are exact: these are errors there, unknown here.
        (r#"["Seccomp=unconfined"]"#, &[Rule::SecurityOpt]),
        (r#"["unknown"]"#, &[Rule::SecurityOpt]),
        (r#"["foo=bar"]"#, &[Rule::SecurityOpt]),
        (r#"[]"#, &[]),
        (r#"null"#, &[]),
        (
            r#"["apparmor=docker-default","seccomp=unconfined","label=disable"]"#,
            &[Rule::SecurityOpt, Rule::SecurityOpt],
        ),
    ] {
        let body = security_opt(opts);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
}

#[test]
fn security_options_are_found_under_any_spelling_of_the_field() {
    assert_rules(
        &configured(NO_INJECTION),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"securityopt":["seccomp=unconfined"]}}"#,
                &[Rule::SecurityOpt],
            ),
            (
                r#"{"HostConfig":{"ſecurityOpt":["seccomp=unconfined"]}}"#,
                &[Rule::SecurityOpt],
            ),
            (
                r#"{"HostConfig":{"\u017fECURITYOPT":["disable"]}}"#,
                &[Rule::SecurityOpt],
            ),
        ],
    );
}

#[test]
fn masked_and_readonly_paths_may_not_be_replaced() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"HostConfig":{"MaskedPaths":[]}}"#, &[Rule::MaskedPaths]),
            (
                r#"{"HostConfig":{"maſkedpaths":["/proc/kcore"]}}"#,
                &[Rule::MaskedPaths],
            ),
            (
                r#"{"HostConfig":{"Ma\u017f\u212aedPaths":[]}}"#,
                &[Rule::MaskedPaths],
            ),
            (
                r#"{"HostConfig":{"ReadonlyPaths":[]}}"#,
                &[Rule::MaskedPaths],
            ),
            (
                r#"{"HostConfig":{"MaskedPaths":null,"ReadonlyPaths":null}}"#,
                &[],
            ),
        ],
    );
}

#[test]
fn no_new_privileges_require_denies_bodies_whose_last_setting_is_not_true() {
    let b = configured("no_new_privileges: require");
    for (opts, want) in [
        (r#"["no-new-privileges"]"#, &[][..]),
        (r#"["no-new-privileges=true"]"#, &[]),
        (r#"["no-new-privileges:1"]"#, &[]),
        // dockerd lets the last entry win: a false entry followed by true ends true.
        (
            r#"["no-new-privileges=false","no-new-privileges"]"#,
            &[Rule::NoNewPrivileges],
        ),
        (
            r#"["no-new-privileges","no-new-privileges=false"]"#,
            &[Rule::NoNewPrivileges, Rule::NoNewPrivileges],
        ),
        (r#"["apparmor=docker-default"]"#, &[Rule::NoNewPrivileges]),
        (r#"[]"#, &[Rule::NoNewPrivileges]),
    ] {
        let body = security_opt(opts);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    assert_eq!(
        rules(&check_with(&b, CREATE, "", "{}")),
        [Rule::NoNewPrivileges]
    );
    // Require checks; it does not rewrite the options.
    let outcome = check_with(&b, CREATE, "", &security_opt(r#"["no-new-privileges"]"#));
    assert!(!rewritten(&outcome).contains("no-new-privileges=true"));
}

// ---- devices, sysctls, cgroup parent, runtime, OOM killer ---------------------------------

#[test]
fn host_devices_are_denied_unless_allowlisted_exactly() {
    let device = |path: &str| {
        format!(
            r#"{{"HostConfig":{{"Devices":[{{"PathOnHost":"{path}","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}}]}}}}"#
        )
    };
    let default = default_baseline();
    let fuse = configured("devices_allowed: [/dev/fuse]");
    for (b, path, want) in [
        (&default, "/dev/sda", &[Rule::Devices][..]),
        (&default, "/dev/fuse", &[Rule::Devices]),
        (&fuse, "/dev/fuse", &[]),
        (&fuse, "/dev/fuse/", &[Rule::Devices]),
        (&fuse, "/dev/../dev/fuse", &[Rule::Devices]),
        (&fuse, "/dev/sda", &[Rule::Devices]),
    ] {
        assert_eq!(
            rules(&check_with(b, CREATE, "", &device(path))),
            want,
            "{path}"
        );
    }
    assert_rules(
        &default,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"deviceſ":[{"pathonhost":"/dev/mem"}]}}"#,
                &[Rule::Devices],
            ),
            (
                r#"{"HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}}"#,
                &[Rule::Devices],
            ),
            (r#"{"HostConfig":{"DeviceCgroupRules":[]}}"#, &[]),
            (
                r#"{"HostConfig":{"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}]}}"#,
                &[Rule::Devices],
            ),
            (
                r#"{"HostConfig":{"devicereque\u017fts":[{}]}}"#,
                &[Rule::Devices],
            ),
            (r#"{"HostConfig":{"Devices":[]}}"#, &[]),
        ],
    );
}

#[test]
fn sysctls_outside_the_namespaced_allowlist_are_denied() {
    let sysctls = |map: &str| format!(r#"{{"HostConfig":{{"Sysctls":{map}}}}}"#);
    let b = default_baseline();
    for (map, want) in [
        (r#"{"net.ipv4.ip_unprivileged_port_start":"0"}"#, &[][..]),
        (r#"{"net.core.somaxconn":"1024"}"#, &[]),
        (r#"{"kernel.shmmax":"1"}"#, &[]),
        (r#"{"kernel.shm_rmid_forced":"1"}"#, &[]),
        (r#"{"kernel.sem":"250 32000 32 128"}"#, &[]),
        (r#"{"fs.mqueue.msg_max":"10"}"#, &[]),
        (r#"{"kernel.core_pattern":"|/tmp/x"}"#, &[Rule::Sysctls]),
        (r#"{"kernel.domainname":"x"}"#, &[Rule::Sysctls]),
        (r#"{"vm.swappiness":"1"}"#, &[Rule::Sysctls]),
        (r#"{"fs.file-max":"1"}"#, &[Rule::Sysctls]),
        // A map: keys are exact, and "Net." is not namespaced to runc either.
        (r#"{"Net.ipv4.ip_forward":"1"}"#, &[Rule::Sysctls]),
        (
            r#"{"net.ipv4.ip_forward":"1","kernel.panic":"1"}"#,
            &[Rule::Sysctls],
        ),
        (r#"{}"#, &[]),
    ] {
        let body = sysctls(map);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"sysctls":{"kernel.panic":"1"}}}"#,
                &[Rule::Sysctls],
            ),
            (
                r#"{"HostConfig":{"ſyſctlſ":{"kernel.panic":"1"}}}"#,
                &[Rule::Sysctls],
            ),
        ],
    );
    let narrow = configured(r#"sysctls_allowed: ["net.ipv4.ping_group_range", "kernel.shm*"]"#);
    for (map, want) in [
        (r#"{"net.ipv4.ping_group_range":"0 0"}"#, &[][..]),
        (r#"{"kernel.shmall":"1"}"#, &[]),
        (r#"{"net.ipv4.ip_forward":"1"}"#, &[Rule::Sysctls]),
    ] {
        let body = sysctls(map);
        assert_eq!(
            rules(&check_with(&narrow, CREATE, "", &body)),
            want,
            "{body}"
        );
    }
}

#[test]
fn cgroup_parent_runtime_and_oom_kill_disable_are_judged() {
    let b = configured("runtimes: [runc, runsc]");
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"CgroupParent":"/system.slice"}}"#,
                &[Rule::CgroupParent],
            ),
            (
                r#"{"HostConfig":{"cgroupparent":"x"}}"#,
                &[Rule::CgroupParent],
            ),
            (r#"{"HostConfig":{"CgroupParent":""}}"#, &[]),
            (r#"{"HostConfig":{"Runtime":"runc"}}"#, &[]),
            (r#"{"HostConfig":{"runtime":"runsc"}}"#, &[]),
            (r#"{"HostConfig":{"Runtime":""}}"#, &[]),
            (r#"{"HostConfig":{"Runtime":"nvidia"}}"#, &[Rule::Runtime]),
            (r#"{"HostConfig":{"Runtime":"RUNC"}}"#, &[Rule::Runtime]),
            (
                r#"{"HostConfig":{"OomKillDisable":true}}"#,
                &[Rule::OomKillDisable],
            ),
            (
                r#"{"HostConfig":{"Oom\u212aillDiſable":true}}"#,
                &[Rule::OomKillDisable],
            ),
            (r#"{"HostConfig":{"OomKillDisable":false}}"#, &[]),
        ],
    );
    assert_rules(
        &default_baseline(),
        CREATE,
        &[(r#"{"HostConfig":{"Runtime":"runsc"}}"#, &[Rule::Runtime])],
    );
}

// ---- ports -------------------------------------------------------------------------------

fn host_port(port: &str) -> String {
    format!(r#"{{"HostConfig":{{"PortBindings":{{"80/tcp":[{{"HostPort":"{port}"}}]}}}}}}"#)
}

#[test]
fn host_ports_below_1024_are_denied_including_ranges_that_start_there() {
    let b = default_baseline();
    for (port, want) in [
        ("80", &[Rule::PrivilegedPorts][..]),
        ("443", &[Rule::PrivilegedPorts]),
        ("1", &[Rule::PrivilegedPorts]),
        ("1023", &[Rule::PrivilegedPorts]),
        ("1-2000", &[Rule::PrivilegedPorts]),
        ("0080", &[Rule::PrivilegedPorts]),
        ("1024", &[]),
        ("8080", &[]),
        ("8000-9000", &[]),
        ("65535", &[]),
        // Empty and 0 ask dockerd for an ephemeral port.
        ("", &[]),
        ("0", &[]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &host_port(port))),
            want,
            "{port:?}"
        );
    }
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"portbindings":{"80/tcp":[{"hostport":"80"}]}}}"#,
                &[Rule::PrivilegedPorts],
            ),
            (
                r#"{"HostConfig":{"PortBindingſ":{"80/tcp":[{"HoſtPort":"22"}]}}}"#,
                &[Rule::PrivilegedPorts],
            ),
            (r#"{"HostConfig":{"PortBindings":{"80/tcp":[]}}}"#, &[]),
            (r#"{"HostConfig":{"PortBindings":{"80/tcp":null}}}"#, &[]),
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"},{"HostPort":"81"}]}}}"#,
                &[Rule::PrivilegedPorts],
            ),
        ],
    );
}

#[test]
fn host_ports_that_are_not_a_port_or_range_are_refused() {
    assert_refused(
        &default_baseline(),
        CREATE,
        &[
            (&host_port("http"), Refusal::Ambiguous),
            (&host_port("80/tcp"), Refusal::Ambiguous),
            (&host_port("9000-8000"), Refusal::Ambiguous),
            (&host_port("1-2-3"), Refusal::Ambiguous),
            (&host_port("65536"), Refusal::Ambiguous),
            (&host_port("-80"), Refusal::Ambiguous),
            (&host_port(" 80"), Refusal::Ambiguous),
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080","hostPort":"80"}]}}}"#,
                Refusal::FoldDuplicate,
            ),
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":80}]}}}"#,
                Refusal::WrongType,
            ),
        ],
    );
}

#[test]
fn publishing_every_exposed_port_is_denied() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"PublishAllPorts":true}}"#,
                &[Rule::PublishAll],
            ),
            (
                r#"{"HostConfig":{"publiſhallportſ":true}}"#,
                &[Rule::PublishAll],
            ),
            (r#"{"HostConfig":{"PublishAllPorts":false}}"#, &[]),
        ],
    );
}

#[test]
fn with_host_ip_configured_other_addresses_are_denied() {
    let b = configured("host_ip: 127.0.0.1");
    let binding = |ip: &str| {
        format!(
            r#"{{"HostConfig":{{"PortBindings":{{"8080/tcp":[{{"HostIp":"{ip}","HostPort":"8080"}}]}}}}}}"#
        )
    };
    for (ip, want) in [
        ("127.0.0.1", &[][..]),
        ("", &[]),
        ("0.0.0.0", &[Rule::HostIp]),
        ("::", &[Rule::HostIp]),
        ("10.0.0.1", &[Rule::HostIp]),
        ("::ffff:127.0.0.1", &[Rule::HostIp]),
        // Go's net.ParseIP returns nil for these, which binds every address.
        ("localhost", &[Rule::HostIp]),
        ("127.0.0.1 ", &[Rule::HostIp]),
    ] {
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &binding(ip))),
            want,
            "{ip:?}"
        );
    }
    assert_rules(
        &b,
        CREATE,
        &[(
            r#"{"HostConfig":{"PortBindings":{"8080/tcp":[{"hoſtip":"0.0.0.0","HostPort":"8080"}]}}}"#,
            &[Rule::HostIp],
        )],
    );
    // Without host_ip, any address may be given.
    assert_eq!(rules(&check(CREATE, &binding("0.0.0.0"))), NONE);
}

#[test]
fn host_ip_is_injected_into_bindings_that_give_none() {
    let b = configured("host_ip: 127.0.0.1");
    let outcome = check_with(
        &b,
        CREATE,
        "",
        r#"{"HostConfig":{"PortBindings":{"8080/tcp":[{"HostPort":"8080"},{"HostIp":"","HostPort":"8081"},{"hostip":null,"HostPort":"8082"},{"HostIp":"127.0.0.1","HostPort":"8083"}]}}}"#,
    );
    assert_eq!(rules(&outcome), NONE);
    let hc = rewritten_host_config(&outcome);
    assert!(
        hc.contains(r#""PortBindings":{"8080/tcp":[{"HostPort":"8080","HostIp":"127.0.0.1"},{"HostIp":"127.0.0.1","HostPort":"8081"},{"HostIp":"127.0.0.1","HostPort":"8082"},{"HostIp":"127.0.0.1","HostPort":"8083"}]}"#),
        "{hc}"
    );
    let injected = outcome
        .mutations
        .iter()
        .filter(|m| m.contains("HostIp=127.0.0.1"))
        .count();
    assert_eq!(injected, 3, "{:?}", outcome.mutations);
}

#[test]
fn host_ip_rule_off_neither_injects_nor_denies() {
    let b = configured(
        "
host_ip: 127.0.0.1
rules: { host-ip: off }
",
    );
    let outcome = check_with(
        &b,
        CREATE,
        "",
        r#"{"HostConfig":{"PortBindings":{"8080/tcp":[{"HostPort":"8080"},{"HostIp":"0.0.0.0","HostPort":"8081"}]}}}"#,
    );
    assert_eq!(rules(&outcome), NONE);
    assert!(
        !rewritten(&outcome).contains("127.0.0.1"),
        "{}",
        rewritten(&outcome)
    );
}

// ---- restart policy ----------------------------------------------------------------------

fn restart(name: &str, retries: i64) -> String {
    format!(
        r#"{{"HostConfig":{{"RestartPolicy":{{"Name":"{name}","MaximumRetryCount":{retries}}}}}}}"#
    )
}

#[test]
fn restart_policies_are_limited_to_on_failure_with_few_retries() {
    let default = default_baseline();
    let lenient = configured("{restart_always: true, restart_max_retries: 10}");
    for (b, name, retries, want) in [
        (&default, "no", 0, &[][..]),
        (&default, "", 0, &[]),
        (&default, "on-failure", 1, &[]),
        (&default, "on-failure", 5, &[]),
        (&default, "on-failure", 0, &[Rule::RestartPolicy]),
        (&default, "on-failure", 6, &[Rule::RestartPolicy]),
        (&default, "on-failure", -1, &[Rule::RestartPolicy]),
        (&default, "always", 0, &[Rule::RestartPolicy]),
        (&default, "unless-stopped", 0, &[Rule::RestartPolicy]),
        (&default, "ALWAYS", 0, &[Rule::RestartPolicy]),
        (&lenient, "always", 0, &[]),
        (&lenient, "unless-stopped", 0, &[]),
        (&lenient, "on-failure", 10, &[]),
        (&lenient, "on-failure", 11, &[Rule::RestartPolicy]),
    ] {
        let body = restart(name, retries);
        assert_eq!(rules(&check_with(b, CREATE, "", &body)), want, "{body}");
    }
    assert_rules(
        &default,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"restartpolicy":{"name":"always"}}}"#,
                &[Rule::RestartPolicy],
            ),
            (
                r#"{"HostConfig":{"ReſtartPolicy":{"Name":"on-failure"}}}"#,
                &[Rule::RestartPolicy],
            ),
            (r#"{"HostConfig":{"RestartPolicy":{}}}"#, &[]),
        ],
    );
}

// ---- resources ---------------------------------------------------------------------------

#[test]
fn resources_above_the_maxima_are_denied_on_create() {
    let eight_gib = 8i64 << 30;
    let b = default_baseline();
    let hc = |fields: &str| format!(r#"{{"HostConfig":{{{fields}}}}}"#);
    for (fields, want) in [
        (format!(r#""Memory":{eight_gib}"#), &[][..]),
        (format!(r#""Memory":{}"#, eight_gib + 1), &[Rule::Resources]),
        (format!(r#""memory":{}"#, eight_gib + 1), &[Rule::Resources]),
        (r#""Memory":-1"#.into(), &[Rule::Resources]),
        (r#""MemorySwap":-1"#.into(), &[Rule::Resources]),
        (r#""NanoCpus":2000000000"#.into(), &[]),
        (r#""NanoCpus":2000000001"#.into(), &[Rule::Resources]),
        (r#""nanocpuſ":-1"#.into(), &[Rule::Resources]),
        // A CFS quota is CPUs × period (default period 100ms).
        (r#""CpuQuota":200000"#.into(), &[]),
        (r#""CpuQuota":300000"#.into(), &[Rule::Resources]),
        (
            r#""CpuQuota":100000,"CpuPeriod":10000"#.into(),
            &[Rule::Resources],
        ),
        (r#""CpuQuota":-1"#.into(), &[Rule::Resources]),
        (r#""PidsLimit":4096"#.into(), &[]),
        (r#""PidsLimit":4097"#.into(), &[Rule::Resources]),
        (r#""pidſlimit":4097"#.into(), &[Rule::Resources]),
        // On create, no PIDs limit is replaced by the default rather than refused.
        (r#""PidsLimit":0"#.into(), &[]),
        (r#""PidsLimit":-1"#.into(), &[]),
        (r#""\u212aernelMemory":-1"#.into(), &[Rule::Resources]),
        (r#""CpuRealtimePeriod":1000000"#.into(), &[Rule::Resources]),
        (
            format!(r#""MemoryReservation":{}"#, eight_gib + 1),
            &[Rule::Resources],
        ),
        (format!(r#""MemoryReservation":{eight_gib}"#), &[]),
    ] {
        let body = hc(&fields);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
}

#[test]
fn configured_maxima_accept_size_suffixes() {
    let b = configured("{memory_default: 256m, memory_max: 1g, cpus_default: 0.5, cpus_max: 1.5}");
    for (memory, want) in [(1i64 << 30, &[][..]), ((1 << 30) + 1, &[Rule::Resources])] {
        let body = format!(r#"{{"HostConfig":{{"Memory":{memory}}}}}"#);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    let body = r#"{"HostConfig":{"NanoCpus":1600000000}}"#;
    assert_eq!(rules(&check_with(&b, CREATE, "", body)), [Rule::Resources]);
    let outcome = check_with(&b, CREATE, "", "{}");
    let hc = rewritten_host_config(&outcome);
    assert!(hc.contains(r#""Memory":268435456"#), "{hc}");
    assert!(hc.contains(r#""NanoCpus":500000000"#), "{hc}");
}

#[test]
fn ulimits_above_the_maximum_are_denied_whatever_the_case_of_the_name() {
    // dockerd names the rlimit "RLIMIT_" + strings.ToUpper(Name): NOFILE is nofile.
    let b = configured("ulimits: { nofile: { max: 65536 } }");
    let ulimit = |name: &str, soft: i64, hard: i64| {
        format!(
            r#"{{"HostConfig":{{"Ulimits":[{{"Name":"{name}","Soft":{soft},"Hard":{hard}}}]}}}}"#
        )
    };
    for (name, soft, hard, want) in [
        ("nofile", 1024, 65536, &[][..]),
        ("nofile", 1024, 65537, &[Rule::Resources]),
        ("nofile", 70000, 1024, &[Rule::Resources]),
        ("nofile", -1, -1, &[Rule::Resources]),
        ("NOFILE", 1024, 1048576, &[Rule::Resources]),
        ("NoFile", 1048576, 1048576, &[Rule::Resources]),
        // Limits with no configured setting are refused.
        ("nproc", 1048576, 1048576, &[Rule::Resources]),
    ] {
        let body = ulimit(name, soft, hard);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    assert_rules(
        &b,
        CREATE,
        &[(
            r#"{"HostConfig":{"ulimitſ":[{"name":"nofile","ſoft":1,"hard":100000}]}}"#,
            &[Rule::Resources],
        )],
    );
}

// ---- read-only root filesystem -----------------------------------------------------------

#[test]
fn readonly_rootfs_require_denies_writable_root_filesystems() {
    let b = configured("readonly_rootfs: require");
    assert_rules(
        &b,
        CREATE,
        &[
            (r#"{"HostConfig":{"ReadonlyRootfs":true}}"#, &[]),
            (r#"{"HostConfig":{"readonlyrootfſ":true}}"#, &[]),
            (
                r#"{"HostConfig":{"ReadonlyRootfs":false}}"#,
                &[Rule::ReadonlyRootfs],
            ),
            (r#"{"HostConfig":{}}"#, &[Rule::ReadonlyRootfs]),
            (r#"{}"#, &[Rule::ReadonlyRootfs]),
        ],
    );
    let outcome = check_with(&b, CREATE, "", "{}");
    assert!(!rewritten(&outcome).contains("ReadonlyRootfs"));
}

// ---- images, pulls and builds ------------------------------------------------------------

const IMAGES: &str = r#"
images:
  - "docker.io/library/busybox:*"
  - "docker.io/library/alpine@sha256:*"
  - "registry.example.com/team/*"
"#;

#[test]
fn image_names_normalise_as_dockerds_reference_parser_reads_them() {
    for (name, normal) in [
        ("busybox", "docker.io/library/busybox:latest".to_string()),
        (
            "index.docker.io/busybox:1",
            "docker.io/library/busybox:1".into(),
        ),
        ("host:5000/app", "host:5000/app:latest".into()),
        ("host:5000/team/app:1", "host:5000/team/app:1".into()),
        (
            &format!("host:5000/app:1@sha256:{HEX64}"),
            format!("host:5000/app@sha256:{HEX64}"),
        ),
        (
            &format!("app@sha256:{HEX64}"),
            format!("docker.io/library/app@sha256:{HEX64}"),
        ),
    ] {
        assert_eq!(normalise_image(name), normal, "{name}");
    }
}

#[test]
fn create_images_are_normalised_before_the_allowlist() {
    let b = configured(IMAGES);
    let image = |name: &str| format!(r#"{{"Image":"{name}"}}"#);
    for (name, want) in [
        ("busybox".to_string(), &[][..]),
        ("busybox:1.36".into(), &[]),
        ("library/busybox:musl".into(), &[]),
        ("docker.io/library/busybox:latest".into(), &[]),
        // dockerd's reference parser: Docker Hub under its old name, and `library/` added.
        ("docker.io/busybox".into(), &[]),
        ("index.docker.io/busybox:1".into(), &[]),
        ("index.docker.io/library/busybox".into(), &[]),
        (format!("alpine@sha256:{HEX64}"), &[]),
        ("registry.example.com/team/app:1".into(), &[]),
        ("registry.example.com/team/sub/app".into(), &[]),
        ("alpine".into(), &[Rule::Images]),
        ("alpine:3.19".into(), &[Rule::Images]),
        (format!("busybox@sha256:{HEX64}"), &[Rule::Images]),
        ("evil/busybox".into(), &[Rule::Images]),
        ("busybox.evil.example/busybox".into(), &[Rule::Images]),
        ("localhost:5000/busybox".into(), &[Rule::Images]),
        // With a digest dockerd drops the tag: a tag pattern passes no image by digest.
        (format!("busybox:1@sha256:{HEX64}"), &[Rule::Images]),
        (format!("alpine:3@sha256:{HEX64}"), &[]),
        // A first part with an upper-case letter is a registry to dockerd.
        ("Evil/busybox".into(), &[Rule::Images]),
        ("Docker.io/library/busybox".into(), &[Rule::Images]),
        ("registry.example.com/other/app".into(), &[Rule::Images]),
        // Image IDs run whatever image they name; no pattern can vouch for them.
        (format!("sha256:{HEX64}"), &[Rule::Images]),
        ("sha256:0123".into(), &[Rule::Images]),
        (HEX64.into(), &[Rule::Images]),
    ] {
        let body = image(&name);
        assert_eq!(rules(&check_with(&b, CREATE, "", &body)), want, "{body}");
    }
    assert_rules(
        &b,
        CREATE,
        &[
            (r#"{"image":"alpine"}"#, &[Rule::Images]),
            (r#"{"IMAGE":"busybox"}"#, &[]),
            // No image is scratch, filled by `docker cp`: not one of the listed images.
            (r#"{"Cmd":["sh"]}"#, &[Rule::Images]),
            (r#"{"Image":"","Cmd":["sh"]}"#, &[Rule::Images]),
            (r#"{"Image":null,"Cmd":["sh"]}"#, &[Rule::Images]),
        ],
    );
    assert_refused(
        &b,
        CREATE,
        &[(
            r#"{"Image":"busybox","image":"alpine"}"#,
            Refusal::FoldDuplicate,
        )],
    );
}

#[test]
fn without_an_image_allowlist_any_image_may_run() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"Image":"alpine"}"#, &[]),
            (&format!(r#"{{"Image":"sha256:{HEX64}"}}"#), &[]),
        ],
    );
}

#[test]
fn image_pulls_are_checked_against_the_allowlist_and_imports_are_denied() {
    let b = configured(IMAGES);
    assert_query_rules(
        &b,
        IMAGE_PULL,
        &[
            ("fromImage=busybox&tag=1.36", &[]),
            ("fromImage=busybox%3A1.36", &[]),
            (&format!("fromImage=alpine%40sha256%3A{HEX64}"), &[]),
            // No tag or digest: dockerd pulls every tag (docker pull -a).
            ("fromImage=busybox", &[Rule::Images]),
            ("fromImage=busybox%3A", &[Rule::Images]),
            (
                "fromImage=registry.example.com%2Fteam%2Fapp&tag=",
                &[Rule::Images],
            ),
            ("fromImage=registry.example.com%2Fteam%2Fapp&tag=v1", &[]),
            ("fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest", &[]),
            (&format!("fromImage=alpine&tag=sha256:{HEX64}"), &[]),
            // Any tag= with a ':' is a digest to dockerd, sha512 too: not a busybox tag.
            (
                &format!("fromImage=busybox&tag=sha512:{HEX64}{HEX64}"),
                &[Rule::Images],
            ),
            ("fromImage=alpine&tag=latest", &[Rule::Images]),
            ("fromImage=evil%2Fbusybox&tag=1", &[Rule::Images]),
            ("fromSrc=-&repo=busybox", &[Rule::ImageImport]),
            (
                "fromSrc=http%3A%2F%2Fevil.example%2Froot.tar",
                &[Rule::ImageImport],
            ),
            // Query keys are case-sensitive in Go: this names no image.
            ("FromImage=alpine", &[]),
        ],
    );
    match try_check(&b, IMAGE_PULL, "fromImage=busybox&fromImage=alpine", "") {
        Err(e) => assert_eq!(refusal(&e), Refusal::Query, "{e}"),
        Ok(outcome) => panic!("a repeated fromImage should be refused, got {outcome:#?}"),
    }
}

#[test]
fn builds_from_remote_contexts_or_with_host_settings_are_denied() {
    assert_query_rules(
        &default_baseline(),
        BUILD,
        &[
            ("t=app", &[]),
            ("remote=client-session", &[]),
            ("networkmode=default", &[]),
            ("networkmode=bridge", &[]),
            (
                "remote=https%3A%2F%2Fgithub.com%2Fx%2Fy.git",
                &[Rule::Build],
            ),
            ("networkmode=none", &[]),
            ("networkmode=", &[]),
            ("networkmode=host", &[Rule::Build]),
            ("networkmode=container%3Adb", &[Rule::Build]),
            // A named network (an admin's macvlan, another team's internal one) is not judged
            // for builds as it is for a create.
            ("networkmode=lan", &[Rule::Build]),
            ("networkmode=3c", &[Rule::Build]),
            ("cgroupparent=%2Fsystem.slice", &[Rule::CgroupParent]),
            ("cgroupparent=", &[]),
            ("NetworkMode=host", &[]),
        ],
    );
}

#[test]
fn build_containers_are_held_to_the_resource_maxima_and_buildkit_is_refused() {
    let b =
        configured("memory_default: 256m\nmemory_max: 1g\nulimits:\n  nofile: { max: 65536 }\n");
    assert_query_rules(
        &b,
        BUILD,
        &[
            ("t=app&memory=268435456&memswap=536870912", &[]),
            ("memory=2147483648", &[Rule::Resources]),
            // strconv.ParseInt reads a leading '+'; what it refuses dockerd reads as 0.
            ("memory=%2B2147483648", &[Rule::Resources]),
            ("memory=0x80000000", &[]),
            ("memswap=-1", &[Rule::Resources]),
            ("memory=-5", &[Rule::Resources]),
            ("cpuquota=-1", &[Rule::Resources]),
            ("shmsize=4294967296", &[Rule::Resources]),
            (
                "ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1024%2C%22Hard%22%3A2048%7D%5D",
                &[],
            ),
            (
                "ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A-1%2C%22Hard%22%3A-1%7D%5D",
                &[Rule::Resources],
            ),
            (
                "ulimits=%5B%7B%22name%22%3A%22memlock%22%2C%22soft%22%3A1%2C%22hard%22%3A1%7D%5D",
                &[Rule::Resources],
            ),
            ("version=2", &[Rule::Build]),
            ("version=1", &[]),
        ],
    );
    match try_check(&b, BUILD, "ulimits=%5Bnot-json", "") {
        Err(e) => assert_eq!(refusal(&e), Refusal::Ambiguous, "{e}"),
        Ok(outcome) => panic!("unreadable ulimits should be refused, got {outcome:#?}"),
    }
}

#[test]
fn thousands_of_bad_entries_keep_a_bounded_list_and_still_the_deciding_violation() {
    // Every bind warns (host-mounts in warn mode); an added capability, judged after them,
    // enforces.
    let b = configured("rules:\n  host-mounts: warn\n");
    let binds: Vec<String> = (0..5000).map(|i| format!(r#""/etc/x{i}:/d{i}""#)).collect();
    let body = format!(
        r#"{{"Image":"busybox","HostConfig":{{"Binds":[{}],"CapAdd":["SYS_ADMIN"]}}}}"#,
        binds.join(",")
    );
    let outcome = check_with(&b, CREATE, "", &body);
    assert!(
        outcome.violations.len() <= 65,
        "{}",
        outcome.violations.len()
    );
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| v.rule == Rule::Capabilities && v.mode == Mode::Enforce),
        "the enforced violation past the cap must be kept"
    );
}

// ---- networks and uninspectable routes ---------------------------------------------------

#[test]
fn the_networks_a_create_joins_are_named_for_lookup_but_the_daemons_own() {
    for (body, want) in [
        (r#"{"Image":"busybox"}"#, &[][..]),
        (r#"{"HostConfig":{"NetworkMode":"default"}}"#, &[]),
        (
            r#"{"HostConfig":{"NetworkMode":"bridge"},"NetworkingConfig":{"EndpointsConfig":{"bridge":{}}}}"#,
            &[],
        ),
        (r#"{"HostConfig":{"NetworkMode":"container:db"}}"#, &[]),
        // Judged as the host's namespace (host-network), not looked up as a network.
        (
            r#"{"HostConfig":{"NetworkMode":"host"},"NetworkingConfig":{"EndpointsConfig":{"host":{}}}}"#,
            &[],
        ),
        (
            r#"{"HostConfig":{"NetworkMode":"lan"},"NetworkingConfig":{"EndpointsConfig":{"lan":{"Aliases":["x"]}}}}"#,
            &["lan"],
        ),
        (
            r#"{"hostconfig":{"networkmode":"lan"},"NetworkingConfig":{"EndpointsConfig":{"other":{}}}}"#,
            &["lan", "other"],
        ),
    ] {
        let doc = parse_optional(body.as_bytes()).unwrap().unwrap();
        assert_eq!(Baseline::named_networks(&doc).unwrap(), want, "{body}");
    }
}

#[test]
fn an_existing_network_is_judged_by_the_settings_its_create_would_have_needed() {
    let b = default_baseline();
    for (inspect, want) in [
        (
            r#"{"Name":"team","Driver":"bridge","Options":{},"ConfigFrom":{"Network":""}}"#,
            &[][..],
        ),
        (
            r#"{"Name":"team","Driver":"bridge","Options":{"com.docker.network.bridge.enable_icc":"false"},"ConfigFrom":{"Network":""}}"#,
            &[],
        ),
        (
            r#"{"Name":"lan","Driver":"macvlan","Options":{"parent":"eth0"},"ConfigFrom":{"Network":""}}"#,
            &[Rule::NetworkDriver, Rule::NetworkDriver],
        ),
        (
            r#"{"Name":"br","Driver":"bridge","Options":{"com.docker.network.bridge.name":"eth1"}}"#,
            &[Rule::NetworkDriver],
        ),
        (
            r#"{"Name":"d","Driver":"bridge","Options":{},"ConfigFrom":{"Network":"lan-config"}}"#,
            &[Rule::NetworkDriver],
        ),
    ] {
        let doc = parse_optional(inspect.as_bytes()).unwrap().unwrap();
        assert_eq!(rules(&b.check_network(&doc).unwrap()), want, "{inspect}");
    }
}

#[test]
fn network_create_is_limited_to_allowed_drivers_and_new_bridges() {
    let b = default_baseline();
    assert_rules(
        &b,
        NETWORK_CREATE,
        &[
            (r#"{"Name":"n"}"#, &[]),
            (r#"{"Name":"n","Driver":"bridge"}"#, &[]),
            (r#"{"Name":"n","Driver":""}"#, &[]),
            (r#"{"Name":"n","Driver":"macvlan"}"#, &[Rule::NetworkDriver]),
            (r#"{"Name":"n","driver":"ipvlan"}"#, &[Rule::NetworkDriver]),
            (r#"{"Name":"n","Driver":"Bridge"}"#, &[Rule::NetworkDriver]),
            (
                r#"{"Name":"n","Options":{"com.docker.network.bridge.name":"docker0"}}"#,
                &[Rule::NetworkDriver],
            ),
            (
                r#"{"Name":"n","optionſ":{"com.docker.network.bridge.name":"eth0"}}"#,
                &[Rule::NetworkDriver],
            ),
            (
                r#"{"Name":"n","Options":{"com.docker.network.bridge.enable_icc":"false"}}"#,
                &[],
            ),
            ("", &[]),
        ],
    );
    let overlay = configured("network_drivers: [bridge, overlay]");
    assert_rules(
        &overlay,
        NETWORK_CREATE,
        &[(r#"{"Name":"n","Driver":"overlay"}"#, &[])],
    );
}

#[test]
fn service_and_plugin_routes_are_denied_as_uninspectable() {
    let b = default_baseline();
    for template in [
        "/services/create",
        "/services/{id}/update",
        "/plugins/pull",
        "/plugins/{name}/upgrade",
        "/plugins/{name}/set",
        "/plugins/create",
    ] {
        let outcome = check_with(&b, ("POST", template), "", "");
        assert_eq!(rules(&outcome), [Rule::Uninspectable], "{template}");
    }
    // The swarm itself: its join tokens and unlock key give the cluster away.
    for route in [
        ("GET", "/swarm"),
        ("GET", "/swarm/unlockkey"),
        ("POST", "/swarm/update"),
        ("POST", "/swarm/unlock"),
        ("POST", "/swarm/leave"),
        ("POST", "/nodes/{id}/update"),
        ("DELETE", "/nodes/{id}"),
    ] {
        let outcome = check_with(&b, route, "", "");
        assert_eq!(rules(&outcome), [Rule::Uninspectable], "{route:?}");
    }
    assert!(rules(&check_with(&b, ("GET", "/nodes"), "", "")).is_empty());
}

#[test]
fn routes_without_baseline_rules_pass_untouched() {
    let b = default_baseline();
    for (route, body) in [
        (("GET", "/containers/json"), ""),
        (("POST", "/containers/{id}/kill"), ""),
        (("POST", "/networks/{id}/connect"), r#"{"Container":"c"}"#),
        (("DELETE", "/containers/{id}"), ""),
    ] {
        let outcome = check_with(&b, route, "", body);
        assert_eq!(rules(&outcome), NONE, "{route:?}");
        assert!(outcome.rewritten.is_none(), "{route:?}");
    }
}

// ---- exec user -----------------------------------------------------------------------------

#[test]
fn exec_as_root_is_reported_in_warn_mode_by_default() {
    let b = default_baseline();
    let exec_user = |user: &str| format!(r#"{{"Cmd":["sh"],"User":"{user}"}}"#);
    for user in [
        "root",
        "0",
        "00",
        "+0",
        "-0",
        "0:0",
        "root:root",
        "0:1000",
        "root:",
    ] {
        let outcome = check_with(&b, EXEC, "", &exec_user(user));
        assert_eq!(rules(&outcome), [Rule::ExecRoot], "{user:?}");
        assert_eq!(outcome.violations[0].mode, Mode::Warn, "{user:?}");
    }
    for user in [
        "1000",
        "nobody",
        "1000:0",
        "nobody:root",
        "",
        "ROOT",
        "rooty",
        "0x0",
        "1",
    ] {
        assert_eq!(
            rules(&check_with(&b, EXEC, "", &exec_user(user))),
            [],
            "{user:?}"
        );
    }
    assert_rules(
        &b,
        EXEC,
        &[
            (r#"{"user":"root"}"#, &[Rule::ExecRoot]),
            (r#"{"Uſer":"0"}"#, &[Rule::ExecRoot]),
            (r#"{"USER":"1000"}"#, &[]),
        ],
    );
    assert_refused(
        &b,
        EXEC,
        &[
            (r#"{"User":"1000","user":"0"}"#, Refusal::FoldDuplicate),
            (r#"{"User":0}"#, Refusal::WrongType),
        ],
    );
}

#[test]
fn exec_with_an_empty_user_part_runs_as_root_and_is_reported() {
    // runc's GetExecUser resolves an empty user name to its default, uid 0, not to the
    // container's user; only an entirely empty User inherits the container's user.
    let b = configured("rules: { exec-root: enforce }");
    for user in [":0", ":", ":1000", ":root"] {
        let body = format!(r#"{{"User":"{user}"}}"#);
        let outcome = check_with(&b, EXEC, "", &body);
        assert_eq!(rules(&outcome), [Rule::ExecRoot], "{user:?}");
        assert_eq!(outcome.violations[0].mode, Mode::Enforce, "{user:?}");
    }
    assert_rules(&b, EXEC, &[(r#"{"User":""}"#, &[]), (r#"{}"#, &[])]);
}

// ---- modes -------------------------------------------------------------------------------

/// One request that triggers exactly one rule, with the settings it needs.
struct Trigger {
    rule: Rule,
    settings: &'static str,
    route: (&'static str, &'static str),
    query: &'static str,
    body: &'static str,
}

const fn trigger(
    rule: Rule,
    settings: &'static str,
    route: (&'static str, &'static str),
    query: &'static str,
    body: &'static str,
) -> Trigger {
    Trigger {
        rule,
        settings,
        route,
        query,
        body,
    }
}

const TRIGGERS: &[Trigger] = &[
    trigger(
        Rule::LogDriver,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"LogConfig":{"Type":"gelf","Config":{"gelf-address":"udp://10.0.0.1:12201"}}}}"#,
    ),
    trigger(
        Rule::Privileged,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"Privileged":true}}"#,
    ),
    trigger(Rule::ExecPrivileged, "", EXEC, "", r#"{"Privileged":true}"#),
    trigger(Rule::ExecRoot, "", EXEC, "", r#"{"User":"root"}"#),
    trigger(
        Rule::HostNetwork,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"NetworkMode":"host"}}"#,
    ),
    trigger(
        Rule::HostPid,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"PidMode":"host"}}"#,
    ),
    trigger(
        Rule::HostIpc,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"IpcMode":"host"}}"#,
    ),
    trigger(
        Rule::HostUts,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"UTSMode":"host"}}"#,
    ),
    trigger(
        Rule::HostUserns,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"UsernsMode":"host"}}"#,
    ),
    trigger(
        Rule::HostCgroupns,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"CgroupnsMode":"host"}}"#,
    ),
    trigger(
        Rule::SharedNamespace,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"PidMode":"container:x"}}"#,
    ),
    trigger(
        Rule::HostMounts,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"Binds":["/etc:/e"]}}"#,
    ),
    trigger(
        Rule::MountPropagation,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"Binds":["v:/d:rshared"]}}"#,
    ),
    trigger(
        Rule::Capabilities,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"CapAdd":["SYS_ADMIN"]}}"#,
    ),
    trigger(
        Rule::SecurityOpt,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"SecurityOpt":["seccomp=unconfined"]}}"#,
    ),
    trigger(
        Rule::MaskedPaths,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"MaskedPaths":[]}}"#,
    ),
    trigger(
        Rule::NoNewPrivileges,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"SecurityOpt":["no-new-privileges=false"]}}"#,
    ),
    trigger(
        Rule::Devices,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}}"#,
    ),
    trigger(
        Rule::Sysctls,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"Sysctls":{"kernel.panic":"1"}}}"#,
    ),
    trigger(
        Rule::CgroupParent,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"CgroupParent":"/x"}}"#,
    ),
    trigger(
        Rule::Runtime,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"Runtime":"nvidia"}}"#,
    ),
    trigger(
        Rule::OomKillDisable,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"OomKillDisable":true}}"#,
    ),
    trigger(
        Rule::PrivilegedPorts,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"80"}]}}}"#,
    ),
    trigger(
        Rule::PublishAll,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"PublishAllPorts":true}}"#,
    ),
    trigger(
        Rule::HostIp,
        "host_ip: 127.0.0.1\n",
        CREATE,
        "",
        r#"{"HostConfig":{"PortBindings":{"8080/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}}}"#,
    ),
    trigger(
        Rule::Resources,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"Memory":99999999999}}"#,
    ),
    trigger(
        Rule::RestartPolicy,
        "",
        CREATE,
        "",
        r#"{"HostConfig":{"RestartPolicy":{"Name":"always"}}}"#,
    ),
    trigger(
        Rule::ReadonlyRootfs,
        "readonly_rootfs: require\n",
        CREATE,
        "",
        r#"{}"#,
    ),
    trigger(
        Rule::Images,
        "images: [\"docker.io/library/busybox:*\"]\n",
        CREATE,
        "",
        r#"{"Image":"alpine"}"#,
    ),
    trigger(Rule::ImageImport, "", IMAGE_PULL, "fromSrc=-", ""),
    trigger(Rule::Build, "", BUILD, "remote=https%3A%2F%2Fx", ""),
    trigger(
        Rule::VolumeDriver,
        "",
        VOLUME_CREATE,
        "",
        r#"{"Driver":"rexray"}"#,
    ),
    trigger(
        Rule::NetworkDriver,
        "",
        NETWORK_CREATE,
        "",
        r#"{"Driver":"macvlan"}"#,
    ),
    trigger(
        Rule::Uninspectable,
        "",
        ("POST", "/services/create"),
        "",
        "",
    ),
];

#[test]
fn every_rule_has_a_trigger_that_yields_only_that_rule() {
    for rule in Rule::ALL {
        let count = TRIGGERS.iter().filter(|t| t.rule == rule).count();
        assert_eq!(count, 1, "{} needs exactly one trigger", rule.id());
    }
    for t in TRIGGERS {
        let outcome = check_with(&configured(t.settings), t.route, t.query, t.body);
        assert_eq!(rules(&outcome), [t.rule], "{}: {}", t.rule.id(), t.body);
    }
}

#[test]
fn every_rule_enforces_by_default_except_exec_root_which_warns() {
    for t in TRIGGERS {
        let outcome = check_with(&configured(t.settings), t.route, t.query, t.body);
        let want = if t.rule == Rule::ExecRoot {
            Mode::Warn
        } else {
            Mode::Enforce
        };
        let modes: Vec<Mode> = outcome.violations.iter().map(|v| v.mode).collect();
        assert_eq!(modes, [want], "{}", t.rule.id());
    }
}

#[test]
fn a_rule_set_to_warn_reports_in_warn_mode_and_off_reports_nothing() {
    for t in TRIGGERS {
        for (mode, want) in [
            ("warn", vec![Mode::Warn]),
            ("enforce", vec![Mode::Enforce]),
            ("off", vec![]),
        ] {
            let yaml = format!("{}rules: {{ {}: {mode} }}\n", t.settings, t.rule.id());
            let outcome = check_with(&configured(&yaml), t.route, t.query, t.body);
            let modes: Vec<Mode> = outcome.violations.iter().map(|v| v.mode).collect();
            assert_eq!(modes, want, "{} set to {mode}", t.rule.id());
        }
    }
}

#[test]
fn every_rule_id_is_accepted_in_config_and_unknown_ids_are_reported() {
    for rule in Rule::ALL {
        assert_eq!(Rule::from_id(rule.id()), Some(rule));
        assert!(problems_of(&format!("rules: {{ {}: warn }}", rule.id())).is_empty());
    }
    let problems = problems_of("rules: { privileged-mode: off }");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("t.rules.privileged-mode: unknown rule"),
        "{problems:?}"
    );
}

#[test]
fn invalid_settings_are_reported_with_their_field() {
    for (yaml, field) in [
        ("bind_allowed: [srv/work]", "t.bind_allowed[0]"),
        ("bind_allowed: [/srv/../etc]", "t.bind_allowed[0]"),
        ("{memory_default: 16g}", "t.memory_default"),
        ("{pids_default: 0}", "t.pids_default"),
        ("{cpus_default: 4.0}", "t.cpus_default"),
        (
            "bind_denied_extra: [/srv/secrets, srv/keys]",
            "t.bind_denied_extra[1]",
        ),
    ] {
        let problems = problems_of(yaml);
        assert_eq!(problems.len(), 1, "{yaml}: {problems:?}");
        assert!(
            problems[0].starts_with(&format!("{field}: ")),
            "{yaml}: {problems:?}"
        );
    }
    assert!(serde_norway::from_str::<RawBaseline>("memory_max: lots").is_err());
    assert!(serde_norway::from_str::<RawBaseline>("rules: { privileged: deny }").is_err());
    assert!(serde_norway::from_str::<RawBaseline>("unknown_setting: 1").is_err());
}

// ---- injected defaults -------------------------------------------------------------------

#[test]
fn create_without_limits_gets_the_default_limits_and_no_new_privileges() {
    let outcome = check(CREATE, r#"{"Image":"busybox"}"#);
    assert_eq!(rules(&outcome), NONE);
    assert_eq!(
        rewritten(&outcome),
        r#"{"Image":"busybox","HostConfig":{"Memory":2147483648,"MemorySwap":2147483648,"NanoCpus":1000000000,"PidsLimit":512,"SecurityOpt":["no-new-privileges=true"],"CgroupnsMode":"private"}}"#
    );
    assert_eq!(
        outcome.mutations,
        [
            "HostConfig.Memory=2147483648",
            "HostConfig.MemorySwap=2147483648",
            "HostConfig.NanoCpus=1000000000",
            "HostConfig.PidsLimit=512",
            "HostConfig.SecurityOpt+=no-new-privileges=true",
            "HostConfig.CgroupnsMode=private",
        ]
    );
}

#[test]
fn an_empty_create_body_is_rewritten_with_the_defaults() {
    for body in ["", "{}", "null"] {
        let outcome = check(CREATE, body);
        assert!(
            rewritten_host_config(&outcome).contains(r#""PidsLimit":512"#),
            "{body:?}"
        );
    }
}

#[test]
fn limits_the_request_sets_are_kept() {
    let one_gib = 1i64 << 30;
    for (fields, want) in [
        (
            format!(r#""Memory":{one_gib}"#),
            format!(r#""Memory":{one_gib},"MemorySwap":{one_gib}"#),
        ),
        (
            format!(r#""Memory":{one_gib},"MemorySwap":{}"#, 3 * one_gib),
            format!(r#""Memory":{one_gib},"MemorySwap":{}"#, 3 * one_gib),
        ),
        (
            r#""NanoCpus":500000000"#.into(),
            r#""NanoCpus":500000000"#.into(),
        ),
        (r#""PidsLimit":100"#.into(), r#""PidsLimit":100"#.into()),
        (r#""PidsLimit":0"#.into(), r#""PidsLimit":512"#.into()),
        (r#""PidsLimit":-1"#.into(), r#""PidsLimit":512"#.into()),
        (r#""PidsLimit":null"#.into(), r#""PidsLimit":512"#.into()),
        (r#""Memory":0"#.into(), r#""Memory":2147483648"#.into()),
    ] {
        let body = format!(r#"{{"HostConfig":{{{fields}}}}}"#);
        let hc = rewritten_host_config(&check(CREATE, &body));
        assert!(hc.contains(&want), "{body}\n  → {hc}\n  wanted {want}");
    }
}

#[test]
fn a_cpu_quota_is_kept_instead_of_injecting_nano_cpus() {
    let hc = rewritten_host_config(&check(CREATE, r#"{"HostConfig":{"CpuQuota":50000}}"#));
    assert!(hc.contains(r#""CpuQuota":50000"#), "{hc}");
    assert!(!hc.contains("NanoCpus"), "{hc}");
}

#[test]
fn a_cpu_period_without_quota_gets_a_default_quota_not_nano_cpus() {
    // dockerd refuses NanoCpus together with CpuPeriod ("Conflicting options").
    let outcome = check(CREATE, r#"{"HostConfig":{"CpuPeriod":50000}}"#);
    let hc = rewritten_host_config(&outcome);
    assert!(hc.contains(r#""CpuPeriod":50000,"#), "{hc}");
    assert!(hc.contains(r#""CpuQuota":50000"#), "{hc}");
    assert!(!hc.contains("NanoCpus"), "{hc}");
    assert!(outcome
        .mutations
        .contains(&"HostConfig.CpuQuota=50000".to_string()));
    let half = configured("cpus_default: 0.5");
    let hc = rewritten_host_config(&check_with(
        &half,
        CREATE,
        "",
        r#"{"HostConfig":{"CpuPeriod":1000}}"#,
    ));
    // Half of 1ms is below the 1ms minimum quota dockerd accepts.
    assert!(hc.contains(r#""CpuQuota":1000"#), "{hc}");
}

#[test]
fn no_new_privileges_variants_are_stripped_and_true_appended_last() {
    let outcome = check(
        CREATE,
        r#"{"HostConfig":{"SecurityOpt":["no-new-privileges=false","apparmor=docker-default","no-new-privileges","no-new-privileges:false"]}}"#,
    );
    assert_eq!(
        rules(&outcome),
        [Rule::NoNewPrivileges, Rule::NoNewPrivileges]
    );
    let hc = rewritten_host_config(&outcome);
    assert!(
        hc.contains(r#""SecurityOpt":["apparmor=docker-default","no-new-privileges=true"]"#),
        "{hc}"
    );
}

#[test]
fn injected_fields_replace_every_fold_variant_with_the_canonical_name() {
    let outcome = check(
        CREATE,
        r#"{"Image":"busybox","hoſtconfig":{"pidslimit":0,"ſecurityopt":["no-new-privileges=false"],"memory":1073741824,"CapDrop":["ALL"]},"Labels":{"a":"b"}}"#,
    );
    assert_eq!(
        rewritten(&outcome),
        r#"{"Image":"busybox","HostConfig":{"PidsLimit":512,"SecurityOpt":["no-new-privileges=true"],"memory":1073741824,"CapDrop":["ALL"],"MemorySwap":1073741824,"NanoCpus":1000000000,"CgroupnsMode":"private"},"Labels":{"a":"b"}}"#
    );
}

#[test]
fn rewritten_create_bodies_keep_every_other_key_and_value() {
    let body = r#"{"Hostname":"h","Image":"busybox","Cmd":["sh","-c","echo \"hi\""],"Env":["A=1"],"Labels":{"HostConfig":"x","Privileged":"true"},"ExposedPorts":{"8080/tcp":{}},"HostConfig":{"Binds":null,"CapDrop":["ALL"],"Tmpfs":{"/tmp":"rw"},"LogConfig":{"Type":"json-file","Config":{}},"Memory":1073741824,"MemorySwap":1073741824,"NanoCpus":1000000000,"PidsLimit":64},"NetworkingConfig":{"EndpointsConfig":{"app":{"Aliases":["a"]}}}}"#;
    let outcome = check(CREATE, body);
    assert_eq!(rules(&outcome), NONE);
    let expected = body.replace(
        r#""PidsLimit":64}"#,
        r#""PidsLimit":64,"SecurityOpt":["no-new-privileges=true"],"CgroupnsMode":"private"}"#,
    );
    assert_eq!(rewritten(&outcome), expected);
    assert_eq!(
        outcome.mutations,
        [
            "HostConfig.SecurityOpt+=no-new-privileges=true",
            "HostConfig.CgroupnsMode=private"
        ]
    );
}

#[test]
fn a_create_body_that_needs_no_defaults_is_forwarded_unchanged() {
    let outcome = check_with(
        &configured(NO_INJECTION),
        CREATE,
        "",
        r#"{"Image":"busybox","HostConfig":{}}"#,
    );
    assert!(outcome.rewritten.is_none());
    assert!(outcome.mutations.is_empty());
}

#[test]
fn resources_rule_off_injects_no_limits() {
    let b = configured("rules: { resources: off }");
    let hc = rewritten_host_config(&check_with(&b, CREATE, "", r#"{"Image":"busybox"}"#));
    assert_eq!(
        hc,
        r#"{"SecurityOpt":["no-new-privileges=true"],"CgroupnsMode":"private"}"#
    );
}

#[test]
fn readonly_rootfs_inject_sets_it_unless_already_true() {
    let b = configured("readonly_rootfs: inject");
    for (hc_in, want) in [
        (r#"{}"#, r#""ReadonlyRootfs":true"#),
        (r#"{"ReadonlyRootfs":false}"#, r#""ReadonlyRootfs":true"#),
        (r#"{"readonlyrootfſ":false}"#, r#""ReadonlyRootfs":true"#),
        (r#"{"readonlyrootfs":true}"#, r#""readonlyrootfs":true"#),
    ] {
        let body = format!(r#"{{"HostConfig":{hc_in}}}"#);
        let outcome = check_with(&b, CREATE, "", &body);
        let hc = rewritten_host_config(&outcome);
        assert!(hc.contains(want), "{body} → {hc}");
        let Ok(Json::Object(hc)) = crate::policy::inspect::parse(hc.as_bytes()) else {
            panic!("{hc} is not an object");
        };
        assert_eq!(hc.keys_folding_to("ReadonlyRootfs").count(), 1, "{body}");
    }
}

#[test]
fn ulimit_defaults_are_injected_only_when_the_request_sets_none_of_that_name() {
    let b = configured("ulimits: { nofile: { default: { soft: 4096, hard: 8192 }, max: 65536 } }");
    let hc = rewritten_host_config(&check_with(&b, CREATE, "", "{}"));
    assert!(
        hc.contains(r#""Ulimits":[{"Name":"nofile","Soft":4096,"Hard":8192}]"#),
        "{hc}"
    );
    for name in ["nofile", "NOFILE"] {
        let body = format!(
            r#"{{"HostConfig":{{"Ulimits":[{{"Name":"{name}","Soft":1024,"Hard":2048}}]}}}}"#
        );
        let outcome = check_with(&b, CREATE, "", &body);
        let hc = rewritten_host_config(&outcome);
        assert!(
            hc.contains(&format!(
                r#""Ulimits":[{{"Name":"{name}","Soft":1024,"Hard":2048}}]"#
            )),
            "{body} → {hc}"
        );
        assert!(
            !outcome.mutations.iter().any(|m| m.contains("Ulimits")),
            "{name}"
        );
    }
    let hc = rewritten_host_config(&check_with(
        &b,
        CREATE,
        "",
        r#"{"HostConfig":{"Ulimits":[{"Name":"nproc","Soft":1,"Hard":1}]}}"#,
    ));
    assert!(
        hc.contains(r#""Ulimits":[{"Name":"nproc","Soft":1,"Hard":1},{"Name":"nofile","Soft":4096,"Hard":8192}]"#),
        "{hc}"
    );
}

#[test]
fn violations_are_still_reported_when_defaults_are_injected() {
    let outcome = check(
        CREATE,
        r#"{"HostConfig":{"Privileged":true,"PidsLimit":0}}"#,
    );
    assert_eq!(rules(&outcome), [Rule::Privileged]);
    assert!(rewritten_host_config(&outcome).contains(r#""Privileged":true"#));
}

// ---- regressions -------------------------------------------------------------------------

#[test]
fn regression_injected_defaults_reach_the_rewritten_body() {
    // The HostConfig with the injected defaults was built but never put back into the body,
    // so `rewritten` carried the request unchanged while `mutations` claimed the defaults.
    let outcome = check(
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"Privileged":false}}"#,
    );
    assert!(!outcome.mutations.is_empty());
    let hc = rewritten_host_config(&outcome);
    for want in ["Memory", "PidsLimit", "no-new-privileges=true"] {
        assert!(hc.contains(want), "{want} missing from {hc}");
    }
}

#[test]
fn regression_exec_user_with_an_empty_name_is_root() {
    let outcome = check(EXEC, r#"{"User":":1000"}"#);
    assert_eq!(rules(&outcome), [Rule::ExecRoot]);
}

#[test]
fn regression_ulimit_max_applies_to_upper_case_names() {
    let b = configured("ulimits: { nofile: { max: 65536 } }");
    let body = r#"{"HostConfig":{"Ulimits":[{"Name":"NOFILE","Soft":1048576,"Hard":1048576}]}}"#;
    assert_eq!(rules(&check_with(&b, CREATE, "", body)), [Rule::Resources]);
}

#[test]
fn regression_no_new_privileges_require_is_enforced() {
    let b = configured("no_new_privileges: require");
    assert_eq!(
        rules(&check_with(&b, CREATE, "", "{}")),
        [Rule::NoNewPrivileges]
    );
}

#[test]
fn regression_cpu_period_alone_does_not_get_conflicting_nano_cpus() {
    let hc = rewritten_host_config(&check(CREATE, r#"{"HostConfig":{"CpuPeriod":100000}}"#));
    assert!(!hc.contains("NanoCpus"), "{hc}");
}

#[test]
fn regression_image_ids_do_not_match_name_patterns() {
    let b = configured(r#"images: ["docker.io/library/*"]"#);
    for image in [
        format!("sha256:{HEX64}"),
        HEX64.to_string(),
        "sha256:01".into(),
    ] {
        let body = format!(r#"{{"Image":"{image}"}}"#);
        assert_eq!(
            rules(&check_with(&b, CREATE, "", &body)),
            [Rule::Images],
            "{image}"
        );
    }
    assert_eq!(
        rules(&check_with(&b, CREATE, "", r#"{"Image":"busybox"}"#)),
        []
    );
}

#[test]
fn regression_bind_denied_extra_problems_name_their_own_index() {
    // The extras were normalised together with the built-in list, so the first extra was
    // reported as bind_denied_extra[18].
    assert_eq!(
        problems_of("bind_denied_extra: [srv]"),
        [r#"t.bind_denied_extra[0]: host path "srv" is not absolute"#]
    );
}

#[test]
fn an_upstream_socket_that_cannot_be_cleaned_is_reported_as_upstream() {
    let mut problems = Problems::default();
    Baseline::compile(
        RawBaseline::default(),
        "t",
        std::path::Path::new("/srv/x/../docker.sock"),
        &mut problems,
    );
    let fields: Vec<&str> = problems.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["upstream"]);
    // An empty path means the config's own `upstream` check already failed.
    let mut problems = Problems::default();
    Baseline::compile(
        RawBaseline::default(),
        "t",
        std::path::Path::new(""),
        &mut problems,
    );
    assert!(problems.0.is_empty(), "{:?}", problems.0);
}

#[test]
fn empty_port_binding_list_is_denied_when_a_host_ip_is_configured() {
    // dockerd ≥ 25 back-fills `[]`/`null` with a wildcard binding on a random port.
    let b = configured("host_ip: 127.0.0.1");
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[]}}}"#,
                &[Rule::HostIp],
            ),
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":null}}}"#,
                &[Rule::HostIp],
            ),
        ],
    );
}

#[test]
fn host_port_range_starting_at_zero_is_a_privileged_range() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"0-80"}]}}}"#,
                &[Rule::PrivilegedPorts],
            ),
            (
                r#"{"HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"0"}]}}}"#,
                &NONE,
            ),
        ],
    );
}

#[test]
fn image_patterns_match_only_the_normalised_reference() {
    // Patterns are matched against docker.io/library/busybox:local, never the raw spelling,
    // so a raw-looking pattern cannot be satisfied by a look-alike reference.
    let b = configured(r#"images: ["busybox:*", "docker.io/library/alpine:*"]"#);
    assert_rules(
        &b,
        CREATE,
        &[
            (r#"{"Image":"busybox:local"}"#, &[Rule::Images]),
            (r#"{"Image":"alpine:3"}"#, &NONE),
            (
                r#"{"Image":"docker.io/library/alpine.evil/x:3"}"#,
                &[Rule::Images],
            ),
        ],
    );
}

#[test]
fn volume_driver_options_other_than_a_plain_bind_or_tmpfs_are_denied() {
    let b = configured("bind_allowed: [/srv/work]\nbind_writable: true");
    assert_rules(
        &b,
        VOLUME_CREATE,
        &[
            (
                r#"{"Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/srv/work/a"}}"#,
                &NONE,
            ),
            (
                r#"{"Driver":"local","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=10m"}}"#,
                &NONE,
            ),
            // overlay lowerdirs and procfs expose host paths whatever `device` says.
            (
                r#"{"Driver":"local","DriverOpts":{"type":"overlay","device":"/srv/work","o":"lowerdir=/var/run,upperdir=/srv/work/u,workdir=/srv/work/w"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"Driver":"local","DriverOpts":{"type":"proc","device":"/srv/work"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"Driver":"local","DriverOpts":{"type":"nfs","o":"addr=10.0.0.1","device":":/export"}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/srv/work","extra":"x"}}"#,
                &[Rule::HostMounts],
            ),
        ],
    );
}

#[test]
fn writable_binds_of_allowed_paths_need_bind_writable() {
    // A writable bind lets a container plant a symlink that a later bind would follow.
    let b = configured("bind_allowed: [/srv/work]");
    assert_rules(
        &b,
        CREATE,
        &[
            (r#"{"HostConfig":{"Binds":["/srv/work:/w:ro"]}}"#, &NONE),
            (
                r#"{"HostConfig":{"Binds":["/srv/work:/w"]}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/work","Target":"/w","ReadOnly":true}]}}"#,
                &NONE,
            ),
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/work","Target":"/w"}]}}"#,
                &[Rule::HostMounts],
            ),
        ],
    );
    let writable = configured("bind_allowed: [/srv/work]\nbind_writable: true");
    assert_rules(
        &writable,
        CREATE,
        &[(r#"{"HostConfig":{"Binds":["/srv/work:/w"]}}"#, &NONE)],
    );
}

#[test]
fn update_must_set_cpu_period_and_quota_together() {
    assert_rules(
        &default_baseline(),
        UPDATE,
        &[
            (r#"{"CpuPeriod":1000}"#, &[Rule::Resources]),
            (r#"{"CpuQuota":50000}"#, &[Rule::Resources]),
            (r#"{"CpuPeriod":100000,"CpuQuota":50000}"#, &NONE),
        ],
    );
}

#[test]
fn negative_oom_score_large_shm_and_swap_and_unconfigured_ulimits_are_denied() {
    let b = configured("ulimits:\n  nofile: { max: 65536 }");
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"OomScoreAdj":-1000}}"#,
                &[Rule::OomKillDisable],
            ),
            (r#"{"HostConfig":{"OomScoreAdj":500}}"#, &NONE),
            (
                r#"{"HostConfig":{"ShmSize":100000000000}}"#,
                &[Rule::Resources],
            ),
            (
                r#"{"HostConfig":{"MemorySwap":1000000000000000}}"#,
                &[Rule::Resources],
            ),
            (
                r#"{"HostConfig":{"Ulimits":[{"Name":"memlock","Soft":-1,"Hard":-1}]}}"#,
                &[Rule::Resources],
            ),
            (
                r#"{"HostConfig":{"Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}]}}"#,
                &NONE,
            ),
        ],
    );
}

#[test]
fn all_hex_image_names_are_treated_as_id_prefixes_when_an_allowlist_is_set() {
    let b = configured(r#"images: ["docker.io/library/*"]"#);
    assert_rules(
        &b,
        CREATE,
        &[
            (r#"{"Image":"52844d639dca"}"#, &[Rule::Images]),
            (r#"{"Image":"busybox"}"#, &NONE),
        ],
    );
}

// ---- found by an independent review ------------------------------------------------------

#[test]
fn starting_from_a_checkpoint_is_refused() {
    assert_query_rules(
        &default_baseline(),
        START,
        &[
            ("", &[]),
            ("checkpoint=a", &[Rule::HostMounts]),
            ("checkpoint=a&checkpoint-dir=/etc", &[Rule::HostMounts]),
            ("checkpoint-dir=/etc", &[Rule::HostMounts]),
        ],
    );
}

#[test]
fn checkpoint_routes_are_refused_they_read_and_write_host_directories() {
    let b = default_baseline();
    for (route, query) in [
        (("GET", "/containers/{id}/checkpoints"), "dir=/root"),
        (("POST", "/containers/{id}/checkpoints"), ""),
        (
            ("DELETE", "/containers/{id}/checkpoints/{checkpoint}"),
            "dir=/",
        ),
    ] {
        let outcome = check_with(&b, route, query, "");
        assert_eq!(rules(&outcome), [Rule::HostMounts], "{route:?}");
    }
}

#[test]
fn a_volume_bind_is_read_only_only_when_the_last_of_ro_and_rw_says_so() {
    let b = configured("bind_allowed: [/srv/work]");
    let volume = |o: &str| {
        format!(r#"{{"Name":"w","DriverOpts":{{"type":"none","o":"{o}","device":"/srv/work"}}}}"#)
    };
    for (o, want) in [
        ("bind,ro", &[][..]),
        ("bind,rw,ro", &[]),
        ("bind,ro,rw", &[Rule::HostMounts]),
        ("bind,ro, RW", &[Rule::HostMounts]),
        ("bind", &[Rule::HostMounts]),
    ] {
        let outcome = check_with(&b, VOLUME_CREATE, "", &volume(o));
        assert_eq!(rules(&outcome), want, "o={o}");
    }
}

#[test]
fn a_non_recursive_read_only_bind_is_refused() {
    let b = configured("bind_allowed: [/srv/work]");
    assert_rules(
        &b,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/work","Target":"/w","ReadOnly":true}]}}"#,
                &[],
            ),
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/work","Target":"/w","ReadOnly":true,"BindOptions":{"ReadOnlyNonRecursive":true}}]}}"#,
                &[Rule::HostMounts],
            ),
        ],
    );
}

#[test]
fn a_null_port_binding_is_refused_where_ports_are_pinned_to_an_address() {
    let b = configured("host_ip: 127.0.0.1");
    let outcome = check_with(
        &b,
        CREATE,
        "",
        r#"{"HostConfig":{"PortBindings":{"8080/tcp":[null]}}}"#,
    );
    assert_eq!(rules(&outcome), [Rule::HostIp]);
}

#[test]
fn oci_annotations_are_refused() {
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"HostConfig":{"Annotations":{}}}"#, &[]),
            (
                r#"{"HostConfig":{"Annotations":{"org.criu.config":"/tmp/x"}}}"#,
                &[Rule::SecurityOpt],
            ),
        ],
    );
}

#[test]
fn mounts_over_proc_sys_and_dev_and_a_working_dir_under_proc_are_refused() {
    let b = default_baseline();
    assert_rules(
        &b,
        CREATE,
        &[
            (r#"{"HostConfig":{"Tmpfs":{"/dev/shm":""}}}"#, &[]),
            (r#"{"HostConfig":{"Tmpfs":{"/run":""}}}"#, &[]),
            (
                r#"{"HostConfig":{"Tmpfs":{"/proc/sys":""}}}"#,
                &[Rule::MaskedPaths],
            ),
            (
                r#"{"HostConfig":{"Binds":["data:/dev/console"]}}"#,
                &[Rule::MaskedPaths],
            ),
            (
                r#"{"HostConfig":{"Binds":["/.//sys/x"]}}"#,
                &[Rule::MaskedPaths],
            ),
            (
                r#"{"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"//proc/self"}]}}"#,
                &[Rule::MaskedPaths],
            ),
            (r#"{"Volumes":{"/dev/x":{}}}"#, &[Rule::MaskedPaths]),
            // dockerd passes a relative Volumes key on; runc joins it to the root.
            (r#"{"Volumes":{"sys/kernel/x":{}}}"#, &[Rule::MaskedPaths]),
            (r#"{"Volumes":{"dev/x":{}}}"#, &[Rule::MaskedPaths]),
            (r#"{"Volumes":{"data":{}}}"#, &[]),
            (r#"{"WorkingDir":"/proc/self/fd/7"}"#, &[Rule::MaskedPaths]),
            (r#"{"WorkingDir":"/app"}"#, &[]),
        ],
    );
    assert_rules(
        &b,
        EXEC,
        &[
            (
                r#"{"Cmd":["sh"],"WorkingDir":"/proc/1/cwd"}"#,
                &[Rule::MaskedPaths],
            ),
            // dockerd passes a relative exec working directory on; it is judged from the root.
            (
                r#"{"Cmd":["sh"],"WorkingDir":"proc/self/fd/7"}"#,
                &[Rule::MaskedPaths],
            ),
            (r#"{"Cmd":["sh"],"WorkingDir":"app"}"#, &[]),
        ],
    );
}

#[test]
fn network_options_outside_the_safe_list_and_config_from_are_refused() {
    assert_rules(
        &default_baseline(),
        NETWORK_CREATE,
        &[
            (
                r#"{"Name":"n","Options":{"com.docker.network.driver.mtu":"1400"}}"#,
                &[],
            ),
            (
                r#"{"Name":"n","Options":{"com.docker.network.bridge.gateway_mode_ipv4":"nat-unprotected"}}"#,
                &[Rule::NetworkDriver],
            ),
            (
                r#"{"Name":"n","Options":{"com.docker.network.bridge.name":"docker0"}}"#,
                &[Rule::NetworkDriver],
            ),
            (
                r#"{"Name":"n","ConfigFrom":{"Network":"admins"}}"#,
                &[Rule::NetworkDriver],
            ),
            (r#"{"Name":"n","ConfigFrom":null}"#, &[]),
        ],
    );
}

#[test]
fn a_network_create_leaves_addresses_ipam_and_scope_to_dockerd() {
    const NET: Rule = Rule::NetworkDriver;
    assert_rules(
        &default_baseline(),
        NETWORK_CREATE,
        &[
            // What `docker network create n` sends: dockerd picks the subnet from its pools.
            (
                r#"{"Name":"n","CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{}}"#,
                &[],
            ),
            (r#"{"Name":"n","IPAM":{"Config":[{}]}}"#, &[]),
            (
                r#"{"Name":"n","IPAM":{"Config":[{"Subnet":"10.0.0.0/24"}]}}"#,
                &[NET],
            ),
            (
                r#"{"Name":"n","IPAM":{"Config":[{"Gateway":"192.168.1.1"}]}}"#,
                &[NET],
            ),
            (
                r#"{"Name":"n","IPAM":{"Config":[{"IPRange":"10.0.0.0/25"}]}}"#,
                &[NET],
            ),
            (
                r#"{"Name":"n","IPAM":{"Config":[{"AuxiliaryAddresses":{"router":"10.0.0.1"}}]}}"#,
                &[NET],
            ),
            // Go's fold reaches the same fields.
            (
                r#"{"Name":"n","ipam":{"config":[{"subnet":"10.0.0.0/24"}]}}"#,
                &[NET],
            ),
            (
                r#"{"Name":"n","IPAM":{"Driver":"../../../var/lib/docker/volumes/v/_data/p"}}"#,
                &[NET],
            ),
            (
                r#"{"Name":"n","IPAM":{"Options":{"com.docker.network.ipam.serial":"true"}}}"#,
                &[NET],
            ),
            (r#"{"Name":"n","EnableIPv6":true}"#, &[NET]),
            // The other way newer dockerd turns IPv6 on (when EnableIPv6 is null).
            (
                r#"{"Name":"n","Options":{"com.docker.network.enable_ipv6":"true"}}"#,
                &[NET],
            ),
            (r#"{"Name":"n","Scope":"swarm"}"#, &[NET]),
            (r#"{"Name":"n","Scope":"local"}"#, &[]),
            (r#"{"Name":"n","Ingress":true}"#, &[NET]),
            (r#"{"Name":"n","ConfigOnly":true}"#, &[NET]),
        ],
    );
}

#[test]
fn a_container_may_not_choose_its_mac_address_or_endpoint_driver_options() {
    const NET: Rule = Rule::NetworkDriver;
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"Image":"busybox","MacAddress":""}"#, &[]),
            (
                r#"{"Image":"busybox","MacAddress":"02:42:ac:11:00:02"}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"MacAddress":"02:42:ac:11:00:02"}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"DriverOpts":{"com.docker.network.endpoint.sysctls":"net.ipv4.conf.IFNAME.forwarding=1"}}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["db"],"IPAMConfig":null,"Links":null,"DriverOpts":{}}}}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"own":{"IPAMConfig":{"IPv4Address":"","IPv6Address":"","LinkLocalIPs":[]}}}}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"own":{"IPAMConfig":{"LinkLocalIPs":["fe80::9","169.254.0.1"]}}}}}"#,
                &[NET],
            ),
            // dockerd puts any address there on the interface: the gateway's, a neighbour's.
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"LinkLocalIPs":["172.17.0.1"]}}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"own":{"IPAMConfig":{"LinkLocalIPs":["169.254.1.1","fd00::1"]}}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"own":{"IPAMConfig":{"LinkLocalIPs":["169.254.1.1/16"]}}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"own":{"IPAMConfig":{"IPv4Address":"10.1.0.5"}}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"own":{"ipamconfig":{"ipv6address":"fd00::5"}}}}}"#,
                &[NET],
            ),
        ],
    );
    assert_rules(
        &default_baseline(),
        ("POST", "/networks/{id}/connect"),
        &[
            (
                r#"{"Container":"c","EndpointConfig":{"Aliases":["web"]}}"#,
                &[],
            ),
            (r#"{"Container":"c","EndpointConfig":null}"#, &[]),
            (
                r#"{"Container":"c","EndpointConfig":{"MacAddress":"02:42:ac:11:00:02"}}"#,
                &[NET],
            ),
            (
                r#"{"Container":"c","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.1.0.5"}}}"#,
                &[NET],
            ),
            (
                r#"{"Container":"c","EndpointConfig":{"driveropts":{"com.docker.network.portmap":"x"}}}"#,
                &[NET],
            ),
        ],
    );
}

#[test]
fn an_endpoint_may_not_name_its_network_by_an_id_other_than_its_key() {
    const NET: Rule = Rule::NetworkDriver;
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"mine":{"NetworkID":"0123456789ab"}}}}"#,
                &[NET],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"mine":{"networkid":"","EndpointID":""}}}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"mine":{"EndpointID":"abc"}}}}"#,
                &[NET],
            ),
        ],
    );
    assert_rules(
        &default_baseline(),
        ("POST", "/networks/{id}/connect"),
        &[(
            r#"{"Container":"c","EndpointConfig":{"NetworkID":"0123456789ab"}}"#,
            &[NET],
        )],
    );
}

#[test]
fn disk_quota_stop_timeout_and_health_check_timings_are_bounded() {
    const RES: Rule = Rule::Resources;
    assert_rules(
        &default_baseline(),
        CREATE,
        &[
            (r#"{"HostConfig":{"StorageOpt":{"size":"0"}}}"#, &[RES]),
            (r#"{"HostConfig":{"StorageOpt":{}}}"#, &[]),
            (r#"{"StopTimeout":-1}"#, &[RES]),
            (r#"{"StopTimeout":301}"#, &[RES]),
            (r#"{"StopTimeout":30}"#, &[]),
            (r#"{"StopTimeout":null}"#, &[]),
            (
                r#"{"Healthcheck":{"Test":["CMD","true"],"Interval":1000000}}"#,
                &[RES],
            ),
            (
                r#"{"Healthcheck":{"Test":["CMD","true"],"StartInterval":5}}"#,
                &[RES],
            ),
            (
                r#"{"Healthcheck":{"Test":["CMD","true"],"Timeout":999999999}}"#,
                &[RES],
            ),
            (
                r#"{"Healthcheck":{"Test":["CMD","true"],"Interval":0,"Timeout":30000000000}}"#,
                &[],
            ),
        ],
    );
}

#[test]
fn blkio_device_paths_and_device_nodes_are_held_to_the_device_rules() {
    let fuse = configured("devices_allowed: [/dev/fuse]");
    assert_rules(
        &fuse,
        CREATE,
        &[
            (
                r#"{"HostConfig":{"BlkioWeightDevice":[{"Path":"/etc/shadow","Weight":10}]}}"#,
                &[Rule::Devices],
            ),
            (
                r#"{"HostConfig":{"BlkioDeviceReadBps":[{"Path":"/dev/sda","Rate":1}]}}"#,
                &[Rule::Devices],
            ),
            (
                r#"{"HostConfig":{"BlkioDeviceWriteIOps":[{"Path":"/dev/fuse","Rate":1}]}}"#,
                &[],
            ),
            (
                r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"}]}}"#,
                &[],
            ),
            (
                r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/proc/sysrq-trigger","CgroupPermissions":"rwm"}]}}"#,
                &[Rule::Devices],
            ),
            (
                r#"{"HostConfig":{"Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"sys/x","CgroupPermissions":"rwm"}]}}"#,
                &[Rule::Devices],
            ),
        ],
    );
}

#[test]
fn stop_timeouts_are_bounded_and_prune_of_every_container_is_refused() {
    for route in [
        ("POST", "/containers/{id}/stop"),
        ("POST", "/containers/{id}/restart"),
    ] {
        assert_query_rules(
            &default_baseline(),
            route,
            &[
                ("", &[]),
                ("t=", &[]),
                ("t=10", &[]),
                ("t=%2B300", &[]),
                // '+' is a space in a query: " 300" is no number to Go's Atoi either.
                ("t=+300", &[Rule::Resources]),
                ("t=-1", &[Rule::Resources]),
                ("t=301", &[Rule::Resources]),
                ("t=99999999999999999999", &[Rule::Resources]),
            ],
        );
    }
    assert_query_rules(
        &default_baseline(),
        ("POST", "/containers/prune"),
        &[("", &[Rule::Uninspectable])],
    );
}

#[test]
fn images_may_not_be_built_tagged_committed_or_loaded_under_allowed_names() {
    let b = configured(IMAGES);
    assert_query_rules(
        &b,
        BUILD,
        &[
            ("t=myapp:dev", &[]),
            ("t=myapp:dev&t=busybox:latest", &[Rule::Images]),
            ("t=docker.io%2Fbusybox:latest", &[Rule::Images]),
            ("securityopt=seccomp%3Dunconfined", &[Rule::SecurityOpt]),
        ],
    );
    for route in [("POST", "/images/{name}/tag"), ("POST", "/commit")] {
        assert_query_rules(
            &b,
            route,
            &[
                ("repo=myapp&tag=v1", &[]),
                ("repo=busybox&tag=latest", &[Rule::Images]),
                // Every spelling dockerd reads as Docker Hub's busybox.
                ("repo=docker.io/busybox&tag=latest", &[Rule::Images]),
                ("repo=index.docker.io/library/busybox", &[Rule::Images]),
                ("repo=index.docker.io/busybox&tag=1", &[Rule::Images]),
                ("repo=registry.example.com/team/app", &[Rule::Images]),
            ],
        );
    }
    assert_eq!(
        rules(&check_with(&b, ("POST", "/images/load"), "", "")),
        [Rule::Images]
    );
    assert!(rules(&check_with(
        &default_baseline(),
        ("POST", "/images/load"),
        "",
        ""
    ))
    .is_empty());
}

#[test]
fn a_repository_with_its_own_tag_or_digest_and_a_tag_is_refused_dockerd_drops_the_first() {
    // dockerd joins `repo` and `tag` with reference.WithTag(TrimNamed(repo), tag): the tag or
    // digest inside `repo` is dropped, so `busybox@sha256:…` + `latest` becomes busybox:latest.
    let b = configured(IMAGES);
    let digest = format!("busybox@sha256:{HEX64}");
    for route in [("POST", "/images/{name}/tag"), ("POST", "/commit")] {
        for query in [
            format!("repo={digest}&tag=latest"),
            "repo=busybox:x&tag=1.36".to_string(),
            "repo=registry.example.com:5000/team/app:v1&tag=v2".to_string(),
        ] {
            match try_check(&b, route, &query, "") {
                Err(e) => assert_eq!(refusal(&e), Refusal::Ambiguous, "{route:?} ?{query}: {e}"),
                Ok(outcome) => panic!("{route:?} ?{query} should be refused, got {outcome:#?}"),
            }
        }
        // A registry port is not a tag.
        assert_query_rules(
            &b,
            route,
            &[("repo=registry.example.com:5000/team/app&tag=v1", &[])],
        );
    }
    match try_check(&b, IMAGE_PULL, "fromImage=busybox:x&tag=1.36", "") {
        Err(e) => assert_eq!(refusal(&e), Refusal::Ambiguous, "{e}"),
        Ok(outcome) => panic!("fromImage with a tag and tag= should be refused, got {outcome:#?}"),
    }
    // Without tag=, the reference is used as given, by dockerd and by the allow-list.
    assert_query_rules(
        &b,
        IMAGE_PULL,
        &[
            ("fromImage=busybox:1.36", &[]),
            ("fromImage=alpine:3", &[Rule::Images]),
        ],
    );
}

#[test]
fn relabelled_host_binds_and_log_options_without_a_driver_are_denied() {
    assert_rules(
        &configured("bind_allowed: [/srv/data]\nbind_writable: true"),
        CREATE,
        &[
            // A link is judged by the container it names (a lookup, in the proxy), not here.
            (
                r#"{"Image":"busybox","HostConfig":{"Links":["admin-db:db"]}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"Binds":["/srv/data:/d:ro,z"]}}"#,
                &[Rule::HostMounts],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"Binds":["/srv/data:/d:ro"]}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"Binds":["/srv/data:/d:Z"]}}"#,
                &[Rule::HostMounts],
            ),
            // A named volume lives in dockerd's own directory: relabelling it is its business.
            (
                r#"{"Image":"busybox","HostConfig":{"Binds":["data:/d:z"]}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"","Config":{"fluentd-address":"evil:24224"}}}}"#,
                &[Rule::LogDriver],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Config":{"fluentd-address":"evil:24224"}}}}"#,
                &[Rule::LogDriver],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"","Config":{}}}}"#,
                &[],
            ),
            // What docker run --log-opt max-size=10m sends: kept by the default json-file.
            (
                r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"","Config":{"max-size":"10m","max-file":"3"}}}}"#,
                &[],
            ),
            (
                r#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m"}}}}"#,
                &[],
            ),
        ],
    );
}

#[test]
fn links_are_read_as_dockerd_reads_them() {
    for (text, want) in [
        ("db", Some(("db", "db"))),
        ("db:database", Some(("db", "database"))),
        ("/db:/web/database", Some(("db", "database"))),
        ("a:b:c", None),
        ("", None),
    ] {
        let got = parse_link(text);
        assert_eq!(
            got.as_ref().map(|(n, a)| (n.as_str(), a.as_str())),
            want,
            "{text}"
        );
    }
    let body = parse_optional(br#"{"HostConfig":{"Links":["db:x","/cache:/web/c"]}}"#)
        .unwrap()
        .unwrap();
    assert_eq!(
        Baseline::linked_containers(&body).unwrap(),
        [("db".into(), "x".into()), ("cache".into(), "c".into())]
    );
    // The alias becomes the name parent/alias: one that climbs out would take another name.
    for link in ["db:../prod-db", ":alias", "db:", "db:a/b", "/db"] {
        let body = format!(r#"{{"HostConfig":{{"Links":["{link}"]}}}}"#);
        let body = parse_optional(body.as_bytes()).unwrap().unwrap();
        match Baseline::linked_containers(&body) {
            Err(e) => assert_eq!(refusal(&e), Refusal::Ambiguous, "{link}: {e}"),
            Ok(links) => panic!("{link} should be refused, got {links:?}"),
        }
    }
}

#[test]
fn joining_or_starting_a_swarm_is_refused_its_managers_schedule_any_container_here() {
    for route in [("POST", "/swarm/join"), ("POST", "/swarm/init")] {
        assert_eq!(
            rules(&check(
                route,
                r#"{"RemoteAddrs":["evil:2377"],"JoinToken":"SWMTKN-1-x"}"#
            )),
            [Rule::Uninspectable],
            "{route:?}"
        );
    }
    // Leaving takes the whole host out of its cluster.
    assert_eq!(
        rules(&check(("POST", "/swarm/leave"), "")),
        [Rule::Uninspectable]
    );
}

#[test]
fn buildkit_sessions_are_refused_their_settings_cannot_be_read() {
    for route in [("POST", "/session"), ("POST", "/grpc")] {
        assert_eq!(rules(&check(route, "")), [Rule::Build], "{route:?}");
    }
}

#[test]
fn an_unset_cgroup_namespace_mode_is_made_private() {
    for hc in [
        r#"{}"#,
        r#"{"CgroupnsMode":""}"#,
        r#"{"CgroupnsMode":null}"#,
    ] {
        let outcome = check(
            CREATE,
            &format!(r#"{{"Image":"busybox","HostConfig":{hc}}}"#),
        );
        assert!(
            rewritten_host_config(&outcome).contains(r#""CgroupnsMode":"private""#),
            "{hc}"
        );
        assert!(outcome
            .mutations
            .contains(&"HostConfig.CgroupnsMode=private".to_string()));
    }
    let outcome = check(
        CREATE,
        r#"{"Image":"busybox","HostConfig":{"CgroupnsMode":"private"}}"#,
    );
    assert!(!outcome.mutations.iter().any(|m| m.contains("Cgroupns")));
}

#[test]
fn a_container_path_with_dot_dot_is_refused_as_the_client_sent_it() {
    let err = try_check(
        &default_baseline(),
        CREATE,
        "",
        r#"{"Image":"busybox","Volumes":{"data/../x":{}}}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(r#"container path "data/../x""#),
        "{err}"
    );
}

/// dockerd's inspect of a container created with `hc` (the fields it fills in for every
/// container included).
fn inspected(hc: &str) -> Json {
    inspected_with(hc, SYSTEM_PATHS, r#"{"WorkingDir":"","Volumes":null}"#)
}

/// dockerd 20.10's masked and read-only paths, as its inspect shows them.
const SYSTEM_PATHS: &str = r#""MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware"],"ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]"#;

/// The same with other system path fields (`paths`) and container `config`.
fn inspected_with(hc: &str, paths: &str, config: &str) -> Json {
    let defaults = r#""NetworkMode":"default","IpcMode":"private","CgroupnsMode":"host","RestartPolicy":{"Name":"always","MaximumRetryCount":0},"Memory":0,"Runtime":"runc","LogConfig":{"Type":"json-file","Config":{}}"#;
    let fields: Vec<&str> = [paths, defaults, hc]
        .into_iter()
        .filter(|f| !f.is_empty())
        .collect();
    let doc = format!(
        r#"{{"Id":"abc","Config":{config},"HostConfig":{{{}}}}}"#,
        fields.join(",")
    );
    parse_optional(doc.as_bytes()).unwrap().unwrap()
}

#[test]
fn settings_that_do_not_count_for_a_target_cannot_crowd_out_one_that_does() {
    // 100 mounts with a volume driver the role may not use (not a target rule), then an added
    // capability (a target rule) judged after them.
    let b = default_baseline();
    let mounts: Vec<String> = (0..100)
        .map(|i| {
            format!(r#"{{"Type":"volume","Source":"v{i}","Target":"/m{i}","VolumeOptions":{{"DriverConfig":{{"Name":"evil"}}}}}}"#)
        })
        .collect();
    let hc = format!(r#""Mounts":[{}],"CapAdd":["SYS_ADMIN"]"#, mounts.join(","));
    assert_eq!(
        rules(&b.check_target(&inspected(&hc)).unwrap()),
        [Rule::Capabilities]
    );
}

#[test]
fn an_existing_container_is_judged_by_the_settings_that_reach_the_host() {
    let b = default_baseline();
    let target_rules = |hc: &str| -> Vec<Rule> { rules(&b.check_target(&inspected(hc)).unwrap()) };
    // An ordinary container (restart policy, no limits, the host cgroup namespace of a cgroup
    // v1 daemon) may be acted on.
    assert_eq!(target_rules(""), NONE);
    // Block-IO device limits and a disk quota are resource settings: not a way onto the host.
    assert_eq!(
        target_rules(
            r#""BlkioDeviceReadBps":[{"Path":"/dev/sda","Rate":1048576}],"StorageOpt":{"size":"1G"}"#
        ),
        NONE
    );
    for (hc, want) in [
        (r#""Binds":["/:/host:ro"]"#, Rule::HostMounts),
        (r#""Privileged":true"#, Rule::Privileged),
        (r#""PidMode":"host""#, Rule::HostPid),
        (r#""CapAdd":["SYS_ADMIN"]"#, Rule::Capabilities),
        (
            r#""Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]"#,
            Rule::Devices,
        ),
        (r#""SecurityOpt":["seccomp=unconfined"]"#, Rule::SecurityOpt),
    ] {
        assert_eq!(target_rules(hc), [want], "{hc}");
    }
    let unmasked = parse_optional(br#"{"HostConfig":{"MaskedPaths":[]}}"#)
        .unwrap()
        .unwrap();
    assert_eq!(
        rules(&b.check_target(&unmasked).unwrap()),
        [Rule::MaskedPaths]
    );
}

#[test]
fn a_container_sharing_namespaces_is_judged_as_the_one_acted_on_bar_its_joins_within_the_group() {
    let b = default_baseline();
    let group = [
        crate::joins::Listed {
            id: "aaa111".into(),
            names: vec!["app".into()],
        },
        crate::joins::Listed {
            id: "bbb222".into(),
            names: vec!["sidecar".into()],
        },
    ];
    let judged = |hc: &str| {
        let doc = format!(r#"{{"Id":"ccc","HostConfig":{{{hc}}}}}"#);
        let inspect = parse_optional(doc.as_bytes()).unwrap().unwrap();
        rules(&b.check_sharing(&inspect, &group).unwrap())
    };
    // Joining the app's namespaces, by ID or by name, is what makes it a joiner.
    assert_eq!(judged(r#""PidMode":"container:aaa111""#), NONE);
    assert_eq!(
        judged(r#""NetworkMode":"container:app","IpcMode":"container:sidecar""#),
        NONE
    );
    // What it holds besides is judged: the app is a way to it.
    assert_eq!(
        judged(r#""PidMode":"container:aaa111","Binds":["/:/host:ro"]"#),
        [Rule::HostMounts]
    );
    assert_eq!(
        judged(r#""PidMode":"container:aaa111","CapAdd":["SYS_PTRACE"]"#),
        [Rule::Capabilities]
    );
    assert_eq!(
        judged(r#""PidMode":"container:aaa111"},"Config":{"WorkingDir":"/proc/self/fd/7""#),
        [Rule::MaskedPaths]
    );
    // A join outside the group is a shared namespace like any other.
    assert_eq!(
        judged(r#""PidMode":"container:aaa111","NetworkMode":"container:elsewhere""#),
        [Rule::SharedNamespace]
    );
}

#[test]
fn an_existing_container_must_keep_every_default_system_path_protected() {
    let b = default_baseline();
    let judged = |paths: &str, config: &str| {
        let outcome = b.check_target(&inspected_with("", paths, config)).unwrap();
        let reasons: Vec<String> = outcome
            .violations
            .iter()
            .map(|v| v.reason.clone())
            .collect();
        (rules(&outcome), reasons.join("; "))
    };
    let plain = r#"{"WorkingDir":"","Volumes":null}"#;
    // dockerd's defaults, more than them (a later dockerd, or an admin's additions), or none
    // recorded (dockerd applies its defaults at start).
    assert_eq!(judged(SYSTEM_PATHS, plain).0, NONE);
    let more = SYSTEM_PATHS.replace(
        r#""/sys/firmware""#,
        r#""/sys/firmware","/proc/interrupts""#,
    );
    assert_eq!(judged(&more, plain).0, NONE);
    assert_eq!(
        judged(r#""MaskedPaths":null,"ReadonlyPaths":null"#, plain).0,
        NONE
    );
    // Lists an admin shortened (the container leaves /proc/sys writable to its root).
    let (rules_of, why) = judged(
        r#""MaskedPaths":["/proc/asound"],"ReadonlyPaths":["/proc/asound"]"#,
        plain,
    );
    assert_eq!(rules_of, [Rule::MaskedPaths, Rule::MaskedPaths]);
    assert!(
        why.contains(
            "ReadonlyPaths lacks /proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger"
        ),
        "{why}"
    );
    assert!(
        why.contains("MaskedPaths lacks /proc/acpi, /proc/kcore"),
        "{why}"
    );
    // dockerd 18.06/18.09's lists (/proc/asound read-only), and a read-only default masked.
    let (rules_of, why) = judged(
        &SYSTEM_PATHS.replace(r#""/proc/asound","#, "").replace(
            r#""ReadonlyPaths":["#,
            r#""ReadonlyPaths":["/proc/asound","#,
        ),
        plain,
    );
    assert_eq!(rules_of, NONE, "{why}");
    let (rules_of, why) = judged(
        &SYSTEM_PATHS
            .replace(r#""/proc/sys","#, "")
            .replace(r#""/sys/firmware""#, r#""/sys/firmware","/proc/sys""#),
        plain,
    );
    assert_eq!(rules_of, NONE, "{why}");
    // A masked default only read-only is not enough (bar /proc/asound).
    let (rules_of, why) = judged(
        &SYSTEM_PATHS
            .replace(r#""/proc/kcore","#, "")
            .replace(r#""ReadonlyPaths":["#, r#""ReadonlyPaths":["/proc/kcore","#),
        plain,
    );
    assert_eq!(rules_of, [Rule::MaskedPaths], "{why}");
    // A path written another way does not stand for the default.
    let (rules_of, why) = judged(
        &SYSTEM_PATHS.replace(r#""/proc/sys""#, r#""/proc/sys/""#),
        plain,
    );
    assert_eq!(rules_of, [Rule::MaskedPaths], "{why}");
    // A working directory under /proc.
    let config = r#"{"WorkingDir":"/proc/self/fd/7","Volumes":null}"#;
    assert_eq!(judged(SYSTEM_PATHS, config).0, [Rule::MaskedPaths]);
    // Not its volumes: dockerd merges an image's VOLUMEs into them (a systemd image's cgroup
    // tree), which a create is not judged by either.
    let config = r#"{"WorkingDir":"","Volumes":{"/sys/fs/cgroup":{}}}"#;
    assert_eq!(judged(SYSTEM_PATHS, config).0, NONE);
    // Its mounts over them too.
    let tmpfs = inspected(r#""Tmpfs":{"/proc/sys":""}"#);
    assert_eq!(rules(&b.check_target(&tmpfs).unwrap()), [Rule::MaskedPaths]);
}

#[test]
fn named_volumes_are_read_from_binds_and_volume_mounts_and_judged_by_their_options() {
    let body = parse_optional(
        br#"{"hostconfig":{"Binds":["data:/d","/srv/x:/x","cache:/c:ro","anon"],"Mounts":[{"Type":"volume","Source":"m"},{"Type":"bind","Source":"/etc"},{"Type":"volume"}]}}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        Baseline::named_volumes(&body).unwrap(),
        ["cache", "data", "m"]
    );
    let b = configured("bind_allowed: [/srv/work]");
    let volume = |opts: &str| {
        let doc = format!(r#"{{"Name":"v","Driver":"local","Options":{opts}}}"#);
        rules(
            &b.check_volume(&parse_optional(doc.as_bytes()).unwrap().unwrap())
                .unwrap(),
        )
    };
    assert_eq!(volume("null"), NONE);
    assert_eq!(
        volume(r#"{"type":"none","o":"bind,ro","device":"/srv/work"}"#),
        NONE
    );
    assert_eq!(
        volume(r#"{"type":"none","o":"bind","device":"/etc"}"#),
        [Rule::HostMounts]
    );
}

#[test]
fn networks_dockerd_finds_by_name_are_the_only_ones_looked_up() {
    // What a container names that dockerd resolves by name at create and start time: looked up
    // and judged. The daemon's own networks, `host` (judged by its own rule) and another
    // container's namespace are not networks to look up.
    for name in ["team-net", "my_net.1", "HOST", "Bridge", "hostile"] {
        assert!(joins_by_name(name), "{name}");
    }
    for name in [
        "",
        "default",
        "bridge",
        "none",
        "host",
        "container:web",
        "container:",
    ] {
        assert!(!joins_by_name(name), "{name}");
    }
}

#[test]
fn an_exec_without_a_user_is_judged_by_the_containers_user() {
    let b = configured("rules: { exec-root: enforce }");
    for (config, expected) in [
        (r#"{"User":""}"#, &[Rule::ExecRoot][..]),
        (r#"{}"#, &[Rule::ExecRoot]),
        (r#"{"User":"root"}"#, &[Rule::ExecRoot]),
        (r#"{"User":"0:0"}"#, &[Rule::ExecRoot]),
        (r#"{"User":"1000"}"#, &[]),
        (r#"{"User":"65534:0"}"#, &[]),
    ] {
        let container = inspected_with(NO_NEW_PRIVILEGES, SYSTEM_PATHS, config);
        let outcome = b.check_exec_user(&container, "").unwrap();
        assert_eq!(rules(&outcome), expected, "{config}");
    }
}

/// A container's host config fields that keep a non-root exec non-root.
const NO_NEW_PRIVILEGES: &str = r#""SecurityOpt":["no-new-privileges=true"]"#;

#[test]
fn an_exec_user_given_by_name_passes_only_where_etc_passwd_cannot_be_rewritten() {
    let b = configured("rules: { exec-root: enforce }");
    let writable = inspected_with(NO_NEW_PRIVILEGES, SYSTEM_PATHS, r#"{"User":"1000"}"#);
    let read_only = inspected_with(
        &format!(r#"{NO_NEW_PRIVILEGES},"ReadonlyRootfs":true"#),
        SYSTEM_PATHS,
        r#"{"User":"app"}"#,
    );
    let etc_tmpfs = inspected_with(
        &format!(r#"{NO_NEW_PRIVILEGES},"ReadonlyRootfs":true,"Tmpfs":{{"/etc/":""}}"#),
        SYSTEM_PATHS,
        r#"{"User":"app"}"#,
    );
    for (container, user, expected) in [
        (&writable, "1000", &[][..]),
        (&writable, "1000:0", &[]),
        (&writable, "nobody", &[Rule::ExecRoot]),
        (&writable, "toor:0", &[Rule::ExecRoot]),
        (&read_only, "nobody", &[]),
        // Its own user, by name, in a read-only root filesystem.
        (&read_only, "", &[]),
        // ...unless something else is mounted over /etc.
        (&etc_tmpfs, "nobody", &[Rule::ExecRoot]),
        (&etc_tmpfs, "1000", &[]),
        // Numbers runc does not take as a uid by themselves are looked up like names.
        (&writable, "2147483647", &[]),
        (&writable, "2147483648", &[Rule::ExecRoot]),
        (&writable, "4294967296", &[Rule::ExecRoot]),
        (&writable, "99999999999999999999", &[Rule::ExecRoot]),
        (&read_only, "4294967296", &[]),
    ] {
        let outcome = b.check_exec_user(container, user).unwrap();
        assert_eq!(rules(&outcome), expected, "{user:?}");
    }
    // A container whose own user is a name, with a writable root filesystem.
    let named = inspected_with(NO_NEW_PRIVILEGES, SYSTEM_PATHS, r#"{"User":"nobody"}"#);
    assert_eq!(
        rules(&b.check_exec_user(&named, "").unwrap()),
        [Rule::ExecRoot]
    );
}

#[test]
fn a_volume_over_etc_makes_user_names_untrusted_even_on_a_read_only_root() {
    let b = configured("rules: { exec-root: enforce }");
    for (mounts, expected) in [
        (
            r#"[{"Type":"volume","Destination":"/etc"}]"#,
            &[Rule::ExecRoot][..],
        ),
        (
            r#"[{"Type":"bind","Destination":"/etc/passwd"}]"#,
            &[Rule::ExecRoot],
        ),
        (r#"[{"Type":"volume","Destination":"/etc/app"}]"#, &[]),
        (r#"[]"#, &[]),
    ] {
        let doc = format!(
            r#"{{"Id":"abc","Config":{{"User":"app"}},"Mounts":{mounts},"HostConfig":{{"SecurityOpt":["no-new-privileges"],"ReadonlyRootfs":true}}}}"#
        );
        let container = parse_optional(doc.as_bytes()).unwrap().unwrap();
        let outcome = b.check_exec_user(&container, "").unwrap();
        assert_eq!(rules(&outcome), expected, "{mounts}");
    }
}

#[test]
fn an_exec_needs_no_new_privileges_or_setuid_files_make_it_root() {
    let b = configured("rules: { exec-root: enforce }");
    for (hc, expected) in [
        ("", &[Rule::ExecRoot][..]),
        (r#""SecurityOpt":["no-new-privileges"]"#, &[]),
        (r#""SecurityOpt":["no-new-privileges:true"]"#, &[]),
        (
            r#""SecurityOpt":["no-new-privileges=true","no-new-privileges=false"]"#,
            &[Rule::ExecRoot],
        ),
        (
            r#""SecurityOpt":["apparmor=docker-default"]"#,
            &[Rule::ExecRoot],
        ),
        (r#""SecurityOpt":["no-new-privileges=1"]"#, &[]),
        (
            r#""SecurityOpt":["no-new-privileges:false"]"#,
            &[Rule::ExecRoot],
        ),
        (
            r#""SecurityOpt":["no-new-privileges=False"]"#,
            &[Rule::ExecRoot],
        ),
    ] {
        let container = inspected_with(hc, SYSTEM_PATHS, r#"{"User":"1000"}"#);
        let outcome = b.check_exec_user(&container, "1000").unwrap();
        assert_eq!(rules(&outcome), expected, "{hc}");
    }
}

#[test]
fn an_existing_container_is_judged_by_the_image_it_runs_too() {
    let b = configured(r#"images: ["docker.io/library/busybox:*"]"#);
    for (config, expected) in [
        (r#"{"Image":"busybox:local"}"#, &[][..]),
        (
            r#"{"Image":"registry.example/secrets:v1"}"#,
            &[Rule::Images],
        ),
        (r#"{"Image":"sha256:3ed19f32740c"}"#, &[Rule::Images]),
        (r#"{"Image":""}"#, &[Rule::Images]),
    ] {
        let container = inspected_with("", SYSTEM_PATHS, config);
        let outcome = b.check_target(&container).unwrap();
        assert_eq!(rules(&outcome), expected, "{config}");
    }
    // Without a list of images, any will do.
    let any = default_baseline();
    let container = inspected_with("", SYSTEM_PATHS, r#"{"Image":"registry.example/x:v1"}"#);
    assert!(rules(&any.check_target(&container).unwrap()).is_empty());
}
