//! The pages that only read: login form, Saved Images, Image Detail, the share form.
// The `Err` of these helpers is the answer to send at once (a redirect or an error page); it is
// built once per request, so boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use imgshare_core::{Actor, Operation};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::{self, encode, Answer, RegionApi};
use crate::session::{self, NoSession, Session, LOGIN_COOKIE};
use crate::{Console, MOUNT};

/// Pages a list follows at most per region (100 images each): a bound on one page's work.
const MAX_LIST_PAGES: usize = 20;
/// The selector value of All Regions (Global).
pub(crate) const ALL_REGIONS: &str = "all";

/// What a page handler answers: `Err` is an answer decided early (the login redirect, an error
/// page), so that handlers can use `?`.
pub(crate) type Page = Result<Response, Response>;

/// The login page, remembering where to go back to.
pub(crate) fn to_login(next: &str, expired: bool) -> Response {
    let mut target = format!("{MOUNT}/login?next={}", encode(next));
    if expired {
        target.push_str("&expired=1");
    }
    Redirect::to(&target).into_response()
}

/// A `next` target is only ever a console page (never another site, never `//host`).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with("/console/")
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.contains("/static/") =>
        {
            next.to_owned()
        }
        _ => format!("{MOUNT}/images"),
    }
}

/// The request's session, or the answer that sends the browser to log in (and back here).
pub(crate) fn require_session(
    console: &Console,
    headers: &HeaderMap,
    here: &str,
) -> Result<Session, Response> {
    console
        .sessions
        .find(headers, console.now())
        .map_err(|missing| to_login(here, missing == NoSession::Expired))
}

/// The region named in a path, or the page that says there is none.
pub(crate) fn region_of<'a>(
    console: &'a Console,
    session: &Session,
    name: &str,
) -> Result<&'a RegionApi, Response> {
    console.region(name).ok_or_else(|| {
        error_page(
            console,
            Some(session),
            StatusCode::NOT_FOUND,
            "There is no such region.",
        )
    })
}

/// An image named by a console path (`…/{region}/{image_id}…`): its region and id as they
/// appear there.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageRef {
    pub(crate) region: String,
    pub(crate) image_id: String,
}

impl ImageRef {
    /// The image's API path, `/v2/images/{id}`.
    pub(crate) fn api_path(&self) -> String {
        format!("/v2/images/{}", encode(&self.image_id))
    }

    /// The image's Image Detail page.
    pub(crate) fn detail_page(&self) -> String {
        format!(
            "{MOUNT}/images/{}/{}",
            encode(&self.region),
            encode(&self.image_id)
        )
    }
}

/// Reads one resource of `region` as the session's user; an API refusal becomes the error page
/// with the API's status and message.
pub(crate) async fn fetch(
    console: &Console,
    session: &Session,
    region: &RegionApi,
    path: &str,
    back: &str,
) -> Result<Value, Response> {
    let answer = call(console, session, region, Method::GET, path, None, back).await?;
    if answer.status.is_success() {
        Ok(answer.body)
    } else {
        Err(error_page(
            console,
            Some(session),
            answer.status,
            &answer.message(),
        ))
    }
}

/// The image as the session's user sees it through the API, with its region.
pub(crate) async fn fetch_image<'a>(
    console: &'a Console,
    session: &Session,
    target: &ImageRef,
    back: &str,
) -> Result<(&'a RegionApi, Value), Response> {
    let region = region_of(console, session, &target.region)?;
    let image = fetch(console, session, region, &target.api_path(), back).await?;
    Ok((region, image))
}

/// The logged-in user of a request and the page it asked for. Without a live session, the
/// extractor answers with the login page's redirect (and back here after logging in).
pub(crate) struct Visit {
    pub(crate) session: Session,
    /// The path and query of the request, as the console sees it from outside.
    pub(crate) here: String,
}

impl FromRequestParts<Arc<Console>> for Visit {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Response> {
        let uri = match OriginalUri::from_request_parts(parts, console).await {
            Ok(uri) => uri,
            Err(never) => match never {},
        };
        let here = here(&uri);
        let session = require_session(console, &parts.headers, &here)?;
        Ok(Visit { session, here })
    }
}

/// The path and query of the request, as the console sees it from outside.
pub(crate) fn here(uri: &OriginalUri) -> String {
    uri.0
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| format!("{MOUNT}/images"))
}

