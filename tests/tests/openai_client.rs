//! The official `openai` Python package against the real gateway: a chat completion,
//! a stream, the model list, `AuthenticationError` and `PermissionDeniedError`.

use std::process::Command;

use tollgate_e2e::harness::{Gateway, KEY, NARROW_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_client_works_against_the_gateway() {
    let gw = Gateway::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/openai_client.py");
    let base_url = format!("{}/v1", gw.edge.url());
    // The client blocks; run it off the runtime that serves the edge.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("TOLLGATE_BASE_URL", base_url)
            .env("TOLLGATE_KEY", KEY)
            .env("TOLLGATE_NARROW_KEY", NARROW_KEY)
            .output()
            .expect("python3 runs (the `openai` package is installed by .ci/run)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai client checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}
