//! In-process: kube-rs Controller, watcher and faults against the sandbox router.

mod apiserver_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apiserver_support::{eventually, widget_crd};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kiln_sandbox::apiserver::FaultAction;
use kiln_sandbox::{ApiServer, ServerConfig};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams, Resource, ResourceExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, CustomResource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
pub struct WidgetSpec {
    size: i64,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    phase: Option<String>,
    observed_generation: Option<i64>,
}

const LIMIT: Duration = Duration::from_secs(10);

async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = serde_json::from_value(widget_crd()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
}

fn widget(name: &str, size: i64) -> Widget {
    Widget::new(name, WidgetSpec { size })
}

struct Context {
    client: Client,
    reconciles: AtomicUsize,
}

async fn reconcile(widget: Arc<Widget>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let namespace = widget.namespace().unwrap_or_default();
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let owner = widget.controller_owner_ref(&()).unwrap();
    let child = ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{}-child", widget.name_any())),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some([("size".to_string(), widget.spec.size.to_string())].into()),
        ..Default::default()
    };
    let apply = PatchParams::apply("widget-controller").force();
    config_maps
        .patch(&child.name_any(), &apply, &Patch::Apply(&child))
        .await?;
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &namespace);
    let status = json!({
        "apiVersion": "example.dev/v1", "kind": "Widget",
        "status": {"phase": "Ready", "observedGeneration": widget.metadata.generation}
    });
    widgets
        .patch_status(&widget.name_any(), &apply, &Patch::Apply(&status))
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<Widget>, _: &kube::Error, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test]
async fn controller_owns_children_and_status_reaches_a_separate_watcher() {
    let server = ApiServer::new();
    let client = server.client();
    install_crd(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());

    // A separate watcher records the status phases it sees.
    let seen_ready = Arc::new(AtomicUsize::new(0));
    let seen = seen_ready.clone();
    let status_watch = tokio::spawn(
        watcher(widgets.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .for_each(move |w| {
                if let Ok(w) = w {
                    if w.status.and_then(|s| s.phase).as_deref() == Some("Ready") {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
                futures::future::ready(())
            }),
    );

    let ctx = Arc::new(Context {
        client: client.clone(),
        reconciles: AtomicUsize::new(0),
    });
    let controller = tokio::spawn(
        Controller::new(widgets.clone(), watcher::Config::default())
            .owns(config_maps.clone(), watcher::Config::default())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|_| futures::future::ready(())),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Created after the controller started.
    widgets
        .create(&PostParams::default(), &widget("late", 3))
        .await
        .unwrap();
    let child = eventually(LIMIT, "child config map", || async {
        config_maps.get_opt("late-child").await.unwrap()
    })
    .await;
    assert_eq!(child.data.unwrap()["size"], "3");
    assert_eq!(child.metadata.owner_references.unwrap()[0].name, "late");
    eventually(LIMIT, "status seen by the separate watcher", || async {
        (seen_ready.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let stored = widgets.get("late").await.unwrap();
    assert_eq!(stored.status.unwrap().observed_generation, Some(1));
    let managers: Vec<_> = stored
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager, m.subresource))
        .collect();
    assert!(
        managers.contains(&(Some("widget-controller".into()), Some("status".into()))),
        "{managers:?}"
    );

    // `.owns()`: deleting the child triggers a reconcile of the owner, which recreates it.
    let before = ctx.reconciles.load(Ordering::SeqCst);
    config_maps
        .delete("late-child", &Default::default())
        .await
        .unwrap();
    eventually(LIMIT, "child recreated", || async {
        let recreated = config_maps.get_opt("late-child").await.unwrap();
        (ctx.reconciles.load(Ordering::SeqCst) > before)
            .then_some(recreated)
            .flatten()
    })
    .await;

    // A spec change bumps generation, and the controller reports it.
    widgets
        .patch(
            "late",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    eventually(LIMIT, "observedGeneration 2", || async {
        let w = widgets.get("late").await.unwrap();
        (w.status.and_then(|s| s.observed_generation) == Some(2)).then_some(())
    })
    .await;

    // Deleting the owner removes the child (background cascade).
    widgets.delete("late", &Default::default()).await.unwrap();
    eventually(LIMIT, "child collected", || async {
        config_maps
            .get_opt("late-child")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    controller.abort();
    status_watch.abort();
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn watches_recover_through_drops_and_410_by_relisting() {
    // No periodic bookmarks, so the watcher's resourceVersion stays at its last event.
    let server = ApiServer::with_config(ServerConfig {
        bookmark_interval: Duration::from_secs(3600),
        ..Default::default()
    });
    let client = server.client();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());

    let names = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeSet::<String>::new(),
    ));
    let inits = Arc::new(AtomicUsize::new(0));
    let (names_w, inits_w) = (names.clone(), inits.clone());
    let task = tokio::spawn(
        watcher(config_maps.clone(), watcher::Config::default())
            .default_backoff()
            .for_each(move |event| {
                match event {
                    Ok(Event::Init) => {
                        inits_w.fetch_add(1, Ordering::SeqCst);
                        names_w.lock().unwrap().clear();
                    }
                    Ok(Event::InitApply(o) | Event::Apply(o)) => {
                        names_w.lock().unwrap().insert(o.name_any());
                    }
                    Ok(Event::Delete(o)) => {
                        names_w.lock().unwrap().remove(&o.name_any());
                    }
                    _ => {}
                }
                futures::future::ready(())
            }),
    );
    let has = |name: &'static str| {
        let names = names.clone();
        move || {
            let names = names.clone();
            async move { names.lock().unwrap().contains(name).then_some(()) }
        }
    };

    config_maps
        .create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    eventually(LIMIT, "a", has("a")).await;
    assert_eq!(inits.load(Ordering::SeqCst), 1);

    // A plain drop: the watcher resumes from its resourceVersion without relisting.
    server.faults().drop_watches();
    config_maps
        .create(&PostParams::default(), &config_map("b"))
        .await
        .unwrap();
    eventually(LIMIT, "b after a dropped watch", has("b")).await;
    assert_eq!(
        inits.load(Ordering::SeqCst),
        1,
        "a drop alone must not force a relist"
    );

    // Move the global resourceVersion past the watcher's, forget history, and drop the watch:
    // the re-watch gets 410 Gone and the watcher relists.
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    server.faults().compact();
    server.faults().drop_watches();
    eventually(LIMIT, "relist after 410", || async {
        (inits.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    config_maps
        .create(&PostParams::default(), &config_map("c"))
        .await
        .unwrap();
    eventually(LIMIT, "c after relist", has("c")).await;
    let all: Vec<String> = names.lock().unwrap().iter().cloned().collect();
    assert_eq!(all, vec!["a", "b", "c"]);
    task.abort();
}

#[tokio::test]
async fn injected_faults_reach_the_client() {
    let server = ApiServer::new();
    let client = server.client();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let created = config_maps
        .create(&PostParams::default(), &config_map("x"))
        .await
        .unwrap();

    server.faults().inject(
        Some("update"),
        Some("configmaps"),
        FaultAction::Fail(409),
        1,
    );
    let error = config_maps
        .replace("x", &PostParams::default(), &created)
        .await
        .unwrap_err();
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("expected a 409, got {other:?}"),
    }
    // Only the next matching request failed.
    config_maps
        .replace("x", &PostParams::default(), &created)
        .await
        .unwrap();

    for (code, reason) in [
        (429u16, "TooManyRequests"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ] {
        server
            .faults()
            .inject(Some("get"), None, FaultAction::Fail(code), 1);
        match config_maps.get("x").await.unwrap_err() {
            kube::Error::Api(status) => {
                assert_eq!(status.code, code);
                assert_eq!(status.reason, reason);
            }
            other => panic!("expected {code}, got {other:?}"),
        }
    }
    server.faults().inject(
        Some("list"),
        Some("configmaps"),
        FaultAction::DelayMs(300),
        1,
    );
    let start = std::time::Instant::now();
    config_maps.list(&Default::default()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    config_maps.get("x").await.unwrap();
}

#[tokio::test]
async fn stale_updates_conflict_and_generation_tracks_spec_only() {
    let server = ApiServer::new();
    let client = server.client();
    install_crd(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let first = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    assert!(first.metadata.uid.is_some() && first.metadata.creation_timestamp.is_some());

    let mut newer = first.clone();
    newer.spec.size = 2;
    let newer = widgets
        .replace("w", &PostParams::default(), &newer)
        .await
        .unwrap();
    assert_eq!(newer.metadata.generation, Some(2));
    let mut stale = first.clone();
    stale.spec.size = 3;
    match widgets
        .replace("w", &PostParams::default(), &stale)
        .await
        .unwrap_err()
    {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"))
        }
        other => panic!("{other:?}"),
    }
    // Label and status changes do not bump generation; status is ignored on the main resource.
    let labelled = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}, "status": {"phase": "X"}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));
    assert!(labelled.status.is_none());
    let with_status = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Y"}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.metadata.generation, Some(2));
    assert_eq!(with_status.spec.size, 2);
    assert_eq!(with_status.status.unwrap().phase.as_deref(), Some("Y"));
}

#[tokio::test]
async fn metadata_only_reads_and_watches() {
    let server = ApiServer::new();
    let client = server.client();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let mut labelled = config_map("m");
    labelled.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    labelled.data = Some([("big".to_string(), "x".repeat(1000))].into());
    config_maps
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    let meta = config_maps.get_metadata("m").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["app"], "web");
    assert_eq!(meta.types.unwrap().kind, "PartialObjectMetadata");
    let list = config_maps
        .list_metadata(&Default::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let metadata_api: Api<kube::api::PartialObjectMeta<ConfigMap>> =
        Api::default_namespaced(client.clone());
    let mut events = watcher(metadata_api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(LIMIT, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("m"));
    config_maps
        .create(&PostParams::default(), &config_map("n"))
        .await
        .unwrap();
    let second = tokio::time::timeout(LIMIT, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("n"));
}

#[tokio::test]
async fn kube_finalizer_helper_adds_and_releases_its_finalizer() {
    use kube::runtime::finalizer::{finalizer, Event as Finalizer};
    let server = ApiServer::new();
    let client = server.client();
    install_crd(&client).await;
    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    let cleaned = Arc::new(AtomicUsize::new(0));
    let ctx = (widgets.clone(), cleaned.clone());
    let controller = tokio::spawn(
        Controller::new(widgets.clone(), watcher::Config::default())
            .run(
                |widget: Arc<Widget>, ctx: Arc<(Api<Widget>, Arc<AtomicUsize>)>| async move {
                    let (api, cleaned) = (&ctx.0, ctx.1.clone());
                    finalizer(api, "example.dev/cleanup", widget, |event| async move {
                        if let Finalizer::Cleanup(_) = event {
                            cleaned.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok::<_, kube::Error>(Action::await_change())
                    })
                    .await
                },
                |_, _, _| Action::requeue(Duration::from_millis(100)),
                Arc::new(ctx),
            )
            .for_each(|_| futures::future::ready(())),
    );
    widgets
        .create(&PostParams::default(), &widget("f", 1))
        .await
        .unwrap();
    eventually(LIMIT, "finalizer added", || async {
        let w = widgets.get("f").await.unwrap();
        (w.finalizers() == ["example.dev/cleanup"]).then_some(())
    })
    .await;
    widgets.delete("f", &Default::default()).await.unwrap();
    eventually(LIMIT, "object released and removed", || async {
        widgets.get_opt("f").await.unwrap().is_none().then_some(())
    })
    .await;
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    controller.abort();
}

#[tokio::test]
async fn event_recorder_creates_then_patches_a_series() {
    use k8s_openapi::api::events::v1::Event as NewEvent;
    use kube::runtime::events::{Event as Published, EventType, Recorder, Reporter};
    let server = ApiServer::new();
    let client = server.client();
    let config_maps: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let subject = config_maps
        .create(&PostParams::default(), &config_map("subject"))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kiln".into(),
            instance: None,
        },
    );
    let published = Published {
        type_: EventType::Normal,
        reason: "Built".into(),
        note: Some("the build finished".into()),
        action: "Build".into(),
        secondary: None,
    };
    let reference = subject.object_ref(&());
    recorder.publish(&published, &reference).await.unwrap();
    recorder.publish(&published, &reference).await.unwrap();
    let events: Api<NewEvent> = Api::default_namespaced(client.clone());
    let list = events.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let event = &list.items[0];
    assert_eq!(event.reason.as_deref(), Some("Built"));
    assert_eq!(event.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        event.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("subject")
    );
}