/// Calls the API of `region` as the session's user. A 401 means the token is no longer valid:
/// the session ends and the browser goes to log in.
pub(crate) async fn call(
    console: &Console,
    session: &Session,
    region: &RegionApi,
    method: Method,
    path: &str,
    body: Option<&Value>,
    back: &str,
) -> Result<Answer, Response> {
    match api::call(&region.api, method, path, &session.grant.token, body).await {
        Ok(answer) if answer.status == StatusCode::UNAUTHORIZED => {
            console.sessions.end(&session.id);
            Err(to_login(back, true))
        }
        Ok(answer) => Ok(answer),
        Err(error) => {
            eprintln!("imgshare: console: API call {path}: {error}");
            Err(error_page(
                console,
                Some(session),
                StatusCode::BAD_GATEWAY,
                "The image service did not answer properly; try again.",
            ))
        }
    }
}

/// What every page shows: the user, the CSRF token of its forms, the regions, a message.
pub(crate) fn base_context(console: &Console, session: Option<&Session>) -> Map<String, Value> {
    let mut context = Map::new();
    let regions: Vec<&str> = console
        .config
        .regions
        .iter()
        .map(|region| region.name.as_str())
        .collect();
    context.insert("regions".into(), json!(regions));
    context.insert("flash".into(), Value::Null);
    context.insert("user".into(), Value::Null);
    context.insert("csrf".into(), Value::Null);
    if let Some(session) = session {
        context.insert(
            "user".into(),
            json!({"name": session.grant.user_name, "tenant": session.grant.tenant}),
        );
        context.insert("csrf".into(), json!(session.csrf));
        if let Some(flash) = console.sessions.take_flash(&session.id) {
            context.insert("flash".into(), json!(flash));
        }
    }
    context
}

pub(crate) fn render(
    console: &Console,
    status: StatusCode,
    template: &str,
    context: Map<String, Value>,
) -> Response {
    console.views.page(
        status,
        template,
        minijinja::Value::from_serialize(Value::Object(context)),
    )
}

/// A page that only says what went wrong.
pub(crate) fn error_page(
    console: &Console,
    session: Option<&Session>,
    status: StatusCode,
    message: &str,
) -> Response {
    let mut context = base_context(console, session);
    context.insert("status".into(), json!(status.as_u16()));
    context.insert("message".into(), json!(message));
    render(console, status, "error.html", context)
}

/// True if the session's roles allow `operation` under the API's rule set; used only to leave
/// out actions that would be refused.
pub(crate) fn may(console: &Console, session: &Session, operation: Operation) -> bool {
    let roles: Vec<&str> = session.grant.roles.iter().map(String::as_str).collect();
    let actor = Actor::tenant(&session.grant.tenant, &session.grant.user_name, &roles);
    console.config.profile.authorize(&actor, operation).is_ok()
}

pub(crate) async fn home() -> Redirect {
    Redirect::to(&format!("{MOUNT}/images"))
}

