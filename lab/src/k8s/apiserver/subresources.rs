//! The `scale` and `log` subresources.
//!
//! `statefulsets/scale` is an `autoscaling/v1` `Scale` made from the
//! StatefulSet (`pkg/registry/apps/statefulset/storage/storage.go`,
//! `scaleFromStatefulSet`): `spec.replicas` reads and writes the
//! StatefulSet's, `status.replicas` and `status.selector` are read-only.
//! A write through it changes only `spec.replicas`, with the Scale's
//! `metadata.resourceVersion` as precondition.
//!
//! `pods/log` reads the container's log file, found by the configured
//! [`LogLocator`](super::LogLocator), as text: `tailLines`, `limitBytes`,
//! `follow` (the file is polled and streamed until the Pod is gone, its
//! container terminated, or the client leaves); `previous` is a 400, as
//! the kubelet answers when no earlier container is kept.

use std::io::SeekFrom;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::handlers::write;
use super::http::{self, Body};
use super::patching::{PatchType, read_patch};
use super::routes::Ctx;
use super::selectors::selector_string;
use crate::k8s::error::{ApiError, Cause};
use crate::k8s::patch;
use crate::k8s::resources;

/// The Scale of a StatefulSet.
pub fn to_scale(sts: &Value) -> Value {
    let m = &sts["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": sts["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": sts["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&sts["spec"]["selector"]),
        },
    })
}

/// `GET .../statefulsets/NAME/scale`.
pub fn get_scale(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let sts = ctx
        .shared
        .store
        .get(ctx.resource(), ctx.namespace(), ctx.name())?;
    Ok(http::json(200, &to_scale(&sts)))
}

/// Writes the replicas of `scale` (made by `f` from the current Scale) to
/// the StatefulSet.
fn write_scale(
    ctx: &Ctx,
    f: impl FnOnce(Value) -> Result<Value, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let resource = ctx.resource();
    let name = ctx.name().to_string();
    let manager = ctx.manager.clone();
    let (stored, _) = write(ctx, &name, None, |old| {
        let Some(old) = old else {
            return Err(ApiError::not_found(resource.plural, resource.group, &name));
        };
        let scale = f(to_scale(old))?;
        let rv = scale["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !rv.is_empty() && Some(rv) != old["metadata"]["resourceVersion"].as_str() {
            return Err(ApiError::conflict(
                resource.plural,
                resource.group,
                &name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let replicas = match scale["spec"]["replicas"].as_i64() {
            Some(r) if r >= 0 => r,
            _ => {
                return Err(ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    &name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        format!(
                            "Invalid value: {}: must be greater than or equal to 0",
                            scale["spec"]["replicas"]
                        ),
                    )],
                ));
            }
        };
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        patch::record_subresource_update(resource, "scale", Some(old), &mut new, &manager);
        Ok(new)
    })?;
    Ok(http::json(200, &to_scale(&stored)))
}

/// `PUT .../statefulsets/NAME/scale`.
pub async fn update_scale(ctx: &Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let bytes = http::read_body(body).await?;
    let scale = http::parse_object(&bytes, http::object_encoding(&ctx.media)?)?;
    write_scale(ctx, |_| Ok(scale))
}

/// `PATCH .../statefulsets/NAME/scale`: the patch applies to the Scale
/// (a Scale has no patch strategies, so strategic merge and apply merge
/// as a merge patch does).
pub async fn patch_scale(ctx: &Ctx, body: Incoming) -> Result<Response<Body>, ApiError> {
    let (kind, p) = read_patch(ctx, body).await?;
    write_scale(ctx, |scale| match kind {
        PatchType::Json => patch::json_patch(&scale, &p),
        _ => patch::merge_patch(&scale, &p),
    })
}

/// The container a log request means: the named one, or the only one.
fn container_of(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|c| c["name"].as_str())
        .collect();
    match asked {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// The last `n` lines of `data`.
pub fn tail(data: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &data[i + 1..];
            }
        }
    }
    data
}

/// `GET .../pods/NAME/log`.
pub async fn log(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let store = &ctx.shared.store;
    let pods = resources::pods();
    let pod = store.get(pods, ctx.namespace(), ctx.name())?;
    let container = container_of(&pod, ctx.query.get("container"))?;
    let previous = ctx.query.flag("previous");
    let waiting = || {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{}\" is waiting to start: ContainerCreating",
            ctx.name()
        ))
    };
    let locator = ctx.shared.config.log_locator.as_ref().ok_or_else(waiting)?;
    let path = locator(&pod, Some(&container), previous).map_err(ApiError::bad_request)?;
    let data = tokio::fs::read(&path).await.map_err(|_| waiting())?;
    let mut first: &[u8] = &data;
    if let Some(n) = ctx.query.int("tailLines")? {
        first = tail(first, n.max(0) as usize);
    }
    let limit = ctx.query.int("limitBytes")?.map(|l| l.max(0) as usize);
    if let Some(l) = limit {
        first = &first[..first.len().min(l)];
    }
    if !ctx.query.flag("follow") {
        return Ok(http::text(200, Bytes::copy_from_slice(first)));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let start = Bytes::copy_from_slice(first);
    let offset = data.len() as u64;
    let follow = Follow {
        shared: ctx.shared.clone(),
        namespace: ctx.namespace().to_string(),
        pod: ctx.name().to_string(),
        uid: pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
        container,
        path,
        budget: limit.map(|l| l - start.len()),
    };
    tokio::spawn(async move {
        if tx.send(start).await.is_ok() {
            follow.run(tx, offset).await;
        }
    });
    let mut r = Response::new(http::streamed(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(r)
}

struct Follow {
    shared: Arc<super::Shared>,
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    path: std::path::PathBuf,
    budget: Option<usize>,
}

impl Follow {
    /// Whether the container is still there to write more.
    fn running(&self) -> bool {
        let Ok(pod) = self
            .shared
            .store
            .get(resources::pods(), &self.namespace, &self.pod)
        else {
            return false;
        };
        if pod["metadata"]["uid"].as_str() != Some(&self.uid) {
            return false;
        }
        !pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| {
                s["name"].as_str() == Some(&self.container) && s["state"]["terminated"].is_object()
            })
    }

    async fn run(mut self, tx: tokio::sync::mpsc::Sender<Bytes>, mut offset: u64) {
        let mut stopping = self.shared.stopping.clone();
        loop {
            let running = self.running();
            let mut buf = Vec::new();
            if let Ok(mut f) = tokio::fs::File::open(&self.path).await
                && f.seek(SeekFrom::Start(offset)).await.is_ok()
                && f.read_to_end(&mut buf).await.is_ok()
                && !buf.is_empty()
            {
                offset += buf.len() as u64;
                if let Some(b) = &mut self.budget {
                    buf.truncate(*b);
                    *b -= buf.len();
                }
                if tx.send(Bytes::from(buf)).await.is_err() {
                    return;
                }
            }
            if !running || self.budget == Some(0) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = tx.closed() => return,
                _ = stopping.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", 0), b"");
    }

    #[test]
    fn scales_come_from_statefulsets() {
        let sts = json!({"metadata": {"name": "zk", "namespace": "n", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "zk"}}},
            "status": {"replicas": 2}});
        let s = to_scale(&sts);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=zk"}));
    }
}
