//! The policy end to end: the docker flag that triggers each baseline rule is refused with the
//! rule's message, and a compliant run passes with its defaults injected.

use std::process::Command;
use std::time::Duration;

use crate::require_docker;
use crate::support::*;

/// Runs `docker run --rm <flags> busybox:local true` as dev and asserts it is refused by `rule`.
fn run_refused(gate: &Gate, flags: &[&str], rule: &str) {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox:local", "true"]);
    let err = gate.docker(DEV).fails(&args);
    assert!(
        err.contains("Error response from daemon: dockgate: ")
            && err.contains(&format!("(rule {rule}, role dev)")),
        "docker {args:?}: expected rule {rule}, got: {err}"
    );
}

#[test]
fn each_baseline_docker_flag_is_refused_with_its_rule() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let cases: &[(&[&str], &str)] = &[
        (&["--privileged"], "privileged"),
        (&["--network", "host"], "host-network"),
        (&["--pid", "host"], "host-pid"),
        (&["--ipc", "host"], "host-ipc"),
        (&["--uts", "host"], "host-uts"),
        (&["--userns", "host"], "host-userns"),
        (&["--cgroupns", "host"], "host-cgroupns"),
        (&["-v", "/:/host"], "host-mounts"),
        (&["-v", "/var/run/docker.sock:/s"], "host-mounts"),
        (&["-v", "/run/docker.sock:/s"], "host-mounts"),
        (&["-v", "/var:/v"], "host-mounts"),
        (&["-v", "/home:/h"], "host-mounts"),
        (&["--mount", "type=bind,source=/etc,target=/x"], "host-mounts"),
        (&["--mount", "type=volume,target=/x,volume-driver=local,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc"], "host-mounts"),
        (&["-v", "/var/tmp/dockgate-test-binds:/w:ro,rshared"], "mount-propagation"),
        (&["-v", "/var/tmp/dockgate-test-binds:/w"], "host-mounts"),
        (&["--log-driver", "syslog", "--log-opt", "syslog-address=udp://10.0.0.1:514"], "log-driver"),
        (&["--oom-score-adj", "-1000"], "oom-kill-disable"),
        (&["--cap-add", "SYS_ADMIN"], "capabilities"),
        (&["--cap-add", "all"], "capabilities"),
        (&["--cap-add", "cap_net_admin"], "capabilities"),
        (&["--security-opt", "seccomp=unconfined"], "security-opt"),
        (&["--security-opt", "apparmor=unconfined"], "security-opt"),
        (&["--security-opt", "label=disable"], "security-opt"),
        (&["--security-opt", "no-new-privileges=false"], "no-new-privileges"),
        (&["--security-opt", "systempaths=unconfined"], "masked-paths"),
        (&["--security-opt", "apparmor=lsb_release"], "security-opt"),
        (&["--security-opt", "label=level:s0"], "security-opt"),
        (&["-w", "/proc/self/fd/7"], "masked-paths"),
        (&["--tmpfs", "/proc/sys"], "masked-paths"),
        (&["-v", "data:/dev/console"], "masked-paths"),
        (&["--device", "/dev/null:/dev/xnull"], "devices"),
        (&["--device-cgroup-rule", "c 1:3 mr"], "devices"),
        (&["--cgroup-parent", "/evil"], "cgroup-parent"),
        (&["--runtime", "nvidia"], "runtime"),
        (&["--oom-kill-disable"], "oom-kill-disable"),
        (&["-p", "80:80"], "privileged-ports"),
        (&["-p", "1-2000:1-2000"], "privileged-ports"),
        (&["-P", "--expose", "8080"], "publish-all"),
        (&["-p", "0.0.0.0:18081:80"], "host-ip"),
        (&["--memory", "4g"], "resources"),
        (&["--memory", "64m", "--memory-swap", "-1"], "resources"),
        (&["--cpus", "8"], "resources"),
        (&["--pids-limit", "100000"], "resources"),
        (&["--ulimit", "nofile=100000:100000"], "resources"),
        (&["--volumes-from", "somecontainer"], "host-mounts"),
        (&["--network", "container:somecontainer"], "shared-namespace"),
    ];
    for (flags, rule) in cases {
        run_refused(&gate, flags, rule);
    }
}

#[test]
fn restart_always_unless_stopped_and_unbounded_on_failure_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    for policy in ["always", "unless-stopped", "on-failure:10", "on-failure"] {
        let err =
            gate.docker(DEV)
                .fails(&["run", "-d", "--restart", policy, "busybox:local", "true"]);
        assert!(err.contains("(rule restart-policy, role dev)"), "{err}");
    }
}

#[test]
fn image_outside_the_allowlist_is_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let err = gate
        .docker(DEV)
        .fails(&["run", "--rm", "example.org/evil/image:1", "true"]);
    assert!(err.contains("(rule images, role dev)"), "{err}");
    let err = gate
        .docker(DEV)
        .fails(&["pull", "example.org/evil/image:1"]);
    assert!(err.contains("(rule images, role dev)"), "{err}");
}

#[test]
fn local_driver_bind_volume_is_refused_at_creation() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let err = gate.docker(DEV).fails(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/etc",
        &unique("vol"),
    ]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    // An allowed directory, read-only by `ro` but made writable again by a later `rw`.
    let err = gate.docker(DEV).fails(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind,ro,rw",
        "--opt",
        "device=/var/tmp/dockgate-test-binds",
        &unique("vol"),
    ]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    assert!(err.contains("must be bound read-only"), "{err}");
}

