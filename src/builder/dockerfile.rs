//! Dockerfile preparation, as OpenShift's manage-dockerfile does it, but edited by span.
//!
//! The text is parsed with `dockerfile-parser` (on a heredoc-masked copy, see [`super::heredoc`]) only to
//! locate instructions; every edit is an insertion or replacement in the original text, so `# syntax=`
//! lines, comments, heredocs and formatting stay byte-for-byte intact.

use std::collections::{BTreeMap, BTreeSet};

use dockerfile_parser::{Dockerfile, Instruction};

/// Instructions Docker and buildah know (the parser accepts any word as an instruction).
const KNOWN_INSTRUCTIONS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// Why a Dockerfile could not be prepared.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum Error {
    /// The parser rejected the text.
    #[error("Dockerfile syntax error at line {line}, column {column}: {detail}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        detail: String,
    },
    /// An instruction keyword Docker does not know.
    #[error("Dockerfile line {line}: unknown instruction {name:?}")]
    UnknownInstruction {
        /// 1-based line.
        line: usize,
        /// The keyword as written.
        name: String,
    },
    /// The Dockerfile has no FROM.
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    /// An environment variable name that cannot be written as `ENV`.
    #[error("invalid environment variable name {0:?}")]
    InvalidEnvName(String),
    /// The edited text no longer parses, or its edits do not land where they must: the input has
    /// something open that swallows them (a quote the parser lets run past its line, say).
    #[error("the Dockerfile cannot be edited safely: {0}; look for a quote, heredoc or line continuation left open")]
    Unedited(String),
    /// `dockerStrategy.from` is not an image reference, so it cannot replace a FROM's image.
    #[error("dockerStrategy.from {image:?} is not an image reference: {reason}")]
    InvalidFrom {
        /// The reference as given.
        image: String,
        /// Why it is not one.
        reason: String,
    },
}

/// The edits OpenShift's builder makes to a Dockerfile.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Edits {
    /// `dockerStrategy.from` (a resolved image reference): replaces the image of the last FROM.
    pub(crate) from: Option<String>,
    /// The strategy's `env`: one `ENV` after every FROM.
    pub(crate) env: Vec<(String, String)>,
    /// Build provenance (`KILN_BUILD_*`): one `ENV` appended at the end.
    pub(crate) provenance: Vec<(String, String)>,
    /// Build labels followed by the user's `imageLabels` (later names win): one `LABEL` at the end.
    pub(crate) labels: Vec<(String, String)>,
}

/// Applies `edits` to `text` and returns the new Dockerfile.
pub(crate) fn prepare(text: &str, edits: &Edits) -> Result<String, Error> {
    let parsed = parse(text)?;
    let froms: Vec<_> = parsed
        .instructions
        .iter()
        .filter_map(|i| match i {
            Instruction::From(f) => Some(f),
            _ => None,
        })
        .collect();
    let last = froms.last().ok_or(Error::NoFrom)?;
    // (start, end, replacement), applied from the end so earlier offsets stay valid.
    let mut splices: Vec<(usize, usize, String)> = Vec::new();
    if let Some(image) = &edits.from {
        super::registry::check_reference(image).map_err(|reason| Error::InvalidFrom {
            image: image.clone(),
            reason,
        })?;
        splices.push((last.image.span.start, last.image.span.end, image.clone()));
    }
    if !edits.env.is_empty() {
        let line = env_line(&edits.env)?;
        for from in &froms {
            splices.push((from.span.end, from.span.end, format!("\n{line}")));
        }
    }
    splices.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
    let mut out = text.to_string();
    for (start, end, replacement) in splices {
        out.replace_range(start..end, &replacement);
    }
    let mut trailer = String::new();
    if !edits.provenance.is_empty() {
        trailer.push_str(&env_line(&edits.provenance)?);
        trailer.push('\n');
    }
    let labels = dedup_labels(&edits.labels);
    if !labels.is_empty() {
        let pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
            .collect();
        trailer.push_str(&format!("LABEL {}\n", pairs.join(" ")));
    }
    if !trailer.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&trailer);
    }
    check_edited(&out, edits, !labels.is_empty())?;
    Ok(out)
}

