//! The resource kinds the read verbs name (`bc`, `build`, `is` and their long spellings) and the
//! `TYPE/NAME` arguments of `logs`, `describe` and `get` (pure).

use super::Error;

/// A kiln resource kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `BuildConfig` (`bc`).
    BuildConfig,
    /// `Build`.
    Build,
    /// `ImageStream` (`is`).
    ImageStream,
}

/// What the read verbs accept, for error messages.
pub(crate) const KINDS_HINT: &str = "bc (buildconfigs), build (builds) or is (imagestreams)";

impl Kind {
    /// Parses kubectl's spellings: short name, singular, plural, and `plural.group`.
    pub(crate) fn parse(text: &str) -> Result<Kind, Error> {
        let lower = text.to_ascii_lowercase();
        let kind = match lower.as_str() {
            "bc" | "buildconfig" | "buildconfigs" | "buildconfigs.build.kiln.dev" => {
                Kind::BuildConfig
            }
            "build" | "builds" | "builds.build.kiln.dev" => Kind::Build,
            "is" | "imagestream" | "imagestreams" | "imagestreams.image.kiln.dev" => {
                Kind::ImageStream
            }
            _ => {
                return Err(Error::Usage(format!(
                    "unknown resource type {text:?}: use {KINDS_HINT}"
                )))
            }
        };
        Ok(kind)
    }

    /// The kind's name, e.g. `BuildConfig`.
    pub(crate) fn kind_name(self) -> &'static str {
        match self {
            Kind::BuildConfig => "BuildConfig",
            Kind::Build => "Build",
            Kind::ImageStream => "ImageStream",
        }
    }

    /// The name `kiln get` takes, e.g. `bc`.
    pub(crate) fn short_name(self) -> &'static str {
        match self {
            Kind::BuildConfig => "bc",
            Kind::Build => "builds",
            Kind::ImageStream => "is",
        }
    }

    /// The resource's plural.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::BuildConfig => "buildconfigs",
            Kind::Build => "builds",
            Kind::ImageStream => "imagestreams",
        }
    }

    /// The API group.
    pub(crate) fn group(self) -> &'static str {
        match self {
            Kind::BuildConfig | Kind::Build => crate::api::BUILD_GROUP,
            Kind::ImageStream => crate::api::IMAGE_GROUP,
        }
    }
}

/// Splits the positional arguments of `get`/`describe` into a kind and names: `TYPE [NAME…]`,
/// or `TYPE/NAME…` (every one of the same type).
pub(crate) fn parse_targets(args: &[String]) -> Result<(Kind, Vec<String>), Error> {
    let Some(first) = args.first() else {
        return Err(Error::Usage(format!("name a resource type: {KINDS_HINT}")));
    };
    if !first.contains('/') {
        let kind = Kind::parse(first)?;
        let names = args[1..].to_vec();
        for name in &names {
            check_name(name)?;
        }
        return Ok((kind, names));
    }
    let mut kind = None;
    let mut names = Vec::new();
    for arg in args {
        let (k, name) = parse_slash(arg)?;
        if kind.is_some_and(|known| known != k) {
            return Err(Error::Usage(format!(
                "{arg:?}: name resources of one type per command"
            )));
        }
        kind = Some(k);
        names.push(name);
    }
    let kind = kind.ok_or_else(|| Error::Usage(format!("name a resource: {KINDS_HINT}")))?;
    Ok((kind, names))
}

/// Parses `TYPE/NAME`.
pub(crate) fn parse_slash(arg: &str) -> Result<(Kind, String), Error> {
    let Some((kind, name)) = arg.split_once('/') else {
        return Err(Error::Usage(format!(
            "{arg:?} is not TYPE/NAME (e.g. bc/app or build/app-2)"
        )));
    };
    let kind = Kind::parse(kind)?;
    check_name(name)?;
    Ok((kind, name.to_string()))
}

fn check_name(name: &str) -> Result<(), Error> {
    crate::api::validate::object_name(name)
        .map_err(|reason| Error::Usage(format!("{name:?} is not an object name: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spellings_and_targets() {
        for (text, kind) in [
            ("bc", Kind::BuildConfig),
            ("BuildConfigs", Kind::BuildConfig),
            ("buildconfigs.build.kiln.dev", Kind::BuildConfig),
            ("build", Kind::Build),
            ("builds", Kind::Build),
            ("is", Kind::ImageStream),
            ("imagestream", Kind::ImageStream),
        ] {
            assert_eq!(Kind::parse(text).ok(), Some(kind), "{text}");
        }
        let err = Kind::parse("pods").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown resource type \"pods\": use bc (buildconfigs), build (builds) or is (imagestreams)"
        );
        assert_eq!(
            parse_targets(&strings(&["bc"])).ok(),
            Some((Kind::BuildConfig, vec![]))
        );
        assert_eq!(
            parse_targets(&strings(&["build", "a-1", "a-2"])).ok(),
            Some((Kind::Build, strings(&["a-1", "a-2"])))
        );
        assert_eq!(
            parse_targets(&strings(&["bc/a", "buildconfig/b"])).ok(),
            Some((Kind::BuildConfig, strings(&["a", "b"])))
        );
        assert!(parse_targets(&strings(&["bc/a", "is/b"])).is_err());
        assert!(parse_targets(&strings(&[])).is_err());
        assert!(parse_targets(&strings(&["bc", "Not_A_Name"])).is_err());
        assert!(parse_slash("app").is_err());
        assert!(parse_slash("bc/").is_err());
    }
}
