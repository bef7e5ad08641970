//! The statements of the SQLite store, with the same meaning as the Postgres store's.
//!
//! The clock is a parameter (`:now`, microseconds), read once per transaction after its
//! write lock is taken, so every timestamp of one write agrees and writes from several
//! processes are stamped in the order they commit. Lists of names arrive as one JSON array
//! parameter, unpacked with `json_each`.

/// Inserts a run unless its workflow id is taken in the workspace.
pub const START_RUN: &str = "
INSERT INTO runs
    (workspace_id, id, workflow_id, workflow_name, workflow_version, input, status, max_claims,
     parent_run_id, deadline_at, created_at, updated_at)
VALUES (:workspace_id, :id, :workflow_id, :workflow_name, :workflow_version, :input, 'pending',
        :max_claims, :parent_run_id, :deadline_at, :now, :now)
ON CONFLICT (workspace_id, workflow_id) DO NOTHING";

/// The run that owns a workflow id.
pub const EXISTING_RUN: &str = "
SELECT id, workflow_name, input FROM runs WHERE workspace_id = :workspace_id AND workflow_id = :workflow_id";

/// Claims runs that are pending, due, or whose lease expired. A run that has been claimed
/// `max_claims` times in a row without progress is parked instead of claimed. Each way of
/// being claimable is its own branch, so each uses its partial index.
pub const CLAIM: &str = "
UPDATE runs SET
    status = CASE WHEN claims >= max_claims THEN 'parked' ELSE 'running' END,
    error = CASE WHEN claims >= max_claims
        THEN 'claimed ' || claims || ' times in a row without progress (its worker probably '
             || 'crashed each time); parked so it stops taking workers down'
        ELSE error END,
    claims = CASE WHEN claims >= max_claims THEN claims ELSE claims + 1 END,
    epoch = epoch + 1,
    lease_owner = CASE WHEN claims >= max_claims THEN NULL ELSE :worker_id END,
    lease_expires_at = CASE WHEN claims >= max_claims THEN NULL ELSE :lease_expires_at END,
    wake_at = NULL,
    waiting_topic = NULL,
    updated_at = :now
WHERE id IN (
    SELECT id FROM (
        SELECT id, created_at FROM runs
        WHERE status = 'pending'
          AND workflow_name IN (SELECT value FROM json_each(:workflows))
        UNION ALL
        SELECT id, created_at FROM runs
        WHERE status = 'sleeping' AND wake_at <= :now
          AND workflow_name IN (SELECT value FROM json_each(:workflows))
        UNION ALL
        SELECT id, created_at FROM runs
        WHERE status = 'running' AND lease_expires_at < :now
          AND workflow_name IN (SELECT value FROM json_each(:workflows))
          AND id NOT IN (SELECT value FROM json_each(:running))
    )
    ORDER BY created_at, id
    LIMIT :limit
)
RETURNING *";

/// The recorded steps of one run, for a claim.
pub const HISTORY: &str = "SELECT * FROM steps WHERE run_id = :run_id ORDER BY seq";

/// Moves a run to its next state, fenced by `(id, epoch)` and status `running`. Changes no
/// row when the lease is no longer current.
pub const CHECKPOINT_RUN: &str = "
UPDATE runs SET
    -- a run asked to pause stops here: parked, instead of running on or sleeping
    status = CASE WHEN pause_requested AND :status IN ('running', 'sleeping')
                  THEN 'parked' ELSE :status END,
    output = coalesce(:output, output),
    error = CASE WHEN pause_requested AND :status IN ('running', 'sleeping')
                 THEN 'paused by an operator' ELSE :error END,
    -- a wait whose message is already there is due at once, and so is a sleep or wait of a
    -- run asked to cancel that has not learned it yet
    wake_at = CASE WHEN pause_requested AND :status IN ('running', 'sleeping') THEN NULL
                   WHEN :wake_at IS NOT NULL AND cancel_requested IS NOT NULL
                        AND NOT :cancel_seen THEN :now
                   WHEN :waiting_topic IS NOT NULL AND EXISTS (
                       SELECT 1 FROM messages m
                       WHERE m.run_id = :id AND m.consumed_seq IS NULL
                         AND instr(char(10) || :waiting_topic || char(10),
                                   char(10) || m.topic || char(10)) > 0)
                   THEN :now ELSE :wake_at END,
    waiting_topic = CASE WHEN pause_requested AND :status IN ('running', 'sleeping')
                         THEN NULL ELSE :waiting_topic END,
    pause_requested = pause_requested AND :status NOT IN ('running', 'sleeping'),
    claims = CASE WHEN :status = 'pending' THEN max(claims - 1, 0) ELSE 0 END,
    lease_owner = CASE WHEN :status = 'running' AND NOT pause_requested THEN lease_owner END,
    lease_expires_at = CASE WHEN :status = 'running' AND NOT pause_requested
                            THEN :lease_expires_at END,
    updated_at = :now,
    finished_at = CASE WHEN :status IN ('completed', 'failed', 'cancelled') THEN :now END
