//! Sign-in with a pasted API token or an emailed one-time link, server-side sessions,
//! CSRF, sign-out.
//!
//! The cookie holds a random id; the database keeps its SHA-256, the token's id (never
//! the token) and a CSRF secret. The token is checked by the API at sign-in and then
//! re-checked on every API call, so revoking it ends its sessions. A link signs in by
//! minting a user token that expires with the session and is revoked at sign-out.

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{TokenOwner, hash_secret, issue_token};
use crate::store::db::{now_ms, random_hex};
use crate::store::{members, sign_in_links, tokens, ui_sessions};
use crate::ui::client::{Api, Caller};
use crate::ui::error::UiError;
use crate::ui::form::Fields;
use crate::ui::templates::render;

/// The session cookie's name.
pub const COOKIE: &str = "tg_session";
/// How long a session lasts.
const TTL_MS: i64 = 12 * 3600 * 1000;
/// How long an emailed sign-in link works.
pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;
/// Sign-in links one email address may be sent per [`LINK_TTL_MS`].
pub const LINKS_PER_ADDRESS: u32 = 3;
/// The name of the tokens sign-in links mint.
const LINK_TOKEN_NAME: &str = "dashboard sign-in";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API token the session acts as.
    pub token_id: String,
    /// The secret its forms echo.
    pub csrf: String,
    id_hash: String,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a post comes from our own pages: browsers say so in `Sec-Fetch-Site` and
/// `Origin`; a cross-site post is refused before its CSRF token is even looked at.
fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
    }
}

/// Compares without an early exit, so timing tells nothing about the secret.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Session {
    /// 403 unless the post is same-origin and carries this session's CSRF token, as a
    /// form field or the `X-CSRF-Token` header htmx sends.
    pub fn check(&self, headers: &HeaderMap, fields: &Fields) -> Result<(), UiError> {
        let sent = fields
            .csrf()
            .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
        match sent {
            Some(sent) if same_origin(headers) && same_secret(sent, &self.csrf) => Ok(()),
            _ => Err(UiError::Csrf),
        }
    }

    /// `ctx` with the session's CSRF token, for the page's forms.
    pub fn context(&self, mut ctx: Value) -> Value {
        ctx["csrf"] = Value::from(self.csrf.as_str());
        ctx
    }
}

/// A form posted by a signed-in session, its CSRF token checked: a handler that takes
/// this cannot forget the check.
#[derive(Debug)]
pub struct Posted {
    /// The session that posted.
    pub session: Session,
    /// The form's fields.
    pub fields: Fields,
}

impl FromRequest<AppState> for Posted {
    type Rejection = UiError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, UiError> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, st).await?;
        let headers = parts.headers.clone();
        let Form(fields) = Form::<Fields>::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(|e| UiError::Api {
                status: e.status(),
                message: e.body_text(),
            })?;
        session.check(&headers, &fields)?;
        Ok(Posted { session, fields })
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, UiError> {
        let id = cookie_value(&parts.headers, COOKIE).ok_or(UiError::SignIn)?;
        let id_hash = hash_secret(id);
        let row = ui_sessions::find(&st.db, &id_hash, now_ms())
            .await?
            .ok_or(UiError::SignIn)?;
        Ok(Session {
            token_id: row.token_id,
            csrf: row.csrf_secret,
            id_hash,
        })
    }
}

/// `GET /sign-in`.
pub async fn sign_in_page() -> Result<Response, UiError> {
    Ok(render("sign_in.html", &json!({}))?.into_response())
}

/// The sign-in page with `message` in its alert, answered with `status`.
fn sign_in_refused(status: StatusCode, message: &str) -> Result<Response, UiError> {
    let page = render("sign_in.html", &json!({"error": message}))?;
    Ok((status, page).into_response())
}

