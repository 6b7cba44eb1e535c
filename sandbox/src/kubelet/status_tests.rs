use super::*;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn ended(code: i32) -> State {
    State::Terminated(Termination {
        exit_code: code,
        signal: None,
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
        message: None,
        started_at: Some(ts(1)),
        finished_at: ts(2),
    })
}

fn rec(states: &[State]) -> Vec<ContainerRecord> {
    states
        .iter()
        .enumerate()
        .map(|(i, s)| ContainerRecord {
            state: s.clone(),
            ..ContainerRecord::new(&format!("c{i}"), "busybox", "x")
        })
        .collect()
}

fn pod(init: Vec<State>, main: Vec<State>, policy: &str) -> PodRecord {
    PodRecord {
        start_time: ts(0),
        init: rec(&init),
        main: rec(&main),
        restart_policy: policy.into(),
        failure: None,
    }
}

#[test]
fn phases() {
    let wait = State::waiting("PodInitializing");
    let run = State::Running(ts(1));
    let cases = [
        (pod(vec![], vec![wait.clone()], "Never"), "Pending"),
        (
            pod(vec![run.clone()], vec![wait.clone()], "Never"),
            "Pending",
        ),
        (
            pod(vec![ended(0), wait.clone()], vec![wait.clone()], "Never"),
            "Pending",
        ),
        (pod(vec![ended(1)], vec![wait.clone()], "Never"), "Failed"),
        (
            pod(vec![ended(1)], vec![wait.clone()], "OnFailure"),
            "Pending",
        ),
        (pod(vec![ended(0)], vec![run.clone()], "Never"), "Running"),
        (pod(vec![], vec![run.clone(), ended(1)], "Never"), "Running"),
        (pod(vec![], vec![ended(0), ended(0)], "Never"), "Succeeded"),
        (pod(vec![], vec![ended(0), ended(2)], "Never"), "Failed"),
        (
            pod(vec![], vec![ended(0), ended(2)], "OnFailure"),
            "Running",
        ),
        (pod(vec![], vec![ended(0)], "OnFailure"), "Succeeded"),
        (pod(vec![], vec![ended(0)], "Always"), "Running"),
        (pod(vec![], vec![], "Never"), "Pending"),
        (
            pod(vec![], vec![run.clone(), wait.clone()], "Never"),
            "Pending",
        ),
        (
            PodRecord {
                main: vec![ContainerRecord {
                    last_state: Some(ended(3)),
                    ..rec(&[State::waiting("CrashLoopBackOff")]).remove(0)
                }],
                ..pod(vec![], vec![], "OnFailure")
            },
            "Running",
        ),
        (
            PodRecord {
                main: vec![
                    ContainerRecord {
                        last_state: Some(ended(0)),
                        ..rec(&[State::waiting("CrashLoopBackOff")]).remove(0)
                    },
                    rec(&[ended(0)]).remove(0),
                ],
                ..pod(vec![], vec![], "Always")
            },
            "Running",
        ),
        (
            PodRecord {
                failure: Some(("DeadlineExceeded".into(), DEADLINE_MESSAGE.into())),
                ..pod(vec![], vec![run.clone()], "Never")
            },
            "Failed",
        ),
    ];
    for (i, (p, want)) in cases.iter().enumerate() {
        assert_eq!(phase(p), *want, "case {i}: {p:?}");
    }
}

#[test]
fn termination_messages() {
    let long_file = vec![b'x'; 5000];
    let long_log: Vec<u8> = (0..100)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let last_80: String = (20..100).map(|i| format!("line {i}\n")).collect();
    type Case<'a> = (&'a [u8], bool, i32, &'a [u8], Option<String>);
    let cases: Vec<Case> = vec![
        (b"", false, 0, b"log", None),
        (b"done", false, 0, b"log", Some("done".into())),
        (b"done", true, 1, b"log", Some("done".into())),
        (b"", true, 1, b"oops\n", Some("oops\n".into())),
        (b"", true, 0, b"fine\n", None),
        (b"", false, 1, b"oops\n", None),
        (&long_file, false, 0, b"", Some("x".repeat(4096))),
        (b"", true, 1, &long_log, Some(last_80)),
    ];
    for (file, fallback, code, log, want) in cases {
        assert_eq!(
            termination_message(file, fallback, code, log),
            want,
            "{fallback} {code}"
        );
    }
    let huge_log = vec![b'y'; 10_000];
    let msg = termination_message(b"", true, 1, &huge_log).unwrap();
    assert_eq!(msg.len(), FALLBACK_BYTES);
}

#[test]
fn status_shape() {
    let p = PodRecord {
        failure: None,
        ..pod(
            vec![ended(0)],
            vec![State::Running(ts(3)), State::waiting("ContainerCreating")],
            "Never",
        )
    };
    let s = pod_status(&p, None, ts(5));
    // A container not started yet keeps the Pod Pending, as in the kubelet's getPhase.
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(s.start_time, Some(Time(ts(0))));
    let init = s.init_container_statuses.as_ref().unwrap();
    let term = init[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );
    let main = s.container_statuses.as_ref().unwrap();
    assert!(main[0].ready && main[0].state.as_ref().unwrap().running.is_some());
    assert!(!main[1].ready);
    assert_eq!(
        main[1]
            .state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("ContainerCreating")
    );
    let conds: Vec<(String, String, Option<String>)> = s
        .conditions
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status, c.message))
        .collect();
    assert_eq!(
        conds,
        vec![
            ("PodScheduled".into(), "True".into(), None),
            ("Initialized".into(), "True".into(), None),
            (
                "ContainersReady".into(),
                "False".into(),
                Some("containers with unready status: [c1]".into())
            ),
            (
                "Ready".into(),
                "False".into(),
                Some("containers with unready status: [c1]".into())
            ),
        ]
    );

    // Transition times survive while a condition keeps its status.
    let later = pod_status(&p, Some(&s), ts(50));
    let times = |st: &PodStatus| -> Vec<Time> {
        st.conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.last_transition_time.clone().unwrap())
            .collect()
    };
    assert_eq!(times(&later), times(&s));
    let done = PodRecord {
        main: rec(&[ended(0), ended(0)]),
        ..p.clone()
    };
    let finished = pod_status(&done, Some(&s), ts(60));
    assert_eq!(finished.phase.as_deref(), Some("Succeeded"));
    let ready = &finished.conditions.as_ref().unwrap()[3];
    assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
    assert_eq!(ready.last_transition_time, Some(Time(ts(5))));

    let failed = PodRecord {
        failure: Some(("DeadlineExceeded".into(), DEADLINE_MESSAGE.into())),
        ..p
    };
    let s = pod_status(&failed, None, ts(9));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(s.message.as_deref(), Some(DEADLINE_MESSAGE));
}