#[test]
fn privileged_exec_and_root_exec_are_refused() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let name = admin.sleeper("pexec");
    let dev = gate.docker(DEV);
    let err = dev.fails(&["exec", "--privileged", &name, "true"]);
    assert!(err.contains("(rule exec-privileged, role dev)"), "{err}");
    for user in ["root", "0", "0:0"] {
        let err = dev.fails(&["exec", "-u", user, &name, "true"]);
        assert!(
            err.contains("(rule exec-root, role dev)"),
            "-u {user}: {err}"
        );
    }
    assert_eq!(
        dev.ok(&["exec", "-u", "65534", &name, "id", "-u"]).trim(),
        "65534"
    );
    // A user name is looked up in the container's /etc/passwd, which anyone who may copy into
    // its writable root filesystem can rewrite (nobody:x:0:0): numeric uids only there.
    let err = dev.fails(&["exec", "-u", "nobody", &name, "id", "-u"]);
    assert!(err.contains("(rule exec-root, role dev)"), "{err}");
    assert!(err.contains("is a name"), "{err}");
    // Without -u an exec runs as the container's user: root here.
    let err = dev.fails(&["exec", &name, "true"]);
    assert!(err.contains("(rule exec-root, role dev)"), "{err}");
    assert!(err.contains("runs as the container's user, root"), "{err}");
    // ...as does one an admin created without a user, when dev starts it.
    let created = gate.post_json(
        ADMIN,
        &format!("/containers/{name}/exec"),
        r#"{"Cmd":["true"]}"#,
    );
    let id = created
        .split("\"Id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let started = gate.post_json(DEV, &format!("/exec/{id}/start"), r#"{"Detach":true}"#);
    assert!(started.starts_with("HTTP/1.1 403"), "{started}");
    assert!(started.contains("(rule exec-root"), "{started}");
    // A container that runs as another user is dev's to exec in without -u.
    let user = unique("uexec");
    admin.ok(&[
        "run",
        "-d",
        "--name",
        &user,
        "--user",
        "1000",
        "--security-opt",
        "no-new-privileges",
        "busybox:local",
        "sleep",
        "300",
    ]);
    assert_eq!(dev.ok(&["exec", &user, "id", "-u"]).trim(), "1000");
    // Without no-new-privileges a non-root exec can become root through a setuid file.
    let loose = unique("loose");
    admin.ok(&[
        "run",
        "-d",
        "--name",
        &loose,
        "--user",
        "1000",
        "busybox:local",
        "sleep",
        "300",
    ]);
    let err = dev.fails(&["exec", &loose, "id", "-u"]);
    assert!(err.contains("(rule exec-root, role dev)"), "{err}");
    assert!(err.contains("without no-new-privileges"), "{err}");
    admin.ok(&["rm", "-f", &loose]);
    admin.ok(&["rm", "-f", &name, &user]);
}

#[test]
fn compliant_run_passes_with_defaults_injected() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    let name = unique("compliant");
    dev.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "18090:80",
        "--cap-add",
        "chown",
        "busybox:local",
        "sleep",
        "300",
    ]);
    let inspect = dev.ok(&[
        "inspect", &name, "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.SecurityOpt}} {{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}} {{(index (index .HostConfig.PortBindings \"80/tcp\") 0).HostIp}}",
    ]);
    assert_eq!(
        inspect.trim(),
        "268435456 268435456 1000000000 128 true [no-new-privileges=true] nofile=1024:2048 127.0.0.1"
    );
    let rec = gate.wait_audit(|r| r["route"] == "POST /containers/create" && r["cn"] == "dev");
    assert_eq!(rec["decision"], "allow");
    assert!(
        rec["mutations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "HostConfig.PidsLimit=128"),
        "{rec}"
    );
    gate.docker(ADMIN).ok(&["rm", "-f", &name]);
}

#[test]
fn allowlisted_bind_mount_passes() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    std::fs::create_dir_all("/var/tmp/dockgate-test-binds").unwrap();
    std::fs::write("/var/tmp/dockgate-test-binds/hello", "bound\n").unwrap();
    let out = gate.docker(DEV).ok(&[
        "run",
        "--rm",
        "-v",
        "/var/tmp/dockgate-test-binds:/w:ro",
        "busybox:local",
        "cat",
        "/w/hello",
    ]);
    assert_eq!(out, "bound\n");
}

#[test]
fn read_only_role_can_list_but_not_run() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let mon = gate.docker(MONITOR);
    mon.ok(&["ps", "-a"]);
    mon.ok(&["images"]);
    let err = mon.fails(&["run", "--rm", "busybox:local", "true"]);
    assert!(
        err.contains("is not allowed for this role") && err.contains("role monitor"),
        "{err}"
    );
}

