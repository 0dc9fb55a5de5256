//! From an HTTP request to a handler: health and version (no token
//! needed, as `system:public-info-viewer` allows), authentication, the
//! discovery and OpenAPI documents (any authenticated user, as
//! `system:discovery`), then resource requests, whose attributes are
//! derived as `RequestInfoFactory.NewRequestInfo` does
//! (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`): the
//! deprecated `/watch/` prefix, `namespaces/{ns}/...`, name and
//! subresource, and the verb from the method (`list`/`watch` without a
//! name, `deletecollection` for a DELETE without one).
//!
//! Every request is counted for `/metrics` ([`super::metrics`]) when its
//! response head is ready; a fault injected by `zklab fault api`
//! ([`super::faults`]) applies to resource requests only, once they are
//! authenticated and parsed, before authorization and the handlers.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Response};

use super::auth::{self, Attributes, User};
use super::http::{self, Body, Query};
use super::{Shared, discovery, faults, handlers, metrics, patching, subresources, watch};
use crate::k8s::error::ApiError;
use crate::k8s::resources::{self, Resource};

/// A resource request, parsed.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub attrs: Attributes,
    pub resource: &'static Resource,
    /// The deprecated `/watch/` prefix was used.
    pub watch_path: bool,
}

/// Everything a handler needs.
pub struct Ctx {
    pub shared: Arc<Shared>,
    pub user: User,
    pub info: RequestInfo,
    pub query: Query,
    /// The request's media type (`Content-Type` without parameters).
    pub media: String,
    pub path: String,
    /// The field manager of a write: `fieldManager`, or the User-Agent's
    /// first word as the real server defaults it
    /// (`handlers/rest.go`, `prefixFromUserAgent`).
    pub manager: String,
}

impl Ctx {
    pub fn resource(&self) -> &'static Resource {
        self.info.resource
    }
    pub fn namespace(&self) -> &str {
        &self.info.attrs.namespace
    }
    pub fn name(&self) -> &str {
        &self.info.attrs.name
    }
    /// `dryRun=All`.
    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some()
    }
}

