//! The builder's report: source info and the JSON termination message the controller parses.

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::api::build::{StageInfo, StageName, StepInfo};
use crate::api::common::SourceControlUser;
use crate::api::StatusReason;

/// What was checked out: written by `kiln builder clone`, read by `kiln builder build`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// Where the source came from (repository URL, or `binary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The branch or tag that was asked for.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// The full commit hash that was checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<SourceControlUser>,
    /// The commit's committer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<SourceControlUser>,
    /// The commit date, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The termination message of a builder container: success data or the failure reason.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    /// The pushed manifest digest, `sha256:…`, as confirmed by the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The image reference that was pushed (`host/repo:tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_reference: Option<String>,
    /// The commit that was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    /// The stages run, each with its start time and duration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageInfo>,
    /// Why the build failed; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// A one-line explanation a user can act on; absent on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last lines of the failing step's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

/// A failure of a builder step: the OpenShift reason, a one-line message and the last log lines.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Failure {
    /// The OpenShift reason.
    pub reason: StatusReason,
    /// A one-line message a user can act on.
    pub message: String,
    /// The last lines of the failing step's output.
    pub log_tail: Option<String>,
}

impl Failure {
    /// A failure with a reason and message and no log.
    pub fn new(reason: StatusReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: one_line(&message.into()),
            log_tail: None,
        }
    }

    /// The same failure carrying the last lines of a log.
    pub fn with_log(mut self, log_tail: Option<String>) -> Self {
        self.log_tail = log_tail.filter(|t| !t.trim().is_empty());
        self
    }
}

impl BuildReport {
    /// Whether the report describes a failed build.
    pub fn is_failure(&self) -> bool {
        self.reason.is_some()
    }

    /// Records a failure in the report.
    pub fn fail(&mut self, failure: &Failure) {
        self.reason = Some(failure.reason);
        self.message = Some(failure.message.clone());
        self.log_tail = failure.log_tail.clone();
    }

    /// Appends the stages of another report (e.g. the clone container's FetchInputs).
    pub fn prepend_stages(&mut self, earlier: Vec<StageInfo>) {
        let later = std::mem::take(&mut self.stages);
        self.stages = earlier;
        self.stages.extend(later);
    }

    /// Serializes the report as JSON of at most `limit` bytes, shortening the log tail first, then
    /// the commit message and failure message, then dropping steps.
    pub fn to_message(&self, limit: usize) -> String {
        let mut report = self.clone();
        let mut json = encode(&report);
        while json.len() > limit {
            if let Some(tail) = report.log_tail.as_mut().filter(|t| !t.is_empty()) {
                *tail = drop_first_line_or_half(tail);
            } else if let Some(msg) = report
                .source
                .as_mut()
                .and_then(|s| s.message.as_mut())
                .filter(|m| m.len() > 80)
            {
                *msg = truncate_chars(msg, msg.len() / 2);
            } else if let Some(msg) = report.message.as_mut().filter(|m| m.len() > 200) {
                *msg = truncate_chars(msg, msg.len() / 2);
            } else if report.stages.iter().any(|s| !s.steps.is_empty()) {
                report.stages.iter_mut().for_each(|s| s.steps.clear());
            } else if report.source.is_some() {
                report.source = None;
            } else {
                // Only huge message/reference fields remain: cut the message hard.
                let msg = report.message.get_or_insert_with(String::new);
                *msg = truncate_chars(msg, msg.len().saturating_sub(json.len() - limit + 8));
                if msg.is_empty() {
                    return encode(&BuildReport {
                        reason: report.reason,
                        ..Default::default()
                    });
                }
            }
            json = encode(&report);
        }
        json
    }
}

fn encode(report: &BuildReport) -> String {
    // Serializing plain strings, numbers and enums cannot fail; fall back to an empty object anyway.
    serde_json::to_string(report).unwrap_or_else(|_| "{}".to_string())
}

