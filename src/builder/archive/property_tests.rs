//! Property: whatever archive is extracted (tar, tar.gz or zip with symlink chains, hard links,
//! duplicate, absolute and `..` entries), nothing outside the destination changes and every link
//! left inside resolves inside.
//!
//! A seeded random generator, not coverage-guided fuzzing: `KILN_ARCHIVE_CASES` sets the number
//! of archives (default 2,000 here; `make fuzz` runs 100,000) and `KILN_ARCHIVE_SEED` the seed, so
//! a failure is replayed by its seed and case number, which the assertion message names.

use std::collections::BTreeMap;

use super::testgen::{self, Entry, Kind, Nest, NEST_DEPTH};
use super::{extract_limited, Error, Limits};

/// SplitMix64: small, seedable, good enough to spread the choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &["a", "b", "y", "sub", "pwned", "secret", "a", "b", "."];

/// An entry name or link target: a few names, climbing (`..`) `climb` percent of the time and
/// absolute (into the temp dir, where an escape would be seen) `absolute` percent of the time.
fn path(rng: &mut Rng, abs_root: &str, climb: u64, absolute: u64) -> String {
    let mut parts: Vec<String> = Vec::new();
    if rng.chance(absolute) {
        if rng.chance(70) {
            parts.push(abs_root.trim_end_matches('/').to_string());
            for i in 1..=rng.below(NEST_DEPTH) {
                parts.push(format!("o{i}"));
            }
        } else {
            parts.push(String::new()); // a leading "/"
        }
    }
    if rng.chance(climb) {
        for _ in 0..=rng.below(NEST_DEPTH + 1) {
            parts.push("..".into());
        }
    }
    for _ in 0..=rng.below(4) {
        // now and then a `..` after a name (`x/../..`)
        let name = if rng.chance(climb / 8) {
            ".."
        } else {
            rng.pick(NAMES)
        };
        parts.push(name.into());
    }
    parts.join("/")
}

/// A symlink chain like the one that escaped: `a -> .` then a link deep under `a/a/…`.
fn chain(rng: &mut Rng, entries: &mut Vec<Entry>) {
    let depth = 1 + rng.below(NEST_DEPTH);
    entries.push(testgen::entry("a", Kind::Symlink(b".".to_vec())));
    let deep = vec!["a"; depth].join("/") + "/y";
    let up = vec![".."; depth].join("/") + "/pwned";
    entries.push(testgen::entry(&deep, Kind::Symlink(up.into_bytes())));
}

fn generate(rng: &mut Rng, abs_root: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    if rng.chance(20) {
        chain(rng, &mut entries);
    }
    for _ in 0..1 + rng.below(7) {
        let name = if !entries.is_empty() && rng.chance(25) {
            // a duplicate of an earlier name
            let e: &Entry = &entries[rng.below(entries.len())];
            String::from_utf8_lossy(&e.name).into_owned()
        } else {
            path(rng, abs_root, 4, 3)
        };
        let kind = match rng.below(10) {
            0..=3 => Kind::File(format!("data {}", rng.below(100)).into_bytes()),
            4 => Kind::Dir,
            5..=7 => Kind::Symlink(if rng.chance(30) {
                rng.pick(&[".", "..", "../..", "a", "a/a", "", "/"])
                    .as_bytes()
                    .to_vec()
            } else {
                path(rng, abs_root, 40, 5).into_bytes()
            }),
            _ => Kind::HardLink(if !entries.is_empty() && rng.chance(40) {
                entries[rng.below(entries.len())].name.clone()
            } else {
                path(rng, abs_root, 10, 5).into_bytes()
            }),
        };
        entries.push(Entry {
            name: name.into_bytes(),
            kind,
        });
    }
    entries
}

/// Outcomes by kind, for the summary line.
fn outcome(r: &Result<usize, Error>) -> &'static str {
    match r {
        Ok(_) => "extracted",
        Err(Error::Traversal(_)) => "Traversal",
        Err(Error::LinkEscape { .. }) => "LinkEscape",
        Err(Error::ThroughLink { .. }) => "ThroughLink",
        Err(Error::ReplacesDirectory(_)) => "ReplacesDirectory",
        Err(Error::HardLinkTarget { .. }) => "HardLinkTarget",
        Err(Error::TooLarge(_) | Error::TooManyEntries(_)) => "limit",
        Err(Error::Io { .. }) => "Io",
        Err(Error::Zip(_)) => "Zip",
        Err(Error::UnknownFormat) => "UnknownFormat",
        Err(Error::Truncated(_)) => "Truncated",
    }
}

#[test]
fn no_generated_archive_touches_anything_outside_the_destination() {
    let cases: u64 = std::env::var("KILN_ARCHIVE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let seed: u64 = std::env::var("KILN_ARCHIVE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6b69_6c6e);
    let started = std::time::Instant::now();
    let nest = Nest::new();
    let abs_root = nest.tmp.path().to_string_lossy().into_owned();
    let before = nest.outside();
    let limits = Limits {
        bytes: 1 << 16,
        entries: 64,
    };
    let mut outcomes: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for case in 0..cases {
        let mut rng = Rng(seed ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let entries = generate(&mut rng, &abs_root);
        let (format, archive) = match case % 3 {
            0 => ("tar", testgen::tar(&entries)),
            1 => ("tar.gz", testgen::tar_gz(&entries)),
            _ => ("zip", testgen::zip(&entries)),
        };
        let result = extract_limited(&archive[..], &nest.dest, None, limits);
        *outcomes.entry((format, outcome(&result))).or_default() += 1;
        let after = nest.outside();
        assert!(
            after == before,
            "seed {seed} case {case} ({format}) changed something outside the destination: \
             {entries:?} -> {result:?}"
        );
        let dest = nest.dest_real();
        let bad = testgen::links_leaving(&nest.dest, &dest);
        assert!(
            bad.is_empty(),
            "seed {seed} case {case} ({format}) left links leading outside {bad:?}: {entries:?}"
        );
        std::fs::remove_dir_all(&nest.dest).expect("clearing the destination");
    }
    println!(
        "archive property: {cases} archives (seed {seed}) in {:.1} s, nothing outside touched; {outcomes:?}",
        started.elapsed().as_secs_f64()
    );
}
