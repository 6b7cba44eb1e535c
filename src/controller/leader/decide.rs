//! What a replica does with the Lease it just read, and the Lease it writes: the pure half of
//! leader election (client-go's algorithm).
//!
//! Expiry is judged on this replica's own monotonic clock: a record (holder, renewTime,
//! duration, transitions) this replica has seen unchanged for the Lease's duration is expired,
//! whatever the `renewTime` timestamps say, so clock skew between nodes cannot shorten a lease.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// A Lease's spec as last read, and since when this replica has seen it unchanged.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Observation {
    spec: LeaseSpec,
    since: Instant,
}

impl Observation {
    /// The holder the Lease names, if any.
    pub(crate) fn holder(&self) -> Option<&str> {
        holder_of(&self.spec)
    }
}

/// `spec` read at `now`: the clock keeps running from `previous` when nothing changed.
pub(crate) fn observe(
    previous: Option<Observation>,
    spec: &LeaseSpec,
    now: Instant,
) -> Observation {
    match previous {
        Some(previous) if previous.spec == *spec => previous,
        _ => Observation {
            spec: spec.clone(),
            since: now,
        },
    }
}

/// The next step of a replica whose identity is `me`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// No Lease exists: create it, holding it.
    Create,
    /// This replica holds the Lease: renew it.
    Renew,
    /// The Lease is free (released) or expired: take it.
    Acquire,
    /// Another replica holds the Lease and it has not expired.
    Follow,
}

/// What to do with the Lease as `observation` saw it (None: there is no Lease).
/// `default_duration` applies when the Lease names no valid duration of its own.
pub(crate) fn decide(
    observation: Option<&Observation>,
    me: &str,
    default_duration: Duration,
    now: Instant,
) -> Step {
    let Some(observation) = observation else {
        return Step::Create;
    };
    match observation.holder() {
        None => Step::Acquire,
        Some(holder) if holder == me => Step::Renew,
        Some(_) => {
            let duration = observation
                .spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(default_duration, Duration::from_secs);
            if now.saturating_duration_since(observation.since) >= duration {
                Step::Acquire
            } else {
                Step::Follow
            }
        }
    }
}

fn holder_of(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// The spec of a Lease created by `me`.
pub(crate) fn created(me: &str, duration: Duration, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(seconds(duration)),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(0),
        ..LeaseSpec::default()
    }
}

/// `spec` after `step` by `me` at `now` (`Create` and `Follow` leave it as it is).
pub(crate) fn after(
    step: &Step,
    spec: &LeaseSpec,
    me: &str,
    duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let mut next = spec.clone();
    match step {
        Step::Renew => {
            next.renew_time = Some(MicroTime(now));
            next.lease_duration_seconds = Some(seconds(duration));
        }
        Step::Acquire => {
            next.holder_identity = Some(me.to_string());
            next.acquire_time = Some(MicroTime(now));
            next.renew_time = Some(MicroTime(now));
            next.lease_duration_seconds = Some(seconds(duration));
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        Step::Create | Step::Follow => {}
    }
    next
}

/// `spec` given up by its holder at `now`: no holder, so the next replica to read it takes it
/// at once (a one-second duration for readers that judge by time alone, as client-go writes it).
pub(crate) fn released(spec: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..spec.clone()
    }
}

