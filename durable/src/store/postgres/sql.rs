//! The statements of the Postgres store. Each write is one statement, so it costs one round
//! trip and one commit; all are prepared once per connection.

/// Inserts a run unless its workflow id is taken; on insert, notifies workers.
pub const START_RUN: &str = "
WITH inserted AS (
    INSERT INTO durable.runs
        (workspace_id, id, workflow_id, workflow_name, workflow_version, input, status, max_claims,
         parent_run_id, deadline_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8,
            now() + $9::float8 * interval '1 millisecond')
    ON CONFLICT (workspace_id, workflow_id) DO NOTHING
    RETURNING id, workflow_name, input
)
SELECT id, true AS created, workflow_name, input,
       (SELECT count(*) FROM (SELECT pg_notify('durable', 'ready:' || workflow_name)) n) AS notified
FROM inserted
UNION ALL
SELECT id, false, workflow_name, input, 0
FROM durable.runs
WHERE workspace_id = $1 AND workflow_id = $3 AND NOT EXISTS (SELECT 1 FROM inserted)";

/// Claims runs that are pending, due, or whose lease expired, those ready longest first. A
/// run that has been claimed `max_claims` times in a row without progress is parked instead
/// of claimed.
///
/// Each kind is found through its own index, in its own order, at most `$2` of each: the
/// cost of a claim does not grow with the number of runs waiting (ten thousand timers due at
/// once would otherwise all be sorted by every claim). Rows locked here but not picked are
/// let go at the end of the statement.
pub const CLAIM: &str = "
WITH pending AS (
    SELECT id, created_at AS since FROM durable.runs
    WHERE status = 'pending' AND workflow_name = ANY($1)
    ORDER BY created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT id, wake_at AS since FROM durable.runs
    WHERE status = 'sleeping' AND wake_at <= now() AND workflow_name = ANY($1)
    ORDER BY wake_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), expired AS (
    SELECT id, lease_expires_at AS since FROM durable.runs
    WHERE status = 'running' AND lease_expires_at < now() AND workflow_name = ANY($1)
      AND NOT id = ANY($5)
    ORDER BY lease_expires_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id FROM (SELECT * FROM pending UNION ALL SELECT * FROM due
                    UNION ALL SELECT * FROM expired) AS ready
    ORDER BY since
    LIMIT $2
)
UPDATE durable.runs AS r SET
    status = CASE WHEN r.claims >= r.max_claims THEN 'parked' ELSE 'running' END,
    error = CASE WHEN r.claims >= r.max_claims
        THEN format('claimed %s times in a row without progress (its worker probably crashed '
                    'each time); parked so it stops taking workers down', r.claims)
        ELSE r.error END,
    claims = CASE WHEN r.claims >= r.max_claims THEN r.claims ELSE r.claims + 1 END,
    epoch = r.epoch + 1,
    lease_owner = CASE WHEN r.claims >= r.max_claims THEN NULL ELSE $3 END,
    lease_expires_at = CASE WHEN r.claims >= r.max_claims THEN NULL
                            ELSE now() + $4::float8 * interval '1 millisecond' END,
    wake_at = NULL,
    waiting_topic = NULL,
    updated_at = now()
FROM picked
WHERE r.id = picked.id
RETURNING r.*, now() AS db_now";

/// The recorded steps of the claimed runs.
pub const HISTORY: &str = "
SELECT * FROM durable.steps WHERE run_id = ANY($1) ORDER BY run_id, seq";

