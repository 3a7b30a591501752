//! Commands on SQLite and PostgreSQL: an `Idempotency-Key` gets its first response back
//! without a second append, a key reused for another request is refused with 422, a refused
//! command leaves nothing behind, and version conflicts between concurrent commands are
//! retried. The last test goes through a real HTTP server.

mod journal_support;

use eventmart_runtime::on_both_engines;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use eventmart_runtime::command::{
    Accepted, CommandError, CommandResponse, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, PositionToken,
    idempotency_key, run_command,
};
use eventmart_runtime::db::Engine;
use eventmart_runtime::journal::{ExpectedVersion, Journal};
use journal_support::{journal, restocked};
use serde_json::{Value, json};
use uuid::Uuid;

/// Restocks `quantity` of `product` (expecting any version), counting how often it runs.
async fn restock(
    journal: &Journal,
    key: Option<&str>,
    product: Uuid,
    quantity: i32,
    runs: &Arc<AtomicUsize>,
) -> Result<CommandResponse, CommandError> {
    let fingerprint = json!({ "product_id": product, "quantity": quantity }).to_string();
    run_command(journal, key, fingerprint.as_bytes(), |tx| {
        let journal = journal.clone();
        let runs = runs.clone();
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let appended = journal
                .append(
                    tx,
                    &product.to_string(),
                    ExpectedVersion::Any,
                    vec![restocked(product, quantity)],
                )
                .await?;
            Ok(
                Accepted::created(json!({ "product_id": product, "version": appended.version }))
                    .appended(&appended),
            )
        })
    })
    .await
}

async fn events_of(journal: &Journal, product: Uuid) -> usize {
    let mut conn = journal.db().pool.acquire().await.unwrap();
    journal
        .load(&mut conn, &product.to_string())
        .await
        .unwrap()
        .len()
}

async fn a_repeated_key_gets_the_first_response_and_appends_once(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let runs = Arc::new(AtomicUsize::new(0));
    let key = Uuid::new_v4().to_string();

    let first = restock(&journal, Some(&key), product, 5, &runs)
        .await
        .unwrap();
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed);
    assert_eq!(first.event_ids.len(), 1);
    assert_eq!(first.body["version"], 1);
    assert_eq!(
        first.body["position"],
        PositionToken::encode(&first.event_ids)
    );

    let again = restock(&journal, Some(&key), product, 5, &runs)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(again.event_ids, first.event_ids);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the command ran once");
    assert_eq!(events_of(&journal, product).await, 1);
}

async fn a_key_reused_for_another_request_is_refused(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let runs = Arc::new(AtomicUsize::new(0));
    let key = Uuid::new_v4().to_string();
    restock(&journal, Some(&key), product, 5, &runs)
        .await
        .unwrap();

    let err = restock(&journal, Some(&key), product, 6, &runs)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CommandError::IdempotencyKeyReused { key: k } if *k == key),
        "{err:?}"
    );
    let response = err.into_response();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "idempotency_key_reused");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{body}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(events_of(&journal, product).await, 1);
}

async fn without_a_key_every_request_is_a_new_command(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let runs = Arc::new(AtomicUsize::new(0));
    let first = restock(&journal, None, product, 5, &runs).await.unwrap();
    let second = restock(&journal, None, product, 5, &runs).await.unwrap();
    assert_ne!(first.event_ids, second.event_ids);
    assert_eq!(second.body["version"], 2);
    assert_eq!(events_of(&journal, product).await, 2);
}

async fn a_refused_command_leaves_nothing_and_its_key_can_be_retried(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let key = Uuid::new_v4().to_string();
    let refused = run_command(&journal, Some(&key), b"restock", |tx| {
        let journal = journal.clone();
        Box::pin(async move {
            // It appends, then is refused: the append must not survive.
            journal
                .append(
                    tx,
                    &product.to_string(),
                    ExpectedVersion::Any,
                    vec![restocked(product, 1)],
                )
                .await?;
            Err(CommandError::rejected("closed", "the warehouse is closed"))
        })
    })
    .await
    .unwrap_err();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(events_of(&journal, product).await, 0);
    assert_eq!(journal.unpublished().await.unwrap(), 0);

    // The refused command did not keep the key, so any request may use it now.
    let runs = Arc::new(AtomicUsize::new(0));
    let retried = restock(&journal, Some(&key), product, 1, &runs)
        .await
        .unwrap();
    assert!(!retried.replayed);
    assert_eq!(events_of(&journal, product).await, 1);
}

