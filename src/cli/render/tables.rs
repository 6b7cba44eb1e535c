//! `kiln get` tables with oc's columns (pure).

use k8s_openapi::jiff::Timestamp;

use super::{ago, duration, source_short, source_type, table};
use crate::api::{build_number, Build, BuildConfig, ImageStream};

/// `NAME TYPE FROM LATEST`, as `oc get bc`.
pub(crate) fn build_configs(items: &[BuildConfig]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|bc| {
            vec![
                bc.metadata.name.clone().unwrap_or_default(),
                "Docker".into(),
                source_type(bc.spec.common.source.as_ref()).into(),
                bc.status.as_ref().map_or(0, |s| s.last_version).to_string(),
            ]
        })
        .collect();
    table(&["NAME", "TYPE", "FROM", "LATEST"], &rows)
}

/// A Build's phase with its reason in parentheses, as oc's STATUS column.
pub(crate) fn build_status(build: &Build) -> String {
    let status = build.status.clone().unwrap_or_default();
    match status.reason {
        Some(reason) => format!("{} ({})", status.phase.as_str(), reason.as_str()),
        None => status.phase.as_str().to_string(),
    }
}

/// How long a build ran: its recorded duration, or for a running build the time since it
/// started; empty before it starts.
pub(crate) fn build_duration(build: &Build, now: Timestamp) -> String {
    let Some(status) = build.status.as_ref() else {
        return String::new();
    };
    if let Some(ns) = status.duration {
        return duration(ns / 1_000_000_000);
    }
    match (&status.start_timestamp, &status.completion_timestamp) {
        (Some(start), Some(end)) => duration(end.0.duration_since(start.0).as_secs()),
        (Some(start), None) if !status.phase.is_terminal() => {
            duration(now.duration_since(start.0).as_secs())
        }
        _ => String::new(),
    }
}

/// Builds ordered as oc lists them: by BuildConfig, then by number (unnumbered by name).
pub(crate) fn sort_builds(items: &mut [Build]) {
    items.sort_by(|a, b| {
        let key = |x: &Build| {
            (
                crate::api::config_of(x).map(|(_, name)| name),
                build_number(x),
                x.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// `NAME TYPE FROM STATUS STARTED DURATION`, as `oc get builds`.
pub(crate) fn builds(items: &[Build], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|b| {
            let started = b
                .status
                .as_ref()
                .and_then(|s| s.start_timestamp.as_ref())
                .map(|t| ago(t.0, now))
                .unwrap_or_default();
            vec![
                b.metadata.name.clone().unwrap_or_default(),
                "Docker".into(),
                source_short(&b.spec.common),
                build_status(b),
                started,
                build_duration(b, now),
            ]
        })
        .collect();
    table(
        &["NAME", "TYPE", "FROM", "STATUS", "STARTED", "DURATION"],
        &rows,
    )
}

/// The tags of an ImageStream, most recently updated first (then by name), with when each was.
pub(crate) fn tags_by_update(is: &ImageStream) -> Vec<(String, Option<Timestamp>)> {
    let mut tags: Vec<(String, Option<Timestamp>)> = is
        .status
        .iter()
        .flat_map(|s| &s.tags)
        .map(|t| (t.tag.clone(), t.items.first().map(|e| e.created.0)))
        .collect();
    for spec in &is.spec.tags {
        if !tags.iter().any(|(name, _)| *name == spec.name) {
            tags.push((spec.name.clone(), None));
        }
    }
    tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    tags
}

/// `NAME IMAGE REPOSITORY TAGS UPDATED`, as `oc get is` (at most three tags, then `+ N more...`).
pub(crate) fn image_streams(items: &[ImageStream], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|is| {
            let status = is.status.clone().unwrap_or_default();
            let repository = status
                .public_docker_image_repository
                .or(status.docker_image_repository)
                .unwrap_or_default();
            let tags = tags_by_update(is);
            let mut names: Vec<String> = tags.iter().take(3).map(|(n, _)| n.clone()).collect();
            let mut shown = names.join(",");
            if tags.len() > 3 {
                names.truncate(3);
                shown = format!("{} + {} more...", names.join(","), tags.len() - 3);
            }
            let updated = tags
                .iter()
                .filter_map(|(_, t)| *t)
                .max()
                .map(|t| ago(t, now))
                .unwrap_or_default();
            vec![
                is.metadata.name.clone().unwrap_or_default(),
                repository,
                shown,
                updated,
            ]
        })
        .collect();
    table(&["NAME", "IMAGE REPOSITORY", "TAGS", "UPDATED"], &rows)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The objects the golden tests format (tests/fixtures/cli/objects.yaml).
    pub(crate) struct Fixtures {
        pub(crate) configs: Vec<BuildConfig>,
        pub(crate) builds: Vec<Build>,
        pub(crate) streams: Vec<ImageStream>,
    }

    /// The time the golden files were written for.
    pub(crate) fn now() -> Timestamp {
        "2026-11-29T12:00:00Z".parse().unwrap()
    }

    pub(crate) fn fixtures() -> Fixtures {
        let text = include_str!("../../../tests/fixtures/cli/objects.yaml");
        let mut f = Fixtures {
            configs: vec![],
            builds: vec![],
            streams: vec![],
        };
        for doc in crate::yaml::read_documents(text).unwrap() {
            match doc["kind"].as_str().unwrap() {
                "BuildConfig" => f.configs.push(serde_json::from_value(doc).unwrap()),
                "Build" => f.builds.push(serde_json::from_value(doc).unwrap()),
                "ImageStream" => f.streams.push(serde_json::from_value(doc).unwrap()),
                other => panic!("unexpected {other}"),
            }
        }
        f
    }

    /// Compares `actual` with the golden file `name` under tests/fixtures/cli; with
    /// `KILN_BLESS=1` it writes the file instead (review the diff before committing it).
    pub(crate) fn assert_golden(actual: &str, name: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cli")
            .join(name);
        if std::env::var("KILN_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(actual, expected, "{name} (KILN_BLESS=1 rewrites it)");
    }

    #[test]
    fn get_tables_match_their_golden_files() {
        let f = fixtures();
        assert_golden(&build_configs(&f.configs), "get-bc.txt");
        let mut builds = f.builds.clone();
        builds.reverse();
        sort_builds(&mut builds);
        assert_golden(&super::builds(&builds, now()), "get-builds.txt");
        assert_golden(&image_streams(&f.streams, now()), "get-is.txt");
    }

    #[test]
    fn empty_lists_print_only_headers() {
        assert_eq!(build_configs(&[]), "NAME   TYPE   FROM   LATEST\n");
    }
}
