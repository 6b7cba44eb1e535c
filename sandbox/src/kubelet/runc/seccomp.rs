//! Seccomp profiles (pure): the Docker/containerd profile format, with rules included or
//! excluded by capability and architecture, turned into the OCI `linux.seccomp` section.
//!
//! `RuntimeDefault` is containerd's default profile, kept as data in
//! `runtime_default_seccomp.json`; `Localhost` profiles use the same format.

use serde::Deserialize;
use serde_json::{json, Value};

/// containerd's default profile, in the profile format below.
const RUNTIME_DEFAULT: &str = include_str!("runtime_default_seccomp.json");

/// A profile file: the format Docker and containerd load (`defaultAction`, `syscalls` with
/// `includes`/`excludes`), plus OCI's `architectures`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// What an unlisted syscall does (`SCMP_ACT_ERRNO`, `SCMP_ACT_ALLOW`, ...).
    pub default_action: String,
    /// The errno of `SCMP_ACT_ERRNO` when not EPERM.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// OCI's list of seccomp architectures (used as is when present).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Docker's architecture map: each native architecture with its sub-architectures.
    #[serde(default)]
    pub arch_map: Vec<ArchMapEntry>,
    /// The rules, in order.
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// One entry of Docker's `archMap`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    /// The native architecture (`SCMP_ARCH_X86_64`).
    pub architecture: String,
    /// The ones it can also run (`SCMP_ARCH_X86`, `SCMP_ARCH_X32`).
    #[serde(default)]
    pub sub_architectures: Vec<String>,
}

/// One rule: these syscalls get this action (under these argument conditions).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Syscall names (`name` in older profiles).
    #[serde(default)]
    pub names: Vec<String>,
    /// A single syscall name (older profiles).
    #[serde(default)]
    pub name: Option<String>,
    /// `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO`, ...
    pub action: String,
    /// The errno of an `SCMP_ACT_ERRNO` rule.
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Argument conditions, copied to the OCI spec.
    #[serde(default)]
    pub args: Vec<Value>,
    /// The rule applies only with these capabilities / on these architectures.
    #[serde(default)]
    pub includes: Filter,
    /// The rule does not apply with any of these capabilities / on these architectures.
    #[serde(default)]
    pub excludes: Filter,
}

/// Capabilities and architectures a rule is included or excluded by.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capability names (`CAP_SYS_ADMIN`).
    #[serde(default)]
    pub caps: Vec<String>,
    /// Architecture names (`x86_64`, `aarch64`; Go's `amd64`/`arm64` are accepted too).
    #[serde(default)]
    pub arches: Vec<String>,
}

/// The default profile, parsed.
pub fn runtime_default() -> Profile {
    // The data is part of the program and checked by a unit test.
    serde_json::from_str(RUNTIME_DEFAULT).unwrap_or_else(|_| Profile {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: None,
        architectures: Vec::new(),
        arch_map: Vec::new(),
        syscalls: Vec::new(),
    })
}

/// Parses a `Localhost` profile file.
pub fn parse(text: &str) -> Result<Profile, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "x86",
        "ppc64le" => "powerpc64",
        other => other,
    }
}

/// The seccomp architectures of a native architecture (as `std::env::consts::ARCH` names it).
pub fn seccomp_arches(arch: &str) -> Vec<String> {
    let list: &[&str] = match arch {
        "x86_64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => &["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
        "s390x" => &["SCMP_ARCH_S390", "SCMP_ARCH_S390X"],
        "riscv64" => &["SCMP_ARCH_RISCV64"],
        _ => &[],
    };
    list.iter().map(|s| s.to_string()).collect()
}

fn applies(rule: &Rule, caps: &[String], arch: &str) -> bool {
    let has_cap = |c: &String| caps.contains(c);
    let on_arch = |a: &String| normalize_arch(a) == arch;
    let included = rule.includes.caps.iter().all(has_cap)
        && (rule.includes.arches.is_empty() || rule.includes.arches.iter().any(on_arch));
    let excluded =
        rule.excludes.caps.iter().any(has_cap) || rule.excludes.arches.iter().any(on_arch);
    included && !excluded
}