#[test]
fn swarm_plugins_secrets_and_build_are_refused_by_default() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    for args in [
        &["swarm", "init"][..],
        &["plugin", "ls"],
        &["secret", "ls"],
        &["config", "ls"],
        &["service", "ls"],
    ] {
        let err = dev.fails(args);
        assert!(
            err.contains("dockgate: ") && err.contains("not allowed for this role"),
            "{args:?}: {err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM busybox:local\n").unwrap();
    // A context big enough that the CLI is still uploading when the refusal comes back: the
    // refusal must still be what it prints (dockgate drains the unread body before closing).
    std::fs::write(dir.path().join("blob"), vec![7u8; 8 * 1024 * 1024]).unwrap();
    let mut c = dev.cmd();
    c.env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", dir.path().to_str().unwrap()]);
    let out = run_with_deadline(c, None, Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("group build"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_sdk_privileged_run_is_refused_and_compliant_run_works() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dir = pki().client_dir(DEV);
    let script = r#"
import sys, docker
tls = docker.tls.TLSConfig(client_cert=(sys.argv[2] + "/cert.pem", sys.argv[2] + "/key.pem"),
                           ca_cert=sys.argv[2] + "/ca.pem", verify=True)
c = docker.DockerClient(base_url="https://" + sys.argv[1], tls=tls, version="auto")
try:
    c.containers.run("busybox:local", "true", privileged=True, remove=True)
    print("privileged: allowed")
except docker.errors.APIError as e:
    print("privileged:", e.status_code, e.explanation)
try:
    c.containers.run("busybox:local", "true", network_mode="host", remove=True)
    print("host: allowed")
except docker.errors.APIError as e:
    print("host:", e.status_code, e.explanation)
print("ok:", c.containers.run("busybox:local", ["echo", "sdk fine"], remove=True).decode().strip())
"#;
    let mut c = Command::new("python3");
    c.env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE");
    c.args(["-c", script, &gate.addr.to_string(), dir.to_str().unwrap()]);
    let out = run_with_deadline(c, None, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("privileged: 403 dockgate: privileged containers are not allowed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("host: 403 dockgate: the host network is not allowed"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: sdk fine"), "{stdout}");
}

/// Creates, as admin, a named volume `name` bound from the host's /etc.
fn etc_volume(admin: &Docker, name: &str) {
    let opts = [
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/etc",
    ];
    admin.ok(&[&["volume", "create"][..], &opts, &[name]].concat());
}

/// Creates an exec (`body`) in `container` as admin, through the gate; returns its ID.
fn exec_created_by_admin(gate: &Gate, container: &str, body: &str) -> String {
    let resp = gate.raw(
        ADMIN,
        format!(
            "POST /containers/{container}/exec HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let json = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    let created: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    created["Id"].as_str().unwrap().to_string()
}

/// Starts exec `id` as dev; returns the whole response.
fn exec_started_by_dev(gate: &Gate, id: &str) -> String {
    gate.raw(
        DEV,
        format!(
            "POST /exec/{id}/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
}

#[test]
fn a_baseline_role_may_not_act_on_a_container_it_could_not_have_created() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // An admin's container with the host's root mounted: a way onto the host for whoever can
    // exec into it, copy out of it, or start an exec an admin prepared in it.
    let agent = admin.host_agent();
    let err = dev.fails(&["exec", "-u", "1000", &agent, "cat", "/host/etc/hostname"]);
    assert!(
        err.contains("was created with settings this role may not use"),
        "{err}"
    );
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    let err = dev.fails(&["cp", &format!("{agent}:/host/etc/hostname"), "-"]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    // An exec an admin created in it cannot be started by dev either.
    let body = r#"{"Cmd":["cat","/host/etc/hostname"],"AttachStdout":true}"#;
    let exec_id = exec_created_by_admin(&gate, &agent, body);
    let resp = exec_started_by_dev(&gate, &exec_id);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("rule host-mounts"), "{resp}");
    // A container dev could have created is dev's to act on, whoever created it...
    let plain = admin.sleeper("plain");
    assert_eq!(
        dev.ok(&["exec", "-u", "1000", &plain, "echo", "ok"]).trim(),
        "ok"
    );
    // ...but not a privileged exec an admin prepared in it.
    let body = r#"{"Cmd":["id"],"Privileged":true,"AttachStdout":true}"#;
    let exec_id = exec_created_by_admin(&gate, &plain, body);
    let resp = exec_started_by_dev(&gate, &exec_id);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("rule exec-privileged"), "{resp}");
    // Nor a container that mounts a volume an admin made from a host path.
    let etc = unique("etcvol");
    etc_volume(&admin, &etc);
    let tools = unique("tools");
    admin.ok(&[
        "run",
        "-d",
        "--name",
        &tools,
        "-v",
        &format!("{etc}:/x"),
        "busybox:local",
        "sleep",
        "300",
    ]);
    let err = dev.fails(&["exec", "-u", "1000", &tools, "cat", "/x/hostname"]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    let err = dev.fails(&["cp", &format!("{tools}:/x/hostname"), "-"]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    admin.ok(&["rm", "-f", &agent, &plain, &tools]);
    admin.ok(&["volume", "rm", &etc]);
}

#[test]
fn a_baseline_role_may_not_act_on_a_container_whose_system_paths_an_admin_opened() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // Shortened lists leave /proc/sys writable to root in the container: host-wide sysctls,
    // kernel.core_pattern among them.
    let name = unique("opened");
    let _cleanup = Cleanup::new(&admin).container(&name);
    let body = r#"{"Image":"busybox:local","Cmd":["sleep","300"],"HostConfig":{"MaskedPaths":["/proc/asound"],"ReadonlyPaths":["/proc/asound"]}}"#;
    let resp = gate.post_json(ADMIN, &format!("/containers/create?name={name}"), body);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    admin.ok(&["start", &name]);
    let err = dev.fails(&[
        "exec",
        "-u",
        "1000",
        &name,
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/printk_ratelimit",
    ]);
    assert!(err.contains("(rule masked-paths, role dev)"), "{err}");
    assert!(
        err.contains("its system paths are unprotected (MaskedPaths lacks /proc/acpi"),
        "{err}"
    );
    let err = dev.fails(&["cp", &format!("{name}:/etc/hostname"), "-"]);
    assert!(err.contains("(rule masked-paths, role dev)"), "{err}");
    // A container with dockerd's own lists is dev's to act on, and its /proc/sys stays read-only.
    let plain = admin.sleeper("plain");
    let _plain = Cleanup::new(&admin).container(&plain);
    dev.ok(&["exec", "-u", "1000", &plain, "true"]);
    let out = admin.run(&[
        "exec",
        &plain,
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/printk_ratelimit",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Read-only file system"), "{stderr}");
}

#[test]
fn a_baseline_role_may_not_work_in_a_container_another_with_host_access_shares_namespaces_with() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // An ordinary container, and an admin's sidecar in its PID namespace with the host's root
    // mounted: from the first, /proc/<sidecar pid>/root is the host's file system.
    let app = admin.sleeper("app");
    let sidecar = unique("sidecar");
    let etc = unique("etcvol");
    let _cleanup = Cleanup::new(&admin).container(&sidecar).container(&app);
    let pid = format!("container:{app}");
    let sidecar_with = |mount: &str| {
        admin.ok(&["rm", "-f", &sidecar]);
        admin.ok(&[
            "run",
            "-d",
            "--name",
            &sidecar,
            "--pid",
            &pid,
            "-v",
            mount,
            "busybox:local",
            "sleep",
            "300",
        ]);
    };
    sidecar_with("/:/host:ro");
    let err = dev.fails(&[
        "exec",
        "-u",
        "1000",
        &app,
        "sh",
        "-c",
        "cat /proc/*/root/host/etc/hostname",
    ]);
    assert!(
        err.contains(&format!(
            "container {sidecar:?} was created with settings this role may not use, so it may not work in container {app:?}, which shares namespaces with it"
        )),
        "{err}"
    );
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    // The same through a named volume an admin made from a host path.
    etc_volume(&admin, &etc);
    sidecar_with(&format!("{etc}:/x"));
    let err = dev.fails(&["exec", "-u", "1000", &app, "true"]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    assert!(
        err.contains(&format!(
            "it is mounted by container {sidecar:?}, which shares namespaces with {app:?}"
        )),
        "{err}"
    );
    // Copying files goes through dockerd's view of the container's own file system, not its
    // processes: still dev's to do.
    assert!(!dev
        .ok(&["cp", &format!("{app}:/etc/hostname"), "-"])
        .is_empty());
    // A sidecar that holds nothing more (a plain process watcher) leaves the app dev's to work in.
    admin.ok(&["rm", "-f", &sidecar]);
    admin.ok(&[
        "run",
        "-d",
        "--name",
        &sidecar,
        "--pid",
        &pid,
        "busybox:local",
        "sleep",
        "300",
    ]);
    assert_eq!(
        dev.ok(&["exec", "-u", "1000", &app, "echo", "ok"]).trim(),
        "ok"
    );
    admin.ok(&["rm", "-f", &sidecar]);
    admin.ok(&["volume", "rm", &etc]);
}

#[test]
fn a_container_with_a_huge_inspect_does_not_stop_others_working_in_theirs() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let plain = dev.sleeper("plain");
    // A create body just under 1 MiB whose inspect is over 4 MiB: dockerd escapes U+2028 and
    // repeats the command line.
    let fat = unique("fat");
    let _cleanup = Cleanup::new(&admin).container(&fat).container(&plain);
    let body = format!(
        r#"{{"Image":"busybox:local","Cmd":["sh","-c","sleep 300 #{}"]}}"#,
        "\u{2028}".repeat(349_000)
    );
    let resp = gate.post_json(DEV, &format!("/containers/create?name={fat}"), &body);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp:.300}");
    assert_eq!(
        dev.ok(&["exec", "-u", "1000", &plain, "echo", "ok"]).trim(),
        "ok"
    );
}

#[test]
fn a_baseline_role_works_on_its_own_containers_by_name_as_before() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    let name = unique("mine");
    // Its root filesystem is read-only (injected): files go to a volume of its own.
    let data = format!("{name}-data");
    let mount = format!("{data}:/data");
    let run = [
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &mount,
        "busybox:local",
        "sleep",
        "300",
    ];
    dev.ok(&run);
    assert_eq!(
        dev.ok(&["exec", "-u", "1000", &name, "echo", "ok"]).trim(),
        "ok"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "hello").unwrap();
    // Readable by the exec's user 1000 once copied in.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let into = format!("{name}:/data/f");
    dev.ok(&["cp", file.path().to_str().unwrap(), &into]);
    assert_eq!(
        dev.ok(&["exec", "-u", "1000", &name, "cat", "/data/f"]),
        "hello"
    );
    dev.ok(&["stop", "-t", "0", &name]);
    dev.ok(&["start", &name]);
    dev.ok(&["rm", "-f", &name]);
    gate.docker(ADMIN).ok(&["volume", "rm", &data]);
}

#[test]
fn a_named_volume_created_with_host_bind_options_may_not_be_mounted_by_a_baseline_role() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let etc = unique("adminetc");
    etc_volume(&admin, &etc);
    let err = dev.fails(&[
        "run",
        "--rm",
        "-v",
        &format!("{etc}:/x"),
        "busybox:local",
        "true",
    ]);
    assert!(
        err.contains("was created with options this role may not use"),
        "{err}"
    );
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    let mount = format!("type=volume,source={etc},target=/x");
    let err = dev.fails(&["run", "--rm", "--mount", &mount, "busybox:local", "true"]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    // A plain named volume is anyone's to mount.
    let plain = unique("plainvol");
    admin.ok(&["volume", "create", &plain]);
    let out = dev.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{plain}:/x"),
        "busybox:local",
        "echo",
        "ok",
    ]);
    assert_eq!(out.trim(), "ok");
    admin.ok(&["volume", "rm", &etc, &plain]);
}