WHERE id = :id AND epoch = :epoch AND status = 'running'
RETURNING workspace_id, workflow_name, parent_run_id";

/// Inserts a step or updates the one recorded at its sequence number.
pub const UPSERT_STEP: &str = "
INSERT INTO steps
    (workspace_id, run_id, seq, name, kind, status, output, error, attempts, wake_at,
     first_attempt_at, created_at, updated_at)
VALUES (:workspace_id, :run_id, :seq, :name, :kind, :status, :output, :error, :attempts,
        :wake_at, :first_attempt_at, :now, :now)
ON CONFLICT (run_id, seq) DO UPDATE SET
    status = excluded.status, output = excluded.output, error = excluded.error,
    attempts = excluded.attempts, wake_at = excluded.wake_at, updated_at = excluded.updated_at";

/// Extends one lease if it is still current.
pub const HEARTBEAT: &str = "
UPDATE runs SET lease_expires_at = :lease_expires_at
WHERE id = :id AND epoch = :epoch AND status = 'running'
RETURNING cancel_requested";

/// The earliest due time of the sleeping runs of some workflows.
pub const NEXT_WAKE: &str = "
SELECT min(wake_at) FROM runs
WHERE status = 'sleeping' AND workflow_name IN (SELECT value FROM json_each(:workflows))";

/// One run.
pub const GET_RUN: &str = "SELECT * FROM runs WHERE workspace_id = :workspace_id AND id = :id";

/// Runs matching a filter; a NULL parameter matches everything.
pub const LIST_RUNS: &str = "
SELECT * FROM runs
WHERE workspace_id = :workspace_id
  AND (:status IS NULL OR status = :status)
  AND (:workflow_name IS NULL OR workflow_name = :workflow_name)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY created_at DESC, id DESC
LIMIT :limit";

/// The steps of one run.
pub const STEPS: &str = "
SELECT * FROM steps WHERE workspace_id = :workspace_id AND run_id = :run_id ORDER BY seq";

/// Cancels a run that has not finished and its children's children; raising the epoch
/// fences each lease holder. Returns the cancelled runs.
pub const CANCEL: &str = "
WITH RECURSIVE tree(id) AS (
    SELECT id FROM runs WHERE workspace_id = :workspace_id AND id = :id
    UNION ALL
    SELECT c.id FROM runs c JOIN tree ON c.parent_run_id = tree.id
)
UPDATE runs SET status = 'cancelled', epoch = epoch + 1, lease_owner = NULL,
    lease_expires_at = NULL, wake_at = NULL, waiting_topic = NULL, pause_requested = 0,
    updated_at = :now, finished_at = :now
WHERE id IN (SELECT id FROM tree)
  AND status IN ('pending', 'running', 'sleeping', 'parked')
  -- asked to cancel gently, only runs no worker started, and parked ones, end at once
  AND (NOT :gentle OR status = 'parked' OR (status = 'pending' AND epoch = 0))
RETURNING id, workspace_id, parent_run_id";

/// Asks a run and its descendants still running to cancel; sleeping ones are due at once.
pub const REQUEST_CANCEL: &str = "
WITH RECURSIVE tree(id) AS (
    SELECT id FROM runs WHERE workspace_id = :workspace_id AND id = :id
    UNION ALL
    SELECT c.id FROM runs c JOIN tree ON c.parent_run_id = tree.id
)
UPDATE runs SET
    cancel_requested = coalesce(cancel_requested, :reason),
    wake_at = CASE WHEN status = 'sleeping' THEN :now ELSE wake_at END,
    updated_at = :now
WHERE id IN (SELECT id FROM tree) AND status IN ('pending', 'running', 'sleeping')
RETURNING workflow_name";