/// Records steps and the run's next state in one statement, fenced by `(id, epoch)`.
/// Returns no row when the lease is no longer current.
pub const CHECKPOINT: &str = "
WITH target AS (
    -- a run asked to pause stops here: parked, instead of running on or sleeping
    SELECT id,
           CASE WHEN pause_requested AND $3::text IN ('running', 'sleeping')
                THEN 'parked' ELSE $3::text END AS status,
           pause_requested AND $3::text IN ('running', 'sleeping') AS paused
    FROM durable.runs WHERE id = $1 AND epoch = $2 AND status = 'running'
), run AS (
    UPDATE durable.runs AS r SET
        status = t.status,
        output = coalesce($4, r.output),
        error = CASE WHEN t.paused THEN 'paused by an operator' ELSE $5 END,
        -- a wait whose message is already there is due at once, and so is a sleep or wait
        -- of a run asked to cancel that has not learned it yet
        wake_at = CASE WHEN t.paused THEN NULL
                       WHEN $6::timestamptz IS NOT NULL AND r.cancel_requested IS NOT NULL
                            AND NOT $24::bool THEN now()
                       WHEN $18::text IS NOT NULL AND EXISTS (
                           SELECT 1 FROM durable.messages m
                           WHERE m.run_id = $1 AND m.consumed_seq IS NULL
                             AND m.topic = ANY(string_to_array($18, E'\\n')))
                       THEN now() ELSE $6 END,
        waiting_topic = CASE WHEN t.paused THEN NULL ELSE $18 END,
        pause_requested = r.pause_requested AND NOT t.paused,
        claims = CASE WHEN t.status = 'pending' THEN greatest(r.claims - 1, 0) ELSE 0 END,
        lease_owner = CASE WHEN t.status = 'running' THEN r.lease_owner END,
        lease_expires_at = CASE WHEN t.status = 'running'
                                THEN now() + $7::float8 * interval '1 millisecond' END,
        updated_at = now(),
        finished_at = CASE WHEN t.status IN ('completed', 'failed', 'cancelled') THEN now() END
    FROM target AS t
    WHERE r.id = t.id AND r.epoch = $2 AND r.status = 'running'
    RETURNING r.workspace_id, r.id, r.parent_run_id, r.status
), recorded AS (
    INSERT INTO durable.steps AS s
        (workspace_id, run_id, seq, name, kind, status, output, error, attempts, wake_at,
         first_attempt_at)
    SELECT run.workspace_id, run.id, u.seq, u.name, u.kind, u.status, u.output, u.error,
           u.attempts, u.wake_at, u.first_attempt_at
    FROM run, unnest($8::int4[], $9::text[], $10::text[], $11::text[], $12::jsonb[],
                     $13::jsonb[], $14::int4[], $15::timestamptz[], $16::timestamptz[])
         AS u(seq, name, kind, status, output, error, attempts, wake_at, first_attempt_at)
    ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        attempts = excluded.attempts, wake_at = excluded.wake_at, updated_at = now()
), consumed AS (
    UPDATE durable.messages AS m SET consumed_seq = u.seq
    FROM run, unnest($19::int8[], $20::int4[]) AS u(id, seq)
    WHERE m.id = u.id AND m.run_id = run.id AND m.consumed_seq IS NULL
), published AS (
    INSERT INTO durable.events (workspace_id, run_id, key, value)
    SELECT run.workspace_id, run.id, e.key, e.value
    FROM run, unnest($21::text[], $22::jsonb[]) AS e(key, value)
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_at = now()
), told AS (
    -- a finished child tells its parent, which takes the outcome with a recv
    INSERT INTO durable.messages (workspace_id, run_id, topic, payload, idempotency_key)
    SELECT run.workspace_id, run.parent_run_id, 'child:' || run.id::text, $23::jsonb,
           'child:' || run.id::text
    FROM run WHERE run.parent_run_id IS NOT NULL AND $23::jsonb IS NOT NULL
    ON CONFLICT (run_id, idempotency_key) DO NOTHING
), woke_parent AS (
    -- The parent row is locked whatever its state, and the state is tested in SET: a parent
    -- deciding to wait right now is waited for and then seen sleeping (see WAIT_RECHECK).
    UPDATE durable.runs AS p SET
        wake_at = CASE WHEN p.status = 'sleeping'
                            AND 'child:' || run.id::text = ANY(string_to_array(p.waiting_topic, E'\\n'))
                       THEN now() ELSE p.wake_at END
    FROM run
    WHERE $23::jsonb IS NOT NULL AND p.id = run.parent_run_id
)
SELECT now() AS db_now,
       (SELECT count(*) FROM (SELECT pg_notify('durable', 'done:' || run.id::text)
                              WHERE $17 OR run.status = 'parked') n)
FROM run";

