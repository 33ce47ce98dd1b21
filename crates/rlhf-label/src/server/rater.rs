//! The rater API: `GET /api/me`, `GET /api/task/next`, `POST /api/label`.
//! Task JSON never says whether a task is gold; text goes out as JSON strings only.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::RaterAuth;
use super::errors::ApiError;
use super::{AppState, blocking};
use crate::store::assign::{Assignment, NextTask};
use crate::store::labels::{Submission, Violation};

/// `GET /api/me`.
pub async fn me(
    State(state): State<AppState>,
    RaterAuth(rater): RaterAuth,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let me = blocking(move || store.rater_self(rater)).await?;
    Ok(Json(me).into_response())
}

/// The task as the rater sees it.
pub fn task_json(assignment: &Assignment, state: &AppState) -> Value {
    let spec = &assignment.task.spec;
    json!({
        "assignment_id": format!("a-{}", assignment.id),
        "task": {
            "task_id": format!("t-{}", assignment.task.id),
            "prompt": spec.prompt_text(),
            "mode": spec.mode.as_str(),
            "responses": spec.responses.iter().enumerate()
                .map(|(index, text)| json!({"index": index, "text": text}))
                .collect::<Vec<_>>(),
            "questions": spec.questions,
            "rules": spec.rules,
        },
        "instructions": state.config.instructions,
        "examples": state.config.examples,
        "progress": assignment.progress,
    })
}

/// `GET /api/task/next`: 200 with a task, 204 when none is left, 403 when screened out.
pub async fn next_task(
    State(state): State<AppState>,
    RaterAuth(rater): RaterAuth,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let config = state.config.clone();
    match blocking(move || store.next_task(rater, &config)).await? {
        NextTask::Assigned(a) => Ok(Json(task_json(&a, &state)).into_response()),
        NextTask::Done => Ok(StatusCode::NO_CONTENT.into_response()),
        NextTask::ScreenedOut => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "you receive no more tasks: your answers on check items fell below the quality rule",
        )
        .with("status", "screened_out")),
    }
}

/// A request body, or the reason it was refused (413 over the limit).
pub fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body over {} KiB", super::BODY_LIMIT / 1024)
        } else {
            format!("cannot read the request body: {}", rejection.body_text())
        };
        ApiError::new(status, message)
    })
}

/// A JSON object body.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::field("(body)", "expected a JSON object")),
        Err(e) => Err(ApiError::field("(body)", format!("malformed JSON: {e}"))),
    }
}

fn index(value: &Value, field: &str) -> Result<usize, ApiError> {
    value
        .as_u64()
        .filter(|&v| v <= 1 << 20)
        .map(|v| v as usize)
        .ok_or_else(|| {
            ApiError::field(
                field,
                "expected a response index (a small non-negative integer)",
            )
        })
}

/// Reads a `POST /api/label` body (types only; the task's rules are checked by the store).
pub fn parse_submission(map: &Map<String, Value>) -> Result<Submission, ApiError> {
    let assignment_id = match map.get("assignment_id") {
        Some(Value::String(s)) => s
            .strip_prefix("a-")
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| ApiError::field("assignment_id", "expected `a-<number>`"))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::field("assignment_id", "expected `a-<number>`"))?,
        _ => {
            return Err(ApiError::field(
                "assignment_id",
                "expected `a-<number>` (missing or wrong type)",
            ));
        }
    };
    let ranking = match map.get("ranking") {
        Some(Value::Array(items)) if items.len() <= 64 => items
            .iter()
            .enumerate()
            .map(|(i, v)| index(v, &format!("ranking[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(ApiError::field(
                "ranking",
                "expected a list of response indices, best first",
            ));
        }
    };
    let mut answers = BTreeMap::new();
    match map.get("answers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(obj)) => {
            for (k, v) in obj {
                match v {
                    Value::String(s) => {
                        answers.insert(k.clone(), s.clone());
                    }
                    _ => {
                        return Err(ApiError::field(
                            format!("answers.{k}"),
                            "expected one of the question's choices (a string)",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(ApiError::field(
                "answers",
                "expected an object {question id: choice}",
            ));
        }
    }
    let mut violations = Vec::new();
    match map.get("violations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() <= 1024 => {
            for (i, v) in items.iter().enumerate() {
                let obj = v.as_object().ok_or_else(|| {
                    ApiError::field(
                        format!("violations[{i}]"),
                        "expected {\"response\", \"rule\"}",
                    )
                })?;
                let response = index(
                    obj.get("response").unwrap_or(&Value::Null),
                    &format!("violations[{i}].response"),
                )?;
                let rule = obj
                    .get("rule")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::field(format!("violations[{i}].rule"), "expected a rule id")
                    })?
                    .to_string();
                violations.push(Violation { response, rule });
            }
        }
        Some(_) => {
            return Err(ApiError::field(
                "violations",
                "expected a list of {\"response\", \"rule\"}",
            ));
        }
    }
    let note = match map.get("note") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::field("note", "expected a string")),
    };
    Ok(Submission {
        assignment_id,
        ranking,
        answers,
        violations,
        note,
    })
}

/// `POST /api/label`: 200 `{"label_id", "duplicate"}` once committed.
pub async fn label(
    State(state): State<AppState>,
    RaterAuth(rater): RaterAuth,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body_or_error(body)?;
    let submission = parse_submission(&json_object(&bytes)?)?;
    let store = state.store.clone();
    let config = state.config.clone();
    let submitted = blocking(move || store.submit(rater, &submission, &config)).await?;
    Ok(Json(submitted).into_response())
}
