//! Group commit's queue. Callers of [`Engine::execute`] queue their command and wait for their
//! own result. One caller at a time leads: it waits briefly until the callers it expects have
//! queued again, takes everything queued, runs it as one transaction (`run_items`), hands each
//! caller its result and gives up the lead, so that no caller's answer waits behind more than
//! one group it is not in.
//!
//! An async caller ([`Engine::submit`]) queues its command the same way and awaits a future
//! instead of blocking a thread. It never leads from its own task: when nobody leads, it starts
//! a leader through the spawner it was given (e.g. `tokio::task::spawn_blocking`), and that
//! leader runs groups until the queue is empty. A caller that gives up the lead while only
//! async commands are left starts such a leader with the spawner one of them brought, so that
//! no queued command waits for a caller that will never come.
//!
//! Why the lead waits: on a machine with few cores, the callers a group has just answered need
//! CPU time to build and queue their next command. A leader that starts at once finds only the
//! first of them and the group stays small (about 2.5 commands with 8 callers on 2 cores). The
//! leader expects the callers of the last group plus those already waiting, and waits for them
//! at most as long as the last group took; a caller that does not come back costs one such wait,
//! after which the expectation is smaller. A lone caller expects only itself and never waits.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::group::BatchItem;
use super::{Engine, EngineError, Outcome};
use crate::error::StoreError;
use imgshare_core::{Command, Context};

/// Where a queued command's result goes, and the async caller to wake when it is there.
type Slot = Arc<Mutex<Delivery>>;

#[derive(Default)]
struct Delivery {
    result: Option<Result<Outcome, EngineError>>,
    waker: Option<Waker>,
}