fn drop_first_line_or_half(text: &str) -> String {
    match text.split_once('\n') {
        Some((_, rest)) if !rest.is_empty() => rest.to_string(),
        _ => {
            let keep = text.len() / 2;
            let start = (text.len() - keep..=text.len()).find(|i| text.is_char_boundary(*i));
            start.map(|s| text[s..].to_string()).unwrap_or_default()
        }
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut with `…`.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Collapses a message to its first non-empty line, trimmed.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The last `n` non-empty lines of a log.
pub fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Records stage timings as they run.
#[derive(Debug, Default)]
pub struct StageClock {
    stages: Vec<StageInfo>,
    current: Option<(StageName, Time, Instant)>,
}

impl StageClock {
    /// Starts a stage, ending the one that was running.
    pub fn start(&mut self, name: StageName) {
        self.finish();
        self.current = Some((name, now(), Instant::now()));
    }

    /// Ends the running stage, if any.
    pub fn finish(&mut self) {
        if let Some((name, start, began)) = self.current.take() {
            let duration = i64::try_from(began.elapsed().as_millis()).unwrap_or(i64::MAX);
            self.stages.push(StageInfo {
                name,
                start_time: Some(start.clone()),
                duration_milliseconds: duration,
                steps: vec![StepInfo {
                    name: step_name(name).to_string(),
                    start_time: Some(start),
                    duration_milliseconds: duration,
                }],
            });
        }
    }

    /// Ends the running stage and returns every stage recorded.
    pub fn into_stages(mut self) -> Vec<StageInfo> {
        self.finish();
        self.stages
    }
}

/// OpenShift's step name for each stage.
pub fn step_name(stage: StageName) -> &'static str {
    match stage {
        StageName::FetchInputs => "FetchGitSource",
        StageName::PullImages => "PullBaseImage",
        StageName::Build => "DockerBuild",
        StageName::PostCommit => "RunPostCommitHook",
        StageName::PushImage => "PushDockerImage",
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_report(log_lines: usize, msg_len: usize) -> BuildReport {
        let mut clock = StageClock::default();
        for s in [
            StageName::FetchInputs,
            StageName::PullImages,
            StageName::Build,
        ] {
            clock.start(s);
        }
        BuildReport {
            output_reference: Some("registry.example:5000/ns/app:latest".into()),
            source: Some(SourceInfo {
                commit: Some("a".repeat(40)),
                message: Some("m".repeat(msg_len)),
                ..Default::default()
            }),
            stages: clock.into_stages(),
            reason: Some(StatusReason::DockerBuildFailed),
            message: Some("building at STEP \"RUN false\": exit status 1".into()),
            log_tail: Some(
                (0..log_lines)
                    .map(|i| format!("log line {i} é"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn termination_message_fits_and_round_trips() {
        for (lines, msg_len, limit) in [
            (0, 10, 4096),
            (30, 100, 4096),
            (5000, 10, 4096),
            (10, 20_000, 4096),
            (5000, 20_000, 600),
        ] {
            let report = big_report(lines, msg_len);
            let json = report.to_message(limit);
            assert!(
                json.len() <= limit,
                "{lines} {msg_len}: {} bytes",
                json.len()
            );
            let back: BuildReport = serde_json::from_str(&json).unwrap();
            assert_eq!(back.reason, Some(StatusReason::DockerBuildFailed));
            assert_eq!(back.message, report.message);
            if let (Some(tail), Some(original)) = (back.log_tail, &report.log_tail) {
                assert!(original.ends_with(&tail), "keeps the newest lines");
            }
        }
    }

    #[test]
    fn small_report_is_unchanged() {
        let report = big_report(3, 10);
        let back: BuildReport = serde_json::from_str(&report.to_message(4096)).unwrap();
        // Kubernetes times keep whole seconds, so compare the JSON forms.
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
    }

    #[test]
    fn helpers() {
        for (input, want) in [("", ""), ("\n  first \nsecond", "first"), ("one", "one")] {
            assert_eq!(one_line(input), want);
        }
        for (input, n, want) in [("a\nb\n\nc\n", 2, "b\nc"), ("a", 5, "a"), ("", 3, "")] {
            assert_eq!(last_lines(input, n), want);
        }
        for (input, max, want) in [
            ("abcdef", 10, "abcdef"),
            ("abcdef", 4, "a…"),
            ("ééé", 5, "é…"),
        ] {
            assert_eq!(truncate_chars(input, max), want);
        }
    }

    #[test]
    fn clock_records_stages_in_order() {
        let mut clock = StageClock::default();
        clock.start(StageName::FetchInputs);
        clock.start(StageName::Build);
        let stages = clock.into_stages();
        let names: Vec<_> = stages.iter().map(|s| s.name).collect();
        assert_eq!(names, [StageName::FetchInputs, StageName::Build]);
        assert_eq!(stages[1].steps[0].name, "DockerBuild");
    }
}