/// The checkpoints of many runs in one statement and one commit (group commit), each fenced
/// by its own `(id, epoch)`: a run whose lease is gone is left out of the answer, and its
/// neighbours are recorded all the same. Takes the common checkpoints only, steps and the
/// run's next state (see `group_commit::batchable`); a run that finishes and has a parent to
/// tell is answered `recorded = false` and goes through [`CHECKPOINT`].
pub const CHECKPOINT_BATCH: &str = "
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::jsonb[], $5::text[],
                         $6::timestamptz[], $7::bool[], $8::bool[], $9::float8[])
         AS c(id, epoch, status, output, error, wake_at, cancel_seen, finished, lease_millis)
), target AS (
    SELECT c.id, c.epoch, c.output, c.error, c.wake_at, c.cancel_seen, c.finished,
           c.lease_millis,
           -- a run asked to pause stops here: parked, instead of running on or sleeping
           CASE WHEN r.pause_requested AND c.status IN ('running', 'sleeping')
                THEN 'parked' ELSE c.status END AS status,
           r.pause_requested AND c.status IN ('running', 'sleeping') AS paused,
           r.parent_run_id IS NOT NULL
               AND c.status IN ('completed', 'failed', 'cancelled') AS tells_parent
    FROM input AS c JOIN durable.runs AS r
         ON r.id = c.id AND r.epoch = c.epoch AND r.status = 'running'
    -- rows are locked in id order, as the heartbeat locks them: two statements that each
    -- update many runs then never wait for each other in a cycle
    ORDER BY r.id
    FOR UPDATE OF r
), run AS (
    UPDATE durable.runs AS r SET
        status = t.status,
        output = coalesce(t.output, r.output),
        error = CASE WHEN t.paused THEN 'paused by an operator' ELSE t.error END,
        -- a sleep of a run asked to cancel that has not learned it yet is due at once
        wake_at = CASE WHEN t.paused THEN NULL
                       WHEN t.wake_at IS NOT NULL AND r.cancel_requested IS NOT NULL
                            AND NOT t.cancel_seen THEN now()
                       ELSE t.wake_at END,
        waiting_topic = NULL,
        pause_requested = r.pause_requested AND NOT t.paused,
        claims = CASE WHEN t.status = 'pending' THEN greatest(r.claims - 1, 0) ELSE 0 END,
        lease_owner = CASE WHEN t.status = 'running' THEN r.lease_owner END,
        lease_expires_at = CASE WHEN t.status = 'running'
                                THEN now() + t.lease_millis * interval '1 millisecond' END,
        updated_at = now(),
        finished_at = CASE WHEN t.status IN ('completed', 'failed', 'cancelled') THEN now() END
    FROM target AS t
    WHERE r.id = t.id AND r.epoch = t.epoch AND r.status = 'running' AND NOT t.tells_parent
    RETURNING r.workspace_id, r.id, r.status, t.finished
), recorded AS (
    INSERT INTO durable.steps AS s
        (workspace_id, run_id, seq, name, kind, status, output, error, attempts, wake_at,
         first_attempt_at)
    SELECT run.workspace_id, run.id, u.seq, u.name, u.kind, u.status, u.output, u.error,
           u.attempts, u.wake_at, u.first_attempt_at
    FROM unnest($10::uuid[], $11::int4[], $12::text[], $13::text[], $14::text[],
                $15::jsonb[], $16::jsonb[], $17::int4[], $18::timestamptz[],
                $19::timestamptz[])
         AS u(run_id, seq, name, kind, status, output, error, attempts, wake_at,
              first_attempt_at)
         JOIN run ON run.id = u.run_id
    ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        attempts = excluded.attempts, wake_at = excluded.wake_at, updated_at = now()
)
SELECT run.id, true AS recorded, now() AS db_now,
       (SELECT count(*) FROM (SELECT pg_notify('durable', 'done:' || run.id::text)
                              WHERE run.finished OR run.status = 'parked') n) AS notified
FROM run
UNION ALL
SELECT t.id, false, now(), 0 FROM target AS t WHERE t.tells_parent";

/// Extends the leases that are still current; returns their runs. Rows are locked in id
/// order, as [`CHECKPOINT_BATCH`] locks them.
pub const HEARTBEAT: &str = "
WITH current AS (
    SELECT r.id FROM durable.runs AS r
    JOIN unnest($1::uuid[], $2::int8[]) AS h(id, epoch) ON r.id = h.id AND r.epoch = h.epoch
    WHERE r.status = 'running'
    ORDER BY r.id
    FOR UPDATE OF r
)
UPDATE durable.runs AS r SET lease_expires_at = now() + $3::float8 * interval '1 millisecond'
FROM current
WHERE r.id = current.id
RETURNING r.id, r.cancel_requested";

/// Milliseconds until the earliest sleeping run is due, by the database clock.
pub const NEXT_WAKE: &str = "
SELECT (extract(epoch FROM min(wake_at) - now()) * 1000)::float8
FROM durable.runs WHERE status = 'sleeping' AND workflow_name = ANY($1)";

/// One run.
pub const GET_RUN: &str = "SELECT * FROM durable.runs WHERE workspace_id = $1 AND id = $2";

/// Runs matching a filter; a NULL parameter matches everything.
pub const LIST_RUNS: &str = "
SELECT * FROM durable.runs
WHERE workspace_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR workflow_name = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
ORDER BY created_at DESC, id DESC
LIMIT $6";

/// The steps of one run.
pub const STEPS: &str = "
SELECT * FROM durable.steps WHERE workspace_id = $1 AND run_id = $2 ORDER BY seq";

