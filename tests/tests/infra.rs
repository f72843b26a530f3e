//! The deployment files in `infra/`, checked with the tools that read them:
//! - each systemd unit verifies with `systemd-analyze verify` (its `/usr/local/bin` commands
//!   pointed at this build, which must exist and be executable) and scores an exposure of at
//!   most 2.0 ("OK") in `systemd-analyze security --offline`: the hardening promised, measured;
//! - each container file passes hadolint (no engine runs on this machine to build them; the
//!   README says so);
//! - each compose file validates against the Compose Specification's schema with its
//!   variables filled in from `env.example`, which documents every one
//!   (`tests/scripts/check_compose.py`; no compose plugin runs here);
//! - each Kubernetes overlay renders with kustomize (`kubectl kustomize`) and validates
//!   strictly against the Kubernetes schemas (`kubernetes-validate`, offline);
//! - the server's health check, `quorate-server probe`, tells a ready server from none;
//! - the newcomer's demo, `scripts/demo.sh`, runs from start to searched minutes.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned()
}

/// `unit` with its commands in the folder the workspace's binaries are built to.
fn with_built_commands(unit: &Path, folder: &Path) -> PathBuf {
    let built = quorate_e2e::binary("quorate-cli", "quorate");
    quorate_e2e::binary("quorate-server", "quorate-server");
    quorate_e2e::binary("quorate-node", "quorate-node");
    let bin = built.parent().unwrap().display().to_string();
    let text = std::fs::read_to_string(unit).unwrap();
    let copy = folder.join(unit.file_name().unwrap());
    std::fs::write(&copy, text.replace("/usr/local/bin", &bin)).unwrap();
    copy
}

fn systemd_analyze(args: &[&str], unit: &Path) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .expect("systemd-analyze is installed by scripts/install-test-deps.sh")
}

#[test]
fn every_systemd_unit_verifies_and_is_hardened() {
    let folder = tempfile::tempdir().unwrap();
    let mut units: Vec<PathBuf> = std::fs::read_dir(repository().join("infra/systemd"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "service")
        })
        .collect();
    units.sort();
    let names: Vec<_> = units
        .iter()
        .map(|unit| unit.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "quorate-node.service",
            "quorate-recorder.service",
            "quorate-server.service"
        ]
    );
    for unit in &units {
        let copy = with_built_commands(unit, folder.path());
        let verified = systemd_analyze(&["verify", "--man=no"], &copy);
        let complaints = String::from_utf8_lossy(&verified.stderr);
        assert!(
            verified.status.success() && complaints.trim().is_empty(),
            "{}: {complaints}",
            unit.display()
        );
        let scored = systemd_analyze(&["security", "--offline=yes", "--threshold=20"], &copy);
        let report = String::from_utf8_lossy(&scored.stdout);
        assert!(
            scored.status.success(),
            "{} is exposed more than 2.0:\n{report}",
            unit.display()
        );
    }
}

/// The health check the container images run, with no curl in them: `quorate-server probe`
/// exits 0 when the server answers `/readyz`, and says why not otherwise.
#[tokio::test]
async fn the_probe_says_whether_the_server_is_ready() {
    let server = quorate_e2e::Server::start(quorate_e2e::Backend::Sqlite).await;
    let binary = quorate_e2e::binary("quorate-server", "quorate-server");
    let probe = |address: String| {
        let binary = binary.clone();
        async move {
            tokio::process::Command::new(binary)
                .args(["probe", "--listen", &address])
                .output()
                .await
                .unwrap()
        }
    };
    let ready = probe(server.address.to_string()).await;
    assert!(ready.status.success(), "{ready:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    let refused = probe(nobody).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot reach the server"),
        "{refused:?}"
    );
    server.stop().await;
}

/// A linter the test command installs into its tools folder (`scripts/install-test-deps.sh`).
fn linter(name: &str) -> PathBuf {
    let tools = std::env::var("QUORATE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/quorate")
        });
    let path = tools.join("venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        path.display()
    );
    path
}

fn container_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repository().join("infra/containers"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "Containerfile")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    files
}

#[test]
fn every_container_file_passes_hadolint() {
    for file in container_files() {
        let linted = Command::new(linter("hadolint"))
            .arg("--no-color")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            linted.status.success(),
            "{}:\n{}",
            file.display(),
            String::from_utf8_lossy(&linted.stdout)
        );
    }
}

/// Where a container engine answers, each image builds from the repository. This machine has
/// the docker client only, so here the images are linted and not built (the README says so).
#[test]
fn every_image_builds_where_a_container_engine_runs() {
    let engine = Command::new("docker").arg("info").output();
    if !engine.is_ok_and(|answer| answer.status.success()) {
        eprintln!(
            "no container engine answers `docker info` here: the images are linted, not built"
        );
        return;
    }
    for file in container_files() {
        let built = Command::new("docker")
            .args(["build", "--quiet", "-f"])
            .arg(&file)
            .arg(repository())
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}:\n{}",
            file.display(),
            String::from_utf8_lossy(&built.stderr)
        );
    }
}

