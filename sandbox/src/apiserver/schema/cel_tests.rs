//! Tests of `cel`.
use super::*;
use serde_json::json;

fn eval_rule(rule: &str, value: Value, old: Option<Value>) -> Result<bool> {
    holds(&parse(rule)?, &value, old.as_ref())
}

#[test]
fn rules_table() {
    let spec = json!({"to": {"kind": "ImageStreamTag", "name": "app:latest"}, "command": [], "n": 3, "tags": {"a": "1"}});
    let cases: Vec<(&str, bool)> = vec![
        ("!has(self.to) || !has(self.to.kind) || self.to.kind in ['ImageStreamTag', 'DockerImage']", true),
        ("!has(self.to) || self.to.kind != 'ImageStreamTag' || self.to.name.matches('^[^:@/]+:[^:@/]+$')", true),
        ("self.to.name.matches('^[a-z]+$')", false),
        ("!has(self.script) || !has(self.command) || size(self.command) == 0", true),
        ("!(has(self.to) && has(self.command))", false),
        ("self.n > 2 && self.n <= 3 && self.n != 4", true),
        ("self.n + 1 == 4 && -self.n < 0", true),
        ("[self.n == 3, has(self.to)].all(x, x)", true),
        ("[1, 2, 3].exists(x, x > 2) && [1, 2].exists_one(x, x == 1)", true),
        ("self.tags.all(k, k.startsWith('a')) && 'a' in self.tags", true),
        ("self.to.kind.size() == 14 && self.to.name.endsWith('latest') && self.to.name.contains(':')", true),
        ("self.n == 3 ? true : false", true),
        ("self.command[0] == 'x' || true", true),
    ];
    for (rule, expected) in cases {
        assert_eq!(eval_rule(rule, spec.clone(), None), Ok(expected), "{rule}");
    }
}

#[test]
fn errors_and_transition_rules() {
    assert!(matches!(
        eval_rule("self.missing == 1", json!({}), None),
        Err(CelError::Runtime(_))
    ));
    assert!(matches!(
        eval_rule("self.x.unknownFn()", json!({"x": 1}), None),
        Err(CelError::Unsupported(_))
    ));
    assert!(matches!(parse("self.a = 1"), Err(CelError::Unsupported(_))));
    let rule =
        "!has(oldSelf.revision) || (has(self.revision) && self.revision == oldSelf.revision)";
    assert_eq!(
        eval_rule(rule, json!({"revision": "a"}), Some(json!({}))),
        Ok(true)
    );
    assert_eq!(
        eval_rule(
            rule,
            json!({"revision": "b"}),
            Some(json!({"revision": "a"}))
        ),
        Ok(false)
    );
    assert!(uses_old_self(&parse(rule).unwrap()));
}

#[test]
fn check_rules_reports_paths_and_messages() {
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "!has(self.a) || !has(self.b)", "message": "set at most one of a and b"},
            {"rule": "self == oldSelf", "message": "spec is immutable"},
            {"rule": "self.frobnicate()", "message": "unsupported rules are skipped"}
        ],
        "properties": {"items": {"type": "array", "items": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self.size() < 3"}]}}}
    }}});
    let new = json!({"spec": {"a": 1, "b": 2, "items": ["ok", "long"]}});
    let mut causes = Vec::new();
    check_rules(&schema, &new, None, "", &mut causes);
    let got: Vec<(String, String)> = causes.into_iter().map(|c| (c.field, c.message)).collect();
    assert_eq!(
        got,
        vec![
            (
                "spec".to_string(),
                "Invalid value: \"object\": set at most one of a and b".to_string()
            ),
            (
                "spec.items[1]".to_string(),
                "Invalid value: \"string\": failed rule: self.size() < 3".to_string()
            ),
        ]
    );
    let mut causes = Vec::new();
    check_rules(
        &schema,
        &json!({"spec": {"a": 1}}),
        Some(&json!({"spec": {"a": 2}})),
        "",
        &mut causes,
    );
    assert_eq!(causes.len(), 1);
    assert_eq!(
        causes[0].message,
        "Invalid value: \"object\": spec is immutable"
    );
}
