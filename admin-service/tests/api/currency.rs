//! Money in the right currency: catalog prices carry a currency, an org in another
//! currency is priced at the platform's exchange rate, and no write may leave a
//! priced model without a rate into some org's currency.

use serde_json::json;

use crate::common::TestServer;
use policy::OrgRecord;

/// The compiled price of `model` in `org`'s record: (input, output) micros per 1M.
async fn compiled_price(s: &TestServer, org: &str, model: &str) -> Option<(u64, u64)> {
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(org)).await.unwrap();
    rec.prices
        .iter()
        .find(|p| p.model.as_str() == model)
        .map(|p| (p.input_per_mtok_micros, p.output_per_mtok_micros))
}

#[tokio::test]
async fn a_price_in_another_currency_compiles_at_the_exchange_rate() {
    let s = TestServer::start().await;
    let org = s
        .post(
            "/api/organizations",
            json!({"name": "Euro client", "currency": "EUR"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // No USD→EUR rate yet: a USD price would be mixed into a EUR org. Refused, not stored.
    let before = s.snapshot().await;
    s.post(
        "/api/models",
        json!({"name": "gpt-usd", "input_price_per_1m": "2.50", "output_price_per_1m": "10.00"}),
    )
    .await
    .err(409, "currency");
    assert_eq!(s.snapshot().await, before);
    s.get("/api/models/gpt-usd").await.expect(404);

    let r = s
        .put("/api/fx-rates/USD/EUR", json!({"rate": "0.92"}))
        .await
        .ok();
    assert_eq!(
        (&r["from"], &r["to"], &r["rate"]),
        (&json!("USD"), &json!("EUR"), &json!("0.92"))
    );
    let m = s
        .post(
            "/api/models",
            json!({"name": "gpt-usd", "input_price_per_1m": "2.50", "output_price_per_1m": "10.00"}),
        )
        .await
        .ok();
    assert_eq!(m["currency"], "USD");
    assert_eq!(
        compiled_price(&s, &org, "gpt-usd").await,
        Some((2_300_000, 9_200_000))
    );

    // A new rate reprices from now on; a model priced in the org's own currency is as set.
    s.put("/api/fx-rates/USD/EUR", json!({"rate": "1.5"}))
        .await
        .ok();
    assert_eq!(
        compiled_price(&s, &org, "gpt-usd").await,
        Some((3_750_000, 15_000_000))
    );
    // Every org needs a rate: the internal org bills in USD.
    let eur_model = json!({"name": "mistral-eur", "input_price_per_1m": "1.00", "currency": "EUR"});
    s.post("/api/models", eur_model.clone())
        .await
        .err(409, "currency");
    s.put("/api/fx-rates/EUR/USD", json!({"rate": "1.08"}))
        .await
        .ok();
    s.post("/api/models", eur_model).await.ok();
    assert_eq!(
        compiled_price(&s, &org, "mistral-eur").await,
        Some((1_000_000, 0))
    );
    let internal: Vec<String> = s
        .get("/api/organizations")
        .await
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["currency"] == "USD")
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        compiled_price(&s, &internal[0], "mistral-eur").await,
        Some((1_080_000, 0))
    );
    let rates = s.get("/api/fx-rates").await.ok();
    let pairs: Vec<(&str, &str, &str)> = rates
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["from"].as_str().unwrap(),
                r["to"].as_str().unwrap(),
                r["rate"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, [("EUR", "USD", "1.08"), ("USD", "EUR", "1.5")]);
}

#[tokio::test]
async fn no_write_may_leave_a_priced_model_without_a_rate() {
    let s = TestServer::start().await;
    s.put("/api/fx-rates/USD/GBP", json!({"rate": "0.79"}))
        .await
        .ok();
    let org = s
        .post(
            "/api/organizations",
            json!({"name": "London", "currency": "GBP"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        "/api/models",
        json!({"name": "gpt-x", "input_price_per_1m": "1.00"}),
    )
    .await
    .ok();

    // Deleting the rate the London org needs, re-pricing the model in EUR, creating or
    // moving an org to a currency without a rate: each refused, nothing changed.
    let before = s.snapshot().await;
    s.delete("/api/fx-rates/USD/GBP").await.err(409, "to");
    s.patch("/api/models/gpt-x", json!({"currency": "EUR"}))
        .await
        .err(409, "currency");
    s.post(
        "/api/organizations",
        json!({"name": "Lagos", "currency": "NGN"}),
    )
    .await
    .err(409, "currency");
    s.patch(
        &format!("/api/organizations/{org}"),
        json!({"currency": "CAD"}),
    )
    .await
    .err(409, "currency");
    assert_eq!(
        s.snapshot().await,
        before,
        "a refused write stored something"
    );

    // With the rate in place the move is allowed (the org has no history yet)...
    s.put("/api/fx-rates/USD/CAD", json!({"rate": "1.37"}))
        .await
        .ok();
    let o = s
        .patch(
            &format!("/api/organizations/{org}"),
            json!({"currency": "CAD"}),
        )
        .await
        .ok();
    assert_eq!(o["currency"], "CAD");
    // ...and an unused rate may go.
    s.delete("/api/fx-rates/USD/GBP").await.expect(204);
    // Once agents bill in it, the currency is fixed: rates were set in it.
    s.agent(&org, "bot").await;
    s.patch(
        &format!("/api/organizations/{org}"),
        json!({"currency": "USD"}),
    )
    .await
    .err(409, "currency");
}

#[tokio::test]
async fn exchange_rates_are_validated() {
    let s = TestServer::start().await;
    s.put("/api/fx-rates/XYZ/USD", json!({"rate": "1"}))
        .await
        .err(422, "from");
    s.put("/api/fx-rates/USD/usd", json!({"rate": "1"}))
        .await
        .err(422, "to");
    s.put("/api/fx-rates/USD/USD", json!({"rate": "1"}))
        .await
        .err(422, "to");
    for bad in [
        json!("0"),
        json!("-1"),
        json!("1.0000001"),
        json!("abc"),
        json!(2_000_000),
    ] {
        let r = s.put("/api/fx-rates/USD/EUR", json!({"rate": bad})).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.body["error"]["field"], "rate", "{}", r.text);
    }
    s.put(
        "/api/fx-rates/USD/EUR",
        json!({"rate": "1", "inverse": true}),
    )
    .await
    .expect(422);
    s.delete("/api/fx-rates/USD/EUR").await.expect(404);
    s.post("/api/models", json!({"name": "m", "currency": "BTC"}))
        .await
        .err(422, "currency");
}