/// Serves one request; errors become `Status` responses.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let labels = metrics::labels(
        &method,
        uri.path(),
        uri.query(),
        &http::media_type(req.headers().get(CONTENT_TYPE)),
    );
    let response = route(shared.clone(), req)
        .await
        .unwrap_or_else(|e| http::status(&e));
    shared.metrics.count(labels, response.status().as_u16());
    tracing::debug!(
        method = %method,
        uri = %uri,
        code = response.status().as_u16(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "API request"
    );
    response
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => return Ok(http::text(200, "ok")),
        "/version" => {
            return Ok(http::json(
                200,
                &discovery::version(&shared.config.git_version),
            ));
        }
        _ => {}
    }
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let user = shared.config.tokens.authenticate(header)?.clone();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();

    // The request counter, for cluster admins only (the real one needs a
    // grant on the non-resource URL, which token rules cannot give).
    if segs == ["metrics"] {
        if !matches!(user.access, auth::Access::All) {
            return Err(auth::forbidden_path(
                &user,
                &method.as_str().to_lowercase(),
                &path,
            ));
        }
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            )));
        }
        return Ok(http::prometheus_text(shared.metrics.render()));
    }

    // Non-resource paths: discovery and OpenAPI.
    let non_resource = match segs.as_slice() {
        ["api"] => Some(Some(discovery::core_versions(
            &shared.config.listen.to_string(),
        ))),
        ["apis"] => Some(Some(discovery::group_list())),
        ["apis", g] => Some(discovery::api_group(g)),
        ["api", v] => Some(discovery::resource_list("", v)),
        ["apis", g, v] => Some(discovery::resource_list(g, v)),
        ["openapi", "v3"] => Some(Some(discovery::openapi_root())),
        ["openapi", "v3", rest @ ..] => Some(discovery::openapi_group_version(&rest.join("/"))),
        ["openapi", ..] | [] => Some(None),
        _ => None,
    };
    if let Some(doc) = non_resource {
        if method != Method::GET {
            if !matches!(user.access, auth::Access::All) {
                return Err(auth::forbidden_path(
                    &user,
                    &method.as_str().to_lowercase(),
                    &path,
                ));
            }
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            )));
        }
        return doc
            .map(|d| http::json(200, &d))
            .ok_or_else(|| not_found(&path));
    }

    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found(&path)),
    };
    let info =
        request_info(&method, group, version, rest, &query).ok_or_else(|| not_found(&path))?;

    let injected = shared.faults.decide(&info.attrs.verb);
    if let Some(delay) = injected.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = injected.fail {
        return Ok(injected_failure(code, &info, req).await);
    }

    let media = http::media_type(req.headers().get(CONTENT_TYPE));
    let manager = query
        .get("fieldManager")
        .map(str::to_string)
        .unwrap_or_else(|| {
            let ua = req
                .headers()
                .get(USER_AGENT)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("unknown");
            ua.split('/')
                .next()
                .unwrap_or(ua)
                .chars()
                .take(128)
                .collect()
        });

    // Anyone authenticated may ask what they may do.
    if info.resource.plural == "selfsubjectaccessreviews" {
        if info.attrs.verb != "create" {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not supported on selfsubjectaccessreviews",
                info.attrs.verb
            )));
        }
        let body = http::read_body(req.into_body()).await?;
        let review = if media == "application/vnd.kubernetes.protobuf" {
            super::protobuf::self_subject_access_review(&body)?
        } else {
            http::parse_object(&body, http::object_encoding(&media)?)?
        };
        let out = auth::self_subject_access_review(&user, &review)?;
        return Ok(http::json(201, &out));
    }

    if !user.access.allows(&info.attrs) {
        return Err(auth::forbidden(&user, &info.attrs));
    }
    let verb = info.attrs.verb.clone();
    let sub = info.attrs.subresource.clone();
    let resource = info.resource;
    if sub.is_empty() && !resource.verbs.contains(&verb.as_str()) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} {})",
            resource.plural
        )));
    }
    let named = !info.attrs.name.is_empty();
    if matches!(verb.as_str(), "update" | "patch") && !named || verb == "create" && named {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {path})"
        )));
    }
    if resource.namespaced
        && info.attrs.namespace.is_empty()
        && !matches!(verb.as_str(), "list" | "watch")
    {
        return Err(not_found(&path));
    }
    let ctx = Ctx {
        shared,
        user,
        info,
        query,
        media,
        path,
        manager,
    };
    let body = req.into_body();
    match (sub.as_str(), verb.as_str()) {
        ("", "get") => handlers::get(&ctx),
        ("", "list") => handlers::list(&ctx),
        ("", "watch") => watch::watch(&ctx),
        ("", "create") => handlers::create(&ctx, body).await,
        ("", "update") => handlers::update(&ctx, body, None).await,
        ("", "patch") => patching::patch(&ctx, body, None).await,
        ("", "delete") => handlers::delete(&ctx, body).await,
        ("", "deletecollection") => handlers::delete_collection(&ctx, body).await,
        ("status", "get") => handlers::get(&ctx),
        ("status", "update") => handlers::update(&ctx, body, Some("status")).await,
        ("status", "patch") => patching::patch(&ctx, body, Some("status")).await,
        ("scale", "get") => subresources::get_scale(&ctx),
        ("scale", "update") => subresources::update_scale(&ctx, body).await,
        ("scale", "patch") => subresources::patch_scale(&ctx, body).await,
        ("log", "get") => subresources::log(&ctx).await,
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb} {}/{sub})",
            resource.plural
        ))),
    }
}