async fn concurrent_repeats_of_one_key_run_the_command_once(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let runs = Arc::new(AtomicUsize::new(0));
    let key = Uuid::new_v4().to_string();
    let requests = (0..6).map(|_| {
        let (journal, runs, key) = (journal.clone(), runs.clone(), key.clone());
        tokio::spawn(async move { restock(&journal, Some(&key), product, 3, &runs).await })
    });
    let responses: Vec<CommandResponse> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(responses.iter().filter(|r| !r.replayed).count(), 1);
    assert!(responses.iter().all(|r| r.body == responses[0].body));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(events_of(&journal, product).await, 1);
}

/// Three commands decide on the same version at once; the losers of each race run again on
/// the new state, so all three succeed.
async fn commands_that_meet_a_version_conflict_run_again(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let runs = Arc::new(AtomicUsize::new(0));
    let commands = (0..3).map(|_| {
        let (journal, runs) = (journal.clone(), runs.clone());
        tokio::spawn(async move {
            run_command(&journal, None, b"", |tx| {
                let (journal, runs) = (journal.clone(), runs.clone());
                Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let id = product.to_string();
                    let version = journal.version(tx, &id).await?;
                    let appended = journal
                        .append(
                            tx,
                            &id,
                            ExpectedVersion::Exactly(version),
                            vec![restocked(product, 1)],
                        )
                        .await?;
                    Ok(Accepted::ok(json!({ "version": appended.version })).appended(&appended))
                })
            })
            .await
        })
    });
    let mut versions: Vec<u64> = futures::future::join_all(commands)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().body["version"].as_u64().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3]);
    assert!(runs.load(Ordering::SeqCst) >= 3);
}

/// The whole path over HTTP: header in, stored response out, replay marked.
async fn over_http_a_repeated_key_is_answered_from_the_store(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();

    async fn handler(
        State(journal): State<Journal>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> Result<CommandResponse, CommandError> {
        let request: Value =
            serde_json::from_slice(&body).map_err(|e| CommandError::Invalid(e.to_string()))?;
        let product: Uuid = request["product_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CommandError::Invalid("product_id must be a UUID".to_owned()))?;
        let quantity = request["quantity"].as_i64().unwrap_or(1) as i32;
        let key = idempotency_key(&headers)?;
        run_command(&journal, key, &body, |tx| {
            let journal = journal.clone();
            Box::pin(async move {
                let appended = journal
                    .append(
                        tx,
                        &product.to_string(),
                        ExpectedVersion::Any,
                        vec![restocked(product, quantity)],
                    )
                    .await?;
                Ok(Accepted::created(json!({ "product_id": product })).appended(&appended))
            })
        })
        .await
    }

    let app = axum::Router::new()
        .route("/restock", post(handler))
        .with_state(journal.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/restock", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let product = Uuid::now_v7();
    let body = json!({ "product_id": product, "quantity": 4 });
    let send = |body: Value, key: &str| {
        client
            .post(&url)
            .header(IDEMPOTENCY_KEY, key)
            .json(&body)
            .send()
    };

    let first = send(body.clone(), "key-1").await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get(IDEMPOTENT_REPLAYED).is_none());
    let first: Value = first.json().await.unwrap();

    let again = send(body.clone(), "key-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()[IDEMPOTENT_REPLAYED], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);

    let other = send(json!({ "product_id": product, "quantity": 5 }), "key-1")
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.unwrap();
    assert!(
        other["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{other}"
    );

    let bad_key = send(body.clone(), "").await.unwrap();
    assert_eq!(bad_key.status(), 400);

    // The position names exactly the events the journal holds for the command.
    let token = PositionToken::decode(first["position"].as_str().unwrap()).unwrap();
    let mut conn = journal.db().pool.acquire().await.unwrap();
    let stored = journal.load(&mut conn, &product.to_string()).await.unwrap();
    let stored_ids: Vec<Uuid> = stored.iter().map(|e| e.envelope.event_id).collect();
    assert_eq!(token.event_ids(), stored_ids);
    assert_eq!(first["event_ids"], json!([stored_ids[0].to_string()]));
    server.abort();
}

on_both_engines!(
    a_repeated_key_gets_the_first_response_and_appends_once,
    a_key_reused_for_another_request_is_refused,
    without_a_key_every_request_is_a_new_command,
    a_refused_command_leaves_nothing_and_its_key_can_be_retried,
    concurrent_repeats_of_one_key_run_the_command_once,
    commands_that_meet_a_version_conflict_run_again,
    over_http_a_repeated_key_is_answered_from_the_store,
);
