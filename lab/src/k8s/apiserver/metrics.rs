//! `/metrics`: the API server's request counter in the Prometheus text
//! format, `apiserver_request_total{verb,resource,code}`, so that a
//! benchmark can count a client's requests (a delta between two scrapes).
//!
//! Every request that reaches the server is counted once its response
//! head is ready (a watch when its stream starts): failed, refused and
//! injected ones too. Labels follow the real counter
//! (`k8s.io/apiserver/pkg/endpoints/metrics`): `verb` as `CleanVerb`
//! reports it (GET, LIST, WATCH, POST, PUT, PATCH, APPLY for a
//! server-side apply, DELETE, DELETECOLLECTION; the method for
//! non-resource paths), `resource` the plural (empty for non-resource
//! paths), `code` the HTTP status. The real counter's other labels
//! (`group`, `version`, `subresource`, `scope`, `component`, `dry_run`)
//! are left out: a subresource request counts under its resource.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hyper::Method;

use super::http::{self, Query};
use super::routes::request_info;

/// The labels of one request, known before it is served.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Labels {
    pub verb: String,
    pub resource: String,
}

/// The labels of a request to `path?query` with `method` and body media
/// type `media`.
pub fn labels(method: &Method, path: &str, query: Option<&str>, media: &str) -> Labels {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let resource_path = match segs.as_slice() {
        ["api", v, rest @ ..] => Some(("", *v, rest)),
        ["apis", g, v, rest @ ..] => Some((*g, *v, rest)),
        _ => None,
    };
    let info = resource_path
        .and_then(|(g, v, rest)| request_info(method, g, v, rest, &Query::parse(query)));
    match info {
        Some(info) => {
            let verb = match info.attrs.verb.as_str() {
                "get" => "GET",
                "list" => "LIST",
                "watch" => "WATCH",
                "create" => "POST",
                "update" => "PUT",
                "patch" if media == "application/apply-patch+yaml" => "APPLY",
                "patch" => "PATCH",
                "delete" => "DELETE",
                "deletecollection" => "DELETECOLLECTION",
                other => other,
            };
            Labels {
                verb: verb.to_string(),
                resource: info.attrs.resource,
            }
        }
        None => Labels {
            verb: method.as_str().to_string(),
            resource: String::new(),
        },
    }
}

/// Requests served, by labels and code.
#[derive(Debug, Default)]
pub struct RequestCounter(Mutex<BTreeMap<(Labels, u16), u64>>);

impl RequestCounter {
    pub fn count(&self, labels: Labels, code: u16) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((labels, code))
            .or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n\
             # TYPE apiserver_request_total counter\n",
        );
        for ((labels, code), n) in counts.iter() {
            out.push_str(&format!(
                "apiserver_request_total{{verb=\"{}\",resource=\"{}\",code=\"{code}\"}} {n}\n",
                escape(&labels.verb),
                escape(&labels.resource),
            ));
        }
        out
    }
}

/// A label value as the text format escapes it.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(method: Method, path: &str, query: &str, media: &str) -> (String, String) {
        let l = labels(&method, path, Some(query), media);
        (l.verb, l.resource)
    }

    #[test]
    fn labels_are_the_real_counters() {
        let pair = |v: &str, r: &str| (v.to_string(), r.to_string());
        assert_eq!(
            l(Method::GET, "/api/v1/namespaces/zk/pods", "", ""),
            pair("LIST", "pods")
        );
        assert_eq!(
            l(Method::GET, "/api/v1/namespaces/zk/pods/zk-0", "", ""),
            pair("GET", "pods")
        );
        assert_eq!(
            l(Method::GET, "/api/v1/namespaces/zk/pods", "watch=true", ""),
            pair("WATCH", "pods")
        );
        assert_eq!(
            l(Method::GET, "/api/v1/watch/namespaces/zk/pods", "", ""),
            pair("WATCH", "pods")
        );
        assert_eq!(
            l(Method::POST, "/api/v1/namespaces/zk/services", "", ""),
            pair("POST", "services")
        );
        assert_eq!(
            l(
                Method::PUT,
                "/apis/apps/v1/namespaces/zk/statefulsets/zk/scale",
                "",
                ""
            ),
            pair("PUT", "statefulsets")
        );
        assert_eq!(
            l(
                Method::PATCH,
                "/api/v1/namespaces/zk/services/a",
                "fieldManager=x",
                "application/apply-patch+yaml"
            ),
            pair("APPLY", "services")
        );
        assert_eq!(
            l(
                Method::PATCH,
                "/api/v1/namespaces/zk/services/a",
                "",
                "application/merge-patch+json"
            ),
            pair("PATCH", "services")
        );
        assert_eq!(
            l(Method::DELETE, "/api/v1/namespaces/zk/pods", "", ""),
            pair("DELETECOLLECTION", "pods")
        );
        assert_eq!(l(Method::GET, "/apis", "", ""), pair("GET", ""));
        assert_eq!(l(Method::GET, "/metrics", "", ""), pair("GET", ""));
        assert_eq!(l(Method::GET, "/api/v1", "", ""), pair("GET", ""));
    }

    #[test]
    fn the_exposition_is_prometheus_text() {
        let c = RequestCounter::default();
        let pods = |verb: &str| Labels {
            verb: verb.into(),
            resource: "pods".into(),
        };
        c.count(pods("LIST"), 200);
        c.count(pods("LIST"), 200);
        c.count(pods("GET"), 500);
        assert_eq!(
            c.render(),
            "# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n\
             # TYPE apiserver_request_total counter\n\
             apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"500\"} 1\n\
             apiserver_request_total{verb=\"LIST\",resource=\"pods\",code=\"200\"} 2\n"
        );
    }
}