/// Checks that the edited text parses, ends with the labels' `LABEL` and builds on
/// `edits.from`: an input the parser accepts can still swallow an edit (a double quote left open
/// runs on to the next quote, across lines).
fn check_edited(out: &str, edits: &Edits, labels: bool) -> Result<(), Error> {
    let parsed = parse(out).map_err(|e| Error::Unedited(format!("after the edits, {e}")))?;
    if labels && !matches!(parsed.instructions.last(), Some(Instruction::Label(_))) {
        return Err(Error::Unedited(
            "the build's LABEL is not the last instruction after the edits".into(),
        ));
    }
    if let Some(from) = &edits.from {
        let last = parsed.instructions.iter().rev().find_map(|i| match i {
            Instruction::From(f) => Some(f.image.content.as_str()),
            _ => None,
        });
        if last != Some(from.as_str()) {
            return Err(Error::Unedited(format!(
                "the last FROM is not {from:?} after the edits"
            )));
        }
    }
    Ok(())
}

/// The base images a Dockerfile pulls: FROM images with global `ARG`s expanded (build args win),
/// without `scratch`, earlier stage names, or images left with unresolved variables.
pub(crate) fn base_images(
    text: &str,
    build_args: &[(String, String)],
) -> Result<Vec<String>, Error> {
    let mut images = Vec::new();
    for (image, is_stage) in froms(text, build_args)? {
        if !is_stage && image != "scratch" && !image.contains('$') && !images.contains(&image) {
            images.push(image);
        }
    }
    Ok(images)
}

/// What the last `FROM` of a Dockerfile builds on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LastFrom {
    /// An image reference (global `ARG`s and build args expanded).
    Image(String),
    /// An earlier stage of the same Dockerfile, by its alias.
    Stage(String),
    /// `scratch`: no base image.
    Scratch,
    /// An image still naming a variable no `ARG` default or build arg sets.
    Unresolved(String),
}

/// What the last `FROM` of `text` builds on, with global `ARG`s expanded (build args win); this
/// is the image `dockerStrategy.from` replaces.
pub(crate) fn last_from(text: &str, build_args: &[(String, String)]) -> Result<LastFrom, Error> {
    froms(text, build_args)?
        .pop()
        .map(|(image, is_stage)| {
            if is_stage {
                LastFrom::Stage(image)
            } else if image == "scratch" {
                LastFrom::Scratch
            } else if image.contains('$') {
                LastFrom::Unresolved(image)
            } else {
                LastFrom::Image(image)
            }
        })
        .ok_or(Error::NoFrom)
}

/// Every FROM's image in order, expanded, and whether it names an earlier stage.
fn froms(text: &str, build_args: &[(String, String)]) -> Result<Vec<(String, bool)>, Error> {
    let parsed = parse(text)?;
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for arg in &parsed.global_args {
        if let Some(v) = &arg.value {
            args.insert(arg.name.content.clone(), unquote(&v.content));
        }
    }
    for (k, v) in build_args {
        args.insert(k.clone(), v.clone());
    }
    let mut stages = BTreeSet::new();
    let mut out = Vec::new();
    for ins in &parsed.instructions {
        if let Instruction::From(from) = ins {
            let image = expand(&from.image.content, &args);
            let is_stage = stages.contains(&image.to_ascii_lowercase());
            if let Some(alias) = &from.alias {
                stages.insert(alias.content.to_ascii_lowercase());
            }
            out.push((image, is_stage));
        }
    }
    Ok(out)
}