#[test]
fn a_baseline_role_may_not_use_a_volume_a_container_it_could_not_have_created_mounts() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // A dev container that mounts a shared volume, made while only baseline containers use it.
    let shared = unique("scripts");
    let mine = unique("mine");
    dev.ok(&[
        "run",
        "-d",
        "--name",
        &mine,
        "-v",
        &format!("{shared}:/x"),
        "busybox:local",
        "sleep",
        "300",
    ]);
    let out = dev.ok(&["exec", "-u", "1000", &mine, "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
    // Then an admin's job runner with the host's PID namespace runs what it finds there.
    let runner = unique("runner");
    admin.ok(&[
        "run",
        "-d",
        "--name",
        &runner,
        "--pid",
        "host",
        "-v",
        &format!("{shared}:/scripts"),
        "busybox:local",
        "sleep",
        "300",
    ]);
    // Planting a script there, from a new container or the existing one, is refused.
    let err = dev.fails(&[
        "run",
        "--rm",
        "-v",
        &format!("{shared}:/x"),
        "busybox:local",
        "true",
    ]);
    assert!(err.contains(&format!("container {runner:?}")), "{err}");
    assert!(err.contains(&format!("mounts volume {shared:?}")), "{err}");
    assert!(err.contains("(rule host-pid, role dev)"), "{err}");
    let err = dev.fails(&["exec", "-u", "1000", &mine, "touch", "/x/run.sh"]);
    assert!(err.contains("(rule host-pid, role dev)"), "{err}");
    let err = dev.fails(&["cp", "/etc/hostname", &format!("{mine}:/x/run.sh")]);
    assert!(err.contains("(rule host-pid, role dev)"), "{err}");
    // Nor may it have dockerd start it again (a restart policy).
    let err = dev.fails(&["update", "--restart", "on-failure:5", &mine]);
    assert!(err.contains("(rule host-pid, role dev)"), "{err}");
    // Acts that write nothing into it are not held up (a stop, a signal, a removal).
    dev.ok(&["kill", "-s", "CONT", &mine]);
    // Once the runner is gone, the volume is the dev's to use again.
    admin.ok(&["rm", "-f", &runner]);
    let out = dev.ok(&["exec", "-u", "1000", &mine, "echo", "ok"]);
    assert_eq!(out.trim(), "ok");
    dev.ok(&["rm", "-f", &mine]);
    admin.ok(&["volume", "rm", &shared]);
}

#[test]
fn a_baseline_role_may_not_act_on_a_container_running_an_image_outside_its_list() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // An admin's container of an image dev may not run (here: busybox under another name).
    let image = format!("{}:v1", unique("private"));
    admin.ok(&["tag", "busybox:local", &image]);
    let name = unique("private");
    admin.ok(&[
        "run", "-d", "--name", &name, "--user", "1000", &image, "sleep", "300",
    ]);
    for args in [
        vec!["exec", name.as_str(), "true"],
        vec!["export", name.as_str()],
        vec!["cp", &format!("{name}:/etc/passwd"), "-"],
    ] {
        let err = dev.fails(&args);
        assert!(err.contains("(rule images, role dev)"), "{args:?}: {err}");
        assert!(
            err.contains("is not in the allowed images"),
            "{args:?}: {err}"
        );
    }
    admin.ok(&["rm", "-f", &name]);
    admin.ok(&["rmi", &image]);
}

