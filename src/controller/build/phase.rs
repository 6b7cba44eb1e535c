//! The Build phase machine: a Build's next status from its build Pod (pure; OpenShift's
//! `handleActiveBuild` and `handleCompletedBuild`, row by row).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::stall::pending_message;
use crate::api::build::{BuildCondition, BuildStatusOutput, BuildStatusOutputTo};
use crate::api::contract::{BuildReport, BUILD_CONTAINER, CLONE_CONTAINER};
use crate::api::{Build, BuildPhase, BuildStatus, StatusReason};

/// How many lines `status.logSnippet` keeps (OpenShift's `maxExcerptLength`).
pub(crate) const LOG_SNIPPET_LINES: usize = 5;
/// Lines longer than this are shortened in `status.logSnippet`.
pub(crate) const LOG_SNIPPET_LINE_WIDTH: usize = 120;
/// The message of a cancelled build.
pub(crate) const CANCELLED_MESSAGE: &str = "The build was cancelled by the user.";

/// Facts about the world besides the Pod that the phase machine needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Observed {
    /// The time to stamp on transitions.
    pub(crate) now: Timestamp,
    /// The Build's push secret is named but does not exist.
    pub(crate) push_secret_missing: bool,
    /// How long the build Pod may stay Pending before the Build says why (`None`: no limit).
    pub(crate) pending_timeout: Option<std::time::Duration>,
}

/// Whether cancellation was requested, through `status.cancelled` or the declarative `spec.cancel`.
pub(crate) fn cancel_requested(build: &Build) -> bool {
    build.spec.cancel == Some(true) || build.status.as_ref().and_then(|s| s.cancelled) == Some(true)
}

/// The status a Build should have now, or `None` when nothing changes.
///
/// New builds are left to the run policy; a terminal phase is never left.
pub(crate) fn next_status(
    build: &Build,
    pod: Option<&Pod>,
    observed: &Observed,
) -> Option<BuildStatus> {
    let current = build.status.clone().unwrap_or_default();
    if current.phase.is_terminal() {
        return complete_terminal(build, current, observed);
    }
    let mut next = current.clone();
    if cancel_requested(build) {
        next.cancelled = Some(true);
        set_outcome(
            &mut next,
            BuildPhase::Cancelled,
            Some(StatusReason::CancelledBuild),
            Some(CANCELLED_MESSAGE.into()),
        );
    } else if current.phase == BuildPhase::New {
        return None;
    } else {
        active_transition(&mut next, pod, observed);
    }
    if next.phase.is_terminal() {
        next = complete_terminal(build, next.clone(), observed).unwrap_or(next);
    }
    sync_conditions(&mut next, observed.now);
    (next != current).then_some(next)
}

/// The outcome of a build whose Pod is gone (or not the build's own) before it finished.
fn pod_deleted(next: &mut BuildStatus) {
    set_outcome(
        next,
        BuildPhase::Error,
        Some(StatusReason::BuildPodDeleted),
        Some("The pod for this build was deleted before the build completed.".into()),
    );
}

/// The rows for a Pending or Running build.
fn active_transition(next: &mut BuildStatus, pod: Option<&Pod>, observed: &Observed) {
    let Some(pod) = pod else {
        pod_deleted(next);
        return;
    };
    let status = pod.status.clone().unwrap_or_default();
    let pod_phase = status.phase.as_deref().unwrap_or("Pending");
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let started = status.start_time.clone();
    match pod_phase {
        "Succeeded" | "Failed" => {}
        _ if deleting => {
            pod_deleted(next);
            return;
        }
        _ => {}
    }
    match pod_phase {
        "Pending" => {
            let clone_started = status.init_container_statuses.iter().flatten().any(|c| {
                c.name == CLONE_CONTAINER
                    && c.state
                        .as_ref()
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
            });
            if clone_started {
                set_running(next, started, observed.now);
            } else if observed.push_secret_missing {
                next.phase = BuildPhase::Pending;
                next.reason = Some(StatusReason::MissingPushSecret);
                next.message =
                    Some("The push secret does not exist yet; the build waits for it.".into());
            } else {
                next.phase = BuildPhase::Pending;
                next.reason = None;
                next.message = observed
                    .pending_timeout
                    .and_then(|timeout| pending_message(pod, observed.now, timeout));
            }
        }
        "Running" => set_running(next, started, observed.now),
        "Succeeded" => {
            if next.start_timestamp.is_none() {
                next.start_timestamp = Some(Time(started.map(|t| t.0).unwrap_or(observed.now)));
            }
            succeeded(next, &status);
        }
        "Failed" => {
            if next.start_timestamp.is_none() {
                next.start_timestamp = started;
            }
            failed(next, pod, &status);
        }
        _ => {
            next.phase = BuildPhase::Pending;
        }
    }
}