/// Whether `spec` names `me` as its holder.
pub(crate) fn held_by(spec: &LeaseSpec, me: &str) -> bool {
    holder_of(spec) == Some(me)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, duration: Option<i32>, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            lease_duration_seconds: duration,
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        // (lease, seen unchanged for, expected step)
        let cases: Vec<(Option<LeaseSpec>, Duration, Step)> = vec![
            (None, secs(0), Step::Create),
            (Some(spec(Some("me"), Some(15), 1)), secs(0), Step::Renew),
            (Some(spec(Some("me"), Some(15), 1)), secs(60), Step::Renew),
            (Some(spec(None, Some(1), 1)), secs(0), Step::Acquire),
            (Some(spec(Some(""), Some(15), 1)), secs(0), Step::Acquire),
            (
                Some(spec(Some("other"), Some(15), 1)),
                secs(0),
                Step::Follow,
            ),
            (
                Some(spec(Some("other"), Some(15), 1)),
                secs(14),
                Step::Follow,
            ),
            (
                Some(spec(Some("other"), Some(15), 1)),
                secs(15),
                Step::Acquire,
            ),
            // No duration, or a nonsensical one: the replica's own (10 s here).
            (Some(spec(Some("other"), None, 1)), secs(9), Step::Follow),
            (Some(spec(Some("other"), None, 1)), secs(10), Step::Acquire),
            (
                Some(spec(Some("other"), Some(-5), 1)),
                secs(10),
                Step::Acquire,
            ),
            (Some(spec(Some("other"), Some(0), 1)), secs(9), Step::Follow),
        ];
        for (lease, seen_for, want) in cases {
            let observation = lease.as_ref().map(|s| observe(None, s, t0));
            let got = decide(observation.as_ref(), "me", secs(10), t0 + seen_for);
            assert_eq!(got, want, "{lease:?} seen for {seen_for:?}");
        }
    }

    #[test]
    fn the_clock_restarts_only_when_the_record_changes() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let first = observe(None, &spec(Some("a"), Some(15), 1), t0);
        // Read again unchanged: still judged from t0, whatever the timestamps claim.
        let same = observe(Some(first.clone()), &spec(Some("a"), Some(15), 1), later);
        assert_eq!(same.since, t0);
        // Renewed (renewTime moved): the clock restarts.
        let renewed = observe(Some(first), &spec(Some("a"), Some(15), 2), later);
        assert_eq!(renewed.since, later);
        assert_eq!(
            decide(
                Some(&renewed),
                "b",
                Duration::from_secs(15),
                t0 + Duration::from_secs(16)
            ),
            Step::Follow
        );
        assert_eq!(
            decide(
                Some(&renewed),
                "b",
                Duration::from_secs(15),
                later + Duration::from_secs(15)
            ),
            Step::Acquire
        );
    }

    #[test]
    fn written_specs() {
        let now = Timestamp::from_second(100).unwrap();
        let d = Duration::from_secs(15);
        let new = created("me", d, now);
        assert!(held_by(&new, "me"));
        assert_eq!(new.lease_transitions, Some(0));
        assert_eq!(new.lease_duration_seconds, Some(15));

        let theirs = LeaseSpec {
            lease_transitions: Some(3),
            acquire_time: Some(MicroTime(Timestamp::from_second(1).unwrap())),
            ..spec(Some("other"), Some(30), 1)
        };
        let taken = after(&Step::Acquire, &theirs, "me", d, now);
        assert!(held_by(&taken, "me"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.lease_duration_seconds, Some(15));

        let renewed = after(
            &Step::Renew,
            &taken,
            "me",
            d,
            Timestamp::from_second(105).unwrap(),
        );
        assert_eq!(
            renewed.acquire_time, taken.acquire_time,
            "a renewal keeps acquireTime"
        );
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(
            renewed.renew_time,
            Some(MicroTime(Timestamp::from_second(105).unwrap()))
        );

        let given_up = released(&renewed, now);
        assert!(!held_by(&given_up, "me"));
        assert_eq!(given_up.lease_transitions, Some(4), "transitions are kept");
        assert_eq!(given_up.lease_duration_seconds, Some(1));
        let seen = observe(None, &given_up, Instant::now());
        assert_eq!(seen.holder(), None);
        assert_eq!(decide(Some(&seen), "b", d, Instant::now()), Step::Acquire);

        assert_eq!(after(&Step::Follow, &theirs, "me", d, now), theirs);
        // A transitions counter at its limit stays there rather than overflowing.
        let full = LeaseSpec {
            lease_transitions: Some(i32::MAX),
            ..theirs
        };
        assert_eq!(
            after(&Step::Acquire, &full, "me", d, now).lease_transitions,
            Some(i32::MAX)
        );
    }
}
