//! The HTTP layer every service and read model answers behind, so that no API forgets a part
//! of it:
//!
//! - **A request id**: the caller's `x-request-id` when it is a sensible one (1 to 128 of
//!   `A-Z a-z 0-9 . _ -`), else a new UUID; it is on the request's log span, handed on to the
//!   handler in the request's headers, and echoed on the answer, so a client can quote it.
//! - **One access-log line per request**: method, route, status, duration, request id (at
//!   debug level for the health and metrics routes, which probes call every few seconds).
//! - **A time limit** ([`REQUEST_TIMEOUT`]): a request still running then is answered 503
//!   `timeout` (a command may still commit; retrying with its `Idempotency-Key` is safe).
//! - **A body size limit** ([`BODY_LIMIT`]): a larger body is answered 413 naming `body`.
//! - **Request metrics**: `eventmart_http_requests_total{method,route,status}` and
//!   `eventmart_http_request_duration_seconds{method,route}`, by the route's template
//!   (`/orders/{id}`), never the raw path, so that the series stay few.
//!
//! Not here: what a route does, or who may call it.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument;

use crate::metrics::Metrics;

/// The header carrying a request's id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest a request may take; above every query's own catch-up wait (5 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request body, in bytes; every command's body is a few hundred.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Routes answered for probes and scrapers: logged at debug level only.
const QUIET_ROUTES: [&str; 3] = ["/health/live", "/health/ready", "/metrics"];

/// `router` behind the layer, counting into `metrics`.
pub fn layer(router: Router, metrics: Metrics) -> Router {
    layer_with(router, metrics, REQUEST_TIMEOUT)
}

/// What the layer needs at each request.
#[derive(Debug, Clone)]
struct Settings {
    metrics: Metrics,
    timeout: Duration,
}

fn layer_with(router: Router, metrics: Metrics, timeout: Duration) -> Router {
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            Settings { metrics, timeout },
            around,
        ))
}

async fn around(State(settings): State<Settings>, mut request: Request, next: Next) -> Response {
    let Settings { metrics, timeout } = settings;
    let started = Instant::now();
    let id = request_id(request.headers());
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %method,
        route = %route,
    );
    let mut response = answer(request, next, timeout)
        .instrument(span.clone())
        .await;
    response.headers_mut().insert(REQUEST_ID, id);
    let status = response.status();
    let elapsed = started.elapsed();
    metrics.http_request(
        method.as_str(),
        &route,
        status.as_str(),
        elapsed.as_secs_f64(),
    );
    let status = status.as_u16();
    let millis = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if QUIET_ROUTES.contains(&route.as_str()) {
            tracing::debug!(status, millis, "answered");
        } else {
            tracing::info!(status, millis, "answered");
        }
    });
    response
}

/// The handler's answer, unless the body is too large or the handler too slow.
async fn answer(request: Request, next: Next, timeout: Duration) -> Response {
    if declared_length(request.headers()).is_some_and(|length| length > BODY_LIMIT) {
        return refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "payload_too_large", "field": "body",
                   "message": format!("the body is larger than {BODY_LIMIT} bytes")}),
        );
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?timeout, "request timed out");
            let message = format!(
                "the request took longer than {timeout:?}; retry it (a command with the same \
                 Idempotency-Key)"
            );
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "timeout", "message": message}),
            )
        }
    }
}

fn refusal(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The caller's request id if it is a sensible one, else a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            (1..=128).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
                .expect("a UUID is a valid header value")
        })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    use super::*;

    /// How long the test app lets a request run.
    const TIMEOUT: Duration = Duration::from_millis(200);

    fn app(metrics: &Metrics) -> Router {
        let router = Router::new()
            .route("/orders/{id}", get(|| async { "an order" }))
            .route(
                "/orders",
                post(|body: String| async move { body.len().to_string() }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(TIMEOUT * 10).await;
                    "late"
                }),
            );
        layer_with(router, metrics.clone(), TIMEOUT)
    }

    async fn send(app: Router, request: Request) -> (StatusCode, HeaderMap, String) {
        let response = app.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("a body");
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn get_request(path: &str, id: Option<&str>) -> Request {
        let mut builder = Request::get(path);
        if let Some(id) = id {
            builder = builder.header("x-request-id", id);
        }
        builder.body(Body::empty()).expect("a request")
    }

    #[tokio::test]
    async fn a_sensible_request_id_is_echoed_and_any_other_replaced() {
        let metrics = Metrics::new();
        let (status, headers, _) =
            send(app(&metrics), get_request("/orders/7", Some("abc-123_x.y"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[&REQUEST_ID], "abc-123_x.y");
        for bad in [None, Some("has space"), Some(&"x".repeat(129) as &str)] {
            let (_, headers, _) = send(app(&metrics), get_request("/orders/7", bad)).await;
            let id = headers[&REQUEST_ID].to_str().expect("text");
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{bad:?} gave {id}");
        }
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template_and_status() {
        let metrics = Metrics::new();
        for path in ["/orders/1", "/orders/2", "/nowhere"] {
            send(app(&metrics), get_request(path, None)).await;
        }
        let text = metrics.render();
        assert!(
            text.contains(
                "eventmart_http_requests_total{method=\"GET\",route=\"/orders/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("eventmart_http_request_duration_seconds_count{method=\"GET\",route=\"/orders/{id}\"} 2"),
            "{text}"
        );
        assert!(
            !text.contains("/orders/1"),
            "a raw path became a series:\n{text}"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_naming_the_body() {
        let metrics = Metrics::new();
        let request = Request::post("/orders")
            .header(header::CONTENT_LENGTH, BODY_LIMIT + 1)
            .body(Body::from(vec![b'x'; BODY_LIMIT + 1]))
            .expect("a request");
        let (status, headers, body) = send(app(&metrics), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(headers.contains_key(&REQUEST_ID));
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["field"], "body", "{body}");
        let request = Request::post("/orders")
            .body(Body::from("{}"))
            .expect("a request");
        let (status, _, body) = send(app(&metrics), request).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
    }

    #[tokio::test]
    async fn a_request_over_the_time_limit_is_answered_503_timeout() {
        let metrics = Metrics::new();
        let (status, _, body) = send(app(&metrics), get_request("/slow", None)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["error"], "timeout", "{body}");
    }
}