#[test]
fn a_baseline_role_may_not_remove_or_prune_volumes_and_networks_it_could_not_have_created() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let etc = unique("adminetc");
    etc_volume(&admin, &etc);
    let err = dev.fails(&["volume", "rm", &etc]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    let net = unique("adminnet");
    admin.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.host_binding_ipv4=0.0.0.0",
        &net,
    ]);
    let err = dev.fails(&["network", "rm", &net]);
    assert!(err.contains("(rule network-driver, role dev)"), "{err}");
    // Pruning would take them (and every other unused one) along.
    let err = dev.fails(&["volume", "prune", "-f"]);
    assert!(err.contains("(rule uninspectable, role dev)"), "{err}");
    let err = dev.fails(&["network", "prune", "-f"]);
    assert!(err.contains("(rule uninspectable, role dev)"), "{err}");
    admin.ok(&["volume", "inspect", &etc]);
    admin.ok(&["network", "inspect", &net]);
    // Its own it removes as before.
    let mine = unique("myvol");
    let my_net = unique("mynet");
    dev.ok(&["volume", "create", &mine]);
    dev.ok(&["network", "create", &my_net]);
    dev.ok(&["volume", "rm", &mine]);
    dev.ok(&["network", "rm", &my_net]);
    admin.ok(&["volume", "rm", &etc]);
    admin.ok(&["network", "rm", &net]);
}

#[test]
fn a_baseline_role_may_not_connect_a_container_it_could_not_have_created() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let net = unique("net");
    dev.ok(&["network", "create", &net]);
    let agent = admin.host_agent();
    let err = dev.fails(&["network", "connect", &net, &agent]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    // Its own containers it connects as before.
    let mine = unique("mine");
    dev.ok(&[
        "run",
        "-d",
        "--name",
        &mine,
        "busybox:local",
        "sleep",
        "300",
    ]);
    dev.ok(&["network", "connect", &net, &mine]);
    dev.ok(&["network", "disconnect", &net, &mine]);
    admin.ok(&["rm", "-f", &agent, &mine]);
    admin.ok(&["network", "rm", &net]);
}

#[test]
fn a_commit_acts_on_the_container_judged_and_cannot_rename_onto_an_allowed_image() {
    let sock = require_docker!();
    let config = base_config_granting("dev", "images-write");
    let gate = Gate::start_with(&sock, &config);
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // Its own container, by name: sent on as its full ID, and committed.
    let mine = dev.sleeper("mine");
    let image = format!("{}:v1", unique("committed"));
    dev.ok(&["commit", &mine, &image]);
    admin.ok(&["image", "inspect", &image]);
    // A container it could not have created is refused by the rule its settings break.
    let agent = admin.host_agent();
    let err = dev.fails(&["commit", &agent, "other:v1"]);
    assert!(err.contains("(rule host-mounts, role dev)"), "{err}");
    // dockerd would drop the digest in repo and write busybox:latest, an allowed name.
    let digest = "0123456789abcdef".repeat(4);
    let resp = gate.raw(
        DEV,
        format!(
            "POST /v1.41/commit?container={mine}&repo=busybox@sha256:{digest}&tag=latest HTTP/1.1\r\n\
             Host: docker\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("carries its own tag or digest"), "{resp}");
    // Every spelling dockerd reads as Docker Hub's busybox is that allowed name. (Raw: the
    // docker CLI would send each as plain `busybox`.)
    for repo in [
        "docker.io%2Fbusybox",
        "index.docker.io%2Flibrary%2Fbusybox",
        "index.docker.io%2Fbusybox",
    ] {
        for target in [
            format!("/v1.41/commit?container={mine}&repo={repo}&tag=latest"),
            format!("/v1.41/images/busybox:local/tag?repo={repo}&tag=latest"),
        ] {
            let resp = gate.raw(
                DEV,
                format!(
                    "POST {target} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            );
            assert!(resp.starts_with("HTTP/1.1 403"), "{target}: {resp}");
            assert!(resp.contains("(rule images, role dev)"), "{target}: {resp}");
        }
    }
    admin.ok(&["rm", "-f", &mine, &agent]);
    admin.ok(&["rmi", &image]);
}

#[test]
fn a_link_is_judged_by_the_container_it_names() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let agent = admin.host_agent();
    run_refused(&gate, &["--link", &format!("{agent}:db")], "host-mounts");
    // A link to nothing yet could be re-pointed by whoever creates the name first.
    let err = dev.fails(&[
        "run",
        "--rm",
        "--link",
        &unique("nothing"),
        "busybox:local",
        "true",
    ]);
    assert!(err.contains("No such container"), "{err}");
    // A link to a container it could have created itself works as with dockerd.
    let db = dev.sleeper("db");
    let out = dev.ok(&[
        "run",
        "--rm",
        "--link",
        &format!("{db}:database"),
        "busybox:local",
        "cat",
        "/etc/hosts",
    ]);
    assert!(out.contains("database"), "{out}");
    admin.ok(&["rm", "-f", &agent, &db]);
}

#[test]
fn a_build_is_held_to_the_resource_maxima_of_its_role() {
    let sock = require_docker!();
    let config = base_config_granting("dev", "build, swarm");
    let gate = Gate::start_with(&sock, &config);
    let dev = gate.docker(DEV);
    let dockerfile = b"FROM busybox:local\nRUN true\n";
    let image = format!("{}:v1", unique("built"));
    // Build containers join only the daemon's own networks: a named one is not judged for
    // them as a create's is.
    let lan = unique("lan");
    gate.docker(ADMIN).ok(&["network", "create", &lan]);
    let out = dev.run_stdin(&["build", "--network", &lan, "-"], dockerfile);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a build on {lan} should be refused");
    assert!(
        err.contains("build network mode") && err.contains("(rule build, role dev)"),
        "{err}"
    );
    gate.docker(ADMIN).ok(&["network", "rm", &lan]);
    // The swarm group does not give a baseline role the swarm's join tokens.
    let err = dev.fails(&["swarm", "join-token", "manager"]);
    assert!(err.contains("(rule uninspectable, role dev)"), "{err}");
    let out = dev.run_stdin(&["build", "--memory", "4g", "-t", &image, "-"], dockerfile);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a 4g build should be refused");
    assert!(err.contains("(rule resources, role dev)"), "{err}");
    let out = dev.run_stdin(
        &["build", "--memory", "256m", "-t", &image, "-"],
        dockerfile,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gate.docker(ADMIN).ok(&["rmi", &image]);
}

#[test]
fn a_baseline_role_may_not_join_a_network_it_could_not_have_created() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    // An admin's bridge that publishes on every address (an option the role may not set).
    let wired = unique("wired");
    admin.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.host_binding_ipv4=0.0.0.0",
        &wired,
    ]);
    let err = dev.fails(&["run", "--rm", "--network", &wired, "busybox:local", "true"]);
    assert!(err.contains("(rule network-driver, role dev)"), "{err}");
    assert!(err.contains(&format!("network {wired:?}")), "{err}");
    let mine = dev.sleeper("mine");
    let err = dev.fails(&["network", "connect", &wired, &mine]);
    assert!(err.contains("(rule network-driver, role dev)"), "{err}");
    // One it created itself it joins, at create and by connect.
    let own = unique("own");
    dev.ok(&["network", "create", &own]);
    // Listed under its own network's name, but naming the admin's by ID: dockerd would attach
    // by the ID.
    let wired_id = admin.ok(&["network", "inspect", "-f", "{{.Id}}", &wired]);
    let body = format!(
        r#"{{"Image":"busybox:local","Cmd":["true"],"HostConfig":{{"NetworkMode":"{own}"}},"NetworkingConfig":{{"EndpointsConfig":{{"{own}":{{"NetworkID":"{}"}}}}}}}}"#,
        wired_id.trim()
    );
    let resp = gate.post_json(DEV, "/v1.41/containers/create", &body);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("NetworkID"), "{resp}");
    dev.ok(&["run", "--rm", "--network", &own, "busybox:local", "true"]);
    dev.ok(&["network", "connect", &own, &mine]);
    admin.ok(&["rm", "-f", &mine]);
    admin.ok(&["network", "rm", &wired, &own]);
}

