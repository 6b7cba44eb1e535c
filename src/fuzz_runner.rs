//! The seeded proptest runner every property run of `make fuzz` uses (test builds only): a fixed
//! ChaCha seed and case count, each overridable by an environment variable, no persisted
//! failures, so a run is repeatable and `make fuzz` can raise the budget.

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A runner seeded from `$<seed_var>` (else `default_seed`) running `$<cases_var>` cases (else
/// `default_cases`), and the seed it uses (for the failure message).
pub(crate) fn seeded_runner(
    seed_var: &str,
    default_seed: u64,
    cases_var: &str,
    default_cases: u32,
) -> (TestRunner, u64) {
    let seed: u64 = std::env::var(seed_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_seed);
    let cases: u32 = std::env::var(cases_var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let mut seed_bytes = [0_u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    (runner, seed)
}