fn set_running(next: &mut BuildStatus, started: Option<Time>, now: Timestamp) {
    next.phase = BuildPhase::Running;
    next.reason = None;
    next.message = None;
    if next.start_timestamp.is_none() {
        next.start_timestamp = Some(started.unwrap_or(Time(now)));
    }
}

fn all_container_statuses(
    status: &k8s_openapi::api::core::v1::PodStatus,
) -> impl Iterator<Item = &ContainerStatus> {
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
}

fn succeeded(next: &mut BuildStatus, status: &k8s_openapi::api::core::v1::PodStatus) {
    let build = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == BUILD_CONTAINER);
    let Some(build) = build else {
        set_outcome(next, BuildPhase::Error, Some(StatusReason::NoBuildContainerStatus), Some("The pod for this build has no container statuses, which indicates the build failed.".into()));
        return;
    };
    if let Some(bad) =
        all_container_statuses(status).find(|c| exit_code(c).is_some_and(|code| code != 0))
    {
        set_outcome(
            next,
            BuildPhase::Error,
            Some(StatusReason::FailedContainer),
            Some(format!(
                "The container {} of the build pod exited with code {}.",
                bad.name,
                exit_code(bad).unwrap_or_default()
            )),
        );
        return;
    }
    let report = report_of(build);
    apply_report(next, report.as_ref());
    set_outcome(next, BuildPhase::Complete, None, None);
}

fn failed(next: &mut BuildStatus, pod: &Pod, status: &k8s_openapi::api::core::v1::PodStatus) {
    let pod_reason = status.reason.as_deref().unwrap_or_default();
    let oom = pod_reason == "OOMKilled"
        || all_container_statuses(status).any(|c| terminated_reason(c) == Some("OOMKilled"));
    // The container that failed first decides: init containers run before the build container.
    let failing =
        all_container_statuses(status).find(|c| exit_code(c).is_some_and(|code| code != 0));
    let report = failing.and_then(report_of);
    let raw_message = failing.and_then(termination_message);
    if let Some(r) = &report {
        apply_report(next, Some(r));
    }
    next.log_snippet = match &report {
        Some(r) => report_log_snippet(r),
        None => raw_message
            .map(|text| log_snippet(&text))
            .filter(|s| !s.is_empty()),
    };
    if oom {
        set_outcome(
            next,
            BuildPhase::Failed,
            Some(StatusReason::OutOfMemoryKilled),
            Some("The build pod was killed due to an out of memory condition.".into()),
        );
    } else if pod_reason == "Evicted" {
        let message = status
            .message
            .clone()
            .unwrap_or_else(|| "The build pod was evicted.".into());
        set_outcome(
            next,
            BuildPhase::Failed,
            Some(StatusReason::BuildPodEvicted),
            Some(message),
        );
    } else if pod.metadata.deletion_timestamp.is_some() {
        pod_deleted(next);
    } else if let Some(r) = report.as_ref().filter(|r| r.reason.is_some()) {
        set_outcome(next, BuildPhase::Failed, r.reason, r.message.clone());
    } else if pod_reason == "DeadlineExceeded" {
        let message = status
            .message
            .clone()
            .unwrap_or_else(|| "The build ran past its completion deadline.".into());
        set_outcome(
            next,
            BuildPhase::Failed,
            Some(StatusReason::GenericBuildFailed),
            Some(message),
        );
    } else {
        set_outcome(
            next,
            BuildPhase::Failed,
            Some(StatusReason::GenericBuildFailed),
            Some("Generic Build failure - check logs for details.".into()),
        );
    }
}

