//! The OpenAPI document: derived from the handlers, checked in for the SDKs, and true
//! to what the server accepts.

use serde_json::{Value, json};

use crate::common::TestServer;

/// The checked-in document the TypeScript SDK's types are generated from.
const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/openapi.json");

/// The served document, pretty-printed as it is checked in.
async fn served(s: &TestServer) -> String {
    let r = s.raw("GET", "/api/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    serde_json::to_string_pretty(&r.body).unwrap() + "\n"
}

#[tokio::test]
async fn the_checked_in_document_is_the_served_one() {
    let s = TestServer::start().await;
    let doc = served(&s).await;
    if std::env::var_os("TOLLGATE_UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &doc).unwrap();
        return;
    }
    let file = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        file == doc,
        "sdk/openapi.json is stale: run `TOLLGATE_UPDATE_OPENAPI=1 cargo test -p admin-service \
         --test api openapi` and regenerate the TypeScript types (sdk/typescript: npm run generate)"
    );
}

#[tokio::test]
async fn bodies_and_errors_are_typed() {
    let s = TestServer::start().await;
    let doc: Value = serde_json::from_str(&served(&s).await).unwrap();
    let create = &doc["paths"]["/api/organizations/{id}/keys"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateKey"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/KeyView"
    );
    assert_eq!(
        create["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    // The error's field is null when no field is at fault, and the schema says so.
    let field = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["field"];
    assert!(field.to_string().contains("null"), "{field}");
    let r = s
        .raw("GET", "/api/organizations/org_nope", None, None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["field"], Value::Null);
    // Currencies in paths are the supported list, exactly.
    let params = &doc["paths"]["/api/fx-rates/{from}/{to}"]["put"]["parameters"];
    let want = format!(
        "^({})$",
        admin_service::billing::money::CURRENCIES.join("|")
    );
    for p in params.as_array().unwrap() {
        assert_eq!(p["schema"]["pattern"], want.as_str(), "{p}");
    }
}

#[tokio::test]
async fn json_numbers_are_read_as_json_defines_them() {
    let s = TestServer::start().await;
    let org = s.org("Numbers").await;
    // 100.0 is the integer 100 in JSON; 999999999999.9999 is exact, not rounded up
    // into "too large".
    let key = s
        .post(
            &format!("/api/organizations/{org}/keys"),
            json!({"name": "n", "rate_limit_rpm": 100.0,
                   "budget": {"limit": 999999999999.9999, "period": "monthly"}}),
        )
        .await
        .expect(201);
    assert_eq!(key["rate_limit_rpm"], 100);
    assert_eq!(key["budget"]["limit"], "999999999999.9999");
    // A fraction is still not an integer, and a limit past 2^53 - 1 is refused.
    s.post(
        &format!("/api/organizations/{org}/keys"),
        json!({"name": "n", "rate_limit_rpm": 100.5}),
    )
    .await
    .err(422, "rate_limit_rpm");
    s.post(
        &format!("/api/organizations/{org}/keys"),
        json!({"name": "n", "rate_limit_tpd": 9_007_199_254_740_992_u64}),
    )
    .await
    .err(422, "rate_limit_tpd");
    // Money is exact text: no padding, no more places than the unit has.
    s.post(
        &format!("/api/organizations/{org}/keys"),
        json!({"name": "n", "budget": {"limit": " 5.00", "period": "monthly"}}),
    )
    .await
    .err(422, "budget.limit");
}
