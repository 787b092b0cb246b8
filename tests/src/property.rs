//! What the property tests share: how many cases to run, the runner loop that keeps a tally
//! across cases, the failure listing of a generated case, and the count of refused commands.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use imgshare_core::ErrorKind;
use imgshare_store::EngineError;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};

/// `PROPTEST_CASES` when set to a number, else `default`: CI lowers it, a long local run raises it.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// [`cases`] cases and no regression file, for tests that own no directory for one.
pub fn config(default_cases: u32) -> Config {
    Config {
        cases: cases(default_cases),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `test` on values of `strategy` and returns what the cases added to the tally.
///
/// The runner takes an `Fn`, so the tally lives in a `RefCell` that each case borrows in turn.
///
/// # Panics
///
/// With the runner's report when a case fails (after shrinking): that is the test's failure.
pub fn run<S, T>(
    config: Config,
    strategy: &S,
    test: impl Fn(S::Value, &mut T) -> TestCaseResult,
) -> T
where
    S: Strategy,
    T: Default,
{
    let tally = RefCell::new(T::default());
    let result =
        TestRunner::new(config).run(strategy, |value| test(value, &mut tally.borrow_mut()));
    if let Err(error) = result {
        panic!("{error}");
    }
    tally.into_inner()
}

/// Writes `header`, then one numbered line per step, so a shrunk case reads as a short story.
pub fn write_steps<S: fmt::Debug>(
    f: &mut fmt::Formatter<'_>,
    header: fmt::Arguments<'_>,
    steps: &[S],
) -> fmt::Result {
    writeln!(f, "{header}")?;
    for (index, step) in steps.iter().enumerate() {
        writeln!(f, "  #{index:02} {step:?}")?;
    }
    Ok(())
}

/// Refused commands, counted so a run can show that its generators reach each refusal.
#[derive(Debug, Default)]
pub struct Refusals {
    /// All refusals.
    pub total: u64,
    /// By error kind (what the API turns into a status).
    pub by_status: BTreeMap<ErrorKind, u64>,
    /// By the step's kind and the error's code.
    pub by_kind: BTreeMap<(&'static str, &'static str), u64>,
}

impl Refusals {
    /// Counts one refusal of a step of kind `kind`.
    pub fn record(&mut self, kind: &'static str, error: &EngineError) {
        self.total += 1;
        *self.by_status.entry(error.kind()).or_default() += 1;
        *self.by_kind.entry((kind, error.code())).or_default() += 1;
    }
}