/// Parks a pending or sleeping run; asks a running one to park after its current step.
pub const PAUSE: &str = "
UPDATE runs SET
    status = CASE WHEN status = 'running' THEN status ELSE 'parked' END,
    error = CASE WHEN status = 'running' THEN error ELSE 'paused by an operator' END,
    wake_at = CASE WHEN status = 'running' THEN wake_at END,
    waiting_topic = CASE WHEN status = 'running' THEN waiting_topic END,
    pause_requested = (status = 'running'),
    updated_at = :now
WHERE workspace_id = :workspace_id AND id = :id AND status IN ('pending', 'running', 'sleeping')";

/// Makes a parked run pending again (claims reset), or withdraws a pending pause.
pub const RESUME: &str = "
UPDATE runs SET
    status = CASE WHEN status = 'parked' THEN 'pending' ELSE status END,
    error = CASE WHEN status = 'parked' THEN NULL ELSE error END,
    claims = CASE WHEN status = 'parked' THEN 0 ELSE claims END,
    pause_requested = 0,
    updated_at = :now
WHERE workspace_id = :workspace_id AND id = :id AND (status = 'parked' OR pause_requested)
RETURNING workflow_name";

/// Tells a parent that a child finished, unless it was told already.
pub const TELL_PARENT: &str = "
INSERT INTO messages (workspace_id, run_id, topic, payload, idempotency_key, created_at)
VALUES (:workspace_id, :parent, :topic, :payload, :topic, :now)
ON CONFLICT (run_id, idempotency_key) DO NOTHING";

/// A run's status.
pub const STATUS: &str = "SELECT status FROM runs WHERE workspace_id = :workspace_id AND id = :id";

/// Stores a message unless its idempotency key was used for this run already.
pub const INSERT_MESSAGE: &str = "
INSERT INTO messages (workspace_id, run_id, topic, payload, idempotency_key, created_at)
VALUES (:workspace_id, :run_id, :topic, :payload, :idempotency_key, :now)
ON CONFLICT (run_id, idempotency_key) DO NOTHING";

/// Makes a run sleeping on this topic (one line of `waiting_topic`) due at once; returns its
/// workflow.
pub const WAKE_WAITING: &str = "
UPDATE runs SET wake_at = :now, updated_at = :now
WHERE id = :run_id AND status = 'sleeping'
  AND instr(char(10) || waiting_topic || char(10), char(10) || :topic || char(10)) > 0
RETURNING workflow_name";

/// The oldest message on any of the topics (a JSON array) that no step has taken.
pub const NEXT_MESSAGE: &str = "
SELECT id, topic, payload FROM messages
WHERE run_id = :run_id AND topic IN (SELECT value FROM json_each(:topics))
  AND consumed_seq IS NULL
ORDER BY id LIMIT 1";

/// Marks a message as taken by a step.
pub const CONSUME_MESSAGE: &str = "
UPDATE messages SET consumed_seq = :seq
WHERE id = :id AND run_id = :run_id AND consumed_seq IS NULL";

/// Publishes (or replaces) an event.
pub const UPSERT_EVENT: &str = "
INSERT INTO events (workspace_id, run_id, key, value, updated_at)
VALUES (:workspace_id, :run_id, :key, :value, :now)
ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

/// A run's latest value for an event key.
pub const GET_EVENT: &str = "
SELECT value FROM events WHERE workspace_id = :workspace_id AND run_id = :run_id AND key = :key";

/// Whether a step before `:from_seq` started a child.
pub const FORK_BLOCKED: &str = "
SELECT count(*) > 0 FROM steps WHERE run_id = :origin AND seq < :from_seq AND kind = 'start_child'";

/// Creates a fork of the origin (pending, linked to it).
pub const FORK_RUN: &str = "
INSERT INTO runs
    (workspace_id, id, workflow_id, workflow_name, workflow_version, input, status, max_claims,
     forked_from, forked_at_seq, created_at, updated_at)
SELECT workspace_id, :id, :workflow_id, workflow_name, workflow_version,
       coalesce(:input, input), 'pending', max_claims, id, :from_seq, :now, :now
FROM runs WHERE workspace_id = :workspace_id AND id = :origin
RETURNING workflow_name";

/// Copies the origin's finished steps before `:from_seq` to the fork.
pub const FORK_STEPS: &str = "
INSERT INTO steps
    (workspace_id, run_id, seq, name, kind, status, output, error, attempts, wake_at,
     first_attempt_at, created_at, updated_at)
SELECT workspace_id, :id, seq, name, kind, status, output, error, attempts, wake_at,
       first_attempt_at, :now, :now
FROM steps WHERE run_id = :origin AND seq < :from_seq AND status IN ('completed', 'failed')";