/// The OCI `linux.seccomp` section of `profile` for a container whose bounding set is `caps`,
/// on the native architecture `arch`.
pub fn to_oci(profile: &Profile, caps: &[String], arch: &str) -> Value {
    let architectures: Vec<String> = if !profile.architectures.is_empty() {
        profile.architectures.clone()
    } else if !profile.arch_map.is_empty() {
        let native = seccomp_arches(arch);
        profile
            .arch_map
            .iter()
            .filter(|e| native.first() == Some(&e.architecture))
            .flat_map(|e| {
                std::iter::once(e.architecture.clone()).chain(e.sub_architectures.clone())
            })
            .collect()
    } else {
        seccomp_arches(arch)
    };
    let syscalls: Vec<Value> = profile
        .syscalls
        .iter()
        .filter(|r| applies(r, caps, arch))
        .filter_map(|r| {
            let mut names = r.names.clone();
            names.extend(r.name.clone());
            if names.is_empty() {
                return None;
            }
            let mut out = json!({"names": names, "action": r.action});
            if !r.args.is_empty() {
                out["args"] = Value::Array(r.args.clone());
            }
            if let Some(errno) = r.errno_ret {
                out["errnoRet"] = json!(errno);
            }
            Some(out)
        })
        .collect();
    let mut out = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(errno) = profile.default_errno_ret {
        out["defaultErrnoRet"] = json!(errno);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(seccomp: &Value, name: &str) -> Vec<Value> {
        seccomp["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == name))
            })
            .cloned()
            .collect()
    }

    #[test]
    fn default_profile_parses_and_depends_on_capabilities() {
        let profile: Profile = serde_json::from_str(RUNTIME_DEFAULT).unwrap();
        assert_eq!(profile.default_action, "SCMP_ACT_ERRNO");
        let plain = to_oci(&profile, &["CAP_CHOWN".into()], "x86_64");
        let admin = to_oci(&profile, &["CAP_SYS_ADMIN".into()], "x86_64");
        // (syscall, rules without CAP_SYS_ADMIN, rules with it)
        let cases = [
            ("read", 1, 1),
            ("unshare", 0, 1),
            ("mount", 0, 1),
            ("keyctl", 0, 0),
            ("clone", 1, 1),
            ("clone3", 1, 1),
            ("arch_prctl", 1, 1),
            ("set_tls", 0, 0),
            ("personality", 5, 5),
            ("chroot", 0, 0),
        ];
        for (name, without, with) in cases {
            assert_eq!(allowed(&plain, name).len(), without, "{name} without admin");
            assert_eq!(allowed(&admin, name).len(), with, "{name} with admin");
        }
        // Without CAP_SYS_ADMIN, clone may not create namespaces and clone3 is ENOSYS.
        assert_eq!(
            allowed(&plain, "clone")[0]["args"][0]["op"],
            "SCMP_CMP_MASKED_EQ"
        );
        assert_eq!(allowed(&plain, "clone3")[0]["errnoRet"], 38);
        assert!(allowed(&admin, "clone")[0].get("args").is_none());
        assert_eq!(
            plain["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let arm = to_oci(&profile, &[], "aarch64");
        assert_eq!(allowed(&arm, "set_tls").len(), 1);
        assert_eq!(allowed(&arm, "arch_prctl").len(), 0);
        let chroot = to_oci(&profile, &["CAP_SYS_CHROOT".into()], "x86_64");
        assert_eq!(allowed(&chroot, "chroot").len(), 1);
    }

    #[test]
    fn localhost_profiles_in_docker_and_oci_form() {
        let docker = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1,
                "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},
                           {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                            {"name":"chmod","action":"SCMP_ACT_ERRNO","includes":{"arches":["amd64"]}},
                            {"names":["chown"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_CHOWN"]}}]}"#,
        )
        .unwrap();
        let oci = to_oci(&docker, &["CAP_CHOWN".into()], "x86_64");
        assert_eq!(oci["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(oci["defaultErrnoRet"], 1);
        assert_eq!(
            oci["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        );
        assert_eq!(allowed(&oci, "mkdir")[0]["errnoRet"], 13);
        assert_eq!(allowed(&oci, "chmod").len(), 1);
        assert_eq!(allowed(&oci, "chown").len(), 0);
        let oci_form = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let oci = to_oci(&oci_form, &[], "aarch64");
        assert_eq!(oci["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert!(parse("{").is_err());
        assert!(
            parse(r#"{"syscalls":[]}"#).is_err(),
            "defaultAction is required"
        );
    }
}
