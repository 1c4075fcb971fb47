//! Runs the official `openai` Python package (tests/python/openai_client.py) against
//! a running edge.

use std::process::Command;

/// Runs the client checks against `base_url` (`http://addr/v1`) with a key that may
/// call `gpt-4o`, `gpt-4o-mini` and `text-embedding-3-small` and a key that may call
/// `gpt-4o-mini` only; panics with the script's output unless every check passes.
pub async fn run_client_checks(base_url: String, key: String, narrow_key: String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/openai_client.py");
    // The client blocks; run it off the runtime that serves the edge.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("TOLLGATE_BASE_URL", base_url)
            .env("TOLLGATE_KEY", key)
            .env("TOLLGATE_NARROW_KEY", narrow_key)
            .output()
            .expect("python3 runs (the `openai` package is installed by .ci/run)")
    })
    .await
    .expect("client task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
}
