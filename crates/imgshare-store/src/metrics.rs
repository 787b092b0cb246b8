//! What the engine counts, through the `metrics` facade: nothing is recorded unless the program
//! installs a recorder (the server installs a Prometheus exporter; `docs/operations.md` lists
//! every metric). Recording is a few atomic operations, cheap next to a transaction.

/// Commands that appended events, by `kind` ([`imgshare_core::Command::kind`]); a retry that
/// finds its command already applied is not counted again.
pub const COMMANDS_APPENDED: &str = "imgshare_commands_appended_total";
/// Events appended.
pub const EVENTS_APPENDED: &str = "imgshare_events_appended_total";
/// Commands refused by the engine, by `error_code` (`EngineError::code`).
pub const COMMANDS_REFUSED: &str = "imgshare_commands_refused_total";
/// Commands per committed group-commit transaction (histogram).
pub const GROUP_COMMIT_COMMANDS: &str = "imgshare_group_commit_commands";
/// Stream states a write needed, by `result`: `hit` (the state cache or an earlier command of
/// the same transaction had it at the log's version) or `miss` (folded from the log).
pub const STATE_CACHE_LOOKUPS: &str = "imgshare_state_cache_lookups_total";
/// Pending tasks of the worker's regions when its last pass started.
pub const TASKS_PENDING: &str = "imgshare_tasks_pending";

/// Describes the engine's metrics to the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(COMMANDS_APPENDED, "Commands that appended events, by kind.");
    describe_counter!(EVENTS_APPENDED, "Events appended to the log.");
    describe_counter!(
        COMMANDS_REFUSED,
        "Commands refused by the engine, by error_code."
    );
    describe_histogram!(
        GROUP_COMMIT_COMMANDS,
        "Commands per committed group-commit transaction."
    );
    describe_counter!(
        STATE_CACHE_LOOKUPS,
        "Stream states a write needed, by result (hit, miss)."
    );
    describe_gauge!(
        TASKS_PENDING,
        "Pending tasks of the worker's regions when its last pass started."
    );
}

pub(crate) fn cache_lookup(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!(STATE_CACHE_LOOKUPS, "result" => result).increment(1);
}
