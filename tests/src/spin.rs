//! Real Spin: `spin up` with the repository's own `spin.toml` (which names the
//! portable component edge-host's build produced, for plain `wasi:keyvalue`) and the
//! repository's runtime-config files from `deploy/`, pointed at a test's store.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::Mutex;

use crate::upstream::MockUpstream;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The Spin binary: `SPIN_BIN`, else `spin` on `PATH`, else `target/spin` (where
/// `.ci/run` unpacks it). Outside CI a missing binary prints why the caller skips
/// and returns `None`; in CI (`CI=true`) it panics, so the suite cannot pass
/// without having run.
pub fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("SPIN_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("spin"))
                .find(|p| p.is_file())
        })
        .or_else(|| Some(repo_root().join("target").join("spin")).filter(|p| p.is_file()));
    if found.is_none() {
        let how = "set SPIN_BIN, put `spin` on PATH, or unpack it to target/spin \
                   (`gunzip -c ../shared/tools/spin-4.1.0-pre0-linux-x86_64.gz > target/spin \
                   && chmod +x target/spin`)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Spin not found in CI: {how}");
        }
        eprintln!("skipping: Spin not found; {how}");
    }
    found
}

/// The key-value store a Spin instance serves `default` from.
#[derive(Debug, Clone, Copy)]
pub enum SpinStore<'a> {
    /// A SQLite file in Spin's schema (`deploy/runtime-config.sqlite.toml`).
    Sqlite(&'a Path),
    /// A Redis server (`deploy/runtime-config.redis.toml`).
    Redis(&'a str),
}

/// Held by the first start of a test process until Spin serves: that start
/// compiles the component into Spin's cache, which the others then reuse instead
/// of all compiling at once.
static FIRST_START: Mutex<bool> = Mutex::const_new(false);

/// A running `spin up`, killed on drop.
pub struct SpinApp {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl SpinApp {
    /// Starts `spin` (the binary at `bin`) on `store`, allowed to call `upstream`
    /// over plain HTTP, with the test edge keys, and waits until it serves.
    pub async fn start(bin: &Path, store: SpinStore<'_>, upstream: &MockUpstream) -> SpinApp {
        SpinApp::start_with_edge_keys(bin, store, upstream, crate::fixtures::EDGE_KEYS).await
    }

    /// Like [`Self::start`] with `edge_keys` as the `edge_keys` Spin variable.
    pub async fn start_with_edge_keys(
        bin: &Path,
        store: SpinStore<'_>,
        upstream: &MockUpstream,
        edge_keys: &str,
    ) -> SpinApp {
        let manifest = repo_root().join("spin.toml");
        check_component(&manifest);
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime_config = dir.path().join("runtime-config.toml");
        std::fs::write(&runtime_config, runtime_config_for(store)).expect("write runtime config");

        let warm = FIRST_START.lock().await;
        let first = if *warm {
            drop(warm);
            None
        } else {
            Some(warm)
        };
        let (bin, dir_path, addr) = (bin.to_path_buf(), dir.path().to_path_buf(), upstream.addr());
        let edge_keys = edge_keys.to_string();
        let (child, url, log) = tokio::task::spawn_blocking(move || {
            spawn_until_serving(
                &bin,
                &manifest,
                &runtime_config,
                &dir_path,
                addr,
                &edge_keys,
            )
        })
        .await
        .expect("spin start");
        if let Some(mut warm) = first {
            *warm = true;
        }
        SpinApp {
            child,
            url,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What Spin and the component printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Kills `spin up` and the `spin trigger` it forked: both are in the group the
/// child leads. Killing `spin up` alone left its trigger serving, orphaned, after
/// the test.
fn kill_group(child: &mut Child) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
}

impl Drop for SpinApp {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        if std::thread::panicking() {
            eprintln!("--- spin up at {} ---\n{}", self.url, self.log());
        }
    }
}

/// Panics unless the file `spin.toml` names is the component this test build
/// embeds in the edge runtime: Spin must run exactly what the edge tests run.
fn check_component(manifest: &Path) {
    let text = std::fs::read_to_string(manifest).expect("read spin.toml");
    let source = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("source = "))
        .expect("spin.toml names the component's source")
        .trim_matches('"');
    let path = repo_root().join(source);
    let on_disk = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("spin.toml's source {} unreadable: {e}", path.display()));
    let built = std::fs::read(edge_host::PORTABLE_COMPONENT).expect("edge-host's portable build");
    assert!(
        on_disk == built,
        "spin.toml's source {} is not the portable component edge-host's build made \
         (was TOLLGATE_COMPONENT_WASM_PREBUILT set?)",
        path.display()
    );
}

/// The repository's runtime-config file for `store`, its `path`/`url` pointed at it.
fn runtime_config_for(store: SpinStore<'_>) -> String {
    let (file, field, value) = match store {
        SpinStore::Sqlite(path) => (
            "runtime-config.sqlite.toml",
            "path",
            path.display().to_string(),
        ),
        SpinStore::Redis(url) => ("runtime-config.redis.toml", "url", url.to_string()),
    };
    let original = std::fs::read_to_string(repo_root().join("deploy").join(file))
        .unwrap_or_else(|e| panic!("read deploy/{file}: {e}"));
    let prefix = format!("{field} = ");
    let mut replaced = 0;
    let lines: Vec<String> = original
        .lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                replaced += 1;
                format!("{prefix}{value:?}")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 1, "deploy/{file} sets `{field}` once");
    lines.join("\n")
}

/// Spawns `spin up` on a free port (retrying if another process took the port
/// first) and waits until it accepts connections.
fn spawn_until_serving(
    bin: &Path,
    manifest: &Path,
    runtime_config: &Path,
    dir: &Path,
    upstream: SocketAddr,
    edge_keys: &str,
) -> (Child, String, PathBuf) {
    let log = dir.join("spin.log");
    for _attempt in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let out = File::create(&log).expect("spin log");
        let mut child = Command::new(bin)
            .arg("up")
            .arg("--from")
            .arg(manifest)
            .arg("--runtime-config-file")
            .arg(runtime_config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("SPIN_VARIABLE_UPSTREAM_HOSTS", format!("http://{upstream}"))
            .env("SPIN_VARIABLE_EDGE_KEYS", edge_keys)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        // The first start compiles the component (tens of seconds on a cold cache).
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = child.try_wait().expect("spin status") {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("in use") {
                    break;
                }
                panic!("spin up exited ({status}):\n{text}");
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, format!("http://127.0.0.1:{port}"), log);
            }
            if Instant::now() > deadline {
                kill_group(&mut child);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("spin up did not serve within 3 minutes:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("no free port for spin up after 3 attempts");
}
