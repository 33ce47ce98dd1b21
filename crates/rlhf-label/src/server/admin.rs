//! The admin API (admin token): progress, raters, agreement, standings, new raters, export.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth::AdminAuth;
use super::errors::ApiError;
use super::rater::{body_or_error, json_object};
use super::{AppState, blocking};
use crate::export::{ExportFormat, export as export_bytes};
use crate::stats;

/// `GET /api/admin/progress`.
pub async fn progress(State(state): State<AppState>, _: AdminAuth) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let target = state.config.target_per_task;
    let report = blocking(move || Ok(stats::progress(&store.snapshot()?, target))).await?;
    Ok(Json(report).into_response())
}

/// `GET /api/admin/raters`.
pub async fn raters(State(state): State<AppState>, _: AdminAuth) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let report = blocking(move || Ok(stats::rater_reports(&store.snapshot()?))).await?;
    Ok(Json(report).into_response())
}

/// `GET /api/admin/agreement`.
pub async fn agreement(State(state): State<AppState>, _: AdminAuth) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let report = blocking(move || Ok(stats::agreement_summary(&store.snapshot()?))).await?;
    Ok(Json(report).into_response())
}

/// `GET /api/admin/standings`.
pub async fn standings(State(state): State<AppState>, _: AdminAuth) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let report = blocking(move || Ok(stats::standings(&store.snapshot()?))).await?;
    Ok(Json(report).into_response())
}

/// `POST /api/admin/raters` `{"name"}` -> `{"rater_id", "token"}`.
pub async fn add_rater(
    State(state): State<AppState>,
    _: AdminAuth,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let map = json_object(&body_or_error(body)?)?;
    let name = match map.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::field(
                "name",
                "expected the rater's name (a string)",
            ));
        }
    };
    let store = state.store.clone();
    let rater = blocking(move || store.add_rater(&name)).await?;
    Ok(Json(rater).into_response())
}

/// `GET /api/admin/export?format=hh|trl|labels-csv|kway[&include_gold=true]`.
pub async fn export(
    State(state): State<AppState>,
    _: AdminAuth,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let name = query
        .get("format")
        .ok_or_else(|| ApiError::field("format", "expected one of hh, trl, labels-csv, kway"))?;
    let format = ExportFormat::from_name(name)?;
    let include_gold = match query.get("include_gold").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::field("include_gold", "expected true or false")),
    };
    let store = state.store.clone();
    let bytes = blocking(move || export_bytes(&store.snapshot()?, format, include_gold)).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", format.file_name()))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
