//! OpenShift `Template` processing, as `oc process` does it: parameter values from `-p` and
//! `--param-file`, defaults, values generated from `generate: expression`, required parameters,
//! `${NAME}` and `${{NAME}}` substitution in every string of every object, hard-coded namespaces
//! stripped, and the template's `labels` added to each object.
//!
//! Written here rather than taken from a crate: no maintained Rust crate implements OpenShift's
//! template semantics, and the expression generator is a small subset of regular expressions
//! (`[a-z0-9]{8}`-style ranges, `\w \d \a \A` classes, literals) that a regex crate cannot generate from.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a parameter file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamError {
    /// A line is not `NAME=VALUE`.
    #[error("line {line}: expected NAME=VALUE, got {text:?}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
}

/// Whether `doc` is an OpenShift Template (`template.openshift.io/v1` or the legacy `v1`).
pub fn is_template(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("Template")
        && matches!(
            doc.get("apiVersion").and_then(Value::as_str),
            Some("v1" | "template.openshift.io/v1")
        )
}

/// Parses `NAME=VALUE` lines (blank lines and `#` comments skipped), as `oc process --param-file`.
pub fn parse_param_file(text: &str) -> Result<Vec<(String, String)>, ParamError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        out.push(parse_param(trimmed).ok_or_else(|| ParamError::Syntax {
            line: i + 1,
            text: line.to_string(),
        })?);
    }
    Ok(out)
}

/// Parses one `NAME=VALUE` (the value may contain `=`); None when there is no `=` or no name.
pub fn parse_param(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_string(), value.to_string()))
}