/// The answer of an injected failure. A conflict names the object as the
/// real one does: from the path, or for a create from the body.
async fn injected_failure(code: u16, info: &RequestInfo, req: Request<Incoming>) -> Response<Body> {
    let mut name = info.attrs.name.clone();
    if name.is_empty() && code == 409 && info.attrs.verb == "create" {
        let media = http::media_type(req.headers().get(CONTENT_TYPE));
        if let (Ok(body), Ok(encoding)) = (
            http::read_body(req.into_body()).await,
            http::object_encoding(&media),
        ) && let Ok(object) = http::parse_object(&body, encoding)
        {
            name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
    }
    tracing::debug!(
        code,
        verb = %info.attrs.verb,
        resource = %info.attrs.resource,
        name = %name,
        "injected API failure"
    );
    let target = faults::Target {
        resource: &info.attrs.resource,
        group: &info.attrs.group,
        name: &name,
    };
    faults::injected_response(code, &target)
}

/// The generic 404 of an unknown path.
fn not_found(path: &str) -> ApiError {
    let mut e = ApiError::not_found("", "", "");
    e.message = "the server could not find the requested resource".into();
    e.kind = None;
    e.group = None;
    e.name = None;
    tracing::trace!(path, "no such path");
    e
}

/// The attributes of a resource request below `/api/v1` or
/// `/apis/G/V`; `None` for an unknown resource or subresource.
pub fn request_info(
    method: &Method,
    group: &str,
    version: &str,
    parts: &[&str],
    query: &Query,
) -> Option<RequestInfo> {
    let mut parts = parts;
    let mut watch_path = false;
    if parts.first() == Some(&"watch") {
        watch_path = true;
        parts = &parts[1..];
    }
    let mut namespace = "";
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        namespace = parts[1];
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts = &parts[2..];
        }
    }
    let plural = *parts.first()?;
    let resource = resources::by_path(group, version, plural)?;
    let name = parts.get(1).copied().unwrap_or("");
    let subresource = parts.get(2).copied().unwrap_or("");
    if parts.len() > 3 || (!subresource.is_empty() && !resource.subresources.contains(&subresource))
    {
        return None;
    }
    let verb = match *method {
        Method::GET | Method::HEAD => {
            if watch_path || query.flag("watch") {
                "watch"
            } else if name.is_empty() {
                "list"
            } else {
                "get"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => return None,
    };
    Some(RequestInfo {
        attrs: Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: plural.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
        },
        resource,
        watch_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str, q: &str) -> Option<Attributes> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (g, v, rest) = match segs.as_slice() {
            ["api", v, rest @ ..] => ("", *v, rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return None,
        };
        request_info(&method, g, v, rest, &Query::parse(Some(q))).map(|i| i.attrs)
    }

    #[test]
    fn attributes_are_derived_as_the_real_server_does() {
        let a = info(Method::GET, "/api/v1/namespaces/zk/pods", "").unwrap();
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str(), a.resource.as_str()),
            ("list", "zk", "pods")
        );
        let a = info(Method::GET, "/api/v1/namespaces/zk/pods/zk-0/log", "").unwrap();
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.subresource.as_str()),
            ("get", "zk-0", "log")
        );
        let a = info(Method::GET, "/api/v1/watch/namespaces/zk/pods", "").unwrap();
        assert_eq!(a.verb, "watch");
        let a = info(Method::GET, "/api/v1/pods", "watch=1").unwrap();
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("watch", ""));
        let a = info(Method::GET, "/api/v1/namespaces/zk", "").unwrap();
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "zk", "zk")
        );
        let a = info(Method::PUT, "/api/v1/namespaces/zk/status", "").unwrap();
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str()),
            ("namespaces", "status")
        );
        let a = info(
            Method::DELETE,
            "/apis/apps/v1/namespaces/zk/statefulsets",
            "",
        )
        .unwrap();
        assert_eq!(a.verb, "deletecollection");
        assert!(info(Method::GET, "/api/v1/namespaces/zk/configmaps/a/scale", "").is_none());
        assert!(info(Method::GET, "/api/v1/namespaces/zk/widgets", "").is_none());
    }
}
