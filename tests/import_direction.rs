//! Imports point down: `api` ← `builder`, `instantiate` ← `controller`, `webhook` ← `cli` ← `main`,
//! with `local` (`kiln build`, above `controller` and `builder`) between `controller` and `cli`.
//!
//! Every source file is read and each path into the crate (`crate::…`, `super::…` chains that
//! reach the crate root, and `use crate::{…}` groups) is resolved to the top-level module it
//! names; a layer that names a module above it fails the test with the file and line.

use std::path::{Path, PathBuf};

/// The top-level modules each layer must not import.
const RULES: &[(&str, &[&str])] = &[
    (
        "src/api",
        &[
            "builder",
            "instantiate",
            "controller",
            "webhook",
            "local",
            "cli",
        ],
    ),
    (
        "src/naming.rs",
        &[
            "builder",
            "instantiate",
            "controller",
            "webhook",
            "local",
            "cli",
        ],
    ),
    (
        "src/yaml.rs",
        &[
            "builder",
            "instantiate",
            "controller",
            "webhook",
            "local",
            "cli",
        ],
    ),
    (
        "src/registry",
        &[
            "builder",
            "instantiate",
            "controller",
            "webhook",
            "local",
            "cli",
        ],
    ),
    (
        "src/builder",
        &["instantiate", "controller", "webhook", "local", "cli"],
    ),
    (
        "src/instantiate.rs",
        &["builder", "controller", "webhook", "local", "cli"],
    ),
    ("src/controller", &["builder", "webhook", "local", "cli"]),
    ("src/webhook", &["builder", "controller", "local", "cli"]),
    ("src/local.rs", &["webhook", "cli"]),
];

/// The module path of a source file below `src/` (`src/builder/fetch.rs` → `["builder", "fetch"]`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .skip(1)
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The top-level crate modules a source text names, with the line of each mention.
fn top_level_imports(text: &str, module: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = find_path_start(rest) {
            let (depth, tail) = leading_segments(&rest[at..]);
            let resolved_to_root = match depth {
                Depth::Crate => true,
                Depth::Super(n) => n >= module.len(),
            };
            // A `super::` chain that stays below the root names a sibling, not a layer.
            if resolved_to_root {
                found.extend(names_after(tail).into_iter().map(|n| (index + 1, n)));
            }
            rest = &rest[at + 1..];
        }
    }
    found
}

enum Depth {
    Crate,
    Super(usize),
}

/// Where the next `crate::` or `super::` path begins (not inside a longer identifier).
fn find_path_start(text: &str) -> Option<usize> {
    let candidates = ["crate::", "super::"];
    let mut best: Option<usize> = None;
    for needle in candidates {
        let mut from = 0;
        while let Some(offset) = text[from..].find(needle) {
            let at = from + offset;
            let before = text[..at].chars().last();
            let standalone = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if standalone {
                best = Some(best.map_or(at, |b| b.min(at)));
                break;
            }
            from = at + needle.len();
        }
    }
    best
}

/// How far up a path starts (`crate::` or n × `super::`) and the text after those segments.
fn leading_segments(text: &str) -> (Depth, &str) {
    if let Some(tail) = text.strip_prefix("crate::") {
        return (Depth::Crate, tail);
    }
    let mut n = 0;
    let mut tail = text;
    while let Some(next) = tail.strip_prefix("super::") {
        n += 1;
        tail = next;
    }
    (Depth::Super(n), tail)
}

/// The first segment names after a path prefix: one identifier, or each top-level one of a
/// `{a, b::c, d}` group.
fn names_after(tail: &str) -> Vec<String> {
    let ident = |s: &str| {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let Some(group) = tail.strip_prefix('{') else {
        return vec![ident(tail)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                names.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_point_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    let mut checked = 0;
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "no sources found for {layer}");
        for file in files {
            let relative = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (line, name) in top_level_imports(&text, &module_path(&relative)) {
                checked += 1;
                if forbidden.contains(&name.as_str()) {
                    violations.push(format!(
                        "{}:{line}: {layer} imports {name}",
                        relative.display()
                    ));
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no crate paths found at all: the scanner is broken"
    );
    assert!(
        violations.is_empty(),
        "imports must point down (api ← builder, instantiate ← controller ← cli):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let module = |p: &str| module_path(Path::new(p));
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "src/instantiate.rs",
            "use crate::controller::index;",
            &["controller"],
        ),
        (
            "src/builder/local.rs",
            "use crate::{api::Build, controller::run};",
            &["api", "controller"],
        ),
        (
            "src/builder/local.rs",
            "use super::super::controller::x;",
            &["controller"],
        ),
        ("src/builder/local.rs", "use super::report::Failure;", &[]),
        ("src/api/build.rs", "let x = crate::cli::run(a);", &["cli"]),
        ("src/api/build.rs", "// crate::controller in a comment", &[]),
        (
            "src/controller/build/mod.rs",
            "use super::super::cli;",
            &["cli"],
        ),
        ("src/controller/build/mod.rs", "use super::status;", &[]),
        (
            "src/controller/build/phase.rs",
            "use super::super::super::cli;",
            &["cli"],
        ),
        (
            "src/controller/build/phase.rs",
            "use super::super::status;",
            &[],
        ),
        ("src/lib.rs", "use mycrate::controller;", &[]),
    ];
    for (file, text, want) in cases {
        let got: Vec<String> = top_level_imports(text, &module(file))
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(&got, want, "{file}: {text}");
    }
}
