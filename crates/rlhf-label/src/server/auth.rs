//! Bearer-token extractors: [`RaterAuth`] for the rater API, [`AdminAuth`] for the admin API.
//! Missing or unknown token: 401; the other kind of token: 403.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::errors::ApiError;
use super::{AppState, blocking};
use crate::store::Principal;

/// The authenticated rater's database id.
#[derive(Debug, Clone, Copy)]
pub struct RaterAuth(pub i64);

/// An authenticated admin request.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

/// Longest token accepted (ours are 64 hex digits).
const MAX_TOKEN: usize = 256;

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing `Authorization: Bearer <token>` header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN)
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?
        .to_string();
    let store = state.store.clone();
    blocking(move || store.authenticate(&token))
        .await?
        .ok_or_else(|| unauthorized("unknown token"))
}

impl FromRequestParts<AppState> for RaterAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match principal(parts, state).await? {
            Principal::Rater(id) => Ok(RaterAuth(id)),
            Principal::Admin => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this is the admin token; the rater API needs a rater token",
            )),
        }
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match principal(parts, state).await? {
            Principal::Admin => Ok(AdminAuth),
            Principal::Rater(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a rater token cannot use the admin API",
            )),
        }
    }
}