fn set_outcome(
    next: &mut BuildStatus,
    phase: BuildPhase,
    reason: Option<StatusReason>,
    message: Option<String>,
) {
    next.phase = phase;
    next.reason = reason;
    next.message = message;
}

fn exit_code(c: &ContainerStatus) -> Option<i32> {
    c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code)
}

fn terminated_reason(c: &ContainerStatus) -> Option<&str> {
    c.state.as_ref()?.terminated.as_ref()?.reason.as_deref()
}

fn termination_message(c: &ContainerStatus) -> Option<String> {
    c.state
        .as_ref()?
        .terminated
        .as_ref()?
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
}

/// The builder's JSON report in a container's termination message, if it holds one.
pub(crate) fn report_of(c: &ContainerStatus) -> Option<BuildReport> {
    serde_json::from_str(termination_message(c)?.trim()).ok()
}

/// Copies what the builder reported (digest, stages, output reference) into the status.
fn apply_report(next: &mut BuildStatus, report: Option<&BuildReport>) {
    let Some(report) = report else { return };
    if let Some(digest) = &report.image_digest {
        next.output = Some(BuildStatusOutput {
            to: Some(BuildStatusOutputTo {
                image_digest: Some(digest.clone()),
            }),
        });
    }
    if !report.stages.is_empty() {
        next.stages = report.stages.clone();
    }
    if next.output_docker_image_reference.is_none() {
        next.output_docker_image_reference = report.output_reference.clone();
    }
}

/// The log snippet of a failed builder's report: the last lines of its log tail.
fn report_log_snippet(report: &BuildReport) -> Option<String> {
    report
        .log_tail
        .as_deref()
        .map(log_snippet)
        .filter(|s| !s.is_empty())
}

/// Fills completion data on a terminal status that lacks it.
fn complete_terminal(
    build: &Build,
    mut status: BuildStatus,
    observed: &Observed,
) -> Option<BuildStatus> {
    let before = status.clone();
    let completed = status
        .completion_timestamp
        .clone()
        .unwrap_or(Time(observed.now));
    status.completion_timestamp = Some(completed.clone());
    if status.duration.is_none() {
        let start = status
            .start_timestamp
            .clone()
            .or_else(|| build.metadata.creation_timestamp.clone())
            .map(|t| t.0)
            .unwrap_or(completed.0);
        let nanos = completed.0.as_nanosecond() - start.as_nanosecond();
        status.duration = Some(i64::try_from(nanos.max(0)).unwrap_or(i64::MAX));
    }
    if status.phase == BuildPhase::Complete {
        status.log_snippet = None;
    }
    sync_conditions(&mut status, observed.now);
    (status != before).then_some(status)
}

/// One condition per phase seen; the current phase's is True (OpenShift's `manageConditions`).
fn sync_conditions(status: &mut BuildStatus, now: Timestamp) {
    let phase = status.phase.as_str();
    let mut found = false;
    for c in &mut status.conditions {
        let want = if c.type_ == phase { "True" } else { "False" };
        if c.type_ == phase {
            found = true;
            let reason = status.reason.map(|r| r.as_str().to_string());
            if c.reason != reason || c.message != status.message {
                c.last_update_time = Some(Time(now));
            }
            c.reason = reason;
            c.message = status.message.clone();
        }
        if c.status != want {
            c.status = want.to_string();
            c.last_transition_time = Some(Time(now));
            c.last_update_time = Some(Time(now));
        }
    }
    if !found {
        status.conditions.push(BuildCondition {
            type_: phase.to_string(),
            status: "True".into(),
            last_update_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
            reason: status.reason.map(|r| r.as_str().to_string()),
            message: status.message.clone(),
        });
    }
}

