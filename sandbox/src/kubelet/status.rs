//! Pod status as a kubelet reports it, computed from what the kubelet knows (pure).

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::logs::tail;

/// The kubelet's cap on a termination message read from the file.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Lines of log used by `FallbackToLogsOnError`.
pub const FALLBACK_LINES: usize = 80;
/// Bytes of log used by `FallbackToLogsOnError`.
pub const FALLBACK_BYTES: usize = 2048;
/// The pod-level message of an `activeDeadlineSeconds` failure (the real kubelet's wording).
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// Exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `ContainerCannotRun`...
    pub reason: String,
    /// The termination message.
    pub message: Option<String>,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Timestamp,
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not running yet (or waiting for a restart).
    Waiting {
        /// Machine-readable reason.
        reason: String,
        /// Human-readable detail.
        message: Option<String>,
    },
    /// Running since.
    Running(Timestamp),
    /// Ended.
    Terminated(Termination),
}

impl State {
    /// Waiting with a reason and no message.
    pub fn waiting(reason: &str) -> Self {
        State::Waiting {
            reason: reason.to_string(),
            message: None,
        }
    }

    fn succeeded(&self) -> bool {
        matches!(self, State::Terminated(t) if t.exit_code == 0)
    }

    fn failed(&self) -> bool {
        matches!(self, State::Terminated(t) if t.exit_code != 0)
    }
}

/// What the kubelet tracks about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Current state.
    pub state: State,
    /// The previous run's state, after a restart.
    pub last_state: Option<State>,
    /// How many times it was restarted.
    pub restart_count: i32,
    /// The pulled image's `registry/repository@digest` (runtimes that pull images).
    pub image_id: String,
    /// `<runtime>://<id>` of the current or last run (runtimes with container ids).
    pub container_id: Option<String>,
}

impl ContainerRecord {
    /// A container that has not started.
    pub fn new(name: &str, image: &str, reason: &str) -> Self {
        ContainerRecord {
            name: name.to_string(),
            image: image.to_string(),
            state: State::waiting(reason),
            last_state: None,
            restart_count: 0,
            image_id: String::new(),
            container_id: None,
        }
    }
}

/// What the kubelet tracks about one Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    /// When the kubelet accepted the Pod.
    pub start_time: Timestamp,
    /// Init containers, in order.
    pub init: Vec<ContainerRecord>,
    /// Regular containers.
    pub main: Vec<ContainerRecord>,
    /// `Never`, `OnFailure` or `Always`.
    pub restart_policy: String,
    /// A pod-level failure (reason, message), e.g. `DeadlineExceeded`.
    pub failure: Option<(String, String)>,
}

/// The state that decides a container's part in the phase: a container waiting to restart
/// counts as its last termination, as in the kubelet's `getPhase`.
fn effective(c: &ContainerRecord) -> &State {
    match (&c.state, &c.last_state) {
        (State::Waiting { .. }, Some(last @ State::Terminated(_))) => last,
        (state, _) => state,
    }
}

/// The pod phase, following the kubelet's rules (`getPhase`).
pub fn phase(pod: &PodRecord) -> &'static str {
    if pod.failure.is_some() {
        return "Failed";
    }
    let never = pod.restart_policy == "Never";
    if pod.init.iter().any(|c| c.state.failed()) && never {
        return "Failed";
    }
    if !pod.init.iter().all(|c| c.state.succeeded()) || pod.main.is_empty() {
        return "Pending";
    }
    let states: Vec<&State> = pod.main.iter().map(effective).collect();
    if states.iter().any(|s| matches!(s, State::Waiting { .. })) {
        return "Pending";
    }
    if states.iter().any(|s| matches!(s, State::Running(_))) {
        return "Running";
    }
    let any_failed = states.iter().any(|s| s.failed());
    match pod.restart_policy.as_str() {
        "Always" => "Running",
        "OnFailure" if any_failed => "Running",
        _ if any_failed => "Failed",
        _ => "Succeeded",
    }
}

