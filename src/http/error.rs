//! One error type for every route, mapped to a status and a JSON body
//! `{"error": …, "field": …}`. Internal details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read at all (malformed JSON).
    #[error("{0}")]
    BadRequest(FieldError),
    /// Well-formed, but a field is wrong.
    #[error("{0}")]
    Invalid(FieldError),
    #[error("request body is over the limit")]
    PayloadTooLarge { limit: usize },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    /// The name or address is taken.
    #[error("{0}")]
    Conflict(String),
    /// Authenticated, but the request is refused (a missing or wrong CSRF token).
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests; try again later")]
    TooManyRequests,
    #[error("database unavailable")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(message) => ApiError::Conflict(message),
            other => ApiError::Unexpected(other.into()),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (error, field) = match &self {
            ApiError::BadRequest(e) | ApiError::Invalid(e) => (e.error.clone(), e.field.clone()),
            ApiError::PayloadTooLarge { limit } => (format!("request body is larger than {} bytes", limit), None),
            ApiError::Unauthorized => (self.to_string(), Some("Authorization".to_owned())),
            ApiError::Unexpected(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                ("internal error".to_owned(), None)
            }
            other => (other.to_string(), None),
        };
        let mut response = (status, Json(json!({ "error": error, "field": field }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
