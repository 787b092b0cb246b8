//! The forms that change something. Each checks the CSRF token first (403, nothing done), then
//! asks the API as the logged-in user; the API's refusal is shown as it is, nothing changes.
// The `Err` of these helpers is the answer to send at once (a redirect or an error page); it is
// built once per request, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde_json::{json, Value};

use crate::api::encode;
use crate::login::LoginCredential;
use crate::pages::{
    call, error_page, login_page, region_of, require_session, safe_next, share_page, ImageRef,
    Page, Visit,
};
use crate::session::{self, same_token, Flash, Session, LOGIN_COOKIE, SESSION_COOKIE};
use crate::{Console, MOUNT};

type Fields = HashMap<String, String>;

const CSRF_REFUSED: &str =
    "This form could not be verified (its security token is missing or wrong), so nothing was \
     done. Reload the page and try again.";

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or("")
}

/// Refuses a form whose CSRF token is not the session's (403, nothing done).
pub(crate) fn csrf_checked(
    console: &Console,
    session: &Session,
    fields: &Fields,
) -> Result<(), Response> {
    if same_token(field(fields, "csrf"), &session.csrf) {
        Ok(())
    } else {
        Err(error_page(
            console,
            Some(session),
            StatusCode::FORBIDDEN,
            CSRF_REFUSED,
        ))
    }
}

/// The session, and a form whose CSRF token is the session's; otherwise the answer to send.
pub(crate) fn checked(
    console: &Console,
    headers: &HeaderMap,
    fields: &Fields,
    back: &str,
) -> Result<Session, Response> {
    let session = require_session(console, headers, back)?;
    csrf_checked(console, &session, fields)?;
    Ok(session)
}

/// What a form asked the API, and the message the next page shows when it succeeds.
struct Request {
    method: Method,
    path: String,
    body: Option<Value>,
    done: Flash,
}

