//! A container's `resources` as cgroup settings (pure), the way containerd's CRI plugin sets
//! them: the memory limit in bytes, the CPU limit as a CFS quota over a 100 ms period, CPU
//! shares from the request (the limit when no request is given, as the API server defaults it).

use k8s_openapi::api::core::v1::Container;
use serde_json::{json, Map, Value};

/// The CFS period containerd uses (µs).
pub const CPU_PERIOD: u64 = 100_000;

/// Parses a Kubernetes quantity (`64Mi`, `1.5G`, `250m`, `1e3`) into its value.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(end);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    let value = number * factor;
    (value.is_finite() && value >= 0.0).then_some(value)
}

fn quantity(container: &Container, kind: &str, name: &str) -> Result<Option<f64>, String> {
    let resources = container.resources.as_ref();
    let map = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        _ => resources.and_then(|r| r.requests.as_ref()),
    };
    match map.and_then(|m| m.get(name)) {
        None => Ok(None),
        Some(q) => parse_quantity(&q.0)
            .map(Some)
            .ok_or_else(|| format!("resources.{kind}.{name}: invalid quantity {:?}", q.0)),
    }
}

/// The `memory` and `cpu` entries of the OCI `linux.resources` for the container (empty when it
/// sets no resources).
pub fn linux_resources(container: &Container) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    if let Some(bytes) = quantity(container, "limits", "memory")? {
        out.insert("memory".into(), json!({"limit": bytes.ceil() as i64}));
    }
    let limit = quantity(container, "limits", "cpu")?;
    let request = quantity(container, "requests", "cpu")?.or(limit);
    let mut cpu = Map::new();
    if let Some(cores) = request {
        let milli = (cores * 1000.0).ceil() as u64;
        cpu.insert("shares".into(), json!((milli * 1024 / 1000).max(2)));
    }
    if let Some(cores) = limit {
        let milli = (cores * 1000.0).ceil() as u64;
        let quota = (milli * CPU_PERIOD / 1000).max(1000);
        cpu.insert("quota".into(), json!(quota));
        cpu.insert("period".into(), json!(CPU_PERIOD));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases = [
            ("64Mi", Some(67_108_864.0)),
            ("1Gi", Some(1_073_741_824.0)),
            ("1G", Some(1e9)),
            ("500M", Some(5e8)),
            ("250m", Some(0.25)),
            ("1.5", Some(1.5)),
            ("2", Some(2.0)),
            ("1e3", Some(1000.0)),
            ("1E", Some(1e18)),
            ("12Zi", None),
            ("", None),
            ("-1", None),
            ("Mi", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_quantity(text), want, "{text}");
        }
    }

    #[test]
    fn limits_and_requests_become_cgroup_settings() {
        let container = |resources: Value| -> Container {
            serde_json::from_value(json!({"name": "c", "resources": resources})).unwrap()
        };
        let cases = [
            (json!({}), json!({})),
            (
                json!({"limits": {"memory": "32Mi", "cpu": "250m"}}),
                json!({"memory": {"limit": 33_554_432}, "cpu": {"shares": 256, "quota": 25_000, "period": 100_000}}),
            ),
            (
                json!({"requests": {"cpu": "2"}, "limits": {"cpu": "4"}}),
                json!({"cpu": {"shares": 2048, "quota": 400_000, "period": 100_000}}),
            ),
            (
                json!({"requests": {"cpu": "1m", "memory": "1Gi"}}),
                json!({"cpu": {"shares": 2}}),
            ),
        ];
        for (resources, want) in cases {
            let got = linux_resources(&container(resources.clone())).unwrap();
            assert_eq!(Value::Object(got), want, "{resources}");
        }
        let bad = linux_resources(&container(json!({"limits": {"memory": "lots"}})));
        assert_eq!(
            bad.unwrap_err(),
            "resources.limits.memory: invalid quantity \"lots\""
        );
    }
}
