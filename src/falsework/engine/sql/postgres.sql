-- Named queries of the Postgres store. Each block starts with "-- name: NAME".
-- Batches arrive as one JSON array parameter (:rows / :ids), so every batch is
-- one statement whatever its size, and the statement text never changes (the
-- driver's prepared-statement cache keeps working).

-- name: task_insert
-- Bulk insert and its NOTIFY in one statement (one round trip).
WITH ins AS (
    INSERT INTO tasks (id, status, spec, secrets, created_by, priority, run_after, recovery,
                       step_state, checkpoints, idempotency_key, created_at)
    SELECT a.e->>'id', 'open', a.e->'spec', a.e->>'secrets', a.e->>'created_by',
           CAST(a.e->>'priority' AS integer), CAST(a.e->>'run_after' AS timestamptz),
           a.e->>'recovery', '{}', '{}', a.e->>'idempotency_key', now()
    FROM json_array_elements(CAST(CAST(:rows AS text) AS json)) WITH ORDINALITY AS a(e, ord)
    ORDER BY a.ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), note AS (
    SELECT pg_notify('falsework_tasks', '') AS n FROM ins LIMIT 1
)
SELECT id, (SELECT count(*) FROM note) AS notes FROM ins;

-- name: task_create
-- One task in one statement (one round trip): insert, NOTIFY, return the row.
WITH ins AS (
    INSERT INTO tasks (id, status, spec, secrets, created_by, priority, run_after, recovery,
                       step_state, checkpoints, idempotency_key, created_at)
    SELECT a.e->>'id', 'open', a.e->'spec', a.e->>'secrets', a.e->>'created_by',
           CAST(a.e->>'priority' AS integer), CAST(a.e->>'run_after' AS timestamptz),
           a.e->>'recovery', '{}', '{}', a.e->>'idempotency_key', now()
    FROM json_array_elements(CAST(CAST(:rows AS text) AS json)) AS a(e)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, status, spec, created_by, created_at, heartbeat_at, attempt, priority,
              run_after, recovery, claimed_by, cancel_requested, finished_at, step_state,
              checkpoints
), note AS (
    SELECT pg_notify('falsework_tasks', '') AS n FROM ins LIMIT 1
)
SELECT ins.*, (SELECT count(*) FROM note) AS notes FROM ins;

-- name: task_notify
SELECT pg_notify(:channel, :payload);

-- name: task_get
SELECT id, status, spec, created_by, created_at, heartbeat_at, attempt, priority, run_after,
       recovery, claimed_by, cancel_requested, finished_at, step_state, checkpoints
FROM tasks WHERE id = :id;

-- name: task_get_by_key
SELECT id FROM tasks WHERE idempotency_key = :key;

-- name: task_list
SELECT id, status, spec, created_by, created_at, heartbeat_at, attempt, priority, run_after,
       recovery, claimed_by, cancel_requested, finished_at, step_state, checkpoints
FROM tasks
WHERE (CAST(:created_by AS text) IS NULL OR created_by = CAST(:created_by AS text))
  AND (CAST(:statuses AS text) IS NULL
       OR status IN (SELECT jsonb_array_elements_text(CAST(CAST(:statuses AS text) AS jsonb))))
ORDER BY __ORDER__
LIMIT CAST(:limit AS bigint) OFFSET :offset;

-- name: task_count
SELECT count(*) FROM tasks
WHERE (CAST(:created_by AS text) IS NULL OR created_by = CAST(:created_by AS text))
  AND (CAST(:statuses AS text) IS NULL
       OR status IN (SELECT jsonb_array_elements_text(CAST(CAST(:statuses AS text) AS jsonb))));

-- name: task_count_active
SELECT count(*) FROM tasks
WHERE created_by = :created_by AND status IN ('open', 'processing');

-- name: task_count_claimable
SELECT count(*) FROM tasks
WHERE status = 'open' AND (run_after IS NULL OR run_after <= now());

-- name: task_lock
SELECT status FROM tasks WHERE id = :id FOR UPDATE;

-- name: task_cancel_open
UPDATE tasks SET status = 'cancelled', finished_at = now(), cancel_requested = false
WHERE id = :id AND status = 'open';

-- name: task_request_cancel
UPDATE tasks SET cancel_requested = true WHERE id = :id AND status = 'processing';

-- name: task_retry
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    finished_at = NULL, cancel_requested = false,
    step_state = (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                  FROM jsonb_each(tasks.step_state) WHERE value->>'status' = 'completed')
WHERE id = :id;

-- name: claim_lock
-- Serialises fair claims so the per-user cap is exact across nodes.
SELECT pg_advisory_xact_lock(727340001);

-- name: task_claim
WITH picked AS (
    SELECT id FROM tasks
    WHERE status = 'open' AND (run_after IS NULL OR run_after <= now())
    ORDER BY priority DESC, seq
    LIMIT :n
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks
SET status = 'processing', claimed_by = :worker, claim_token = CAST(gen_random_uuid() AS text),
    attempt = tasks.attempt + 1, heartbeat_at = now()
FROM picked WHERE tasks.id = picked.id
RETURNING tasks.id, tasks.spec, tasks.secrets, tasks.created_by, tasks.attempt,
          tasks.claim_token, tasks.step_state, tasks.checkpoints, tasks.priority,
          tasks.created_at, tasks.recovery, tasks.seq;

-- name: task_claim_fair
WITH running AS (
    SELECT created_by, count(*) AS n FROM tasks
    WHERE status = 'processing' GROUP BY created_by
), ranked AS (
    SELECT t.id, t.priority, t.seq, coalesce(r.n, 0) AS n,
           row_number() OVER (PARTITION BY t.created_by ORDER BY t.priority DESC, t.seq) AS rn
    FROM tasks t LEFT JOIN running r ON r.created_by IS NOT DISTINCT FROM t.created_by
    WHERE t.status = 'open' AND (t.run_after IS NULL OR t.run_after <= now())
), picked AS (
    SELECT id FROM tasks
    WHERE id IN (SELECT id FROM ranked WHERE rn + n <= :cap
                 ORDER BY priority DESC, seq LIMIT :n)
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks
SET status = 'processing', claimed_by = :worker, claim_token = CAST(gen_random_uuid() AS text),
    attempt = tasks.attempt + 1, heartbeat_at = now()
FROM picked WHERE tasks.id = picked.id
RETURNING tasks.id, tasks.spec, tasks.secrets, tasks.created_by, tasks.attempt,
          tasks.claim_token, tasks.step_state, tasks.checkpoints, tasks.priority,
          tasks.created_at, tasks.recovery, tasks.seq;

-- name: task_heartbeat
-- Each id drives one primary-key lookup (LATERAL), so the statement stays linear
-- in the number of running tasks whatever the planner's statistics say; rows
-- are locked in id order (the ids come sorted), like every multi-row writer, so
-- a heartbeat and a flush never deadlock.
UPDATE tasks SET heartbeat_at = now()
FROM (SELECT t.id
      FROM json_array_elements_text(CAST(CAST(:ids AS text) AS json)) AS x(id)
      CROSS JOIN LATERAL (SELECT id FROM tasks
                          WHERE tasks.id = x.id AND claimed_by = :worker
                            AND status = 'processing'
                          FOR UPDATE) AS t) AS mine
WHERE tasks.id = mine.id
RETURNING tasks.id, tasks.claim_token, tasks.cancel_requested;

-- name: task_lock_owned
SELECT t.id, t.claim_token, t.status
FROM json_array_elements_text(CAST(CAST(:ids AS text) AS json)) AS x(id)
CROSS JOIN LATERAL (SELECT id, claim_token, status FROM tasks
                    WHERE tasks.id = x.id FOR UPDATE) AS t;

-- name: events_insert
INSERT INTO task_events (task_id, type, body, created_at)
SELECT a.e->>'task_id', a.e->>'type', a.e->'body', now()
FROM json_array_elements(CAST(CAST(:rows AS text) AS json)) WITH ORDINALITY AS a(e, ord)
ORDER BY a.ord;

-- name: task_patch_state
UPDATE tasks
SET step_state = tasks.step_state || coalesce(a.e->'steps', '{}'),
    checkpoints = tasks.checkpoints || coalesce(a.e->'checkpoints', '{}')
FROM jsonb_array_elements(CAST(CAST(:rows AS text) AS jsonb)) AS a(e)
WHERE tasks.id = a.e->>'id';

-- name: task_finish
UPDATE tasks
SET status = a.e->>'status', finished_at = now(), heartbeat_at = now(), claim_token = NULL,
    cancel_requested = false,
    secrets = CASE WHEN CAST(a.e->>'keep_secrets' AS boolean) THEN tasks.secrets END
FROM jsonb_array_elements(CAST(CAST(:rows AS text) AS jsonb)) AS a(e)
WHERE tasks.id = a.e->>'id';

-- name: task_release
UPDATE tasks SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL
WHERE id IN (SELECT jsonb_array_elements_text(CAST(CAST(:ids AS text) AS jsonb)));

-- name: task_select_stale
SELECT id, recovery, cancel_requested FROM tasks
WHERE status = 'processing' AND heartbeat_at < now() - make_interval(secs => :stale)
ORDER BY id LIMIT 500
FOR UPDATE SKIP LOCKED;

-- name: task_reopen
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    cancel_requested = false,
    step_state = CASE WHEN recovery = 'startOver' THEN '{}' ELSE
                 (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                  FROM jsonb_each(tasks.step_state) WHERE value->>'status' = 'completed') END
WHERE id IN (SELECT jsonb_array_elements_text(CAST(CAST(:ids AS text) AS jsonb)));

-- name: task_erase_secrets
UPDATE tasks SET secrets = NULL
WHERE secrets IS NOT NULL AND status IN ('failed', 'cancelled')
  AND finished_at < now() - make_interval(secs => :retention);

-- name: task_secrets
SELECT secrets FROM tasks WHERE id = :id;

-- name: events_list
SELECT e.id, e.task_id, e.type, e.body, e.created_at, t.recovery
FROM task_events e JOIN tasks t ON t.id = e.task_id
WHERE e.task_id = :task_id AND e.id > :after
ORDER BY e.id LIMIT :limit;

-- name: task_status
SELECT status FROM tasks WHERE id = :id;

-- name: worker_insert
INSERT INTO workers (id, host, pid, concurrency_limit, running, started_at, heartbeat_at)
VALUES (:id, :host, :pid, :limit, 0, now(), now())
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: worker_heartbeat
UPDATE workers
SET heartbeat_at = now(), running = :running,
    concurrency_limit = coalesce(CAST(:new_limit AS integer), concurrency_limit)
WHERE id = :id
RETURNING concurrency_limit;

-- name: worker_list
SELECT id, host, pid, concurrency_limit, running, started_at, heartbeat_at,
       EXTRACT(EPOCH FROM now() - heartbeat_at) AS age
FROM workers ORDER BY started_at, id;

-- name: worker_set_limit
UPDATE workers SET concurrency_limit = :limit WHERE id = :id;

-- name: worker_delete
DELETE FROM workers WHERE id = :id;

-- name: worker_prune
DELETE FROM workers WHERE heartbeat_at < now() - make_interval(secs => :age);

-- name: flush_write
-- The writes of a batch whose tasks are already locked and checked (task_lock_owned,
-- same transaction): events in order, step state, checkpoints, final status, and
-- the NOTIFY for subscribers, in one statement.
WITH ins AS (
    INSERT INTO task_events (task_id, type, body, created_at)
    SELECT a.e->>'task_id', a.e->>'type', a.e->'body', now()
    FROM json_array_elements(CAST(CAST(:events AS text) AS json)) WITH ORDINALITY AS a(e, ord)
    ORDER BY a.ord
    RETURNING task_id
), upd AS (
    UPDATE tasks
    SET step_state = tasks.step_state || coalesce(CAST(u.e->'steps' AS jsonb), '{}'),
        checkpoints = tasks.checkpoints || coalesce(CAST(u.e->'checkpoints' AS jsonb), '{}'),
        status = coalesce(u.e->>'status', tasks.status),
        finished_at = CASE WHEN u.e->>'status' IN ('completed', 'failed', 'cancelled')
                           THEN now() ELSE tasks.finished_at END,
        heartbeat_at = CASE WHEN u.e->>'status' IS NULL THEN tasks.heartbeat_at
                            WHEN u.e->>'status' = 'open' THEN NULL ELSE now() END,
        claim_token = CASE WHEN u.e->>'status' IS NULL THEN tasks.claim_token END,
        claimed_by = CASE WHEN u.e->>'status' = 'open' THEN NULL ELSE tasks.claimed_by END,
        -- a release keeps a pending cancel request: the next claimer honours it
        cancel_requested = CASE WHEN u.e->>'status' IS NULL OR u.e->>'status' = 'open'
                                THEN tasks.cancel_requested ELSE false END,
        secrets = CASE WHEN u.e->>'status' = 'completed' THEN NULL ELSE tasks.secrets END
    FROM json_array_elements(CAST(CAST(:updates AS text) AS json)) AS u(e)
    WHERE tasks.id = u.e->>'id'
    RETURNING tasks.id, tasks.status
), note_events AS (
    SELECT pg_notify('falsework_events', string_agg(task_id, ',')) AS n
    FROM (SELECT task_id, row_number() OVER () / 150 AS chunk
          FROM (SELECT DISTINCT task_id FROM ins) AS d) AS c
    GROUP BY chunk
), note_tasks AS (
    SELECT pg_notify('falsework_tasks', '') AS n FROM upd WHERE status = 'open' LIMIT 1
)
SELECT (SELECT count(*) FROM note_events) + (SELECT count(*) FROM note_tasks);

-- name: events_many
-- The events after a cursor for many (task, cursor) pairs in one statement: the
-- live streams a NOTIFY batch wakes together read together. ``ord`` is the
-- pair's 1-based position in :wanted, a JSON list of [task_id, after].
SELECT c.ord, e.id, e.task_id, e.type, e.body, e.created_at, t.recovery
FROM json_array_elements(CAST(CAST(:wanted AS text) AS json)) WITH ORDINALITY AS c(w, ord)
CROSS JOIN LATERAL (
    SELECT id, task_id, type, body, created_at FROM task_events
    WHERE task_id = c.w->>0 AND id > CAST(c.w->>1 AS bigint)
    ORDER BY id LIMIT :limit
) AS e
JOIN tasks t ON t.id = e.task_id
ORDER BY c.ord, e.id;
