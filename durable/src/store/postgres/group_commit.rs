//! Group commit: the checkpoints of concurrent runs share one statement and one commit.
//!
//! A checkpoint joins a queue; up to [`FLUSHERS`] tasks take whatever has queued and write it
//! as one [`sql::CHECKPOINT_BATCH`]. While one batch is in flight the next one fills, so the
//! batch grows with the load and a lone run waits for nobody. Nothing is acknowledged before
//! its commit, and each checkpoint is still fenced by its own lease.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::checkpoint::BatchArgs;
use super::{PgStore, sql};
use crate::store::{Checkpoint, Transition};
use crate::{Error, Result};

/// Batches in flight at once: one being written while the next fills. On 2 cores, two gave
/// more steps per second than one (the server idles between batches) or four (smaller
/// batches, more statements); the rest of the pool is left to claims, starts and heartbeats.
const FLUSHERS: usize = 2;

/// The most checkpoints one statement carries.
const MAX_BATCH: usize = 256;

/// What became of a queued checkpoint.
pub(super) enum Ack {
    /// Recorded; the database clock at its commit.
    Recorded(DateTime<Utc>),
    /// Not written: it needs the single-run statement (a finished child tells its parent).
    Deferred(Box<Checkpoint>),
}

/// True for the checkpoints the batch statement takes: steps and a next state, nothing that
/// touches another run's rows or needs the wait's re-check.
pub(super) fn batchable(cp: &Checkpoint) -> bool {
    cp.consumed.is_empty()
        && cp.events.is_empty()
        && !matches!(cp.transition, Transition::Wait { .. })
}

#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
    stats: Mutex<GroupCommitStats>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    flushers: usize,
}

struct Pending {
    checkpoint: Checkpoint,
    reply: oneshot::Sender<Result<Ack>>,
}

/// How many checkpoints went through group commit, in how many statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Checkpoints written by batch statements.
    pub checkpoints: u64,
    /// Batch statements that committed.
    pub batches: u64,
    /// The largest batch so far.
    pub largest: u64,
}

impl GroupCommit {
    /// Queues `checkpoint` and waits for its batch to commit.
    pub(super) async fn submit(&self, store: &PgStore, checkpoint: Checkpoint) -> Result<Ack> {
        let (reply, answer) = oneshot::channel();
        let start_flusher = {
            let mut queue = self.queue();
            queue.waiting.push_back(Pending { checkpoint, reply });
            let start = queue.flushers < FLUSHERS;
            queue.flushers += usize::from(start);
            start
        };
        if start_flusher {
            tokio::spawn(flush(store.clone()));
        }
        answer
            .await
            .map_err(|_| Error::database("the checkpoint writer stopped"))?
    }

    pub(super) fn stats(&self) -> GroupCommitStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next batch: queued checkpoints of distinct runs, oldest first. `None` (and one
    /// flusher fewer, decided under the same lock as a submit's check) when nothing waits.
    fn next_batch(&self, slot: &mut Slot<'_>) -> Option<Vec<Pending>> {
        let mut queue = self.queue();
        if queue.waiting.is_empty() {
            queue.flushers -= 1;
            slot.held = false;
            return None;
        }
        // One statement must not update a run twice; a second checkpoint of a run waits for
        // the next batch (a run has one in flight at a time, so this is only a safeguard).
        let mut runs = HashSet::new();
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        while let Some(pending) = queue.waiting.pop_front() {
            if batch.len() < MAX_BATCH && runs.insert(pending.checkpoint.lease.run_id) {
                batch.push(pending);
            } else {
                later.push_back(pending);
            }
        }
        queue.waiting = later;
        Some(batch)
    }

    fn record(&self, size: usize) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        stats.checkpoints = stats.checkpoints.saturating_add(size);
        stats.batches += 1;
        stats.largest = stats.largest.max(size);
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes batches until the queue is empty.
async fn flush(store: PgStore) {
    let group = &store.inner.group_commit;
    let mut slot = Slot { group, held: true };
    while let Some(mut batch) = group.next_batch(&mut slot) {
        match store.write_batch(&batch).await {
            Ok(acks) => {
                group.record(batch.len());
                for pending in batch {
                    let ack = acks.get(&pending.checkpoint.lease.run_id.0).copied();
                    reply(pending, Ok(ack));
                }
            }
            Err(e) if batch.len() == 1 => reply(batch.remove(0), Err(e)),
            // One bad checkpoint must not fail its neighbours: each is tried alone, and gets
            // its own answer.
            Err(_) => {
                for pending in batch {
                    let alone = store.write_batch(std::slice::from_ref(&pending)).await;
                    if alone.is_ok() {
                        group.record(1);
                    }
                    let run = pending.checkpoint.lease.run_id.0;
                    reply(pending, alone.map(|acks| acks.get(&run).copied()));
                }
            }
        }
    }
}

/// A flusher's place among the [`FLUSHERS`]; given back when the queue runs dry, or when
/// the task is dropped mid-batch (its runtime shutting down), so later submits start anew.
struct Slot<'a> {
    group: &'a GroupCommit,
    held: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.held {
            self.group.queue().flushers -= 1;
        }
    }
}

/// What the batch statement said of one run: recorded or deferred, and the clock; `None`
/// when its lease was not current.
type RunAck = Option<(bool, DateTime<Utc>)>;

fn reply(pending: Pending, ack: Result<RunAck>) {
    let run = pending.checkpoint.lease.run_id;
    let answer = ack.and_then(|ack| match ack {
        Some((true, db_now)) => Ok(Ack::Recorded(db_now)),
        Some((false, _)) => Ok(Ack::Deferred(Box::new(pending.checkpoint))),
        None => Err(Error::LeaseLost(run)),
    });
    // The caller may have gone (its run was dropped); the write stands either way.
    let _ = pending.reply.send(answer);
}

impl PgStore {
    /// One batch statement; the answer per run: recorded (and when), or deferred.
    async fn write_batch(&self, batch: &[Pending]) -> Result<HashMap<Uuid, (bool, DateTime<Utc>)>> {
        let args = BatchArgs::new(batch.iter().map(|p| &p.checkpoint))?;
        let rows = self.query(sql::CHECKPOINT_BATCH, &args.params()).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    (row.try_get("recorded")?, row.try_get("db_now")?),
                ))
            })
            .collect()
    }
}
