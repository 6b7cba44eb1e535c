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

/// Runs `test` over `strategy` with [`seeded_runner`] and returns how many cases were generated.
/// A failing property panics naming the seed variable and value, the number of the first failing
/// case and proptest's minimal failing input, so the run can be replayed exactly.
pub(crate) fn run_named<S, F>(
    seed_var: &str,
    default_seed: u64,
    cases_var: &str,
    default_cases: u32,
    strategy: &S,
    test: F,
) -> u64
where
    S: proptest::strategy::Strategy,
    F: Fn(S::Value) -> Result<(), proptest::test_runner::TestCaseError>,
{
    let (mut runner, seed) = seeded_runner(seed_var, default_seed, cases_var, default_cases);
    let tried = std::cell::Cell::new(0_u64);
    let first_failure = std::cell::Cell::new(None::<u64>);
    let result = runner.run(strategy, |value| {
        // Shrinking calls this again: only cases before the first failure are counted.
        if first_failure.get().is_none() {
            tried.set(tried.get() + 1);
        }
        let outcome = test(value);
        if outcome.is_err() && first_failure.get().is_none() {
            first_failure.set(Some(tried.get()));
        }
        outcome
    });
    if let Err(e) = result {
        let case = first_failure
            .get()
            .map_or_else(|| "?".to_string(), |c| c.to_string());
        panic!("{seed_var}={seed}, case {case}: {e}");
    }
    tried.get()
}