/// The names of a template's parameters.
pub fn parameter_names(template: &Value) -> Vec<String> {
    parameters(template)
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

fn parameters(template: &Value) -> &[Value] {
    template
        .get("parameters")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Processes `template` with the given values (which win over the template's own), generating
/// missing values with `random` (`random(n)` is a uniform index below `n`). Returns the objects,
/// or every problem as `(field path, message)`.
pub fn process(
    template: &Value,
    given: &BTreeMap<String, String>,
    random: &mut dyn FnMut(usize) -> usize,
) -> Result<Vec<Value>, Vec<(String, String)>> {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, param) in parameters(template).iter().enumerate() {
        let path = format!("parameters[{i}]");
        let Some(name) = param.get("name").and_then(Value::as_str) else {
            problems.push((format!("{path}.name"), "a parameter needs a name".into()));
            continue;
        };
        let mut value = given
            .get(name)
            .cloned()
            .or_else(|| param.get("value").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        if value.is_empty() {
            match param.get("generate").and_then(Value::as_str) {
                None | Some("") => {}
                Some("expression") => {
                    let from = param.get("from").and_then(Value::as_str).unwrap_or_default();
                    match generate(from, random) {
                        Ok(v) => value = v,
                        Err(e) => problems.push((
                            format!("{path}.from"),
                            format!("parameter {name}: cannot generate from {from:?}: {e}"),
                        )),
                    }
                }
                Some(other) => problems.push((
                    format!("{path}.generate"),
                    format!("parameter {name}: unknown generator {other:?} (OpenShift has only \"expression\")"),
                )),
            }
        }
        if value.is_empty() && param.get("required").and_then(Value::as_bool) == Some(true) {
            problems.push((
                path,
                format!("parameter {name} is required and has no value; pass -p {name}=VALUE or --param-file"),
            ));
        }
        values.insert(name.to_string(), value);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let labels: Vec<(String, String)> = template
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        substitute_str(k, &values),
                        substitute_str(v.as_str().unwrap_or_default(), &values),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let objects = template
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(objects
        .into_iter()
        .map(|mut object| {
            strip_namespace(&mut object);
            let mut object = substitute(object, &values);
            add_labels(&mut object, &labels);
            object
        })
        .collect())
}

/// Removes a hard-coded `metadata.namespace`; one naming a parameter stays (and is substituted).
fn strip_namespace(object: &mut Value) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let keep = meta
        .get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|ns| find_reference(ns, 0).is_some());
    if !keep {
        meta.remove("namespace");
    }
}

fn add_labels(object: &mut Value, labels: &[(String, String)]) {
    if labels.is_empty() {
        return;
    }
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let existing = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(existing) = existing.as_object_mut() {
        for (k, v) in labels {
            existing.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

/// Substitutes parameters in every string (and map key) of `value`. A string that is exactly
/// `${{NAME}}` becomes the parameter's value parsed as JSON (kept as a string when it is not JSON).
fn substitute(value: Value, values: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => {
            if let Some(name) = whole_non_string_reference(&s) {
                if let Some(v) = values.get(name) {
                    return serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
                }
            }
            Value::String(substitute_str(&s, values))
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| substitute(v, values)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (substitute_str(&k, values), substitute(v, values)))
                .collect(),
        ),
        other => other,
    }
}

/// `NAME` when `s` is exactly `${{NAME}}`.
fn whole_non_string_reference(s: &str) -> Option<&str> {
    let name = s.strip_prefix("${{")?.strip_suffix("}}")?;
    is_param_name(name).then_some(name)
}

fn is_param_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The next `${NAME}` at or after `from`: (start, end, name).
fn find_reference(s: &str, from: usize) -> Option<(usize, usize, &str)> {
    let mut at = from;
    while let Some(rel) = s.get(at..)?.find("${") {
        let start = at + rel;
        let rest = &s[start + 2..];
        if let Some(close) = rest.find('}') {
            let name = &rest[..close];
            if is_param_name(name) {
                return Some((start, start + 2 + close + 1, name));
            }
        }
        at = start + 2;
    }
    None
}

/// Replaces every `${NAME}` of a known parameter; unknown references stay as written.
fn substitute_str(s: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    while let Some((start, end, name)) = find_reference(s, at) {
        out.push_str(&s[at..start]);
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(&s[start..end]),
        }
        at = end;
    }
    out.push_str(&s[at..]);
    out
}

const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NUMERALS: &str = "0123456789";
const SYMBOLS: &str = "~!@#$%^&*()-_+={}[]\\|<,>.?/\"';:`";
/// The longest value one `{N}` may ask for (OpenShift's generator has the same bound).
const MAX_LENGTH: usize = 255;

/// Generates a value from an OpenShift expression such as `[a-zA-Z0-9]{40}` or `admin[A-Z]{4}`:
/// each `[ranges]{N}` becomes N characters drawn from the ranges; `\w` (letters, digits, `_`),
/// `\d` (digits), `\a` (letters and digits) and `\A` (symbols) may appear inside the brackets;
/// everything else is copied.
pub fn generate(from: &str, random: &mut dyn FnMut(usize) -> usize) -> Result<String, String> {
    if from.is_empty() {
        return Err("the expression is empty".into());
    }
    let mut out = String::new();
    let mut rest = from;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find(']')
            .ok_or_else(|| format!("unclosed [ in {from:?}"))?;
        let class = alphabet(&after[..close])?;
        let tail = &after[close + 1..];
        let (count, tail) = repeat(tail).ok_or_else(|| {
            format!(
                "[{}] must be followed by {{N}}, the number of characters",
                &after[..close]
            )
        })?;
        if count == 0 || count > MAX_LENGTH {
            return Err(format!("{{{count}}}: the length must be 1 to {MAX_LENGTH}"));
        }
        for _ in 0..count {
            out.push(class[random(class.len())]);
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// `{N}` at the start of `s`: (N, what follows).
fn repeat(s: &str) -> Option<(usize, &str)> {
    let inner = s.strip_prefix('{')?;
    let close = inner.find('}')?;
    let n = inner[..close].parse().ok()?;
    Some((n, &inner[close + 1..]))
}

/// The characters a bracket expression stands for, in a stable order without duplicates.
fn alphabet(spec: &str) -> Result<Vec<char>, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut set = Vec::new();
    let add = |c: char, set: &mut Vec<char>| {
        if !set.contains(&c) {
            set.push(c);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let class = match chars.get(i + 1) {
                Some('w') => format!("{ALPHABET}{NUMERALS}_"),
                Some('d') => NUMERALS.to_string(),
                Some('a') => format!("{ALPHABET}{NUMERALS}"),
                Some('A') => SYMBOLS.to_string(),
                other => return Err(format!("unknown class \\{}", other.copied().unwrap_or(' '))),
            };
            class.chars().for_each(|c| add(c, &mut set));
            i += 2;
        } else if chars.get(i + 1) == Some(&'-') && i + 2 < chars.len() {
            let (lo, hi) = (c, chars[i + 2]);
            if lo > hi || !lo.is_ascii_alphanumeric() || !hi.is_ascii_alphanumeric() {
                return Err(format!("invalid range {lo}-{hi}"));
            }
            (lo..=hi).for_each(|c| add(c, &mut set));
            i += 3;
        } else {
            add(c, &mut set);
            i += 1;
        }
    }
    if set.is_empty() {
        return Err("[] names no characters".into());
    }
    Ok(set)
}

/// A uniform index below `n` from the operating system's random source.
pub fn os_random(n: usize) -> usize {
    // Rejection sampling keeps the draw uniform; a failing OS source falls back to the clock,
    // which is no worse than OpenShift's own generator (math/rand seeded with the time).
    let bound = u64::MAX - u64::MAX % n as u64;
    loop {
        let mut bytes = [0u8; 8];
        let x = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        if x < bound {
            return (x % n as u64) as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn counter() -> impl FnMut(usize) -> usize {
        let mut i = 0;
        move |n| {
            i += 1;
            (i - 1) % n
        }
    }

    #[test]
    fn generate_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("[a-c]{5}", Ok("abcab")),
            ("x[0-1]{3}y", Ok("x010y")),
            ("[\\d]{3}", Ok("012")),
            ("[A-C0-1]{5}", Ok("ABC01")),
            ("plain", Ok("plain")),
            ("[a-z]", Err("must be followed by {N}")),
            ("[a-z]{0}", Err("the length must be")),
            ("[a-z{3}", Err("unclosed [")),
            ("[z-a]{2}", Err("invalid range")),
            ("", Err("empty")),
        ];
        for (from, want) in cases {
            let got = generate(from, &mut counter());
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(&g, w, "{from}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{from}: {g}"),
                (w, g) => panic!("{from}: want {w:?}, got {g:?}"),
            }
        }
        let secret = generate("[a-zA-Z0-9]{40}", &mut os_random).unwrap();
        assert_eq!(secret.len(), 40);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn substitution_table() {
        let values: BTreeMap<String, String> = [
            ("NAME", "web"),
            ("REPLICAS", "3"),
            ("FLAG", "true"),
            ("TEXT", "not json"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cases = [
            (json!("${NAME}"), json!("web")),
            (json!("${NAME}-${NAME}:latest"), json!("web-web:latest")),
            (json!("${UNKNOWN}"), json!("${UNKNOWN}")),
            (json!("${{REPLICAS}}"), json!(3)),
            (json!("${{FLAG}}"), json!(true)),
            (json!("${{TEXT}}"), json!("not json")),
            (json!("a ${{REPLICAS}}"), json!("a ${{REPLICAS}}")),
            (
                json!({"${NAME}": ["${NAME}", 1]}),
                json!({"web": ["web", 1]}),
            ),
            (json!("$NAME ${ NAME}"), json!("$NAME ${ NAME}")),
        ];
        for (input, want) in cases {
            assert_eq!(substitute(input.clone(), &values), want, "{input}");
        }
    }

    #[test]
    fn process_applies_values_defaults_generation_labels_and_namespaces() {
        let template = json!({
            "apiVersion": "template.openshift.io/v1", "kind": "Template",
            "metadata": {"name": "t"},
            "labels": {"template": "${NAME}-template"},
            "parameters": [
                {"name": "NAME", "required": true},
                {"name": "REF", "value": "main"},
                {"name": "SECRET", "generate": "expression", "from": "[a-f]{6}"},
                {"name": "NS"}
            ],
            "objects": [
                {"kind": "A", "metadata": {"name": "${NAME}", "namespace": "fixed"},
                 "spec": {"ref": "${REF}", "secret": "${SECRET}"}},
                {"kind": "B", "metadata": {"name": "b", "namespace": "${NS}"}}
            ]
        });
        let given = BTreeMap::from([
            ("NAME".to_string(), "web".to_string()),
            ("NS".to_string(), "team".to_string()),
        ]);
        let objects = process(&template, &given, &mut counter()).unwrap();
        assert_eq!(
            objects[0],
            json!({"kind": "A", "metadata": {"name": "web", "labels": {"template": "web-template"}},
                   "spec": {"ref": "main", "secret": "abcdef"}})
        );
        assert_eq!(objects[1]["metadata"]["namespace"], "team");
        let missing = process(&template, &BTreeMap::new(), &mut counter()).unwrap_err();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, "parameters[0]");
        assert!(missing[0].1.contains("NAME is required"), "{missing:?}");
    }

    #[test]
    fn param_files_parse_like_oc() {
        assert_eq!(
            parse_param_file("# c\n\nA=1\nB=x=y\n").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(
            parse_param_file("A=1\noops\n").unwrap_err(),
            ParamError::Syntax {
                line: 2,
                text: "oops".into()
            }
        );
    }
}