#[test]
fn the_daemons_own_networks_named_by_id_are_joined_as_by_name() {
    // The Python SDK's Network objects send IDs: `client.networks.get("bridge").connect(c)`.
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let bridge = admin.ok(&["network", "inspect", "-f", "{{.Id}}", "bridge"]);
    let bridge = bridge.trim();
    let own = unique("own");
    let mine = unique("mine");
    let _cleanup = Cleanup::new(&admin)
        .container(&mine)
        .container(&format!("{mine}-2"))
        .network(&own);
    dev.ok(&["network", "create", &own]);
    dev.ok(&[
        "run",
        "-d",
        "--name",
        &mine,
        "--network",
        &own,
        "busybox:local",
        "sleep",
        "300",
    ]);
    dev.ok(&["network", "connect", bridge, &mine]);
    let body = format!(
        r#"{{"Image":"busybox:local","Cmd":["true"],"HostConfig":{{"NetworkMode":"{bridge}"}}}}"#
    );
    let resp = gate.post_json(
        DEV,
        &format!("/v1.41/containers/create?name={mine}-2"),
        &body,
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
}

#[test]
fn a_container_named_with_its_leading_slash_is_found_as_dockerd_finds_it() {
    // dockerd keeps container names as `/name` and finds `/name` by name only, never as an ID.
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let own = unique("own");
    let mine = dev.sleeper("mine");
    let _cleanup = Cleanup::new(&admin).container(&mine).network(&own);
    dev.ok(&["network", "create", &own]);
    let id = admin.ok(&["inspect", "-f", "{{.Id}}", &mine]);
    let id = id.trim();
    let connect = |container: &str| {
        gate.post_json(
            DEV,
            &format!("/v1.41/networks/{own}/connect"),
            &format!(r#"{{"Container":"{container}"}}"#),
        )
    };
    let resp = connect(&format!("/{}", &id[..12]));
    assert!(
        resp.starts_with("HTTP/1.1 404"),
        "an ID prefix behind a slash: {resp}"
    );
    let resp = connect(&format!("/{mine}"));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let said = format!("container \"/{mine}\" named to dockerd as {id}");
    let record = gate.wait_audit(|r| {
        r["status"] == 200 && r["path"].as_str().is_some_and(|p| p.ends_with("/connect"))
    });
    assert_mutation(&record, &said);
    // A link names its container by full ID to dockerd, and the record says so.
    let linking = unique("linking");
    let _linked = Cleanup::new(&admin).container(&linking);
    let body = format!(
        r#"{{"Image":"busybox:local","Cmd":["true"],"HostConfig":{{"Links":["{mine}:peer"]}}}}"#
    );
    let resp = gate.post_json(
        DEV,
        &format!("/v1.41/containers/create?name={linking}"),
        &body,
    );
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    let said = format!("link \"{mine}:peer\" named to dockerd as \"{id}:peer\"");
    let record = gate.wait_audit(|r| {
        r["status"] == 201 && r["path"].as_str().is_some_and(|p| p.contains(&linking))
    });
    assert_mutation(&record, &said);
}

/// Asserts that an audit record lists the mutation `said`.
fn assert_mutation(record: &serde_json::Value, said: &str) {
    let listed = record["mutations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert!(listed.iter().any(|m| m == said), "no {said:?} in {record}");
}

#[test]
fn the_audit_record_says_which_container_a_name_meant() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let name = dev.sleeper("audited");
    let _cleanup = Cleanup::new(&admin).container(&name);
    let id = admin.ok(&["inspect", "-f", "{{.Id}}", &name]);
    let id = id.trim();
    dev.ok(&["stop", "-t", "0", &name]);
    let record = gate.wait_audit(|r| {
        r["kind"] == "request" && r["path"].as_str().is_some_and(|p| p.ends_with("/stop?t=0"))
    });
    assert!(record["path"].as_str().unwrap().contains(&name), "{record}");
    let said = format!("container {name:?} named to dockerd as {id}");
    assert_mutation(&record, &said);
}

#[test]
fn names_dockerd_would_not_look_up_as_written_are_a_clear_400() {
    // dockerd's router redirects `/volumes/./data` to `/volumes/data`: a lookup of such a name
    // finds nothing dockerd would act on. The client hears why, not a gateway error.
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    for host_config in [
        r#"{"Binds":["./data:/data"]}"#,
        r#"{"NetworkMode":"./x"}"#,
        r#"{"Mounts":[{"Type":"volume","Source":"a/../b","Target":"/data"}]}"#,
    ] {
        let body = format!(r#"{{"Image":"busybox:local","HostConfig":{host_config}}}"#);
        let resp = gate.post_json(DEV, "/v1.41/containers/create", &body);
        assert!(resp.starts_with("HTTP/1.1 400"), "{host_config}: {resp}");
        assert!(
            resp.contains("empty path segments, which dockerd's router cleans away"),
            "{resp}"
        );
        assert!(resp.contains("(rule request)"), "{resp}");
    }
}

#[test]
fn a_baseline_role_leaves_network_addresses_and_macs_to_dockerd() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let net = unique("addr");
    // A subnet of the client's choosing is routed on the host (here: a LAN-like prefix).
    for flags in [
        &["--subnet", "192.168.77.0/24"][..],
        &["--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1"][..],
        &["--ipv6", "--subnet", "fd77::/64"][..],
        &["--ipam-driver", "../../../tmp/plugin"][..],
    ] {
        let mut args = vec!["network", "create"];
        args.extend_from_slice(flags);
        args.push(&net);
        let err = dev.fails(&args);
        assert!(
            err.contains("(rule network-driver, role dev)"),
            "{flags:?}: {err}"
        );
    }
    // dockerd picks the addresses itself: allowed.
    dev.ok(&["network", "create", &net]);
    let mine = dev.sleeper("mac");
    // The docker CLI sends --mac-address per network from API 1.44 on; the top-level field
    // every API version reads, sent as an older client would:
    let body = r#"{"Image":"busybox:local","Cmd":["true"],"MacAddress":"02:42:ac:11:00:99"}"#;
    let resp = gate.post_json(DEV, "/v1.41/containers/create", body);
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert!(resp.contains("a fixed MAC address"), "{resp}");
    let err = dev.fails(&[
        "network",
        "connect",
        "--driver-opt",
        "com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.forwarding=1",
        &net,
        &mine,
    ]);
    assert!(err.contains("endpoint driver options"), "{err}");
    let err = dev.fails(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip",
        "172.30.99.99",
        "busybox:local",
        "true",
    ]);
    assert!(err.contains("a fixed address"), "{err}");
    dev.ok(&["network", "connect", "--alias", "web", &net, &mine]);
    admin.ok(&["rm", "-f", &mine]);
    admin.ok(&["network", "rm", &net]);
}

#[test]
fn a_baseline_role_may_not_lift_the_disk_quota_hang_stops_or_probe_host_paths() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    for (flags, says) in [
        (&["--storage-opt", "size=0"][..], "storage options"),
        (&["--stop-timeout", "-1"][..], "stop timeout"),
        (
            &["--health-cmd", "true", "--health-interval", "10ms"][..],
            "health-check Interval",
        ),
        (
            &["--device-read-bps", "/dev/sda:1mb"][..],
            "names host device \"/dev/sda\"",
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox:local", "true"]);
        let err = dev.fails(&args);
        assert!(err.contains(says), "{flags:?}: {err}");
    }
    dev.ok(&[
        "run",
        "--rm",
        "--stop-timeout",
        "20",
        "busybox:local",
        "true",
    ]);
}

#[test]
fn reads_that_reach_the_host_are_refused_to_every_role_but_admin() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let name = admin.sleeper("top");
    for who in [MONITOR, DEV] {
        let d = gate.docker(who);
        // dockerd hands ps_args to the host's ps, whose errors can echo any host process.
        let err = d.fails(&["top", &name, "e", "-o", "args", "-p", "1"]);
        assert!(err.contains("(rule host-reach, role "), "{who}: {err}");
        assert!(d.ok(&["top", &name]).contains("sleep"), "{who}");
        assert!(d.ok(&["top", &name, "-ef"]).contains("sleep"), "{who}");
        // A search term naming a registry makes dockerd query it from the host's network.
        let err = d.fails(&["search", "127.0.0.1:2375/probe"]);
        assert!(err.contains("(rule host-reach, role "), "{who}: {err}");
    }
    assert!(admin
        .ok(&["top", &name, "-o", "pid,args"])
        .contains("sleep"));
    admin.ok(&["rm", "-f", &name]);
}

