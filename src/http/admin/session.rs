//! Admin login, logout and the session behind every other admin page. The cookie holds
//! 256 random bits; the store keeps only their SHA-256, so a leaked database holds no
//! usable session. Each session has its own CSRF token, required in every POSTed form.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::super::form::FormData;
use super::super::{ApiError, AppState, RouteTable};
use crate::domain::admin::{Username, decoy_hash, verify_password};

const COOKIE: &str = "bantin_admin";
const SESSION_HOURS: i64 = 12;
const LOGIN_PATH: &str = "/admin/login";

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.route(LOGIN_PATH, get(login_page).post(login)).route("/admin/logout", post(logout))
}

/// A request with a live admin session.
pub(crate) struct Admin {
    pub username: String,
    pub csrf_token: String,
    session_hash: String,
}

impl Admin {
    /// The name written to the audit log.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.username)
    }

    /// `Forbidden` unless `presented` is this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        let presented = presented.unwrap_or_default();
        if bool::from(presented.as_bytes().ct_eq(self.csrf_token.as_bytes())) && !presented.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("the form's CSRF token is missing or wrong: reload the page and try again".into()))
        }
    }
}

fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Unexpected(anyhow::anyhow!("no randomness from the OS: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn session_hash(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

fn cookie_header(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.base_url.starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Max-Age={max_age}; Path=/admin; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    /// Anonymous requests (no cookie, an unknown or expired session) go to the login page.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, Response> {
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Err(Redirect::to(LOGIN_PATH).into_response());
        };
        let hash = session_hash(cookie);
        match state.store.session(&hash, Utc::now()).await {
            Ok(Some(session)) => {
                Ok(Admin { username: session.username, csrf_token: session.csrf_token, session_hash: hash })
            }
            Ok(None) => Err(Redirect::to(LOGIN_PATH).into_response()),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

/// A POSTed admin form whose CSRF token (field `csrf`) matched the session's.
pub(super) struct AdminForm {
    pub admin: Admin,
    pub form: FormData,
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<AdminForm, Response> {
        let (mut parts, body) = request.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let form = FormData::from_request(Request::from_parts(parts, body), state).await?;
        admin.check_csrf(form.get("csrf")).map_err(IntoResponse::into_response)?;
        Ok(AdminForm { admin, form })
    }
}

async fn login_page(State(state): State<AppState>) -> Response {
    super::framed_page(&state, "web/admin/login.html", StatusCode::OK, json!({}))
}

fn login_failed(state: &AppState, status: StatusCode, message_key: &str, username: &str) -> Response {
    let context = json!({"error": {"message": super::text(state, message_key)}, "username": username});
    super::framed_page(state, "web/admin/login.html", status, context)
}

async fn login(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, form: FormData) -> Response {
    let typed = form.text("username");
    let ip_key = format!("ip:{}", peer.ip());
    let user_key = format!("user:{}", typed.trim());
    let throttle = &state.throttles.login;
    if throttle.is_blocked(&ip_key) || throttle.is_blocked(&user_key) {
        return login_failed(&state, StatusCode::TOO_MANY_REQUESTS, "admin_login_throttled", typed);
    }
    let password = form.text("password").to_owned();
    let account = match Username::parse(typed) {
        Ok(username) => match state.store.admin(username.as_str()).await {
            Ok(account) => account,
            Err(e) => return ApiError::from(e).into_response(),
        },
        Err(_) => None,
    };
    // An unknown username is checked against a decoy hash: same answer, same work.
    let stored = account.as_ref().map_or_else(|| decoy_hash().to_owned(), |a| a.password_hash.clone());
    let matches = match tokio::task::spawn_blocking(move || verify_password(&password, &stored)).await {
        Ok(matches) => matches,
        Err(e) => return ApiError::Unexpected(e.into()).into_response(),
    };
    let Some(account) = account.filter(|_| matches) else {
        throttle.allow(&ip_key);
        throttle.allow(&user_key);
        tracing::info!(ip = %peer.ip(), "admin login failed");
        return login_failed(&state, StatusCode::UNAUTHORIZED, "admin_login_failed", typed);
    };
    throttle.reset(&user_key);
    match start_session(&state, account.id).await {
        Ok(cookie) => {
            state
                .audience
                .audit(
                    &format!("admin:{}", account.username),
                    "login",
                    &account.username,
                    json!({"ip": peer.ip().to_string()}),
                )
                .await;
            let mut response = Redirect::to("/admin").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie_header(&state, &cookie, SESSION_HOURS * 3600));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Stores a new session and returns the cookie value.
async fn start_session(state: &AppState, admin_id: i64) -> Result<String, ApiError> {
    let cookie = random_token()?;
    let csrf = random_token()?;
    let now = Utc::now();
    state
        .store
        .create_session(&session_hash(&cookie), admin_id, &csrf, now, now + Duration::hours(SESSION_HOURS))
        .await?;
    Ok(cookie)
}

async fn logout(State(state): State<AppState>, AdminForm { admin, .. }: AdminForm) -> Result<Response, ApiError> {
    state.store.delete_session(&admin.session_hash).await?;
    state.audience.audit(&admin.actor(), "logout", &admin.username, json!({})).await;
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie_header(&state, "", 0));
    Ok(response)
}