/// Sends a form's request to the API as the session's user. The next page's message is `done`
/// on success, the API's own message otherwise (nothing changed); returns whether it succeeded.
async fn act(
    console: &Console,
    session: &Session,
    region_name: &str,
    request: Request,
    back: &str,
) -> Result<bool, Response> {
    let region = region_of(console, session, region_name)?;
    let answer = call(
        console,
        session,
        region,
        request.method,
        &request.path,
        request.body.as_ref(),
        back,
    )
    .await?;
    let succeeded = answer.status.is_success();
    let flash = if succeeded {
        request.done
    } else {
        Flash::error(answer.message())
    };
    console.sessions.set_flash(&session.id, flash);
    Ok(succeeded)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /console/login`.
pub(crate) async fn login(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let next = safe_next(fields.get("next").map(String::as_str));
    let username = field(&fields, "username").trim().to_owned();
    let expected = session::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_token(field(&fields, "csrf"), &expected) {
        return login_page(
            &console,
            StatusCode::FORBIDDEN,
            &next,
            None,
            Some(CSRF_REFUSED),
            &username,
        );
    }
    let secret = field(&fields, "secret").to_owned();
    if username.is_empty() || secret.is_empty() {
        return login_page(
            &console,
            StatusCode::BAD_REQUEST,
            &next,
            None,
            Some("Enter a user name and a password or API key."),
            &username,
        );
    }
    let credential = if field(&fields, "kind") == "apikey" {
        LoginCredential::ApiKey {
            username: username.clone(),
            api_key: secret,
        }
    } else {
        LoginCredential::Password {
            username: username.clone(),
            password: secret,
        }
    };
    let grant = match console.config.authenticator.login(credential).await {
        Ok(grant) => grant,
        Err(error) => {
            let status = match error {
                crate::LoginError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                crate::LoginError::OverLimit => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            return login_page(
                &console,
                status,
                &next,
                None,
                Some(error.message()),
                &username,
            );
        }
    };
    let now = console.now();
    let session = match console.sessions.start(grant, now) {
        Ok(session) => session,
        Err(error) => {
            eprintln!("imgshare: console: {error}");
            return (StatusCode::SERVICE_UNAVAILABLE, "No random source.").into_response();
        }
    };
    let secure = console.config.secure_cookies;
    let response = Redirect::to(&next).into_response();
    // No Max-Age: the server ends the session with the token, and a cookie that outlives it
    // lets the next page say so ("your session has ended") instead of a bare login form.
    let response = with_cookie(
        response,
        &session::set_cookie(SESSION_COOKIE, &session.id, None, secure),
    );
    with_cookie(
        response,
        &session::set_cookie(LOGIN_COOKIE, "", Some(0), secure),
    )
}

/// `POST /console/logout`: ends the session and, if the identity can, the token.
pub(crate) async fn logout(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let session = match checked(&console, &headers, &fields, &format!("{MOUNT}/images")) {
        Ok(session) => session,
        Err(response) => return response,
    };
    console.sessions.end(&session.id);
    console
        .config
        .authenticator
        .logout(&session.grant.token)
        .await;
    let response = Redirect::to(&format!("{MOUNT}/login")).into_response();
    with_cookie(
        response,
        &session::set_cookie(SESSION_COOKIE, "", Some(0), console.config.secure_cookies),
    )
}

/// `POST /console/images/{region}/{id}/share`: adds a member (Pending Acceptance).
pub(crate) async fn share(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Path(target): Path<ImageRef>,
    Form(fields): Form<Fields>,
) -> Page {
    csrf_checked(&console, &session, &fields)?;
    let region = region_of(&console, &session, &target.region)?;
    // Sent as typed: the API decides what an account number is, and says so.
    let account = field(&fields, "account").trim().to_owned();
    let path = format!("{}/members", target.api_path());
    let body = json!({ "member": account });
    let answer = call(
        &console,
        &session,
        region,
        Method::POST,
        &path,
        Some(&body),
        &back,
    )
    .await?;
    if !answer.status.is_success() {
        let refused = Some((answer.status, answer.message()));
        return share_page(&console, &session, &target, refused, &account, &back).await;
    }
    // Like Rackspace, the API does not check that an account exists or is a number; the
    // article's advice is to verify the number, so say it when it does not look like one.
    let flash = if account.bytes().all(|byte| byte.is_ascii_digit()) {
        Flash::ok(format!(
            "Image shared with account {account}: Pending Acceptance."
        ))
    } else {
        Flash::warn(format!(
            "Image shared with \"{account}\": Pending Acceptance. Account numbers are \
             digits: check it, and remove this member if it is wrong."
        ))
    };
    console.sessions.set_flash(&session.id, flash);
    Ok(Redirect::to(&target.detail_page()).into_response())
}

/// `POST /console/images/{region}/{id}/delete`: to Saved Images once deleted, else back to
/// the image with the API's message.
pub(crate) async fn delete_image(
    State(console): State<Arc<Console>>,
    Visit { session, .. }: Visit,
    Path(target): Path<ImageRef>,
    Form(fields): Form<Fields>,
) -> Page {
    csrf_checked(&console, &session, &fields)?;
    let detail = target.detail_page();
    let request = Request {
        method: Method::DELETE,
        path: target.api_path(),
        body: None,
        done: Flash::ok("The image was deleted."),
    };
    let deleted = act(&console, &session, &target.region, request, &detail).await?;
    let next = if deleted {
        format!("{MOUNT}/images")
    } else {
        detail
    };
    Ok(Redirect::to(&next).into_response())
}

/// `POST /console/images/{region}/{id}/members/{member}/remove`: the producer removes a member.
pub(crate) async fn remove_member(
    State(console): State<Arc<Console>>,
    Visit { session, .. }: Visit,
    Path((region, image_id, member)): Path<(String, String, String)>,
    Form(fields): Form<Fields>,
) -> Page {
    csrf_checked(&console, &session, &fields)?;
    let target = ImageRef { region, image_id };
    let detail = target.detail_page();
    let request = Request {
        method: Method::DELETE,
        path: format!("{}/members/{}", target.api_path(), encode(&member)),
        body: None,
        done: Flash::ok(format!("Account {member} was removed from this image.")),
    };
    act(&console, &session, &target.region, request, &detail).await?;
    Ok(Redirect::to(&detail).into_response())
}

/// `POST /console/images/{region}/{id}/decision`: the consumer accepts, or rejects (also the
/// Remove Image of an accepted share).
pub(crate) async fn decide(
    State(console): State<Arc<Console>>,
    Visit { session, .. }: Visit,
    Path(target): Path<ImageRef>,
    Form(fields): Form<Fields>,
) -> Page {
    let back = safe_next(fields.get("back").map(String::as_str));
    csrf_checked(&console, &session, &fields)?;
    // Sent as chosen: an unknown value is the API's to refuse.
    let decision = field(&fields, "decision").to_owned();
    let request = Request {
        method: Method::PUT,
        path: format!(
            "{}/members/{}",
            target.api_path(),
            encode(&session.grant.tenant)
        ),
        body: Some(json!({ "status": decision })),
        done: match decision.as_str() {
            "accepted" => Flash::ok("Image accepted: it is now in your Saved Images."),
            _ => Flash::ok("Image removed from your list."),
        },
    };
    act(&console, &session, &target.region, request, &back).await?;
    Ok(Redirect::to(&back).into_response())
}
