//! The Helm chart: its files parse, every value a template uses has a default, and RBAC covers
//! what the controller does.

use std::collections::BTreeSet;

fn chart_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/charts/kiln/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn templates() -> Vec<(String, String)> {
    let dir = format!("{}/charts/kiln/templates", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn chart_and_values_parse() {
    let chart = kiln::yaml::read_documents(&chart_file("Chart.yaml")).unwrap();
    assert_eq!(chart[0]["name"], "kiln");
    assert_eq!(chart[0]["apiVersion"], "v2");
    let values = kiln::yaml::read_documents(&chart_file("values.yaml")).unwrap();
    assert!(values[0].is_object());
}

#[test]
fn every_value_a_template_uses_has_a_default() {
    let values = kiln::yaml::read_documents(&chart_file("values.yaml"))
        .unwrap()
        .remove(0);
    let mut used = BTreeSet::new();
    for (_, text) in templates() {
        for part in text.split(".Values.").skip(1) {
            let path: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            used.insert(path.trim_end_matches('.').to_string());
        }
    }
    assert!(!used.is_empty());
    for path in used {
        let pointer = format!("/{}", path.replace('.', "/"));
        assert!(
            values.pointer(&pointer).is_some(),
            "values.yaml has no default for .Values.{path}"
        );
    }
}

#[test]
fn rbac_covers_what_the_controller_writes() {
    let rbac = templates()
        .into_iter()
        .find(|(n, _)| n == "rbac.yaml")
        .unwrap()
        .1;
    for needle in [
        "buildconfigs/status",
        "builds/status",
        "imagestreams/status",
        "\"pods\"",
        "events.k8s.io",
    ] {
        assert!(rbac.contains(needle), "rbac.yaml lacks {needle}");
    }
    // The operator reads no secret data and never lists secrets.
    let secrets_rule = rbac
        .split("- apiGroups")
        .find(|r| r.contains("\"secrets\""))
        .unwrap();
    assert!(secrets_rule.contains("verbs: [\"get\"]"), "{secrets_rule}");
}
