//! `application/x-www-form-urlencoded` bodies with repeated fields (`lists=a&lists=b`),
//! as the HTML forms post them.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Largest form body accepted (a CSV upload uses its own limit).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<FormData, Response> {
        let body = Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        if body.len() > MAX_FORM_BYTES {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response());
        }
        Ok(FormData::parse(&body))
    }
}