/// Cancels a run that has not finished, and its children's children; raising the epoch
/// fences each lease holder. A cancelled child tells its parent, as a finished one does.
pub const CANCEL: &str = "
WITH RECURSIVE tree AS (
    SELECT id FROM durable.runs WHERE workspace_id = $1 AND id = $2
    UNION ALL
    SELECT c.id FROM durable.runs c JOIN tree ON c.parent_run_id = tree.id
), cancelled AS (
    UPDATE durable.runs SET status = 'cancelled', epoch = epoch + 1, lease_owner = NULL,
        lease_expires_at = NULL, wake_at = NULL, waiting_topic = NULL, pause_requested = false,
        updated_at = now(), finished_at = now()
    WHERE id IN (SELECT id FROM tree)
      AND status IN ('pending', 'running', 'sleeping', 'parked')
      -- asked to cancel gently, only runs no worker started, and parked ones, end at once
      AND (NOT $3 OR status = 'parked' OR (status = 'pending' AND epoch = 0))
    RETURNING id, workspace_id, parent_run_id
), told AS (
    INSERT INTO durable.messages (workspace_id, run_id, topic, payload, idempotency_key)
    SELECT workspace_id, parent_run_id, 'child:' || id::text, '{\"cancelled\": true}'::jsonb,
           'child:' || id::text
    FROM cancelled WHERE parent_run_id IS NOT NULL
    ON CONFLICT (run_id, idempotency_key) DO NOTHING
), woke_parent AS (
    UPDATE durable.runs AS p SET
        wake_at = CASE WHEN p.status = 'sleeping'
                            AND 'child:' || c.id::text = ANY(string_to_array(p.waiting_topic, E'\\n'))
                       THEN now() ELSE p.wake_at END
    FROM cancelled c
    WHERE p.id = c.parent_run_id AND p.id NOT IN (SELECT id FROM tree)
)
SELECT 'cancelled' AS status,
       (SELECT count(*) FROM (SELECT pg_notify('durable', 'done:' || id::text)) n)
FROM cancelled WHERE id = $2
UNION ALL
SELECT status, 0 FROM durable.runs
WHERE workspace_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM cancelled WHERE id = $2)";

/// Asks a run and its descendants still running to cancel; sleeping ones are due at once.
pub const REQUEST_CANCEL: &str = "
WITH RECURSIVE tree AS (
    SELECT id FROM durable.runs WHERE workspace_id = $1 AND id = $2
    UNION ALL
    SELECT c.id FROM durable.runs c JOIN tree ON c.parent_run_id = tree.id
), asked AS (
    UPDATE durable.runs SET
        cancel_requested = coalesce(cancel_requested, $3),
        wake_at = CASE WHEN status = 'sleeping' THEN now() ELSE wake_at END,
        updated_at = now()
    WHERE id IN (SELECT id FROM tree) AND status IN ('pending', 'running', 'sleeping')
    RETURNING workflow_name
)
SELECT count(pg_notify('durable', 'ready:' || workflow_name)) FROM asked";

/// Parks a run that is pending or sleeping; asks a running one to park after its current
/// step. Returns the status after the call.
pub const PAUSE: &str = "
WITH paused AS (
    UPDATE durable.runs SET
        status = CASE WHEN status = 'running' THEN status ELSE 'parked' END,
        error = CASE WHEN status = 'running' THEN error ELSE 'paused by an operator' END,
        wake_at = CASE WHEN status = 'running' THEN wake_at END,
        waiting_topic = CASE WHEN status = 'running' THEN waiting_topic END,
        pause_requested = (status = 'running'),
        updated_at = now()
    WHERE workspace_id = $1 AND id = $2 AND status IN ('pending', 'running', 'sleeping')
    RETURNING status
)
SELECT status FROM paused
UNION ALL
SELECT status FROM durable.runs
WHERE workspace_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM paused)";

/// Makes a parked run pending again (its claim count reset), or withdraws a pause that a
/// running run has not reached yet. Returns the status after the call.
pub const RESUME: &str = "
WITH resumed AS (
    UPDATE durable.runs SET
        status = CASE WHEN status = 'parked' THEN 'pending' ELSE status END,
        error = CASE WHEN status = 'parked' THEN NULL ELSE error END,
        claims = CASE WHEN status = 'parked' THEN 0 ELSE claims END,
        pause_requested = false,
        updated_at = now()
    WHERE workspace_id = $1 AND id = $2 AND (status = 'parked' OR pause_requested)
    RETURNING status, workflow_name
)
SELECT status, (SELECT count(*) FROM (SELECT pg_notify('durable', 'ready:' || workflow_name)) n)
FROM resumed
UNION ALL
SELECT status, 0 FROM durable.runs
WHERE workspace_id = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM resumed)";

