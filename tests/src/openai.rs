//! Runs the official `openai` Python package (scripts in tests/python/) against a
//! running edge.

use std::process::Command;

/// Runs the client checks against `base_url` (`http://addr/v1`) with a key that may
/// call `gpt-4o`, `gpt-4o-mini` and `text-embedding-3-small` and a key that may call
/// `gpt-4o-mini` only; panics with the script's output unless every check passes.
pub async fn run_client_checks(base_url: String, key: String, narrow_key: String) {
    run_script(
        "openai_client.py",
        vec![
            ("TOLLGATE_BASE_URL", base_url),
            ("TOLLGATE_KEY", key),
            ("TOLLGATE_NARROW_KEY", narrow_key),
        ],
        6,
    )
    .await;
}

/// Runs the response-cache checks (tests/python/openai_cache.py) against
/// `base_url` with a key of an org that caches, which may call `gpt-4o` and
/// `text-embedding-3-small`; panics unless every check passes.
pub async fn run_cache_checks(base_url: String, key: String) {
    run_script(
        "openai_cache.py",
        vec![("TOLLGATE_BASE_URL", base_url), ("TOLLGATE_KEY", key)],
        5,
    )
    .await;
}

/// Runs `tests/python/<script>` with `env`; panics with its output unless it
/// reports `checks` passed and none failed.
async fn run_script(script: &str, env: Vec<(&'static str, String)>, checks: usize) {
    let path = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    // The client blocks; run it off the runtime that serves the edge.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(path)
            .envs(env)
            .output()
            .expect("python3 runs (the `openai` package is installed by .ci/run)")
    })
    .await
    .expect("client task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai {script} checks failed:\n{stdout}\n{stderr}"
    );
    let summary = format!("{checks} passed, 0 failed");
    assert!(stdout.contains(&summary), "{stdout}");
}
