//! Group commit's queue. Callers of [`Engine::execute`] queue their command and wait for their
//! own result. One caller at a time leads: it waits briefly until the callers it expects have
//! queued again, takes everything queued, runs it as one transaction (`run_items`), hands each
//! caller its result and gives up the lead, so that no caller's answer waits behind more than
//! one group it is not in.
//!
//! Why the lead waits: on a machine with few cores, the callers a group has just answered need
//! CPU time to build and queue their next command. A leader that starts at once finds only the
//! first of them and the group stays small (about 2.5 commands with 8 callers on 2 cores). The
//! leader expects the callers of the last group plus those already waiting, and waits for them
//! at most as long as the last group took; a caller that does not come back costs one such wait,
//! after which the expectation is smaller. A lone caller expects only itself and never waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::group::BatchItem;
use super::{Engine, EngineError, Outcome};
use crate::error::StoreError;
use imgshare_core::{Command, Context};

/// Where a queued command's result goes.
type Slot = Arc<Mutex<Option<Result<Outcome, EngineError>>>>;

/// The longest a waiting caller sleeps before looking at the queue again (a safety net: the
/// leader wakes the waiters when it is done).
const WAKE_UP: Duration = Duration::from_millis(5);

/// The longest a leader waits for the callers it expects, whatever the last group took.
const MAX_FILL_WAIT: Duration = Duration::from_millis(2);

/// Commands waiting for a transaction, and who leads.
#[derive(Default)]
struct Waiting {
    items: Vec<(BatchItem, Slot)>,
    /// A caller is running (or filling) a group.
    leading: bool,
    /// The leader sleeps on `arrived` until `expected` commands are queued.
    filling: bool,
    /// How many commands the next group is expected to hold.
    expected: usize,
    /// How long the last group took, the bound of the next leader's wait.
    last_group: Duration,
}

/// How many groups `execute` has committed, and the commands in them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommits {
    /// Transactions run for queued commands.
    pub groups: u64,
    /// Commands in them.
    pub commands: u64,
}

impl GroupCommits {
    /// Commands per group on average (0 before the first).
    pub fn mean_size(&self) -> f64 {
        if self.groups == 0 {
            0.0
        } else {
            self.commands as f64 / self.groups as f64
        }
    }
}

/// The queue, the signals around it and its counters.
#[derive(Default)]
pub(super) struct CommitQueue {
    waiting: Mutex<Waiting>,
    /// A group is done: its callers have their results, and the lead is free.
    done: Condvar,
    /// A command was queued while the leader fills its group.
    arrived: Condvar,
    groups: AtomicU64,
    commands: AtomicU64,
}

impl CommitQueue {
    fn lock(&self) -> Result<MutexGuard<'_, Waiting>, EngineError> {
        self.waiting.lock().map_err(|_| EngineError::Poisoned)
    }
}

impl Engine {
    /// Executes a command with a fresh command id.
    pub fn execute(&self, ctx: &Context, command: Command) -> Result<Outcome, EngineError> {
        // Time-ordered, so the event ids derived from it are too (see `event_id_for`).
        self.execute_idempotent(ctx, Uuid::now_v7(), command)
    }

