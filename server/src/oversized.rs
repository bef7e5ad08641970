//! Requests whose declared body is over the limit get their `413` problem document only after
//! the body was read and dropped. Answering first and closing would cut the client off while
//! it is still sending: most clients then report a reset connection instead of the answer,
//! and a pooled connection dies under the next request.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::app::{BODY_LIMIT, body_problem};

/// Bodies up to this size are read and dropped before the `413`; larger ones are refused
/// at once, and their connection closed, rather than read.
const DRAIN_LIMIT: u64 = 16 * BODY_LIMIT as u64;

/// Answers a request over the body limit with `413`, after reading its body if it is not
/// too large to bother.
pub async fn answer(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|&d| d > BODY_LIMIT as u64) else {
        return next.run(request).await;
    };
    if declared <= DRAIN_LIMIT {
        let mut body = request.into_body();
        while let Some(Ok(_)) = body.frame().await {}
    }
    body_problem(StatusCode::PAYLOAD_TOO_LARGE, String::new()).into_response()
}