#[test]
fn a_baseline_role_may_not_hang_a_stop_prune_every_container_or_pull_every_tag() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    let name = dev.sleeper("stop");
    let err = dev.fails(&["stop", "-t", "-1", &name]);
    assert!(err.contains("(rule resources, role dev)"), "{err}");
    let err = dev.fails(&["container", "prune", "-f"]);
    assert!(err.contains("(rule uninspectable, role dev)"), "{err}");
    let err = dev.fails(&["pull", "-a", "busybox"]);
    assert!(err.contains("pulling every tag"), "{err}");
    dev.ok(&["stop", "-t", "1", &name]);
    gate.docker(ADMIN).ok(&["rm", "-f", &name]);
}

#[test]
fn log_options_without_a_driver_may_size_local_logs_but_not_send_them_elsewhere() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    dev.ok(&[
        "run",
        "--rm",
        "--log-opt",
        "max-size=10m",
        "--log-opt",
        "max-file=2",
        "busybox:local",
        "true",
    ]);
    run_refused(
        &gate,
        &["--log-opt", "fluentd-address=evil:24224"],
        "log-driver",
    );
}

#[test]
fn a_baseline_role_naming_an_object_that_does_not_exist_gets_dockgates_404_not_a_later_one() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    // Sent on by name, a request would act on whatever an admin creates under that name (or
    // an ID prefix) before dockerd resolves it: dockgate answers for dockerd instead.
    let nothing = unique("nothing");
    let err = dev.fails(&["start", &nothing]);
    assert!(
        err.contains(&format!(
            "No such container: {nothing} (looked up before deciding"
        )),
        "{err}"
    );
    let refused = gate.wait_audit(|r| r["rule"] == "not-found");
    assert_eq!(refused["status"], 404, "{refused}");
    // The docker CLI reads it as dockerd's own 404: `rm -f` of nothing still succeeds.
    dev.ok(&["rm", "-f", &nothing]);
    let err = dev.fails(&["exec", "-u", "1000", &nothing, "true"]);
    assert!(err.contains("No such container"), "{err}");
    // A network that does not exist yet is not judged absent at create and joined at start.
    let err = dev.fails(&["create", "--network", &nothing, "busybox:local", "true"]);
    assert!(
        err.contains(&format!("No such network: {nothing}")),
        "{err}"
    );
}

