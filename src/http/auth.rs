//! Bearer-token authentication for the API.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::domain::token::PresentedToken;

/// A request that presented a valid, unrevoked API token.
pub struct ApiClient {
    pub token_id: i64,
}

/// Compared against when the public id is unknown, so both paths do the same work.
const UNKNOWN_TOKEN_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl FromRequestParts<AppState> for ApiClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ApiClient, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized);
        }
        let presented = PresentedToken::parse(token.trim()).ok_or(ApiError::Unauthorized)?;
        match state.store.api_token_hash(&presented.public_id).await? {
            Some((token_id, hash)) if presented.matches(&hash) => Ok(ApiClient { token_id }),
            Some(_) => Err(ApiError::Unauthorized),
            None => {
                let _ = presented.matches(UNKNOWN_TOKEN_HASH);
                Err(ApiError::Unauthorized)
            }
        }
    }
}
