//! Rules of the `kubernetes` section: names the API server will accept,
//! checked here so a migration is never refused by the cluster halfway.
//!
//! Names are checked as Kubernetes checks them: a namespace is a DNS-1123
//! label, a Service name a DNS-1035 label (it must start with a letter), a
//! StatefulSet name at most 52 characters (its controller appends a
//! revision hash in a 63-character label). The Service names are checked
//! as rendered for every server, not only as a template.

use super::{DEFAULT_CLUSTER_DOMAIN, DEFAULT_SERVICE_NAME, Findings, at, required, word};
use crate::plan::file::{RawKubernetes, RawStorage, RawTarget};
use crate::plan::formats::{self, MAX_STATEFULSET_NAME_LEN};
use crate::plan::types::{Kubernetes, Server, ServiceNameTemplate, Storage, Target, TargetKind};

pub(super) fn kubernetes(
    findings: &mut Findings,
    raw: RawKubernetes,
    servers: &[Server],
) -> Kubernetes {
    let context = raw
        .context
        .map(|context| required(findings, "kubernetes.context", &context));
    findings.check(
        "kubernetes.namespace",
        at(&raw.namespace),
        formats::check_dns1123_label(&raw.namespace.value),
    );
    let cluster_domain = match raw.cluster_domain {
        None => DEFAULT_CLUSTER_DOMAIN.to_string(),
        Some(domain) => {
            findings.check(
                "kubernetes.clusterDomain",
                at(&domain),
                formats::check_dns1123_subdomain(&domain.value),
            );
            domain.value
        }
    };
    let service_name = service_name(findings, raw.service_name, servers);
    let target = target(findings, raw.target, servers);
    Kubernetes {
        context,
        namespace: raw.namespace.value,
        cluster_domain,
        service_name,
        target,
    }
}

fn service_name(
    findings: &mut Findings,
    raw: Option<serde_saphyr::Spanned<String>>,
    servers: &[Server],
) -> ServiceNameTemplate {
    const PATH: &str = "kubernetes.serviceName";
    let Some(raw) = raw else {
        return ServiceNameTemplate(DEFAULT_SERVICE_NAME.to_string());
    };
    let template = ServiceNameTemplate(raw.value.clone());
    if !raw.value.contains("{id}") {
        findings.error(
            PATH,
            at(&raw),
            format!(
                "{:?} must hold {{id}}: each server needs its own Service",
                raw.value
            ),
        );
        return template;
    }
    if findings
        .check(
            PATH,
            at(&raw),
            formats::check_placeholders(&raw.value, &["{id}"]),
        )
        .is_none()
    {
        return template;
    }
    // One message for the first server whose name is refused is enough:
    // the others fail for the same reason.
    if let Some((server, reason)) = servers.iter().find_map(|server| {
        formats::check_dns1035_label(&template.render(server.id))
            .err()
            .map(|reason| (server, reason))
    }) {
        findings.error(
            PATH,
            at(&raw),
            format!(
                "renders to an invalid Service name for server {}: {reason}",
                server.id
            ),
        );
    }
    template
}

fn target(findings: &mut Findings, raw: RawTarget, servers: &[Server]) -> Target {
    let kind = match raw.kind.value.as_str() {
        "StatefulSet" => TargetKind::StatefulSet,
        "PerServer" => TargetKind::PerServer,
        other => {
            findings.error(
                "kubernetes.target.kind",
                at(&raw.kind),
                format!("{other:?} is not a target kind; expected StatefulSet or PerServer"),
            );
            TargetKind::StatefulSet
        }
    };
    let name = raw.name.value.clone();
    let name_ok = findings
        .check(
            "kubernetes.target.name",
            at(&raw.name),
            formats::check_dns1123_label(&name),
        )
        .is_some();
    let target = Target {
        kind,
        name,
        image: word(findings, "kubernetes.target.image", &raw.image),
        storage: storage(findings, raw.storage),
    };
    if name_ok
        && let Some(longest) = servers
            .iter()
            .map(|server| target.statefulset_name(server.id))
            .max_by_key(String::len)
        && longest.len() > MAX_STATEFULSET_NAME_LEN
    {
        findings.error(
            "kubernetes.target.name",
            at(&raw.name),
            format!(
                "the StatefulSet name {longest:?} is {} characters; Kubernetes takes at most {MAX_STATEFULSET_NAME_LEN}",
                longest.len()
            ),
        );
    }
    target
}

fn storage(findings: &mut Findings, raw: RawStorage) -> Storage {
    findings.check(
        "kubernetes.target.storage.size",
        at(&raw.size),
        formats::check_storage_quantity(&raw.size.value),
    );
    let storage_class_name = raw.storage_class_name.map(|class| {
        // "" is Kubernetes' own "no class": bind pre-provisioned volumes.
        if !class.value.is_empty() {
            findings.check(
                "kubernetes.target.storage.storageClassName",
                at(&class),
                formats::check_dns1123_subdomain(&class.value),
            );
        }
        class.value
    });
    Storage {
        size: raw.size.value,
        storage_class_name,
    }
}
