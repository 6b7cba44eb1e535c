//! What `kiln get` and `kiln describe` print, as pure functions of the objects and the time
//! (no I/O): `tables` (oc's columns), `describe` (oc's describe layout), and the helpers here.

pub(crate) mod describe;
pub(crate) mod tables;

use k8s_openapi::jiff::Timestamp;

use crate::api::common::{BuildSource, BuildSourceType, CommonSpec};

/// Rows under headers, columns padded to their widest cell plus three spaces (kubectl's layout);
/// the last column is not padded.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            line.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i] - cell.chars().count() + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `Key:` / value pairs with the values aligned (the keys' width plus one tab stop of spaces).
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let label = format!("{key}:");
        out.push_str(format!("{label:<width$}  {value}").trim_end());
        out.push('\n');
    }
    out
}

/// A duration as Go prints a rounded `time.Duration`: `45s`, `1m2s`, `3h0m5s`; under a second
/// `0s`.
pub(crate) fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// How long ago `then` was, as oc says it (`About a minute ago`, `3 hours ago`).
pub(crate) fn ago(then: Timestamp, now: Timestamp) -> String {
    // go-units' HumanDuration, which oc and docker print.
    let seconds = now.duration_since(then).as_secs().max(0);
    let minutes = seconds / 60;
    let hours = (seconds + 1800) / 3600;
    let text = if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    };
    format!("{text} ago")
}

/// A timestamp as RFC 3339 in UTC, seconds precision.
pub(crate) fn timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The source type's name (`Git`, `Dockerfile`, `Binary`, `None`).
pub(crate) fn source_type(source: Option<&BuildSource>) -> &'static str {
    match source.and_then(|s| s.type_) {
        Some(BuildSourceType::Git) => "Git",
        Some(BuildSourceType::Dockerfile) => "Dockerfile",
        Some(BuildSourceType::Binary) => "Binary",
        Some(BuildSourceType::None) | None => {
            if source.is_some_and(|s| s.git.is_some()) {
                "Git"
            } else if source.is_some_and(|s| s.dockerfile.is_some()) {
                "Dockerfile"
            } else {
                "None"
            }
        }
    }
}

/// oc's short source column: `Git@<commit[:7]>` when the commit is known, `Git@<ref>` when a ref
/// is set, else the type.
pub(crate) fn source_short(spec: &CommonSpec) -> String {
    let kind = source_type(spec.source.as_ref());
    if kind != "Git" {
        return kind.to_string();
    }
    let commit = spec
        .revision
        .as_ref()
        .and_then(|r| r.git.as_ref())
        .and_then(|g| g.commit.as_deref())
        .filter(|c| !c.is_empty());
    if let Some(commit) = commit {
        return format!("Git@{}", &commit[..commit.len().min(7)]);
    }
    match spec
        .source
        .as_ref()
        .and_then(|s| s.git.as_ref())
        .and_then(|g| g.ref_.as_deref())
        .filter(|r| !r.is_empty())
    {
        Some(r) => format!("Git@{r}"),
        None => "Git".into(),
    }
}

/// An object reference as oc prints it: `ImageStreamTag ns/name:tag` (namespace only when set).
pub(crate) fn object_reference(r: &k8s_openapi::api::core::v1::ObjectReference) -> String {
    let kind = r.kind.as_deref().unwrap_or("ImageStreamTag");
    let name = r.name.as_deref().unwrap_or_default();
    match r.namespace.as_deref().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn durations_and_ages() {
        for (seconds, text) in [(0, "0s"), (45, "45s"), (62, "1m2s"), (3605, "1h0m5s")] {
            assert_eq!(duration(seconds), text);
        }
        let now = t("2026-11-29T12:00:00Z");
        for (then, text) in [
            ("2026-11-29T12:00:00Z", "Less than a second ago"),
            ("2026-11-29T11:59:59Z", "1 second ago"),
            ("2026-11-29T11:59:15Z", "45 seconds ago"),
            ("2026-11-29T11:58:30Z", "About a minute ago"),
            ("2026-11-29T11:45:00Z", "15 minutes ago"),
            ("2026-11-29T10:40:00Z", "About an hour ago"),
            ("2026-11-29T10:30:00Z", "2 hours ago"),
            ("2026-11-29T10:00:05Z", "2 hours ago"),
            ("2026-11-28T12:00:00Z", "24 hours ago"),
            ("2026-11-20T12:00:00Z", "9 days ago"),
            ("2026-10-29T12:00:00Z", "4 weeks ago"),
            ("2025-11-29T12:00:00Z", "12 months ago"),
            ("2020-11-29T12:00:00Z", "6 years ago"),
            ("2026-11-29T12:00:10Z", "Less than a second ago"),
        ] {
            assert_eq!(ago(t(then), now), text, "{then}");
        }
        assert_eq!(timestamp(now), "2026-11-29T12:00:00Z");
    }

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let text = table(
            &["NAME", "TYPE", "LATEST"],
            &[
                vec!["a".into(), "Docker".into(), "1".into()],
                vec!["longer-name".into(), "".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME          TYPE     LATEST\n\
             a             Docker   1\n\
             longer-name\n"
        );
        assert_eq!(
            fields(&[
                ("Name", "a".into()),
                ("Namespace", "b".into()),
                ("Empty", "".into())
            ]),
            "Name:       a\nNamespace:  b\nEmpty:\n"
        );
    }
}
