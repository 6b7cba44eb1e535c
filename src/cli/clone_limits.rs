//! The git clone bounds as flags (`kiln controller`, `kiln build`, `kiln builder clone`): connect
//! and idle timeouts and the bytes one fetch may receive, each also read from its `KILN_CLONE_*`
//! variable (how the controller hands its own to every build Pod).

use std::time::Duration;

use clap::Args;

use crate::api::contract::{
    CloneLimits, CLONE_CONNECT_TIMEOUT_ENV, CLONE_IDLE_TIMEOUT_ENV, CLONE_MAX_BYTES_ENV,
};

/// The longest timeout a flag accepts (one day).
const MAX_SECONDS: u64 = 24 * 60 * 60;

/// The git clone bounds.
#[derive(Clone, Debug, Args)]
pub(crate) struct CloneLimitArgs {
    /// How long a git clone may take to connect and list the remote's refs: seconds, or a number
    /// with `s`, `m` or `h`.
    #[arg(long, env = CLONE_CONNECT_TIMEOUT_ENV, value_name = "DURATION", default_value_t = CloneLimits::DEFAULT.connect_timeout.as_secs(), value_parser = seconds)]
    pub(crate) clone_connect_timeout: u64,
    /// How long a git clone may go without receiving data: seconds, or a number with `s`, `m`
    /// or `h`.
    #[arg(long, env = CLONE_IDLE_TIMEOUT_ENV, value_name = "DURATION", default_value_t = CloneLimits::DEFAULT.idle_timeout.as_secs(), value_parser = seconds)]
    pub(crate) clone_idle_timeout: u64,
    /// The most bytes one git fetch may receive: a number of bytes, or one with `Ki`, `Mi`, `Gi`
    /// or `Ti`.
    #[arg(long, env = CLONE_MAX_BYTES_ENV, value_name = "BYTES", default_value_t = CloneLimits::DEFAULT.max_bytes, value_parser = bytes)]
    pub(crate) clone_max_bytes: u64,
}

impl CloneLimitArgs {
    /// The limits these flags describe.
    pub(crate) fn limits(&self) -> CloneLimits {
        CloneLimits {
            connect_timeout: Duration::from_secs(self.clone_connect_timeout),
            idle_timeout: Duration::from_secs(self.clone_idle_timeout),
            max_bytes: self.clone_max_bytes,
        }
    }
}

/// Splits `text` into its number and the multiplier its suffix names (`units`), or says why not.
fn number_with_unit(text: &str, units: &[(&str, u64)], what: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, multiplier) = units
        .iter()
        .find_map(|(suffix, m)| text.strip_suffix(suffix).map(|d| (d, *m)))
        .unwrap_or((text, 1));
    let suffixes: Vec<&str> = units.iter().map(|(s, _)| *s).collect();
    let expected = || {
        format!(
            "expected a whole number of {what}, optionally with {}, got {text:?}",
            suffixes.join(", ")
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let value = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if value == 0 {
        return Err(format!(
            "must be more than 0 {what} (0 would leave clones unbounded)"
        ));
    }
    Ok(value)
}

/// Parses a timeout in seconds (`90`, `90s`, `2m`, `1h`): more than 0 and at most a day.
pub(crate) fn seconds(text: &str) -> Result<u64, String> {
    let value = number_with_unit(text, &[("s", 1), ("m", 60), ("h", 3600)], "seconds")?;
    if value > MAX_SECONDS {
        return Err(format!(
            "must be at most {MAX_SECONDS} seconds (a day), got {value}"
        ));
    }
    Ok(value)
}

/// Parses a byte count (`1048576`, `512Mi`, `8Gi`): more than 0.
pub(crate) fn bytes(text: &str) -> Result<u64, String> {
    number_with_unit(
        text,
        &[
            ("Ki", 1 << 10),
            ("Mi", 1 << 20),
            ("Gi", 1 << 30),
            ("Ti", 1 << 40),
        ],
        "bytes",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        limits: CloneLimitArgs,
    }

    #[test]
    fn seconds_and_bytes_table() {
        type Parse = fn(&str) -> Result<u64, String>;
        let cases: Vec<(Parse, &str, Result<u64, &str>)> = vec![
            (seconds, "90", Ok(90)),
            (seconds, " 90s ", Ok(90)),
            (seconds, "2m", Ok(120)),
            (seconds, "1h", Ok(3600)),
            (seconds, "86400", Ok(86_400)),
            (seconds, "0", Err("must be more than 0 seconds")),
            (seconds, "0m", Err("must be more than 0 seconds")),
            (seconds, "86401", Err("at most 86400 seconds")),
            (seconds, "25h", Err("at most 86400 seconds")),
            (seconds, "-5", Err("expected a whole number of seconds")),
            (seconds, "1.5", Err("expected a whole number of seconds")),
            (seconds, "soon", Err("expected a whole number of seconds")),
            (seconds, "", Err("expected a whole number of seconds")),
            (seconds, "m", Err("expected a whole number of seconds")),
            (seconds, "99999999999999999999", Err("too large")),
            (bytes, "1", Ok(1)),
            (bytes, "512Mi", Ok(512 << 20)),
            (bytes, "8Gi", Ok(8 << 30)),
            (bytes, "2Ti", Ok(2 << 40)),
            (bytes, "0", Err("must be more than 0 bytes")),
            (bytes, "0Gi", Err("must be more than 0 bytes")),
            (bytes, "8GB", Err("expected a whole number of bytes")),
            (bytes, "lots", Err("expected a whole number of bytes")),
            (bytes, "20000000Ti", Err("too large")),
        ];
        for (parse, text, want) in cases {
            match (parse(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text:?}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text:?}: {got}"),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn flags_default_parse_and_refuse_naming_the_flag() {
        let defaults = Flags::try_parse_from(["kiln"]).unwrap().limits.limits();
        assert_eq!(defaults, CloneLimits::DEFAULT);
        let set = Flags::try_parse_from([
            "kiln",
            "--clone-connect-timeout",
            "30s",
            "--clone-idle-timeout=5m",
            "--clone-max-bytes",
            "1Gi",
        ])
        .unwrap()
        .limits
        .limits();
        assert_eq!(
            set,
            CloneLimits {
                connect_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(300),
                max_bytes: 1 << 30,
            }
        );
        for (flag, value) in [
            ("--clone-connect-timeout", "0"),
            ("--clone-idle-timeout", "forever"),
            ("--clone-max-bytes", "0"),
            ("--clone-max-bytes", "-1"),
        ] {
            let err = Flags::try_parse_from(["kiln", &format!("{flag}={value}")]).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(flag), "{flag} {value}: {message}");
        }
    }

    #[test]
    fn the_pod_variables_read_back_as_the_same_limits() {
        let limits = CloneLimits {
            connect_timeout: Duration::from_secs(7),
            idle_timeout: Duration::from_secs(11),
            max_bytes: 12_345,
        };
        for (name, value) in limits.env() {
            let parsed = if name == CLONE_MAX_BYTES_ENV {
                bytes(&value)
            } else {
                seconds(&value)
            };
            assert!(parsed.is_ok(), "{name}={value}: {parsed:?}");
        }
        let args = CloneLimitArgs {
            clone_connect_timeout: seconds(&limits.env()[0].1).unwrap(),
            clone_idle_timeout: seconds(&limits.env()[1].1).unwrap(),
            clone_max_bytes: bytes(&limits.env()[2].1).unwrap(),
        };
        assert_eq!(args.limits(), limits);
    }
}
