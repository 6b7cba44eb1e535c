//! `kiln describe` texts in oc's layout (pure): webhook URLs with the secret as `<secret>`, recent
//! builds with phase, reason and duration, and each tag's history.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;

use super::tables::{build_duration, build_status, tags_by_update};
use super::{ago, fields, object_reference, source_type, table, timestamp};
use crate::api::build_config::BuildTriggerType;
use crate::api::common::CommonSpec;
use crate::api::{build_number, Build, BuildConfig, ImageStream};

/// How many builds `describe bc` lists.
pub(crate) const RECENT_BUILDS: usize = 10;

fn map_text(map: Option<&BTreeMap<String, String>>) -> String {
    match map.filter(|m| !m.is_empty()) {
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        None => "<none>".into(),
    }
}

fn meta_fields(meta: &ObjectMeta, now: Timestamp) -> Vec<(&'static str, String)> {
    vec![
        ("Name", meta.name.clone().unwrap_or_default()),
        ("Namespace", meta.namespace.clone().unwrap_or_default()),
        (
            "Created",
            meta.creation_timestamp
                .as_ref()
                .map(|t| ago(t.0, now))
                .unwrap_or_default(),
        ),
        ("Labels", map_text(meta.labels.as_ref())),
    ]
}

/// The source and strategy fields shared by BuildConfigs and Builds.
fn spec_fields(spec: &CommonSpec) -> Vec<(&'static str, String)> {
    let mut out = vec![("Strategy", "Docker".to_string())];
    let source = spec.source.as_ref();
    match source_type(source) {
        "Git" => {
            let git = source.and_then(|s| s.git.as_ref());
            out.push((
                "URL",
                git.map(|g| crate::api::validate::redact_url(&g.uri))
                    .unwrap_or_default(),
            ));
            if let Some(r) = git.and_then(|g| g.ref_.clone()).filter(|r| !r.is_empty()) {
                out.push(("Ref", r));
            }
        }
        other => out.push(("Source", other.to_string())),
    }
    if let Some(dir) = source
        .and_then(|s| s.context_dir.clone())
        .filter(|d| !d.is_empty())
    {
        out.push(("ContextDir", dir));
    }
    if let Some(secret) = source.and_then(|s| s.source_secret.as_ref()) {
        out.push(("Source Secret", secret.name.clone()));
    }
    let docker = spec.strategy.docker_strategy.as_ref();
    if let Some(from) = docker.and_then(|d| d.from.as_ref()) {
        out.push(("From Image", object_reference(from)));
    }
    if let Some(path) = docker.and_then(|d| d.dockerfile_path.clone()) {
        out.push(("Dockerfile Path", path));
    }
    if docker.and_then(|d| d.no_cache) == Some(true) {
        out.push(("No Cache", "true".into()));
    }
    let output = spec.output.as_ref();
    out.push((
        "Output to",
        output
            .and_then(|o| o.to.as_ref())
            .map(object_reference)
            .unwrap_or_else(|| "<none>".into()),
    ));
    if let Some(secret) = output.and_then(|o| o.push_secret.as_ref()) {
        out.push(("Push Secret", secret.name.clone()));
    }
    let mut env: Vec<String> = docker
        .map(|d| {
            d.env
                .iter()
                .map(|e| format!("{}={}", e.name, e.value.as_deref().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if !env.is_empty() {
        env.sort();
        out.push(("Environment", env.join(" ")));
    }
    let args: Vec<String> = docker
        .map(|d| {
            d.build_args
                .iter()
                .map(|e| format!("{}={}", e.name, e.value.as_deref().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if !args.is_empty() {
        out.push(("Build Args", args.join(" ")));
    }
    out
}

fn trigger_names(bc: &BuildConfig) -> String {
    let names: Vec<String> = bc
        .spec
        .triggers
        .iter()
        .map(|t| match t.type_ {
            BuildTriggerType::ConfigChange => "Config".to_string(),
            BuildTriggerType::ImageChange => {
                match t.image_change.as_ref().and_then(|i| i.from.as_ref()) {
                    Some(from) => format!("ImageChange({})", object_reference(from)),
                    None => "ImageChange".into(),
                }
            }
            other => other.as_str().to_string(),
        })
        .collect();
    if names.is_empty() {
        "<none>".into()
    } else {
        names.join(", ")
    }
}

/// `kiln describe bc/NAME`: metadata, source and strategy, triggers with webhook URLs (secret
/// shown as `<secret>`), and the most recent builds of `builds` (any order) newest first.
pub(crate) fn build_config(
    bc: &BuildConfig,
    builds: &[Build],
    webhook_base: &str,
    now: Timestamp,
) -> String {
    let mut head = meta_fields(&bc.metadata, now);
    head.push((
        "Latest Version",
        bc.status.as_ref().map_or(0, |s| s.last_version).to_string(),
    ));
    if let Some(annotation) = bc.paused_by() {
        head.push(("Paused", format!("yes ({annotation})")));
    }
    let mut out = fields(&head);
    out.push('\n');
    out.push_str(&fields(&spec_fields(&bc.spec.common)));
    out.push('\n');
    out.push_str(&fields(&[
        ("Build Run Policy", bc.spec.run_policy.as_str().to_string()),
        ("Triggered by", trigger_names(bc)),
    ]));
    for urls in crate::webhook::urls::trigger_urls(bc, webhook_base) {
        let provider = match urls.provider.segment() {
            "github" => "GitHub",
            "gitlab" => "GitLab",
            "bitbucket" => "Bitbucket",
            _ => "Generic",
        };
        out.push_str(&format!(
            "Webhook {provider}:\n  URL:                        {}\n  URL (signature or token):   {}\n",
            urls.with_secret, urls.signed
        ));
    }
    out.push_str(&fields(&[(
        "History Limits",
        format!(
            "{} successful, {} failed",
            limit(bc.spec.successful_builds_history_limit),
            limit(bc.spec.failed_builds_history_limit)
        ),
    )]));
    out.push('\n');
    let mut recent: Vec<&Build> = builds.iter().collect();
    recent.sort_by_key(|b| std::cmp::Reverse(build_number(b)));
    if recent.is_empty() {
        out.push_str("No builds.\n");
        return out;
    }
    let rows: Vec<Vec<String>> = recent
        .iter()
        .take(RECENT_BUILDS)
        .map(|b| {
            vec![
                b.metadata.name.clone().unwrap_or_default(),
                build_status(b),
                build_duration(b, now),
                b.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| timestamp(t.0))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["Build", "Status", "Duration", "Creation Time"],
        &rows,
    ));
    if recent.len() > RECENT_BUILDS {
        out.push_str(&format!(
            "… and {} older builds (`kiln get builds` lists them)\n",
            recent.len() - RECENT_BUILDS
        ));
    }
    out
}

fn limit(value: Option<i32>) -> String {
    value.map_or_else(|| "unlimited".into(), |v| v.to_string())
}

/// `kiln describe build/NAME`: metadata, phase with reason and message, timing, revision, the
/// spec it ran with, what started it, stages, and the log snippet of a failed build.
pub(crate) fn build(build: &Build, now: Timestamp) -> String {
    let status = build.status.clone().unwrap_or_default();
    let mut out = fields(&meta_fields(&build.metadata, now));
    out.push('\n');
    let mut state = vec![("Status", build_status(build))];
    if let Some(message) = status.message.clone() {
        state.push(("Message", message));
    }
    if status.cancelled == Some(true) || build.spec.cancel == Some(true) {
        state.push(("Cancel Requested", "yes".into()));
    }
    if let Some(t) = &status.start_timestamp {
        state.push(("Started", timestamp(t.0)));
    }
    if let Some(t) = &status.completion_timestamp {
        state.push(("Completed", timestamp(t.0)));
    }
    let ran = build_duration(build, now);
    if !ran.is_empty() {
        state.push(("Duration", ran));
    }
    if let Some((_, config)) = crate::api::config_of(build) {
        state.push(("Build Config", config));
    }
    state.push((
        "Build Pod",
        crate::naming::pod_name(build.metadata.name.as_deref().unwrap_or_default()),
    ));
    if let Some(reference) = status.output_docker_image_reference.clone() {
        state.push(("Image", reference));
    }
    if let Some(digest) = status
        .output
        .as_ref()
        .and_then(|o| o.to.as_ref())
        .and_then(|t| t.image_digest.clone())
    {
        state.push(("Image Digest", digest));
    }
    out.push_str(&fields(&state));
    out.push('\n');
    let mut spec = spec_fields(&build.spec.common);
    if let Some(git) = build
        .spec
        .common
        .revision
        .as_ref()
        .and_then(|r| r.git.as_ref())
    {
        if let Some(commit) = git.commit.clone() {
            let message = git
                .message
                .as_deref()
                .and_then(|m| m.lines().next())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            spec.push(("Commit", format!("{commit}{message}")));
        }
        if let Some(author) = &git.author {
            spec.push((
                "Author",
                format!(
                    "{} <{}>",
                    author.name.as_deref().unwrap_or_default(),
                    author.email.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    out.push_str(&fields(&spec));
    out.push('\n');
    let causes: Vec<String> = build
        .spec
        .triggered_by
        .iter()
        .filter_map(|c| c.message.clone())
        .collect();
    out.push_str(&fields(&[(
        "Build trigger cause",
        if causes.is_empty() {
            "<unknown>".into()
        } else {
            causes.join("; ")
        },
    )]));
    if !status.stages.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = status
            .stages
            .iter()
            .map(|s| {
                vec![
                    format!("{:?}", s.name),
                    s.start_time
                        .as_ref()
                        .map(|t| timestamp(t.0))
                        .unwrap_or_default(),
                    super::duration(s.duration_milliseconds / 1000),
                    s.steps
                        .iter()
                        .map(|st| st.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        out.push_str(&table(&["Stage", "Started", "Duration", "Steps"], &rows));
    }
    if let Some(snippet) = status.log_snippet.as_deref().filter(|s| !s.is_empty()) {
        out.push_str("\nLog Tail:\n");
        for line in snippet.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// `kiln describe is/NAME`: repository, then each tag (most recently updated first) with where it
/// is tagged from and its history, newest first and marked `*`.
pub(crate) fn image_stream(is: &ImageStream, now: Timestamp) -> String {
    let status = is.status.clone().unwrap_or_default();
    let mut head = meta_fields(&is.metadata, now);
    head.push((
        "Image Repository",
        status
            .public_docker_image_repository
            .clone()
            .or(status.docker_image_repository.clone())
            .unwrap_or_else(|| "<none>".into()),
    ));
    head.push((
        "Image Lookup",
        format!(
            "local={}",
            is.spec.lookup_policy.as_ref().is_some_and(|p| p.local)
        ),
    ));
    let tags = tags_by_update(is);
    head.push(("Tags", tags.len().to_string()));
    let mut out = fields(&head);
    for (tag, _) in tags {
        out.push('\n');
        out.push_str(&tag);
        out.push('\n');
        match is
            .spec
            .tags
            .iter()
            .find(|t| t.name == tag)
            .and_then(|t| t.from.as_ref())
        {
            Some(from) => out.push_str(&format!(
                "  tagged from {}\n",
                from.name.as_deref().unwrap_or_default()
            )),
            None => out.push_str("  no spec tag\n"),
        }
        let items = status
            .tags
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.items.clone())
            .unwrap_or_default();
        if items.is_empty() {
            out.push_str("\n  no images yet\n");
            continue;
        }
        out.push('\n');
        for (i, event) in items.iter().enumerate() {
            let mark = if i == 0 { "*" } else { " " };
            out.push_str(&format!(
                "  {mark} {}\n      {}\n",
                event.docker_image_reference,
                ago(event.created.0, now)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tables::tests::{assert_golden, fixtures, now};
    use super::*;

    #[test]
    fn describe_texts_match_their_golden_files() {
        let f = fixtures();
        let app = &f.configs[0];
        let of_app: Vec<Build> = f
            .builds
            .iter()
            .filter(|b| crate::api::config_of(b).is_some_and(|(_, c)| c == "app"))
            .cloned()
            .collect();
        assert_golden(
            &build_config(app, &of_app, "https://kiln.example.com", now()),
            "describe-bc.txt",
        );
        for b in &f.builds {
            let name = b.metadata.name.clone().unwrap();
            assert_golden(&build(b, now()), &format!("describe-build-{name}.txt"));
        }
        assert_golden(&image_stream(&f.streams[0], now()), "describe-is.txt");
    }

    #[test]
    fn describe_never_shows_a_webhook_secret() {
        let f = fixtures();
        let text = build_config(&f.configs[0], &f.builds, "https://h", now());
        assert!(text.contains("/webhooks/<secret>/github"), "{text}");
        assert!(!text.contains("s3cr3t-inline"), "{text}");
    }

    #[test]
    fn describe_never_shows_credentials_of_a_repository_url() {
        let f = fixtures();
        let mut config = f.configs[0].clone();
        let mut build = f.builds[0].clone();
        let uri = "https://x-access-token:ghp_tok3n@git.example.com/app.git";
        for spec in [&mut config.spec.common, &mut build.spec.common] {
            let source = spec.source.get_or_insert_with(Default::default);
            source.git.get_or_insert_with(Default::default).uri = uri.into();
        }
        for text in [
            build_config(&config, &f.builds, "https://h", now()),
            super::build(&build, now()),
        ] {
            assert!(
                text.contains("https://***@git.example.com/app.git"),
                "{text}"
            );
            assert!(!text.contains("ghp_tok3n"), "{text}");
        }
    }

    #[test]
    fn a_build_config_without_builds_says_so() {
        let f = fixtures();
        let text = build_config(&f.configs[1], &[], "https://h", now());
        assert!(text.ends_with("No builds.\n"), "{text}");
    }
}
