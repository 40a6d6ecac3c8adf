//! The admin web UI as one browser sees it: a session cookie kept by hand, the CSRF
//! token read from the page, redirects not followed.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::TestApp;
use bantin::domain::admin::hash_password;

pub const USERNAME: &str = "lan";
pub const PASSWORD: &str = "mật khẩu đủ dài";

/// One browser: no redirects followed, the session cookie kept by hand (the test base
/// URL is https, so the cookie is Secure and a cookie jar would not send it over http).
pub struct Browser {
    address: String,
    client: reqwest::Client,
    /// The session cookie's value; a test may forge one.
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> String {
        let start = self.body.find("name=\"csrf\" value=\"").expect("a form with a CSRF field") + 19;
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { address: app.address.clone(), client, cookie: None }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("Cookie", format!("bantin_admin={cookie}")),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let value = set.split(';').next().unwrap().trim_start_matches("bantin_admin=");
            self.cookie = (!value.is_empty()).then(|| value.to_owned());
        }
        Page { status, headers, body: response.text().await.unwrap_or_default() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.address));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.address)).form(fields);
        self.send(request).await
    }

    /// A multipart upload, built by hand: `fields` then one file.
    pub async fn upload(&mut self, path: &str, fields: &[(&str, &str)], file: (&str, &[u8])) -> Page {
        let boundary = "bantin-test-boundary-7f3a";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n",
                file.0
            )
            .as_bytes(),
        );
        body.extend_from_slice(file.1);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        self.send(request).await
    }

    pub async fn login(&mut self, username: &str, password: &str) -> Page {
        self.post("/admin/login", &[("username", username), ("password", password)]).await
    }

    /// The CSRF token of the logged-in session, read from a page.
    pub async fn csrf(&mut self) -> String {
        self.get("/admin").await.csrf()
    }
}

/// Creates the admin account [`logged_in`] uses.
pub async fn add_admin(app: &TestApp) {
    let hash = hash_password(PASSWORD).unwrap();
    app.store.create_admin(USERNAME, &hash, chrono::Utc::now()).await.unwrap();
}

pub async fn logged_in(app: &TestApp) -> Browser {
    let mut browser = Browser::new(app);
    let page = browser.login(USERNAME, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}
