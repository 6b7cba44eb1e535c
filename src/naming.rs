//! Deterministic names, labels and annotations of the objects kiln creates.

/// Label on a Build: the BuildConfig it came from (shortened to a valid label value).
pub const BUILD_CONFIG_LABEL: &str = "build.kiln.dev/build-config.name";
/// Label on a Build: the run policy snapshotted when it was created.
pub const START_POLICY_LABEL: &str = "build.kiln.dev/build.start-policy";
/// Label on a build Pod: the Build it runs (shortened to a valid label value).
pub const BUILD_NAME_LABEL: &str = "build.kiln.dev/build.name";
/// Annotation on a Build: its number within the BuildConfig.
pub const BUILD_NUMBER_ANNOTATION: &str = "build.kiln.dev/build.number";
/// Annotation on a Build: the BuildConfig's full name.
pub const BUILD_CONFIG_ANNOTATION: &str = "build.kiln.dev/build-config.name";
/// Annotation on a Build: the idempotency key of the request that created it.
pub const REQUEST_ANNOTATION: &str = "build.kiln.dev/request-id";
/// Annotation on a Build: the ImageChange trigger images it recorded (JSON), for the controller
/// to write to the BuildConfig's `status.imageChangeTriggers` when the requester did not.
pub const TRIGGER_IMAGES_ANNOTATION: &str = "build.kiln.dev/image-change-triggers";

/// Label on a Build: a hash of its request id, so a retried request finds its Build with one
/// label-selected list.
pub const REQUEST_LABEL: &str = "build.kiln.dev/request-hash";

/// The value of [`REQUEST_LABEL`] for a request id.
pub fn request_label(request_id: &str) -> String {
    let hash = request_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The longest object name (a DNS-1123 subdomain).
pub const MAX_NAME_LENGTH: usize = 253;
/// The longest label value.
pub const MAX_LABEL_VALUE_LENGTH: usize = 63;

/// `<base>-<suffix>`, shortened with a stable hash when it would exceed `max` characters
/// (OpenShift's `naming.GetName`).
pub fn join_name(base: &str, suffix: &str, max: usize) -> String {
    let full = format!("{base}-{suffix}");
    if full.len() <= max {
        return full;
    }
    let hash = format!("{:08x}", fnv1a(base));
    // base-prefix + "-" + hash + "-" + suffix
    let keep = max.saturating_sub(suffix.len() + hash.len() + 2);
    let prefix = truncate_on_char_boundary(base, keep).trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}-{suffix}")
}

/// The name of build number `number` of BuildConfig `config`: `<config>-<number>`.
pub fn build_name(config: &str, number: i64) -> String {
    join_name(config, &number.to_string(), MAX_NAME_LENGTH)
}

/// The name of a Build's Pod: `<build>-build`.
pub fn pod_name(build: &str) -> String {
    join_name(build, "build", MAX_NAME_LENGTH)
}

/// A valid label value for `name`: itself when short enough, else a prefix plus a stable hash.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE_LENGTH {
        return name.to_string();
    }
    let hash = format!("{:08x}", fnv1a(name));
    let keep = MAX_LABEL_VALUE_LENGTH - hash.len() - 1;
    let prefix = truncate_on_char_boundary(name, keep).trim_end_matches(['-', '.', '_']);
    format!("{prefix}-{hash}")
}

fn truncate_on_char_boundary(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// 32-bit FNV-1a: small, stable across releases and platforms.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The number after `last` (numbers start at 1), or None when it would overflow.
pub fn next_build_number(last: i64) -> Option<i64> {
    last.max(0).checked_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_numbers_never_overflow() {
        for (last, want) in [
            (0, Some(1)),
            (41, Some(42)),
            (-3, Some(1)),
            (i64::MAX - 1, Some(i64::MAX)),
            (i64::MAX, None),
        ] {
            assert_eq!(next_build_number(last), want, "{last}");
        }
    }

    #[test]
    fn names_table() {
        let long = "a".repeat(260);
        let cases: Vec<(String, String, usize)> = vec![
            (build_name("go-server", 1), "go-server-1".into(), 11),
            (build_name("go-server", 12), "go-server-12".into(), 12),
            (pod_name("go-server-12"), "go-server-12-build".into(), 18),
            (build_name(&long, 7), String::new(), MAX_NAME_LENGTH),
            (pod_name(&"b".repeat(250)), String::new(), MAX_NAME_LENGTH),
        ];
        for (got, want, len) in cases {
            if !want.is_empty() {
                assert_eq!(got, want);
            }
            assert_eq!(got.len(), len, "{got}");
        }
        // Shortened names stay distinct for distinct inputs and stable for equal ones.
        assert_ne!(build_name(&long, 7), build_name(&long, 8));
        assert_ne!(
            build_name(&format!("{long}x"), 7),
            build_name(&format!("{long}y"), 7)
        );
        assert_eq!(build_name(&long, 7), build_name(&long, 7));
        assert!(build_name(&long, 7).ends_with("-7"));
    }

    #[test]
    fn label_values_table() {
        let cases = [
            ("go-server", "go-server".to_string()),
            (&*"x".repeat(63), "x".repeat(63)),
        ];
        for (input, want) in cases {
            assert_eq!(label_value(input), want);
        }
        let long = format!("{}-{}", "y".repeat(70), "z");
        let v = label_value(&long);
        assert_eq!(v.len(), 63);
        assert_ne!(v, label_value(&format!("{}-{}", "y".repeat(70), "w")));
    }
}