/// Parses the heredoc-masked text and checks every instruction keyword.
fn parse(text: &str) -> Result<Dockerfile, Error> {
    let masked = mask_dollar_escapes(&super::heredoc::mask(text));
    let parsed = Dockerfile::parse(&masked).map_err(|e| syntax_error(&e.to_string()))?;
    for ins in &parsed.instructions {
        if let Instruction::Misc(misc) = ins {
            let name = misc.instruction.content.to_ascii_uppercase();
            if !KNOWN_INSTRUCTIONS.contains(&name.as_str()) {
                let line = text[..misc.span.start].matches('\n').count() + 1;
                return Err(Error::UnknownInstruction {
                    line,
                    name: misc.instruction.content.clone(),
                });
            }
        }
    }
    Ok(parsed)
}

/// `\$` (Docker's escape for a literal `$`, which [`quote`] writes) as `\\`, an escape the
/// parser knows: it refuses quoted strings holding any escape but its own. Same byte length, so
/// spans stay valid; backslashes pair left to right, so `\\$` stays as written.
fn mask_dollar_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.next() {
                Some('$') => out.push('\\'),
                Some(next) => out.push(next),
                None => {}
            }
        }
    }
    out
}

/// Turns the parser's multi-line message (` --> 7:4`, `= expected …`) into a structured error.
fn syntax_error(message: &str) -> Error {
    let mut line = 0;
    let mut column = 0;
    let mut detail = String::from("unexpected text");
    for l in message.lines().map(str::trim) {
        if let Some(pos) = l.find("-->").map(|i| &l[i + 3..]) {
            let mut parts = pos.trim().split(':').map(|p| p.trim().parse().unwrap_or(0));
            line = parts.next().unwrap_or(0);
            column = parts.next().unwrap_or(0);
        } else if let Some(d) = l.strip_prefix('=') {
            detail = d.trim().replace('_', " ");
        }
    }
    Error::Syntax {
        line,
        column,
        detail,
    }
}

/// One `ENV` instruction with every pair quoted.
fn env_line(pairs: &[(String, String)]) -> Result<String, Error> {
    let mut parts = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let valid = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::InvalidEnvName(k.clone()));
        }
        parts.push(format!("{k}={}", quote(v)));
    }
    Ok(format!("ENV {}", parts.join(" ")))
}

/// Keeps the last value of each label name, in first-seen order.
fn dedup_labels(labels: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in labels {
        match out.iter_mut().find(|(name, _)| name == k) {
            Some(existing) => existing.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// A double-quoted Dockerfile word: `\`, `"` and `$` escaped, line breaks and every other
/// control character but tab folded to spaces (a Dockerfile word has no way to carry them, and
/// the parser refuses some, NUL and U+001F, inside quotes).
pub(crate) fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        match c {
            '\\' | '"' | '$' => {
                s.push('\\');
                s.push(c);
            }
            '\t' => s.push(c),
            c if c.is_control() => s.push(' '),
            _ => s.push(c),
        }
    }
    s.push('"');
    s
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// Expands `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}`; unknown variables stay as written.
pub(crate) fn expand(word: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                out.push_str(&rest[pos..]);
                return out;
            };
            let inner = &body[..close];
            let value = if let Some((name, default)) = inner.split_once(":-") {
                args.get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| default.to_string())
            } else if let Some((name, alt)) = inner.split_once(":+") {
                args.get(name)
                    .filter(|v| !v.is_empty())
                    .map(|_| alt.to_string())
                    .unwrap_or_default()
            } else {
                args.get(inner)
                    .cloned()
                    .unwrap_or_else(|| format!("${{{inner}}}"))
            };
            out.push_str(&value);
            rest = &body[close + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            match args.get(name) {
                Some(v) if len > 0 => out.push_str(v),
                _ => {
                    out.push('$');
                    out.push_str(name);
                }
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "dockerfile_fuzz_tests.rs"]
mod fuzz_tests;
#[cfg(test)]
#[path = "dockerfile_regression_tests.rs"]
mod regression_tests;

#[cfg(test)]
#[path = "dockerfile_tests.rs"]
mod tests;