    /// Executes a command; executing again with the same `command_id` (a client retry) writes
    /// nothing and returns the first execution's events.
    ///
    /// Concurrent callers share transactions (group commit, see `engine/queue.rs`): each queues
    /// its command and waits for its own result; one of them runs everything queued in one
    /// transaction, in which one command's failure never affects another's outcome. If the
    /// shared transaction itself fails (e.g. at commit), each command is run again alone.
    pub fn execute_idempotent(
        &self,
        ctx: &Context,
        command_id: Uuid,
        command: Command,
    ) -> Result<Outcome, EngineError> {
        let slot: Slot = Arc::new(Mutex::new(None));
        let item = BatchItem {
            ctx: ctx.clone(),
            command_id,
            command,
        };
        let mut waiting = self.commits.lock()?;
        waiting.items.push((item, Arc::clone(&slot)));
        if waiting.filling {
            self.commits.arrived.notify_one();
        }
        loop {
            // The slot is filled before `done` is signalled under the queue's lock, which this
            // caller holds here: a result cannot arrive unseen between this look and the wait.
            if let Some(result) = slot.lock().map_err(|_| EngineError::Poisoned)?.take() {
                return result;
            }
            if waiting.leading {
                waiting = self
                    .commits
                    .done
                    .wait_timeout(waiting, WAKE_UP)
                    .map_err(|_| EngineError::Poisoned)?
                    .0;
                continue;
            }
            waiting.leading = true;
            let led = self
                .fill_group(waiting)
                .and_then(|group| self.run_queued(group));
            waiting = self.commits.lock()?;
            waiting.leading = false;
            if let Ok((size, took)) = led {
                // This group's callers come back with their next commands; those queued
                // meanwhile are already here.
                waiting.expected = size + waiting.items.len();
                waiting.last_group = took;
            }
            self.commits.done.notify_all();
            led?;
        }
    }

    /// As the leader: waits (bounded) for the commands expected, then takes everything queued.
    fn fill_group(
        &self,
        mut waiting: MutexGuard<'_, Waiting>,
    ) -> Result<Vec<(BatchItem, Slot)>, EngineError> {
        if waiting.items.len() < waiting.expected {
            let deadline = Instant::now() + waiting.last_group.min(MAX_FILL_WAIT);
            waiting.filling = true;
            while waiting.items.len() < waiting.expected {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                waiting = self
                    .commits
                    .arrived
                    .wait_timeout(waiting, left)
                    .map_err(|_| EngineError::Poisoned)?
                    .0;
            }
            waiting.filling = false;
        }
        Ok(std::mem::take(&mut waiting.items))
    }

    /// Runs a group taken from the queue and puts each result in its caller's slot; returns the
    /// group's size and how long it took.
    fn run_queued(&self, group: Vec<(BatchItem, Slot)>) -> Result<(usize, Duration), EngineError> {
        let started = Instant::now();
        let (items, slots): (Vec<BatchItem>, Vec<Slot>) = group.into_iter().unzip();
        // Every taken command gets an answer, even if the writer is unusable: a caller whose
        // slot stayed empty would lead empty groups forever.
        let results: Vec<Result<Outcome, EngineError>> = match self.writer_guard() {
            Ok(writer) if !items.is_empty() => {
                on_db!(&*writer, |conn| self.run_items(conn, items))
            }
            Ok(_) => Vec::new(),
            // A poisoned lock, or a database that cannot be reconnected yet: each taken command
            // gets the same answer.
            Err(err) => {
                let poisoned = matches!(err, EngineError::Poisoned);
                let message = err.to_string();
                let mut first = Some(err);
                items
                    .iter()
                    .map(|_| {
                        Err(first.take().unwrap_or_else(|| {
                            if poisoned {
                                EngineError::Poisoned
                            } else {
                                StoreError::Unavailable(message.clone()).into()
                            }
                        }))
                    })
                    .collect()
            }
        };
        for (slot, result) in slots.iter().zip(results) {
            *slot.lock().map_err(|_| EngineError::Poisoned)? = Some(result);
        }
        let size = slots.len();
        self.commits.groups.fetch_add(1, Ordering::Relaxed);
        self.commits
            .commands
            .fetch_add(u64::try_from(size).unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok((size, started.elapsed()))
    }

    /// How many groups [`Engine::execute`] has committed since the engine opened, and the
    /// commands in them (the group sizes the benchmark prints).
    pub fn group_commits(&self) -> GroupCommits {
        GroupCommits {
            groups: self.commits.groups.load(Ordering::Relaxed),
            commands: self.commits.commands.load(Ordering::Relaxed),
        }
    }
}