/// `overlay` of infra/kubernetes rendered by kustomize and validated strictly; returns the
/// rendered manifests.
fn rendered_and_valid(overlay: &str) -> String {
    let folder = repository().join("infra/kubernetes/overlays").join(overlay);
    let rendered = Command::new("kubectl")
        .arg("kustomize")
        .arg(&folder)
        .output()
        .expect("kubectl (with kustomize) is on this machine");
    assert!(
        rendered.status.success(),
        "{overlay}: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let manifests = String::from_utf8(rendered.stdout).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &manifests).unwrap();
    let validated = Command::new(linter("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(file.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&validated.stdout);
    assert!(
        validated.status.success() && !report.contains("ERROR"),
        "{overlay}:\n{report}{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    manifests
}

#[test]
fn the_kubernetes_overlays_render_and_validate() {
    let production = rendered_and_valid("production");
    for kind in [
        "kind: Deployment",
        "kind: StatefulSet",
        "kind: PodDisruptionBudget",
        "kind: HorizontalPodAutoscaler",
        "readinessProbe:",
        "pod-security.kubernetes.io/enforce: restricted",
    ] {
        assert!(production.contains(kind), "production lacks {kind}");
    }
    // Every container runs as non-root on a read-only root, with no capabilities.
    let containers =
        production.matches("- image: ").count() + production.matches("  image: ").count();
    assert!(containers >= 2);
    assert_eq!(
        production.matches("readOnlyRootFilesystem: true").count(),
        2,
        "{production}"
    );
    assert_eq!(production.matches("runAsNonRoot: true").count(), 2);
    assert!(!production.contains("nvidia.com/gpu"));
    // The ServiceMonitor needs the Prometheus Operator's CRD: only the monitored overlay has it.
    assert!(!production.contains("kind: ServiceMonitor"));
    assert!(rendered_and_valid("monitored").contains("kind: ServiceMonitor"));
    let gpu = rendered_and_valid("gpu");
    assert!(gpu.contains("nvidia.com/gpu: 1"), "{gpu}");
    assert!(
        gpu.contains("registry.example.org/quorate/node:0.1.0-cuda"),
        "{gpu}"
    );
}

#[test]
fn the_compose_files_validate_and_every_setting_is_documented() {
    let checked = Command::new(linter("python"))
        .arg(repository().join("tests/scripts/check_compose.py"))
        .arg(repository().join("infra/compose"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        report.contains("checked compose.gpu.yaml, compose.scale.yaml, compose.yaml"),
        "{report}"
    );
}

/// The one-command demo: server, vault, three members, a node, an upload, two quorums, a
/// search; stopped at the end (`QUORATE_DEMO_EXIT`) rather than left running.
#[tokio::test]
async fn the_demo_runs_from_start_to_searched_minutes() {
    let folder = tempfile::tempdir().unwrap();
    let port = quorate_e2e::caddy::free_port();
    let demo = tokio::process::Command::new("bash")
        .arg(repository().join("scripts/demo.sh"))
        .env("QUORATE_DEMO_EXIT", "1")
        .env("QUORATE_DEMO_PORT", port.to_string())
        .env("QUORATE_DEMO_DIR", folder.path())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    for step in [
        "Ada makes her keys",
        "the node transcribes",
        "1 approved meeting match \"bridge repairs\"",
        "The council voted to repair the bridge over the river.",
        "In a browser: http://127.0.0.1:",
    ] {
        assert!(
            said.contains(step),
            "the demo did not say {step:?}:\n{said}"
        );
    }
    // What a person would type is shown beside each step.
    assert!(String::from_utf8_lossy(&demo.stderr).contains("cy$ quorate search bridge repairs"));
}

/// Beyond loopback with no TLS terminator named (no trusted proxy), the server says it serves
/// plain HTTP and what to do; on loopback, or behind a named terminator, it does not.
#[tokio::test]
async fn the_server_warns_when_it_serves_plain_http_beyond_loopback() {
    let binary = quorate_e2e::binary("quorate-server", "quorate-server");
    let warning = |listen: &'static str, proxies: &'static str| {
        let binary = binary.clone();
        async move {
            let folder = tempfile::tempdir().unwrap();
            let mut server = tokio::process::Command::new(binary)
                .arg("serve")
                .env("QUORATE_LISTEN", listen)
                .env("QUORATE_TRUSTED_PROXIES", proxies)
                .env("QUORATE_DATA_DIR", folder.path())
                .env("QUORATE_METRICS_LISTEN", "off")
                .env("QUORATE_WEB_DIR", "off")
                .env("RUST_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            // The warning, if any, comes before the line that says it listens.
            let stderr = tokio::io::BufReader::new(server.stderr.take().unwrap());
            let mut lines = tokio::io::AsyncBufReadExt::lines(stderr);
            let mut warned = false;
            while let Some(line) = lines.next_line().await.unwrap() {
                warned |= line.contains("serving plain HTTP beyond loopback");
                if line.contains("listening") {
                    break;
                }
            }
            server.kill().await.unwrap();
            warned
        }
    };
    assert!(warning("0.0.0.0:0", "").await);
    assert!(!warning("127.0.0.1:0", "").await);
    assert!(!warning("0.0.0.0:0", "10.0.0.0/8").await);
}
