//! Just enough of the Kubernetes protobuf encoding to read the one body a
//! client here sends only as protobuf: kubectl's typed clientset posts a
//! `SelfSubjectAccessReview` (`kubectl auth can-i`) as
//! `application/vnd.kubernetes.protobuf`. Answers stay JSON (its Accept
//! lists JSON too).
//!
//! The envelope is `k8s\0` then a `runtime.Unknown`
//! (`apimachinery/pkg/runtime/generated.proto`: 1 typeMeta, 2 raw);
//! the review's fields are numbered as in
//! `k8s.io/api/authorization/v1/generated.proto`.

use serde_json::{Value, json};

use crate::k8s::error::ApiError;

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: its number and, for length-delimited ones, its
/// bytes (varints and fixed-size values are skipped: the review has none
/// this server reads).
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, &[u8])>, ApiError> {
    let bad = || ApiError::bad_request("malformed protobuf body");
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (key, rest) = varint(buf).ok_or_else(bad)?;
        buf = rest;
        match key & 7 {
            0 => buf = varint(buf).ok_or_else(bad)?.1,
            1 => buf = buf.get(8..).ok_or_else(bad)?,
            5 => buf = buf.get(4..).ok_or_else(bad)?,
            2 => {
                let (len, rest) = varint(buf).ok_or_else(bad)?;
                let len = usize::try_from(len).map_err(|_| bad())?;
                if rest.len() < len {
                    return Err(bad());
                }
                out.push((key >> 3, &rest[..len]));
                buf = &rest[len..];
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn varint(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, &buf[i + 1..]));
        }
    }
    None
}

fn field<'a>(fs: &[(u64, &'a [u8])], n: u64) -> Option<&'a [u8]> {
    fs.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

fn strings(fs: &[(u64, &[u8])], names: &[(u64, &str)]) -> Value {
    let mut obj = json!({});
    for (n, name) in names {
        if let Some(v) = field(fs, *n) {
            obj[*name] = json!(String::from_utf8_lossy(v));
        }
    }
    obj
}

/// A protobuf `SelfSubjectAccessReview` as its JSON form.
pub fn self_subject_access_review(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("a protobuf body must start with the k8s magic"))?;
    let envelope = fields(unknown)?;
    let type_meta = fields(field(&envelope, 1).unwrap_or(&[]))?;
    if field(&type_meta, 2) != Some(b"SelfSubjectAccessReview".as_slice()) {
        return Err(ApiError::unsupported_media_type(
            "only a SelfSubjectAccessReview is accepted as protobuf; send JSON",
        ));
    }
    let review = fields(field(&envelope, 2).unwrap_or(&[]))?;
    let spec = fields(field(&review, 2).unwrap_or(&[]))?;
    let mut out = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": {},
    });
    if let Some(ra) = field(&spec, 1) {
        out["spec"]["resourceAttributes"] = strings(
            &fields(ra)?,
            &[
                (1, "namespace"),
                (2, "verb"),
                (3, "group"),
                (4, "version"),
                (5, "resource"),
                (6, "subresource"),
                (7, "name"),
            ],
        );
    }
    if let Some(nra) = field(&spec, 2) {
        out["spec"]["nonResourceAttributes"] = strings(&fields(nra)?, &[(1, "path"), (2, "verb")]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(n: u64, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![((n << 3) | 2) as u8, bytes.len() as u8];
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn a_protobuf_review_reads_as_json() {
        let ra = [ld(1, b"zk"), ld(2, b"list"), ld(5, b"pods")].concat();
        let spec = ld(1, &ra);
        let review = [ld(1, b""), ld(2, &spec)].concat();
        let type_meta = [
            ld(1, b"authorization.k8s.io/v1"),
            ld(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &review)].concat();
        let v = self_subject_access_review(&body).unwrap();
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "zk", "verb": "list", "resource": "pods"})
        );
        assert_eq!(self_subject_access_review(b"nope").unwrap_err().code, 400);
    }
}