/// The termination message: the file's content (capped at 4096 bytes), or with
/// `FallbackToLogsOnError` and an empty file and a failure, the tail of the log.
pub fn termination_message(
    file: &[u8],
    fallback_to_logs: bool,
    exit_code: i32,
    log: &[u8],
) -> Option<String> {
    let file = &file[..file.len().min(MAX_MESSAGE_BYTES)];
    let text = if file.is_empty() && fallback_to_logs && exit_code != 0 {
        tail(log, FALLBACK_LINES, FALLBACK_BYTES)
    } else {
        file
    };
    (!text.is_empty()).then(|| String::from_utf8_lossy(text).into_owned())
}

/// Exit code of a process ended by a signal, as container runtimes report it.
pub fn signal_exit_code(signal: i32) -> i32 {
    128 + signal
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn container_state(state: &State) -> ContainerState {
    match state {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        State::Running(since) => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(*since)),
            }),
            ..Default::default()
        },
        State::Terminated(t) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: t.exit_code,
                signal: t.signal,
                reason: Some(t.reason.clone()),
                message: t.message.clone(),
                started_at: t.started_at.map(time),
                finished_at: Some(time(t.finished_at)),
                container_id: None,
            }),
            ..Default::default()
        },
    }
}

fn container_status(c: &ContainerRecord) -> ContainerStatus {
    let running = matches!(c.state, State::Running(_));
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: c.container_id.clone(),
        ready: running,
        started: Some(running),
        restart_count: c.restart_count,
        state: Some(container_state(&c.state)),
        last_state: c.last_state.as_ref().map(container_state),
        ..Default::default()
    }
}

/// Names of containers for which `pred` is false, as the kubelet lists them in messages.
fn not_matching(cs: &[ContainerRecord], pred: impl Fn(&State) -> bool) -> Vec<&str> {
    cs.iter()
        .filter(|c| !pred(&c.state))
        .map(|c| c.name.as_str())
        .collect()
}

/// One condition, keeping the previous transition time when its status did not change.
fn condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    previous: Option<&PodStatus>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == status))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(time(now));
    PodCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        ..Default::default()
    }
}

fn conditions(
    pod: &PodRecord,
    phase: &str,
    prev: Option<&PodStatus>,
    now: Timestamp,
) -> Vec<PodCondition> {
    let done = phase == "Succeeded" || phase == "Failed";
    let pending_init = not_matching(&pod.init, State::succeeded);
    let initialized = pending_init.is_empty();
    let init_reason = if initialized {
        done.then_some("PodCompleted")
    } else {
        Some("ContainersNotInitialized")
    };
    let init_message = (!initialized).then(|| {
        format!(
            "containers with incomplete status: [{}]",
            pending_init.join(" ")
        )
    });
    let unready = not_matching(&pod.main, |s| matches!(s, State::Running(_)));
    let ready = unready.is_empty() && !pod.main.is_empty() && !done;
    let ready_reason = if ready {
        None
    } else if done {
        Some("PodCompleted")
    } else {
        Some("ContainersNotReady")
    };
    let ready_message = (!ready && !done)
        .then(|| format!("containers with unready status: [{}]", unready.join(" ")));
    vec![
        condition("PodScheduled", true, None, None, prev, now),
        condition(
            "Initialized",
            initialized,
            init_reason,
            init_message,
            prev,
            now,
        ),
        condition(
            "ContainersReady",
            ready,
            ready_reason,
            ready_message.clone(),
            prev,
            now,
        ),
        condition("Ready", ready, ready_reason, ready_message, prev, now),
    ]
}

/// The full Pod status to write through the status subresource.
pub fn pod_status(pod: &PodRecord, previous: Option<&PodStatus>, now: Timestamp) -> PodStatus {
    let phase = phase(pod);
    let (reason, message) = match &pod.failure {
        Some((r, m)) => (Some(r.clone()), Some(m.clone())),
        None => (None, None),
    };
    let init: Vec<ContainerStatus> = pod.init.iter().map(container_status).collect();
    PodStatus {
        phase: Some(phase.to_string()),
        reason,
        message,
        start_time: Some(time(pod.start_time)),
        host_ip: Some("127.0.0.1".to_string()),
        pod_ip: Some("127.0.0.1".to_string()),
        conditions: Some(conditions(pod, phase, previous, now)),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(pod.main.iter().map(container_status).collect()),
        qos_class: previous.and_then(|p| p.qos_class.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