/// `POST /sign-in`: the API checks the pasted token (`GET /api/me`); a session is made for it.
pub async fn sign_in(
    State(st): State<AppState>,
    Extension(api): Extension<Api>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Result<Response, UiError> {
    if !same_origin(&headers) {
        return Err(UiError::Csrf);
    }
    let refused = |message| sign_in_refused(StatusCode::UNAUTHORIZED, message);
    let Some(token) = fields.text("token") else {
        return refused("token: paste an admin or user API token");
    };
    let me = api
        .send(Caller::Bearer(token), Method::GET, "/api/me", None)
        .await?;
    if !me.status.is_success() {
        return refused("unknown, revoked or expired token");
    }
    let now = now_ms();
    let Some(token_id) = ui_sessions::live_token_id(&st.db, &hash_secret(token), now).await? else {
        return refused("unknown, revoked or expired token");
    };
    start_session(&st, &headers, &token_id, now).await
}

/// A new session acting as `token_id`: its cookie, and the way home.
async fn start_session(
    st: &AppState,
    headers: &HeaderMap,
    token_id: &str,
    now: i64,
) -> Result<Response, UiError> {
    let id = random_hex(32);
    ui_sessions::create(
        &st.db,
        &hash_secret(&id),
        token_id,
        &random_hex(32),
        now,
        now + TTL_MS,
    )
    .await?;
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

/// `POST /sign-in/email`: mails a one-time link when the address has an account.
/// The page is the same whether it has one or not, so it tells nobody which
/// addresses do; each address may ask [`LINKS_PER_ADDRESS`] times per link lifetime.
pub async fn request_link(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Result<Response, UiError> {
    if !same_origin(&headers) {
        return Err(UiError::Csrf);
    }
    let Some(email) = fields.text("email").map(str::to_lowercase) else {
        return sign_in_refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email: enter your address",
        );
    };
    let now = now_ms();
    if !st.sign_in_link_requests.allowed(&email, now) {
        return sign_in_refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too many sign-in links asked for this address; try again in 15 minutes",
        );
    }
    st.sign_in_link_requests.count(email.clone(), now);
    if let Some(user) = members::user_by_email(&st.db, &email).await? {
        let secret = random_hex(32);
        sign_in_links::create(
            &st.db,
            &hash_secret(&secret),
            &user.id,
            now,
            now + LINK_TTL_MS,
        )
        .await?;
        // A delivery failure is logged, not shown: showing it would tell which
        // addresses have accounts.
        if let Err(e) = st
            .mailer
            .send_sign_in_link(&email, &secret, LINK_TTL_MS / 60_000)
            .await
        {
            tracing::error!(error = %e, "sign-in link not delivered");
        }
    }
    Ok(render("sign_in.html", &json!({"sent": email}))?.into_response())
}

/// `GET /sign-in/email/{secret}`: a button that signs in. Opening the link changes
/// nothing, so a mail scanner that follows links cannot use it up.
pub async fn link_page(Path(secret): Path<String>) -> Result<Response, UiError> {
    Ok(render("sign_in_link.html", &json!({"secret": secret}))?.into_response())
}

/// `POST /sign-in/email/{secret}`: uses the link once and signs its account in with
/// a user token minted for this session (it expires with the session and is revoked
/// at sign-out). Following the link also proves the address, so it is verified.
pub async fn sign_in_by_link(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> Result<Response, UiError> {
    if !same_origin(&headers) {
        return Err(UiError::Csrf);
    }
    let now = now_ms();
    let secret_hash = hash_secret(&secret);
    let mut tx = st.writer.begin(&st.db).await?;
    let Some(user_id) = sign_in_links::consume(tx.conn(), &secret_hash, now).await? else {
        drop(tx);
        return sign_in_refused(
            StatusCode::UNAUTHORIZED,
            "this sign-in link is unknown, used or expired; ask for a new one",
        );
    };
    let (token_id, _token) = issue_token(
        tx.conn(),
        TokenOwner::User(&user_id),
        LINK_TOKEN_NAME,
        Some(now + TTL_MS),
    )
    .await?;
    sign_in_links::set_token(tx.conn(), &secret_hash, &token_id).await?;
    members::mark_email_verified(tx.conn(), &user_id, now).await?;
    tx.commit().await?;
    start_session(&st, &headers, &token_id, now).await
}

/// `POST /sign-out`: deletes the session and its cookie.
pub async fn sign_out(
    State(st): State<AppState>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    ui_sessions::delete(&st.db, &session.id_hash).await?;
    // A token a link minted lives only as long as its session.
    if sign_in_links::minted(&st.db, &session.token_id).await? {
        let mut tx = st.writer.begin(&st.db).await?;
        tokens::revoke(tx.conn(), &session.token_id, now_ms()).await?;
        tx.commit().await?;
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/sign-in")).into_response())
}
