//! Runs scripts using the official `openai` Python package (tests/python/) against
//! a running edge.

use std::process::Command;

/// Runs the client checks against `base_url` (`http://addr/v1`) with a key that may
/// call `gpt-4o`, `gpt-4o-mini` and `text-embedding-3-small` and a key that may call
/// `gpt-4o-mini` only; panics with the script's output unless every check passes.
pub async fn run_client_checks(base_url: String, key: String, narrow_key: String) {
    let stdout = run_python(
        "openai_client.py",
        &[
            ("TOLLGATE_BASE_URL", base_url),
            ("TOLLGATE_KEY", key),
            ("TOLLGATE_NARROW_KEY", narrow_key),
        ],
    )
    .await;
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
}

/// Runs the response-cache checks (tests/python/openai_cache.py) against
/// `base_url` with a key of an org that caches, which may call `gpt-4o` and
/// `text-embedding-3-small`; panics unless every check passes.
pub async fn run_cache_checks(base_url: String, key: String) {
    let stdout = run_python(
        "openai_cache.py",
        &[("TOLLGATE_BASE_URL", base_url), ("TOLLGATE_KEY", key)],
    )
    .await;
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}

/// Runs tests/python/chat_outcomes.py against `base_url` (`http://addr/v1`): each
/// `(key, model, status)` is one chat completion by the `openai` client that must
/// end in `status`; panics with the script's output if any differs.
pub async fn chat_outcomes(base_url: String, calls: &[(&str, &str, u16)]) {
    let calls: Vec<serde_json::Value> = calls
        .iter()
        .map(|(key, model, expect)| serde_json::json!({"key": key, "model": model, "expect": expect}))
        .collect();
    run_python(
        "chat_outcomes.py",
        &[
            ("TOLLGATE_BASE_URL", base_url),
            ("TOLLGATE_CALLS", serde_json::Value::from(calls).to_string()),
        ],
    )
    .await;
}

/// Runs `tests/python/<script>` with `env` set; its stdout, or a panic with its
/// output when it exits non-zero.
pub async fn run_python(script: &str, env: &[(&str, String)]) -> String {
    let script = format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    // The client blocks; run it off the runtime that serves the edge.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(&script)
            .envs(env)
            .output()
            .expect("python3 runs (the `openai` package is installed by .ci/run)")
    })
    .await
    .expect("client task");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai client checks failed:\n{stdout}\n{stderr}"
    );
    stdout
}