/// Delivers a message to a run that has not finished; a run sleeping on its topic becomes
/// due at once. Returns the run's status, and whether the message is new.
pub const SEND_MESSAGE: &str = "
WITH target AS (
    SELECT id, workspace_id, status FROM durable.runs WHERE workspace_id = $1 AND id = $2
), inserted AS (
    INSERT INTO durable.messages (workspace_id, run_id, topic, payload, idempotency_key)
    SELECT workspace_id, id, $3, $4, $5 FROM target
    WHERE status NOT IN ('completed', 'failed', 'cancelled')
    ON CONFLICT (run_id, idempotency_key) DO NOTHING
    RETURNING id
), woken AS (
    -- Locks the run whatever its state and tests the state in SET, so a run deciding to wait
    -- right now is waited for and then seen sleeping (see WAIT_RECHECK).
    UPDATE durable.runs AS r SET
        wake_at = CASE WHEN r.status = 'sleeping'
                            AND $3 = ANY(string_to_array(r.waiting_topic, E'\\n'))
                       THEN now() ELSE r.wake_at END
    FROM target
    WHERE r.id = target.id AND EXISTS (SELECT 1 FROM inserted)
    RETURNING r.workflow_name,
              r.status = 'sleeping' AND $3 = ANY(string_to_array(r.waiting_topic, E'\\n')) AS woke
)
SELECT target.status,
       (SELECT count(*) FROM inserted) AS inserted,
       (SELECT count(pg_notify('durable', 'ready:' || workflow_name)) FROM woken WHERE woke)
           AS woken
FROM target";

/// The oldest message on any of the topics that no step has taken.
pub const NEXT_MESSAGE: &str = "
SELECT id, topic, payload FROM durable.messages
WHERE run_id = $1 AND topic = ANY($2) AND consumed_seq IS NULL
ORDER BY id LIMIT 1";

/// A run's latest value for an event key.
pub const GET_EVENT: &str = "
SELECT value FROM durable.events WHERE workspace_id = $1 AND run_id = $2 AND key = $3";

/// Creates a fork with the origin's steps before `$3` copied, unless one of them started a
/// child. Returns whether the origin exists, whether a child start blocked the fork, and the
/// fork's workflow when it was created.
pub const FORK: &str = "
WITH origin AS (
    SELECT * FROM durable.runs WHERE workspace_id = $1 AND id = $2
), blocked AS (
    SELECT 1 FROM durable.steps WHERE run_id = $2 AND seq < $3 AND kind = 'start_child' LIMIT 1
), forked AS (
    INSERT INTO durable.runs
        (workspace_id, id, workflow_id, workflow_name, workflow_version, input, status,
         max_claims, forked_from, forked_at_seq)
    SELECT workspace_id, $4, $5, workflow_name, workflow_version, coalesce($6, input), 'pending',
           max_claims, id, $3
    FROM origin WHERE NOT EXISTS (SELECT 1 FROM blocked)
    RETURNING id, workflow_name
), copied AS (
    INSERT INTO durable.steps
        (workspace_id, run_id, seq, name, kind, status, output, error, attempts, wake_at,
         first_attempt_at)
    SELECT s.workspace_id, forked.id, s.seq, s.name, s.kind, s.status, s.output, s.error,
           s.attempts, s.wake_at, s.first_attempt_at
    FROM durable.steps s, forked
    WHERE s.run_id = $2 AND s.seq < $3 AND s.status IN ('completed', 'failed')
)
SELECT (SELECT count(*) FROM origin) AS found,
       (SELECT count(*) FROM blocked) AS blocked,
       (SELECT count(pg_notify('durable', 'ready:' || workflow_name)) FROM forked) AS created";

/// Run after a checkpoint that starts a wait, in the same transaction but with a fresh
/// snapshot: a message committed while the checkpoint ran (invisible to it) makes the run due
/// now. A message still uncommitted is the sender's to deliver: its wake-up waits for this
/// transaction's row lock and then sees the run sleeping.
pub const WAIT_RECHECK: &str = "
UPDATE durable.runs SET wake_at = now()
WHERE id = $1 AND status = 'sleeping' AND waiting_topic = $2
  AND EXISTS (SELECT 1 FROM durable.messages m
              WHERE m.run_id = $1 AND m.consumed_seq IS NULL
                AND m.topic = ANY(string_to_array($2, E'\\n')))";