pub(crate) async fn not_found(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let session = console.sessions.find(&headers, console.now()).ok();
    error_page(
        &console,
        session.as_ref(),
        StatusCode::NOT_FOUND,
        "There is no such page.",
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// The login form. Its CSRF token rides in a short-lived cookie (there is no session yet).
pub(crate) async fn login_form(
    State(console): State<Arc<Console>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let notice = query
        .expired
        .is_some()
        .then_some("Your session has ended: log in again to continue.");
    login_page(
        &console,
        StatusCode::OK,
        &safe_next(query.next.as_deref()),
        notice,
        None,
        "",
    )
}

/// Renders the login form with a fresh CSRF token (and its cookie).
pub(crate) fn login_page(
    console: &Console,
    status: StatusCode,
    next: &str,
    notice: Option<&str>,
    error: Option<&str>,
    username: &str,
) -> Response {
    let token = match session::random_id() {
        Ok(token) => token,
        Err(error) => {
            eprintln!("imgshare: console: {error}");
            return (StatusCode::SERVICE_UNAVAILABLE, "No random source.").into_response();
        }
    };
    let mut context = base_context(console, None);
    context.insert("csrf".into(), json!(token));
    context.insert("next".into(), json!(next));
    context.insert("notice".into(), json!(notice));
    context.insert("error".into(), json!(error));
    context.insert("username".into(), json!(username));
    let mut response = render(console, status, "login.html", context);
    let cookie = session::set_cookie(
        LOGIN_COOKIE,
        &token,
        Some(3600),
        console.config.secure_cookies,
    );
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImagesQuery {
    region: Option<String>,
}

/// Follows `next` links from `first`; stops after [`MAX_LIST_PAGES`].
async fn list_all(
    console: &Console,
    session: &Session,
    region: &RegionApi,
    first: &str,
    back: &str,
) -> Result<Result<Vec<Value>, String>, Response> {
    let mut images = Vec::new();
    let mut path = first.to_owned();
    for _ in 0..MAX_LIST_PAGES {
        let answer = call(console, session, region, Method::GET, &path, None, back).await?;
        if !answer.status.is_success() {
            return Ok(Err(answer.message()));
        }
        if let Some(page) = answer.body.get("images").and_then(Value::as_array) {
            images.extend(page.iter().cloned());
        }
        match answer.body.get("next").and_then(Value::as_str) {
            Some(next) if next.starts_with("/v2/") => path = next.to_owned(),
            _ => break,
        }
    }
    Ok(Ok(images))
}

/// A field of an API object as text ("" when absent or null).
pub(crate) fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `GET /console/images?region=`: Saved Images, and the shares waiting for a decision.
pub(crate) async fn images(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Query(query): Query<ImagesQuery>,
) -> Page {
    let selected = query.region.unwrap_or_else(|| ALL_REGIONS.to_owned());
    let scope: Vec<&RegionApi> = if selected == ALL_REGIONS {
        console.config.regions.iter().collect()
    } else {
        match console.region(&selected) {
            Some(region) => vec![region],
            None => {
                return Err(error_page(
                    &console,
                    Some(&session),
                    StatusCode::NOT_FOUND,
                    &format!("There is no region {selected:?}."),
                ))
            }
        }
    };
    let tenant = session.grant.tenant.clone();
    let may_share = may(&console, &session, Operation::AddMember);
    let may_decide = may(&console, &session, Operation::UpdateMember);
    let mut rows = Vec::new();
    let mut pending = Vec::new();
    let mut errors = Vec::new();
    for region in scope {
        let listed = list_all(&console, &session, region, "/v2/images?limit=100", &back).await?;
        match listed {
            Err(message) => errors.push(format!("{}: {message}", region.name)),
            Ok(images) => {
                for image in images {
                    let owner = text(&image, "owner");
                    let own = owner == tenant;
                    // Saved Images are the account's own and accepted shares; public base
                    // images belong to another list.
                    if !own && text(&image, "visibility") == "public" {
                        continue;
                    }
                    rows.push(json!({
                        "region": region.name,
                        "id": text(&image, "id"),
                        "name": text(&image, "name"),
                        "status": text(&image, "status"),
                        "size": image.get("size").cloned().unwrap_or(Value::Null),
                        "created": text(&image, "created_at"),
                        "source": if own { "Saved Image" } else { "Shared Image" },
                        "own": own,
                        "may_share": own && may_share,
                        "may_remove": !own && may_decide,
                    }));
                }
            }
        }
        let waiting = list_all(
            &console,
            &session,
            region,
            "/v2/images?visibility=shared&member_status=pending&limit=100",
            &back,
        )
        .await?;
        match waiting {
            Err(message) => errors.push(format!("{}: {message}", region.name)),
            Ok(images) => {
                for image in images {
                    pending.push(json!({
                        "region": region.name,
                        "id": text(&image, "id"),
                        "name": text(&image, "name"),
                        "owner": text(&image, "owner"),
                    }));
                }
            }
        }
    }
    let mut context = base_context(&console, Some(&session));
    context.insert("selected".into(), json!(selected));
    context.insert("rows".into(), json!(rows));
    context.insert("pending".into(), json!(pending));
    context.insert("may_decide".into(), json!(may_decide));
    context.insert("errors".into(), json!(errors));
    context.insert("back".into(), json!(back));
    Ok(render(&console, StatusCode::OK, "images.html", context))
}

/// The image's own fields shown at the top of the detail page; the rest are properties.
const CORE_FIELDS: [&str; 20] = [
    "id",
    "name",
    "status",
    "size",
    "checksum",
    "owner",
    "created_at",
    "updated_at",
    "visibility",
    "self",
    "file",
    "schema",
    "tags",
    "min_disk",
    "min_ram",
    "protected",
    "container_format",
    "disk_format",
    "os_hash_algo",
    "os_hash_value",
];

/// `GET /console/images/{region}/{id}`: the image, its members, and what the user may do.
pub(crate) async fn image_detail(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Path(target): Path<ImageRef>,
) -> Page {
    let (region, image) = fetch_image(&console, &session, &target, &back).await?;
    let members_path = format!("{}/members", target.api_path());
    // A member of the image may not list the others: that refusal only means an empty table.
    let answer = call(
        &console,
        &session,
        region,
        Method::GET,
        &members_path,
        None,
        &back,
    )
    .await?;
    let members = if answer.status.is_success() {
        answer
            .body
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let tenant = session.grant.tenant.clone();
    let own = text(&image, "owner") == tenant;
    let my_status = members
        .iter()
        .find(|member| text(member, "member_id") == tenant)
        .map(|member| text(member, "status"));
    let members: Vec<Value> = members
        .iter()
        .map(|member| {
            let status = text(member, "status");
            json!({
                "account": text(member, "member_id"),
                "status": status_label(&status),
                "status_code": status,
                "created": text(member, "created_at"),
                "updated": text(member, "updated_at"),
            })
        })
        .collect();
    let mut properties: Vec<(String, String)> = image
        .as_object()
        .map(|object| {
            object
                .iter()
                .filter(|(key, _)| !CORE_FIELDS.contains(&key.as_str()))
                .map(|(key, _)| (key.clone(), text(&image, key)))
                .collect()
        })
        .unwrap_or_default();
    properties.sort();
    let mut context = base_context(&console, Some(&session));
    context.insert(
        "image".into(),
        json!({
            "region": region.name,
            "id": text(&image, "id"),
            "name": text(&image, "name"),
            "status": text(&image, "status"),
            "size": image.get("size").cloned().unwrap_or(Value::Null),
            "checksum": text(&image, "checksum"),
            "owner": text(&image, "owner"),
            "created": text(&image, "created_at"),
            "updated": text(&image, "updated_at"),
            "visibility": text(&image, "visibility"),
            "properties": properties,
        }),
    );
    context.insert("own".into(), json!(own));
    context.insert("members".into(), json!(members));
    context.insert(
        "my_status".into(),
        json!(my_status.as_deref().map(status_label)),
    );
    context.insert("my_status_code".into(), json!(my_status));
    // The owner's actions, each shown only if the user's roles allow it.
    let owner_actions = [
        ("may_share", Operation::AddMember),
        ("may_delete", Operation::DeleteImage),
        ("may_export", Operation::CreateTask),
        ("may_remove_member", Operation::DeleteMember),
    ];
    for (name, operation) in owner_actions {
        context.insert(
            name.into(),
            json!(own && may(&console, &session, operation)),
        );
    }
    context.insert(
        "may_decide".into(),
        json!(!own && my_status.is_some() && may(&console, &session, Operation::UpdateMember)),
    );
    Ok(render(&console, StatusCode::OK, "detail.html", context))
}

/// How the article names a member status.
pub(crate) fn status_label(status: &str) -> &'static str {
    match status {
        "pending" => "Pending Acceptance",
        "accepted" => "Accepted",
        "rejected" => "Rejected",
        _ => "Unknown",
    }
}

/// `GET /console/images/{region}/{id}/share`: the sharing dialog.
pub(crate) async fn share_form(
    State(console): State<Arc<Console>>,
    Visit {
        session,
        here: back,
    }: Visit,
    Path(target): Path<ImageRef>,
) -> Page {
    share_page(&console, &session, &target, None, "", &back).await
}

/// The sharing dialog; `refused` is the API's status and message if the last attempt failed.
pub(crate) async fn share_page(
    console: &Console,
    session: &Session,
    target: &ImageRef,
    refused: Option<(StatusCode, String)>,
    account: &str,
    back: &str,
) -> Page {
    let (region, image) = fetch_image(console, session, target, back).await?;
    let (status, error) = match refused {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let mut context = base_context(console, Some(session));
    context.insert(
        "image".into(),
        json!({"region": region.name, "id": text(&image, "id"), "name": text(&image, "name")}),
    );
    context.insert("error".into(), json!(error));
    context.insert("account".into(), json!(account));
    Ok(render(console, status, "share.html", context))
}