/// The last [`LOG_SNIPPET_LINES`] lines of `text`, each at most [`LOG_SNIPPET_LINE_WIDTH`] characters
/// (58 + "..." + 59, as OpenShift shortens them).
pub(crate) fn log_snippet(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(LOG_SNIPPET_LINES);
    lines[start..]
        .iter()
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            if chars.len() > LOG_SNIPPET_LINE_WIDTH {
                let head: String = chars[..58].iter().collect();
                let tail: String = chars[chars.len() - 59..].iter().collect();
                format!("{head}...{tail}")
            } else {
                (*line).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[path = "phase_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "phase_fuzz_tests.rs"]
mod fuzz_tests;

/// The status of a New build whose Pod was just created: Pending, with where it pushes.
pub(crate) fn started(
    build: &Build,
    output_reference: Option<String>,
    now: Timestamp,
) -> BuildStatus {
    let mut status = build.status.clone().unwrap_or_default();
    status.phase = BuildPhase::Pending;
    status.reason = None;
    status.message = None;
    status.output_docker_image_reference = output_reference;
    status.config = crate::api::config_reference(build);
    sync_conditions(&mut status, now);
    status
}

/// The status of a New build that cannot start yet, with the reason it waits.
pub(crate) fn waiting(
    build: &Build,
    reason: StatusReason,
    message: String,
    now: Timestamp,
) -> BuildStatus {
    let mut status = build.status.clone().unwrap_or_default();
    status.reason = Some(reason);
    status.message = Some(message);
    sync_conditions(&mut status, now);
    status
}

/// The status of a build that ends before it ran: Cancelled (queued and cancelled) or Error.
pub(crate) fn ended_before_start(
    build: &Build,
    phase: BuildPhase,
    reason: StatusReason,
    message: &str,
    now: Timestamp,
) -> BuildStatus {
    let mut status = build.status.clone().unwrap_or_default();
    if phase == BuildPhase::Cancelled {
        status.cancelled = Some(true);
    }
    set_outcome(&mut status, phase, Some(reason), Some(message.to_string()));
    let observed = Observed {
        now,
        push_secret_missing: false,
        pending_timeout: None,
    };
    complete_terminal(build, status.clone(), &observed).unwrap_or(status)
}

/// The status of a started build whose builder runs now (the Pod's Running row).
pub(crate) fn running(build: &Build, now: Timestamp) -> BuildStatus {
    let mut status = build.status.clone().unwrap_or_default();
    set_running(&mut status, None, now);
    sync_conditions(&mut status, now);
    status
}

/// The terminal status of a running build whose builder ended with `report`: what it pushed,
/// its stages, and Complete, or Failed with the report's reason, message and log snippet (the
/// rows the Pod's Succeeded and Failed phases take when the builder reported; `kiln build` ends
/// with it).
pub(crate) fn finished(build: &Build, report: &BuildReport, now: Timestamp) -> BuildStatus {
    let mut next = build.status.clone().unwrap_or_default();
    apply_report(&mut next, Some(report));
    if report.is_failure() {
        next.log_snippet = report_log_snippet(report);
        set_outcome(
            &mut next,
            BuildPhase::Failed,
            report.reason,
            report.message.clone(),
        );
    } else {
        set_outcome(&mut next, BuildPhase::Complete, None, None);
    }
    let observed = Observed {
        now,
        push_secret_missing: false,
        pending_timeout: None,
    };
    next = complete_terminal(build, next.clone(), &observed).unwrap_or(next);
    sync_conditions(&mut next, now);
    next
}

/// The revision a builder report names (commit, author, committer, message).
pub(crate) fn report_revision(report: &BuildReport) -> Option<crate::api::common::SourceRevision> {
    let source = report.source.as_ref()?;
    source.revision.commit.as_ref()?;
    Some(crate::api::common::SourceRevision {
        type_: Some("Git".into()),
        git: Some(source.revision.clone()),
    })
}

/// The revision the builder reported (commit, author, committer, message), when the Build does
/// not name a commit yet: the build container's report first, then the clone container's.
pub(crate) fn reported_revision(
    build: &Build,
    pod: &Pod,
) -> Option<crate::api::common::SourceRevision> {
    let named = build
        .spec
        .common
        .revision
        .as_ref()
        .and_then(|r| r.git.as_ref())
        .is_some_and(|g| !g.is_empty());
    if named {
        return None;
    }
    let status = pod.status.as_ref()?;
    let report = [BUILD_CONTAINER, CLONE_CONTAINER].iter().find_map(|name| {
        all_container_statuses(status)
            .find(|c| c.name == *name)
            .and_then(report_of)
            .filter(|r| r.source.is_some())
    })?;
    report_revision(&report)
}