/// Puts a result in its slot and wakes the async caller waiting on it, if any.
fn deliver(slot: &Slot, result: Result<Outcome, EngineError>) -> Result<(), EngineError> {
    let waker = {
        let mut delivery = slot.lock().map_err(|_| EngineError::Poisoned)?;
        delivery.result = Some(result);
        delivery.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    Ok(())
}

/// Work that leads groups until the queue is empty; [`Engine::submit`] hands it to its caller's
/// spawner, which must run it on a thread that may block.
pub type LeadWork = Box<dyn FnOnce() + Send + 'static>;

/// The lead handed to a spawner. If the spawner drops the work instead of running it (a runtime
/// shutting down), the lead is run where it is dropped: a lead taken and never given up would
/// leave every later caller waiting for good.
struct Lead {
    engine: Option<Arc<Engine>>,
}

impl Lead {
    fn work(engine: Arc<Engine>) -> LeadWork {
        let mut lead = Lead {
            engine: Some(engine),
        };
        Box::new(move || lead.run())
    }

    fn run(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.lead_until_empty();
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.run();
    }
}

/// Who waits for a queued command.
enum Caller {
    /// A thread blocked in [`Engine::execute_idempotent`]: it takes the lead itself when free.
    Thread,
    /// An async caller of [`Engine::submit`], with the means to start a leader: `None` once
    /// used, or when this caller started the leader itself.
    Task(Option<LeadWork>),
}

struct Queued {
    item: BatchItem,
    slot: Slot,
    caller: Caller,
}

/// The longest a waiting caller sleeps before looking at the queue again (a safety net: the
/// leader wakes the waiters when it is done).
const WAKE_UP: Duration = Duration::from_millis(5);

/// The longest a leader waits for the callers it expects, whatever the last group took.
const MAX_FILL_WAIT: Duration = Duration::from_millis(2);

/// Commands waiting for a transaction, and who leads.
#[derive(Default)]
struct Waiting {
    items: Vec<Queued>,
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
        let slot: Slot = Arc::default();
        let item = BatchItem {
            ctx: ctx.clone(),
            command_id,
            command,
        };
        let mut waiting = self.commits.lock()?;
        waiting.items.push(Queued {
            item,
            slot: Arc::clone(&slot),
            caller: Caller::Thread,
        });
        if waiting.filling {
            self.commits.arrived.notify_one();
        }
        loop {
            // The slot is filled before `done` is signalled under the queue's lock, which this
            // caller holds here: a result cannot arrive unseen between this look and the wait.
            if let Some(result) = slot
                .lock()
                .map_err(|_| EngineError::Poisoned)?
                .result
                .take()
            {
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
            let led = self.lead_one(waiting);
            waiting = self.commits.lock()?;
            waiting.leading = false;
            self.after_group(&mut waiting, &led);
            let relay = take_relay(&mut waiting);
            self.commits.done.notify_all();
            if let Some(relay) = relay {
                drop(waiting);
                relay();
                waiting = self.commits.lock()?;
            }
            led?;
        }
    }

    /// Queues a command for group commit without blocking: the returned future resolves to its
    /// outcome, as [`Engine::execute_idempotent`] would return it. When no caller leads,
    /// `spawn` is given the work of leading (run everything queued, group after group, until
    /// the queue is empty) and must run it on a thread that may block, e.g.
    /// `|work| { tokio::task::spawn_blocking(work); }`.
    ///
    /// The command runs whether or not the future is awaited to the end.
    pub fn submit(
        self: &Arc<Self>,
        ctx: &Context,
        command_id: Uuid,
        command: Command,
        spawn: impl Fn(LeadWork) + Send + Sync + 'static,
    ) -> Result<Submitted, EngineError> {
        let slot: Slot = Arc::default();
        let spawn: Arc<dyn Fn(LeadWork) + Send + Sync> = Arc::new(spawn);
        let start = {
            let mut waiting = self.commits.lock()?;
            let start = !waiting.leading;
            // Kept with the command for a blocking leader that leaves only async commands.
            let relay = (!start).then(|| {
                let (engine, spawn) = (Arc::clone(self), Arc::clone(&spawn));
                Box::new(move || spawn(Lead::work(engine))) as LeadWork
            });
            waiting.items.push(Queued {
                item: BatchItem {
                    ctx: ctx.clone(),
                    command_id,
                    command,
                },
                slot: Arc::clone(&slot),
                caller: Caller::Task(relay),
            });
            if start {
                waiting.leading = true;
            } else if waiting.filling {
                self.commits.arrived.notify_one();
            }
            start
        };
        if start {
            spawn(Lead::work(Arc::clone(self)));
        }
        Ok(Submitted { slot })
    }

    /// As the leader (the lead already taken): runs groups until nothing is queued, then gives
    /// up the lead.
    fn lead_until_empty(&self) {
        let Ok(mut waiting) = self.commits.lock() else {
            return;
        };
        while !waiting.items.is_empty() {
            let led = self.lead_one(waiting);
            let Ok(relocked) = self.commits.lock() else {
                return;
            };
            waiting = relocked;
            self.after_group(&mut waiting, &led);
            self.commits.done.notify_all();
        }
        waiting.leading = false;
        self.commits.done.notify_all();
    }

    /// Fills and runs one group, the lead held.
    fn lead_one(&self, waiting: MutexGuard<'_, Waiting>) -> Result<(usize, Duration), EngineError> {
        self.fill_group(waiting)
            .and_then(|group| self.run_queued(group))
    }

    /// What the next leader expects after a group: this group's callers come back with their
    /// next commands; those queued meanwhile are already here.
    fn after_group(&self, waiting: &mut Waiting, led: &Result<(usize, Duration), EngineError>) {
        if let Ok((size, took)) = led {
            waiting.expected = size + waiting.items.len();
            waiting.last_group = *took;
        }
    }

    /// As the leader: waits (bounded) for the commands expected, then takes everything queued.
    fn fill_group(&self, mut waiting: MutexGuard<'_, Waiting>) -> Result<Vec<Queued>, EngineError> {
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
    fn run_queued(&self, group: Vec<Queued>) -> Result<(usize, Duration), EngineError> {
        let started = Instant::now();
        let (items, slots): (Vec<BatchItem>, Vec<Slot>) = group
            .into_iter()
            .map(|queued| (queued.item, queued.slot))
            .unzip();
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
            deliver(slot, result)?;
        }
        let size = slots.len();
        self.commits.groups.fetch_add(1, Ordering::Relaxed);
        self.commits
            .commands
            .fetch_add(u64::try_from(size).unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok((size, started.elapsed()))
    }

    /// Whether a caller leads, and how many commands wait to be taken.
    #[cfg(test)]
    pub(super) fn queue_state(&self) -> (bool, usize) {
        self.commits
            .lock()
            .map(|waiting| (waiting.leading, waiting.items.len()))
            .unwrap_or((false, usize::MAX))
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

/// After a blocking caller gave up the lead: if only async callers wait for what is queued,
/// nobody would come to lead it, so the lead is taken again here and one of their means to
/// start a leader is returned, to be called once the queue's lock is released.
fn take_relay(waiting: &mut Waiting) -> Option<LeadWork> {
    if waiting
        .items
        .iter()
        .any(|queued| matches!(queued.caller, Caller::Thread))
    {
        return None;
    }
    let relay = waiting
        .items
        .iter_mut()
        .find_map(|queued| match &mut queued.caller {
            Caller::Task(relay) => relay.take(),
            Caller::Thread => None,
        });
    if relay.is_some() {
        waiting.leading = true;
    }
    relay
}

/// The outcome of a command queued by [`Engine::submit`].
#[must_use = "the command runs anyway; the future only brings its outcome"]
pub struct Submitted {
    slot: Slot,
}

impl Future for Submitted {
    type Output = Result<Outcome, EngineError>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let Ok(mut delivery) = self.slot.lock() else {
            return Poll::Ready(Err(EngineError::Poisoned));
        };
        match delivery.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                delivery.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
