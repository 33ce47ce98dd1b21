//! Error responses: every 4xx/5xx carries `{"error": "<reason>"}` (plus `field` for a bad
//! field), including the ones axum produces itself (unknown route, wrong method, body too
//! large), which [`json_errors`] rewrites.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::LabelError;

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Reason a person can read.
    pub message: String,
    /// More fields of the body (`field`, `status`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// 400 naming `field`.
    pub fn field(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("field `{field}`: {reason}"),
        );
        e.extra.insert("field".into(), Value::String(field));
        e
    }

    /// Adds `key: value` to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

impl From<LabelError> for ApiError {
    fn from(error: LabelError) -> Self {
        match error {
            LabelError::Invalid { field, reason } => ApiError::field(field, reason),
            LabelError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            LabelError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            other => {
                eprintln!("rlhf-label: internal error: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".into(), Value::String(self.message));
        (self.status, Json(Value::Object(body))).into_response()
    }
}

/// Middleware step: an error response without a JSON body gets `{"error": reason}`.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let reason = match status {
        StatusCode::NOT_FOUND => "no such page or API route".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body over 64 KiB".to_string(),
        other => other
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = json!({ "error": reason }).to_string();
    Response::from_parts(parts, Body::from(body))
}
