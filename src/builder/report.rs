//! The builder's side of the report: failures of its steps, stage timings and log helpers. The
//! report itself is part of the Pod contract ([`crate::api::contract::BuildReport`]).

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::build::{StageInfo, StageName, StepInfo};
use crate::api::contract::BuildReport;
use crate::api::StatusReason;

/// A failure of a builder step: the OpenShift reason, a one-line message and the last log lines.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}: {message}")]
pub(crate) struct Failure {
    /// The OpenShift reason.
    pub(crate) reason: StatusReason,
    /// A one-line message a user can act on.
    pub(crate) message: String,
    /// The last lines of the failing step's output.
    pub(crate) log_tail: Option<String>,
}

impl Failure {
    /// A failure with a reason and message and no log.
    pub(crate) fn new(reason: StatusReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: one_line(&message.into()),
            log_tail: None,
        }
    }

    /// The same failure carrying the last lines of a log.
    pub(crate) fn with_log(mut self, log_tail: Option<String>) -> Self {
        self.log_tail = log_tail.filter(|t| !t.trim().is_empty());
        self
    }
}

impl BuildReport {
    /// Records a failure in the report.
    pub(crate) fn fail(&mut self, failure: &Failure) {
        self.reason = Some(failure.reason);
        self.message = Some(failure.message.clone());
        self.log_tail = failure.log_tail.clone();
    }
}

/// Collapses a message to its first non-empty line, trimmed.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The last `n` non-empty lines of a log.
pub(crate) fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Records stage timings as they run.
#[derive(Debug, Default)]
pub(crate) struct StageClock {
    stages: Vec<StageInfo>,
    current: Option<(StageName, Time, Instant)>,
}

impl StageClock {
    /// Starts a stage, ending the one that was running.
    pub(crate) fn start(&mut self, name: StageName) {
        self.finish();
        self.current = Some((name, now(), Instant::now()));
    }

    /// Ends the running stage, if any.
    pub(crate) fn finish(&mut self) {
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
    pub(crate) fn into_stages(mut self) -> Vec<StageInfo> {
        self.finish();
        self.stages
    }
}

/// OpenShift's step name for each stage.
pub(crate) fn step_name(stage: StageName) -> &'static str {
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

    #[test]
    fn helpers() {
        for (input, want) in [("", ""), ("\n  first \nsecond", "first"), ("one", "one")] {
            assert_eq!(one_line(input), want);
        }
        for (input, n, want) in [("a\nb\n\nc\n", 2, "b\nc"), ("a", 5, "a"), ("", 3, "")] {
            assert_eq!(last_lines(input, n), want);
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
