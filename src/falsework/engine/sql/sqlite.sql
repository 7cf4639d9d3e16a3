-- Named queries of the SQLite store. Each block starts with "-- name: NAME".
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' so they compare as strings.
-- Every write runs inside BEGIN IMMEDIATE (one writer at a time), so rows need
-- no locking clauses. Batches arrive as one JSON array parameter.

-- name: task_insert
INSERT INTO tasks (id, seq, status, spec, secrets, created_by, priority, run_after, recovery,
                   step_state, checkpoints, idempotency_key, created_at)
SELECT json_extract(value, '$.id'),
       (SELECT coalesce(max(seq), 0) FROM tasks) + key + 1,
       'open', json_extract(value, '$.spec'), json_extract(value, '$.secrets'),
       json_extract(value, '$.created_by'), json_extract(value, '$.priority'),
       json_extract(value, '$.run_after'), json_extract(value, '$.recovery'), '{}', '{}',
       json_extract(value, '$.idempotency_key'), strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM json_each(:rows)
WHERE true
ORDER BY key
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id;

-- name: task_create
INSERT INTO tasks (id, seq, status, spec, secrets, created_by, priority, run_after, recovery,
                   step_state, checkpoints, idempotency_key, created_at)
SELECT json_extract(value, '$.id'),
       (SELECT coalesce(max(seq), 0) FROM tasks) + 1,
       'open', json_extract(value, '$.spec'), json_extract(value, '$.secrets'),
       json_extract(value, '$.created_by'), json_extract(value, '$.priority'),
       json_extract(value, '$.run_after'), json_extract(value, '$.recovery'), '{}', '{}',
       json_extract(value, '$.idempotency_key'), strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM json_each(:rows)
WHERE true
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, status, spec, created_by, created_at, heartbeat_at, attempt, priority,
          run_after, recovery, claimed_by, cancel_requested, finished_at, step_state,
          checkpoints;

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
WHERE (:created_by IS NULL OR created_by = :created_by)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
ORDER BY __ORDER__
LIMIT coalesce(:limit, -1) OFFSET :offset;

-- name: task_count
SELECT count(*) FROM tasks
WHERE (:created_by IS NULL OR created_by = :created_by)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)));

-- name: task_count_active
SELECT count(*) FROM tasks
WHERE created_by = :created_by AND status IN ('open', 'processing');

-- name: task_count_claimable
SELECT count(*) FROM tasks
WHERE status = 'open'
  AND (run_after IS NULL OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'));

-- name: task_lock
SELECT status FROM tasks WHERE id = :id;

-- name: task_cancel_open
UPDATE tasks SET status = 'cancelled', finished_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    cancel_requested = 0
WHERE id = :id AND status = 'open';

-- name: task_request_cancel
UPDATE tasks SET cancel_requested = 1 WHERE id = :id AND status = 'processing';

-- name: task_retry
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    finished_at = NULL, cancel_requested = 0,
    step_state = (SELECT coalesce(json_group_object(key, json(value)), '{}')
                  FROM json_each(tasks.step_state)
                  WHERE json_extract(value, '$.status') = 'completed')
WHERE id = :id;

-- name: task_claim
UPDATE tasks
SET status = 'processing', claimed_by = :worker, claim_token = lower(hex(randomblob(16))),
    attempt = attempt + 1, heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE id IN (
    SELECT id FROM tasks
    WHERE status = 'open'
      AND (run_after IS NULL OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'))
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING id, spec, secrets, created_by, attempt, claim_token, step_state, checkpoints,
          priority, created_at, recovery, seq;

-- name: task_claim_fair
UPDATE tasks
SET status = 'processing', claimed_by = :worker, claim_token = lower(hex(randomblob(16))),
    attempt = attempt + 1, heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE id IN (
    SELECT id FROM (
        SELECT t.id, t.priority, t.seq,
               (SELECT count(*) FROM tasks r
                WHERE r.status = 'processing' AND r.created_by IS t.created_by) AS n,
               row_number() OVER (PARTITION BY t.created_by
                                  ORDER BY t.priority DESC, t.seq) AS rn
        FROM tasks t
        WHERE t.status = 'open'
          AND (t.run_after IS NULL OR t.run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'))
    )
    WHERE rn + n <= :cap
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING id, spec, secrets, created_by, attempt, claim_token, step_state, checkpoints,
          priority, created_at, recovery, seq;

-- name: task_heartbeat
UPDATE tasks SET heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE id IN (SELECT value FROM json_each(:ids))
  AND claimed_by = :worker AND status = 'processing'
RETURNING id, claim_token, cancel_requested;

-- name: task_lock_owned
SELECT id, claim_token, status FROM tasks
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: task_read_state
SELECT id, step_state, checkpoints FROM tasks
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: task_write_state
UPDATE tasks SET step_state = json_extract(x.value, '$.steps'),
                 checkpoints = json_extract(x.value, '$.checkpoints')
FROM json_each(:rows) AS x
WHERE tasks.id = json_extract(x.value, '$.id');

-- name: events_insert
INSERT INTO task_events (task_id, type, body, created_at)
SELECT json_extract(value, '$.task_id'), json_extract(value, '$.type'),
       json_extract(value, '$.body'), strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM json_each(:rows)
ORDER BY key;

-- name: task_finish
UPDATE tasks
SET status = json_extract(x.value, '$.status'),
    finished_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    claim_token = NULL, cancel_requested = 0,
    secrets = CASE WHEN json_extract(x.value, '$.keep_secrets') THEN tasks.secrets END
FROM json_each(:rows) AS x
WHERE tasks.id = json_extract(x.value, '$.id');

-- name: task_release
UPDATE tasks SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: task_select_stale
SELECT id, recovery, cancel_requested FROM tasks
WHERE status = 'processing'
  AND heartbeat_at < strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || :stale || ' seconds')
ORDER BY id LIMIT 500;

-- name: task_reopen
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    cancel_requested = 0,
    step_state = CASE WHEN recovery = 'startOver' THEN '{}' ELSE
                 (SELECT coalesce(json_group_object(key, json(value)), '{}')
                  FROM json_each(tasks.step_state)
                  WHERE json_extract(value, '$.status') = 'completed') END
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: task_erase_secrets
UPDATE tasks SET secrets = NULL
WHERE secrets IS NOT NULL AND status IN ('failed', 'cancelled')
  AND finished_at < strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || :retention || ' seconds');

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
VALUES (:id, :host, :pid, :limit, 0, strftime('%Y-%m-%d %H:%M:%f', 'now'),
        strftime('%Y-%m-%d %H:%M:%f', 'now'))
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: worker_heartbeat
UPDATE workers
SET heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now'), running = :running,
    concurrency_limit = coalesce(:new_limit, concurrency_limit)
WHERE id = :id
RETURNING concurrency_limit;

-- name: worker_list
SELECT id, host, pid, concurrency_limit, running, started_at, heartbeat_at,
       (julianday('now') - julianday(heartbeat_at)) * 86400.0 AS age
FROM workers ORDER BY started_at, id;

-- name: worker_set_limit
UPDATE workers SET concurrency_limit = :limit WHERE id = :id;

-- name: worker_delete
DELETE FROM workers WHERE id = :id;

-- name: worker_prune
DELETE FROM workers
WHERE heartbeat_at < strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || :age || ' seconds');
