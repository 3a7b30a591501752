//! Bad input at every service's edge gets a 4xx with a JSON body naming the field, unknown
//! ids get 404, and nothing is changed or lost.

use eventmart_runtime::db::Engine;
use eventmart_system::{Answer, Settings, StatusCode, System};
use serde_json::json;
use uuid::Uuid;

fn assert_field(answer: &Answer, status: StatusCode, field: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"], "invalid", "{body}");
    assert!(
        body["field"].as_str().is_some_and(|f| f.starts_with(field)),
        "the body names {field}: {body}"
    );
}

fn assert_error(answer: &Answer, status: StatusCode, error: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_refuses_bad_input_naming_the_field() -> anyhow::Result<()> {
    let system = System::start(Settings::new(Engine::Sqlite)).await?;
    let unknown = Uuid::now_v7();

    // users
    let bad_email = json!({"email": "not-an-address", "name": "Al"});
    assert_field(
        &system.post("users", "/users", &bad_email).await?,
        StatusCode::BAD_REQUEST,
        "email",
    );
    let no_name = json!({"email": "al@example.com"});
    assert_field(
        &system.post("users", "/users", &no_name).await?,
        StatusCode::BAD_REQUEST,
        "name",
    );
    assert_error(
        &system.post_raw("users", "/users", "{not json").await?,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
    assert_error(
        &system.get("users", &format!("/users/{unknown}")).await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    system.register_user("al@example.com").await?;
    let taken = json!({"email": " AL@example.com ", "name": "Other Al"});
    assert_error(
        &system.post("users", "/users", &taken).await?,
        StatusCode::CONFLICT,
        "email_taken",
    );

    // catalog
    let free_price =
        json!({"sku": "FREE-1", "name": "Free", "price": {"cents": -5, "currency": "EUR"}});
    assert_field(
        &system.post("catalog", "/products", &free_price).await?,
        StatusCode::BAD_REQUEST,
        "price",
    );
    let bad_currency =
        json!({"sku": "X-1", "name": "X", "price": {"cents": 5, "currency": "euro"}});
    assert_field(
        &system.post("catalog", "/products", &bad_currency).await?,
        StatusCode::BAD_REQUEST,
        "price",
    );
    assert_error(
        &system
            .get("catalog", &format!("/products/{unknown}"))
            .await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let product = system.create_product("REAL-1", 1000).await?;

    // inventory
    let zero = json!({"quantity": 0});
    assert_field(
        &system
            .post("inventory", &format!("/stock/{product}/restock"), &zero)
            .await?,
        StatusCode::BAD_REQUEST,
        "quantity",
    );
    assert_field(
        &system
            .post(
                "inventory",
                "/stock/not-a-uuid/restock",
                &json!({"quantity": 1}),
            )
            .await?,
        StatusCode::BAD_REQUEST,
        "product_id",
    );
    assert_error(
        &system
            .post(
                "inventory",
                &format!("/stock/{unknown}/restock"),
                &json!({"quantity": 1}),
            )
            .await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    system.restock(product, 2).await?;
    let too_much = json!({"delta": -3, "reason": "broken"});
    assert_error(
        &system
            .post("inventory", &format!("/stock/{product}/adjust"), &too_much)
            .await?,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_stock",
    );

    // orders
    let user = system.register_user("bea@example.com").await?;
    let no_lines = json!({"user_id": user, "lines": []});
    assert_field(
        &system.post("orders", "/orders", &no_lines).await?,
        StatusCode::BAD_REQUEST,
        "lines",
    );
    let zero_quantity = json!({"user_id": user, "lines": [{"product_id": product, "quantity": 0}]});
    assert_field(
        &system.post("orders", "/orders", &zero_quantity).await?,
        StatusCode::BAD_REQUEST,
        "lines[0].quantity",
    );
    let bad_user = json!({"user_id": "someone", "lines": [{"product_id": product, "quantity": 1}]});
    assert_field(
        &system.post("orders", "/orders", &bad_user).await?,
        StatusCode::BAD_REQUEST,
        "user_id",
    );
    let stranger = json!({"user_id": unknown, "lines": [{"product_id": product, "quantity": 1}]});
    assert_error(
        &system.post("orders", "/orders", &stranger).await?,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_user",
    );
    assert_error(
        &system.get("orders", &format!("/orders/{unknown}")).await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &system
            .post("orders", &format!("/orders/{unknown}/cancel"), &json!(null))
            .await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // payments
    assert_field(
        &system.get("payments", "/payments/nope").await?,
        StatusCode::BAD_REQUEST,
        "order_id",
    );
    assert_error(
        &system
            .get("payments", &format!("/payments/{unknown}"))
            .await?,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // Nothing refused left a trace: the stock is as restocked.
    let (_, stock) = system
        .get("inventory", &format!("/stock/{product}"))
        .await?;
    assert_eq!(stock["available"], 2, "{stock}");
    Ok(())
}

/// A control character (here U+0000, which PostgreSQL's JSON cannot hold) in any text is
/// refused the same way on both engines: a 400 naming the field at the API, a dead letter
/// naming the field when typed into kcat.
async fn control_characters_are_refused_alike_on_both_engines(
    engine: Engine,
) -> anyhow::Result<()> {
    let system = System::start(Settings::new(engine)).await?;
    let nul = json!({"email": "nul@example.com", "name": "Ki\u{0}m"});
    assert_field(
        &system.post("users", "/users", &nul).await?,
        StatusCode::BAD_REQUEST,
        "name",
    );
    let bell =
        json!({"sku": "BELL-1", "name": "Bell\u{7}", "price": {"cents": 100, "currency": "EUR"}});
    assert_field(
        &system.post("catalog", "/products", &bell).await?,
        StatusCode::BAD_REQUEST,
        "name",
    );
    let user = Uuid::now_v7();
    let typed = json!({"event_type": "user.registered", "user_id": user,
        "email": "typed@example.com", "name": "Ty\u{0}ped", "registered_at": "2026-12-01T10:00:00Z"});
    system
        .kcat_produce(
            eventmart_events::Topic::Users,
            true,
            &format!("{user}:{typed}\n"),
        )
        .await?;
    let letters = eventmart_runtime::testing::wait_for(
        "both consumers of users to dead-letter it",
        std::time::Duration::from_secs(60),
        || async {
            let letters = system
                .dead_letters(eventmart_events::Topic::Users)
                .await
                .ok()?;
            (letters.len() >= 2).then_some(letters)
        },
    )
    .await?;
    for letter in &letters {
        assert_eq!(letter.error_kind, "schema_invalid", "{letter:?}");
        assert!(letter.error_message.contains("name"), "{letter:?}");
    }
    Ok(())
}

eventmart_runtime::on_both_engines!(control_characters_are_refused_alike_on_both_engines);
