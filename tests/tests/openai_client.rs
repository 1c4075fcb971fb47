//! The official `openai` Python package against the real gateway: a chat completion,
//! a stream, embeddings, the model list, `AuthenticationError` and `PermissionDeniedError`.

use tollgate_e2e::harness::{Gateway, KEY, NARROW_KEY};
use tollgate_e2e::openai::run_client_checks;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_client_works_against_the_gateway() {
    let gw = Gateway::start().await;
    run_client_checks(
        format!("{}/v1", gw.edge.url()),
        KEY.to_string(),
        NARROW_KEY.to_string(),
    )
    .await;
}