#[test]
fn a_baseline_role_starting_a_container_has_its_networks_judged_again_as_they_are_now() {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let admin = gate.docker(ADMIN);
    let dev = gate.docker(DEV);
    let net = unique("net");
    dev.ok(&["network", "create", &net]);
    let c = unique("c");
    dev.ok(&[
        "create",
        "--name",
        &c,
        "--network",
        &net,
        "busybox:local",
        "sleep",
        "300",
    ]);
    // The network goes, and an admin makes another under its name, with settings the role
    // may not use: dockerd would join the container to it at start.
    admin.ok(&["network", "rm", &net]);
    admin.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.host_binding_ipv4=0.0.0.0",
        &net,
    ]);
    let err = dev.fails(&["start", &c]);
    assert!(err.contains("(rule network-driver, role dev)"), "{err}");
    // Gone altogether: refused the same way as a create naming it.
    admin.ok(&["network", "rm", &net]);
    let err = dev.fails(&["start", &c]);
    assert!(err.contains(&format!("No such network: {net}")), "{err}");
    // Back as one the role could have created: it starts.
    dev.ok(&["network", "create", &net]);
    dev.ok(&["start", &c]);
    admin.ok(&["rm", "-f", &c]);
    admin.ok(&["network", "rm", &net]);
}

#[test]
fn scratch_containers_foreign_link_local_addresses_update_device_paths_and_checkpoint_dirs_are_refused(
) {
    let sock = require_docker!();
    let gate = Gate::start(&sock, "");
    let dev = gate.docker(DEV);
    let admin = gate.docker(ADMIN);
    let refused = |client: &str, resp: &str, rule: &str| {
        assert!(resp.starts_with("HTTP/1.1 403"), "{client}: {resp}");
        assert!(
            resp.contains(&format!("(rule {rule}, role {client})")),
            "{resp}"
        );
    };
    // A container of nothing, to be filled by `docker cp`, runs no listed image.
    let resp = gate.post_json(DEV, "/v1.41/containers/create", r#"{"Cmd":["/t/x"]}"#);
    refused(DEV, &resp, "images");
    // A "link-local" address that is the bridge's gateway.
    let resp = gate.post_json(
        DEV,
        "/v1.41/containers/create",
        r#"{"Image":"busybox:local","NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"LinkLocalIPs":["172.17.0.1"]}}}}}"#,
    );
    refused(DEV, &resp, "network-driver");
    let err = dev.fails(&[
        "run",
        "--rm",
        "--link-local-ip",
        "10.0.0.1",
        "busybox:local",
        "true",
    ]);
    assert!(err.contains("(rule network-driver, role dev)"), "{err}");
    let err = dev.fails(&[
        "run",
        "--rm",
        "--link-local-ip",
        "169.254.7.7",
        "busybox:local",
        "true",
    ]);
    assert!(err.contains("(rule network-driver, role dev)"), "{err}");
    // An update naming a host file as a block device (newer dockerd stats it).
    let mine = dev.sleeper("mine");
    let resp = gate.post_json(
        DEV,
        &format!("/v1.41/containers/{mine}/update"),
        r#"{"BlkioDeviceReadBps":[{"Path":"/root/.ssh/id_ed25519","Rate":1}]}"#,
    );
    refused(DEV, &resp, "devices");
    // A memory reservation no limit can hold would keep the container from starting again.
    let err = dev.fails(&["update", "--memory-reservation", "2t", &mine]);
    assert!(err.contains("MemoryReservation"), "{err}");
    assert!(err.contains("(rule resources, role dev)"), "{err}");
    // docker cp -a: dockerd would look the container's user up in the host's accounts.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let to = format!("{mine}:/tmp");
    let err = dev.fails(&["cp", "-a", file.to_str().unwrap(), &to]);
    assert!(err.contains("(rule host-reach, role dev)"), "{err}");
    // Without -a it goes to dockerd (which refuses its read-only root filesystem itself).
    let err = dev.fails(&["cp", file.to_str().unwrap(), &to]);
    assert!(
        err.contains("read-only") && !err.contains("dockgate"),
        "{err}"
    );
    // A read-only role listing a host directory through the checkpoint routes.
    let resp = gate.raw(
        MONITOR,
        format!("GET /v1.41/containers/{mine}/checkpoints?dir=%2Froot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    refused("monitor", &resp, "host-reach");
    admin.ok(&["rm", "-f", &mine]);
}

#[test]
fn saving_images_needs_the_images_export_group() {
    let sock = require_docker!();
    let config = base_config_granting("monitor", "images-export");
    let gate = Gate::start_with(&sock, &config);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("busybox.tar");
    let tar = tar.to_str().unwrap();
    // Every file of any local image (an admin's private ones too): not a read of the
    // built-in roles.
    let err = gate
        .docker(DEV)
        .fails(&["save", "-o", tar, "busybox:local"]);
    assert!(err.contains("(group images-export)"), "{err}");
    gate.docker(MONITOR)
        .ok(&["save", "-o", tar, "busybox:local"]);
    assert!(std::fs::metadata(tar).unwrap().len() > 1024);
}
