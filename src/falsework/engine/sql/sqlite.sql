-- Named queries of the SQLite store. Each block starts with "-- name: NAME".
-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' so they compare as strings.
-- Every write runs inside BEGIN IMMEDIATE (one writer at a time, across
-- processes too), so rows need no locking clauses and a count read inside a
-- write is exact. Lists arrive as one JSON array parameter made by codec.dumps,
-- rows of a list as arrays (value ->> 0, value ->> 1, ...).

-- name: ping
SELECT 1;

-- name: schema_revision
SELECT version_num FROM alembic_version;

-- name: tasks_insert
-- :rows = [[id, spec as JSON text, secrets, created_by, priority, run_after, recovery, key], ...]
-- With a :cap (NULL: none), a creator's rows beyond :cap open or running tasks
-- are left out, in their order (rows whose idempotency key is taken use no room).
INSERT INTO tasks (id, seq, status, spec, secrets, created_by, priority, run_after, recovery,
                   step_state, checkpoints, idempotency_key, created_at)
SELECT a.id, (SELECT coalesce(max(seq), 0) FROM tasks) + a.ord + 1, 'open', a.spec, a.secrets,
       a.created_by, a.priority, a.run_after, a.recovery, '{}', '{}', a.idempotency_key,
       strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM (
    SELECT f.* FROM (
        SELECT r.*, row_number() OVER (PARTITION BY r.created_by ORDER BY r.ord) AS rank
        FROM (SELECT key AS ord, value ->> 0 AS id, json(value ->> 1) AS spec, value ->> 2 AS secrets,
                     value ->> 3 AS created_by, value ->> 4 AS priority,
                     value ->> 5 AS run_after, value ->> 6 AS recovery,
                     value ->> 7 AS idempotency_key
              FROM json_each(:rows)) AS r
        WHERE :cap IS NULL OR r.idempotency_key IS NULL
           OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.idempotency_key = r.idempotency_key)
    ) AS f
    WHERE :cap IS NULL OR f.created_by IS NULL
       OR f.rank + (SELECT count(*) FROM tasks t
                    WHERE t.created_by = f.created_by AND t.status IN ('open', 'processing'))
          <= :cap
) AS a
WHERE true
ORDER BY a.ord
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id;

-- name: task_ids_by_keys
SELECT idempotency_key, id FROM tasks
WHERE idempotency_key IN (SELECT value FROM json_each(:keys));

-- name: task_get
SELECT id, status, spec, created_by, created_at, heartbeat_at, attempt, priority, run_after,
       recovery, claimed_by, cancel_requested, finished_at, step_state
FROM tasks WHERE id = :id;

-- name: task_status
SELECT status FROM tasks WHERE id = :id;

-- name: tasks_status
-- The statuses of many tasks at once (the live streams that read their final
-- events together check together that their tasks are over).
SELECT id, status FROM tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: task_secrets
SELECT secrets FROM tasks WHERE id = :id;

-- name: task_list
-- Read as task_list_<order>: __ORDER__ is one clause of models.ListOrder, a
-- closed set, put in when the file is loaded (engine/queries.py).
SELECT id, status, spec, created_by, created_at, heartbeat_at, attempt, priority, run_after,
       recovery, claimed_by, cancel_requested, finished_at, step_state
FROM tasks
WHERE (:created_by IS NULL OR created_by = :created_by)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)))
ORDER BY __ORDER__, seq
LIMIT coalesce(:limit, -1) OFFSET :offset;

-- name: task_count
SELECT count(*) FROM tasks
WHERE (:created_by IS NULL OR created_by = :created_by)
  AND (:statuses IS NULL OR status IN (SELECT value FROM json_each(:statuses)));

-- name: tasks_count_claimable
SELECT count(*) FROM tasks
WHERE status = 'open'
  AND (run_after IS NULL OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'));

-- name: task_lock
SELECT status, created_by FROM tasks WHERE id = :id;

-- name: task_cancel_open
-- :announce false (no webhook configured): the finish is marked announced now
-- ('now' is the same instant throughout one statement)
UPDATE tasks SET status = 'cancelled', finished_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    cancel_requested = 0,
    hooked_at = CASE WHEN :announce THEN tasks.hooked_at
                     ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END
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
WHERE id = :id
RETURNING id;

-- name: task_retry_capped
-- task_retry unless its creator already has :cap open or running tasks.
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    finished_at = NULL, cancel_requested = 0,
    step_state = (SELECT coalesce(json_group_object(key, json(value)), '{}')
                  FROM json_each(tasks.step_state)
                  WHERE json_extract(value, '$.status') = 'completed')
WHERE id = :id
  AND (tasks.created_by IS NULL
       OR (SELECT count(*) FROM tasks t
           WHERE t.created_by = tasks.created_by AND t.status IN ('open', 'processing'))
          < :cap)
RETURNING id;

-- name: task_claim
UPDATE tasks
SET status = 'processing', claimed_by = :worker, claim_token = lower(hex(randomblob(16))),
    attempt = attempt + 1, heartbeat_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE id IN (
    SELECT id FROM tasks
    WHERE status = 'open'
      AND (run_after IS NULL OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'))
      AND NOT EXISTS (SELECT 1 FROM cluster_flags WHERE name = 'paused')
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
          AND NOT EXISTS (SELECT 1 FROM cluster_flags WHERE name = 'paused')
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

-- name: tasks_lock_owned
-- What the fencing rule looks at (BEGIN IMMEDIATE already holds the write lock).
SELECT id, claim_token, status FROM tasks
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: flush_insert
-- The flush's id: a flush retried after an ambiguous commit finds it (no row
-- returned) and writes nothing.
INSERT INTO flushes (id, created_at) VALUES (:flush, strftime('%Y-%m-%d %H:%M:%f', 'now'))
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: flush_done
SELECT refused FROM flushes WHERE id = :flush;

-- name: flush_refused
UPDATE flushes SET refused = :refused WHERE id = :flush;

-- name: flushes_prune
DELETE FROM flushes
WHERE created_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:older_than))
RETURNING id;

-- name: tasks_read_state
SELECT id, step_state, checkpoints FROM tasks
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: tasks_write_state
-- SQLite has no top-level "||" merge for JSON (json_patch is a deep merge that
-- drops nulls), and writes are serialised anyway: the store reads, merges, and
-- writes here. :rows = [[id, step_state, checkpoints], ...]
UPDATE tasks SET step_state = x.value -> 1, checkpoints = x.value -> 2
FROM json_each(:rows) AS x
WHERE tasks.id = x.value ->> 0;

-- name: events_insert
-- :rows = [[task_id, type, body as JSON text], ...]
INSERT INTO task_events (task_id, type, body, created_at)
SELECT value ->> 0, value ->> 1, json(value ->> 2), strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM json_each(:rows)
ORDER BY key;

-- name: tasks_end
-- Final statuses (and releases: status 'open'). :rows = [[id, status, keep_secrets], ...]
UPDATE tasks
SET status = x.value ->> 1,
    finished_at = CASE WHEN x.value ->> 1 = 'open' THEN NULL
                       ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END,
    hooked_at = CASE WHEN x.value ->> 1 = 'open' OR :announce THEN tasks.hooked_at
                     ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END,
    heartbeat_at = CASE WHEN x.value ->> 1 = 'open' THEN NULL
                        ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END,
    claim_token = NULL,
    claimed_by = CASE WHEN x.value ->> 1 = 'open' THEN NULL ELSE tasks.claimed_by END,
    cancel_requested = CASE WHEN x.value ->> 1 = 'open' THEN tasks.cancel_requested ELSE 0 END,
    secrets = CASE WHEN x.value ->> 2 THEN tasks.secrets END
FROM json_each(:rows) AS x
WHERE tasks.id = x.value ->> 0;

-- name: tasks_select_stale
-- Processing tasks whose heartbeat is older than :older_than seconds (negative:
-- a horizon in the future, for tests).
SELECT id, recovery, cancel_requested FROM tasks
WHERE status = 'processing'
  AND heartbeat_at < strftime('%Y-%m-%d %H:%M:%f', 'now',
                              printf('%+.3f seconds', -:older_than))
ORDER BY id LIMIT 500;

-- name: tasks_reopen
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    cancel_requested = 0,
    step_state = CASE WHEN recovery = 'startOver' THEN '{}' ELSE
                 (SELECT coalesce(json_group_object(key, json(value)), '{}')
                  FROM json_each(tasks.step_state)
                  WHERE json_extract(value, '$.status') = 'completed') END
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: tasks_erase_secrets
UPDATE tasks SET secrets = NULL
WHERE secrets IS NOT NULL AND status IN ('failed', 'cancelled')
  AND finished_at < strftime('%Y-%m-%d %H:%M:%f', 'now',
                             printf('%+.3f seconds', -:older_than))
RETURNING id;

-- name: tasks_select_expired
-- The oldest tasks of :status finished more than :older_than seconds ago and not
-- kept (ix_tasks_expiry); the store deletes them and their events in the same
-- write transaction.
SELECT id FROM tasks
WHERE status = :status AND finished_at IS NOT NULL AND NOT keep
  AND finished_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:older_than))
ORDER BY finished_at
LIMIT :limit;

-- name: events_delete_of_tasks
DELETE FROM task_events WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: tasks_delete
DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: task_keep
UPDATE tasks SET keep = :keep WHERE id = :id RETURNING id;

-- name: space_free_pages
PRAGMA freelist_count;

-- name: space_auto_vacuum
PRAGMA auto_vacuum;

-- name: space_vacuum_step
-- 256 pages (1 MiB at the default page size) per write transaction, so claims
-- and flushes get their turns between steps.
PRAGMA incremental_vacuum(256);

-- name: events_after
SELECT e.id, e.task_id, e.type, e.body, e.created_at, t.recovery
FROM task_events e JOIN tasks t ON t.id = e.task_id
WHERE e.task_id = :task_id AND e.id > :after
ORDER BY e.id LIMIT :limit;

-- name: events_after_many
-- The events after a cursor for many (task, cursor) pairs in one statement.
-- :wanted = [[task_id, after], ...]; ``ord`` is the pair's 1-based position.
SELECT c.key + 1 AS ord, e.id, e.task_id, e.type, e.body, e.created_at, t.recovery
FROM json_each(:wanted) AS c
JOIN task_events e ON e.id IN (SELECT id FROM task_events
                               WHERE task_id = c.value ->> 0 AND id > c.value ->> 1
                               ORDER BY id LIMIT :limit)
JOIN tasks t ON t.id = e.task_id
ORDER BY c.key, e.id;

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
UPDATE workers SET concurrency_limit = :limit WHERE id = :id RETURNING id;

-- name: worker_delete
DELETE FROM workers WHERE id = :id;

-- name: workers_prune
DELETE FROM workers
WHERE heartbeat_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:older_than))
RETURNING id;

-- name: lease_take
-- A named turn: taken when free or expired, renewed by its holder.
INSERT INTO leases (name, holder, expires_at)
VALUES (:lease, :holder, strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', :ttl)))
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.expires_at <= strftime('%Y-%m-%d %H:%M:%f', 'now') OR leases.holder = excluded.holder
RETURNING name;

-- name: metrics_task_counts
SELECT status, count(*) AS n FROM tasks GROUP BY status;

-- name: metrics_oldest_open
-- Seconds since the oldest claimable open task became claimable (ix_tasks_claim).
SELECT coalesce((julianday('now') - julianday(min(max(created_at,
                                                     coalesce(run_after, created_at)))))
                * 86400.0, 0)
FROM tasks
WHERE status = 'open' AND (run_after IS NULL OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'));

-- name: metrics_workers
SELECT count(*) AS alive, coalesce(sum(concurrency_limit), 0) AS capacity FROM workers
WHERE heartbeat_at >= strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:alive_within));

-- name: metrics_last_event
SELECT coalesce(max(id), 0) FROM task_events;

-- name: metrics_scan_end
-- The last of up to :limit events after :after older than :lag seconds.
SELECT coalesce(max(id), :after) FROM (
    SELECT id FROM task_events
    WHERE id > :after AND created_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:lag))
    ORDER BY id LIMIT :limit
);

-- name: metrics_marks
-- As in postgres.sql: runs and steps that ended in (:after, :until], with their
-- starts and labels.
WITH ends AS (
    SELECT e.id, e.task_id, e.type, e.created_at, e.body ->> '$.stepId' AS step_id,
           CASE WHEN e.type = 'cancelled' THEN 'cancelled'
                WHEN e.type = 'completion' AND json_type(e.body, '$.error') IS NOT NULL
                    THEN 'failed'
                WHEN e.type = 'completion' THEN 'completed'
                ELSE e.body ->> '$.status' END AS status
    FROM task_events e
    WHERE e.id > :after AND e.id <= :until
      AND (e.type IN ('completion', 'cancelled')
           OR (e.type = 'log' AND e.body ->> '$.stepId' IS NOT NULL
               AND e.body ->> '$.status' IN ('completed', 'failed', 'cancelled', 'skipped')))
)
SELECT ends.id, ends.status, ends.created_at AS ended_at,
       CASE WHEN ends.type = 'log' THEN 'step' ELSE 'task' END AS kind,
       CASE WHEN ends.type <> 'log' THEN (
           SELECT min(s.created_at) FROM task_events s
           WHERE s.task_id = ends.task_id AND s.id <= ends.id
             AND s.id > coalesce((SELECT max(p.id) FROM task_events p
                                  WHERE p.task_id = ends.task_id AND p.id < ends.id
                                    AND p.type IN ('completion', 'cancelled')), 0))
       ELSE (
           SELECT s.created_at FROM task_events s
           WHERE s.task_id = ends.task_id AND s.id < ends.id AND s.type = 'log'
             AND s.body ->> '$.stepId' = ends.step_id
             AND s.body ->> '$.status' = 'processing'
             AND s.id > coalesce((SELECT max(p.id) FROM task_events p
                                  WHERE p.task_id = ends.task_id AND p.id < ends.id
                                    AND p.type = 'log' AND p.body ->> '$.stepId' = ends.step_id
                                    AND p.body ->> '$.status' IN ('completed', 'failed',
                                                                  'cancelled', 'skipped')), 0)
           ORDER BY s.id DESC LIMIT 1)
       END AS started_at,
       CASE WHEN ends.type <> 'log' THEN t.spec ->> '$.templateInfo.entityRef'
       ELSE (SELECT x.value ->> '$.action'
             FROM json_each(CASE WHEN json_type(t.spec, '$.steps') = 'array'
                                 THEN t.spec -> '$.steps' ELSE '[]' END) AS x
             WHERE coalesce(x.value ->> '$.id', 'step-' || (x.key + 1)) = ends.step_id
             LIMIT 1)
       END AS label
FROM ends JOIN tasks t ON t.id = ends.task_id
ORDER BY ends.id;

-- name: metrics_snapshot_get
SELECT last_event_id, body, (julianday('now') - julianday(computed_at)) * 86400.0 AS age
FROM cluster_metrics WHERE name = :snapshot;

-- name: metrics_snapshot_put
-- Compare and set on last_event_id (see postgres.sql).
INSERT INTO cluster_metrics (name, last_event_id, body, computed_at)
VALUES (:snapshot, :last_event_id, json(:body), strftime('%Y-%m-%d %H:%M:%f', 'now'))
ON CONFLICT (name) DO UPDATE
SET last_event_id = excluded.last_event_id, body = excluded.body,
    computed_at = excluded.computed_at
WHERE cluster_metrics.last_event_id = :expected
RETURNING name;

-- name: audit_insert
-- :rows = [[actor, action, target, detail as JSON text], ...]
INSERT INTO audit_events (at, actor, action, target, detail)
SELECT strftime('%Y-%m-%d %H:%M:%f', 'now'), value ->> 0, value ->> 1, value ->> 2,
       json(value ->> 3)
FROM json_each(:rows)
ORDER BY key;

-- name: scaffold_upsert
INSERT INTO scaffolds (repository, template_ref, version, record, task_id, created_by, updated_at)
VALUES (:repository, :template_ref, :version, json(:record), :task_id, :created_by,
        strftime('%Y-%m-%d %H:%M:%f', 'now'))
ON CONFLICT (repository) DO UPDATE SET
  template_ref = excluded.template_ref, version = excluded.version, record = excluded.record,
  task_id = excluded.task_id, created_by = excluded.created_by, updated_at = excluded.updated_at;

-- name: scaffold_list
SELECT repository, template_ref, version, record, task_id, created_by, updated_at
FROM scaffolds
WHERE (:template_ref IS NULL OR template_ref = :template_ref)
ORDER BY template_ref, repository
LIMIT :limit OFFSET :offset;

-- name: scaffold_get
SELECT repository, template_ref, version, record, task_id, created_by, updated_at
FROM scaffolds WHERE repository = :repository;

-- name: audit_list
SELECT id, at, actor, action, target, detail FROM audit_events
WHERE (:actor IS NULL OR actor = :actor)
  AND (:action IS NULL OR action = :action)
  AND (:since IS NULL OR at >= :since)
  AND (:before IS NULL OR id < :before)
ORDER BY id DESC
LIMIT :limit;

-- name: tasks_unhooked
-- The webhooks' outbox (falsework/webhooks.py): tasks finished, or finished again
-- after a retry, since their webhooks were dispatched; oldest first, each with the
-- body of its final event. Of the spec only what a dispatcher looks at (a spec may
-- weigh many kilobytes), and no step state.
SELECT t.id, t.status,
       json_object('apiVersion', t.spec -> '$.apiVersion', 'kind', t.spec -> '$.kind',
                   'templateInfo',
                   json_object('entityRef', t.spec -> '$.templateInfo.entityRef')) AS spec,
       t.created_by, t.created_at, t.heartbeat_at, t.attempt,
       t.priority, t.run_after, t.recovery, t.claimed_by, t.cancel_requested, t.finished_at,
       '{}' AS step_state,
       (SELECT e.body FROM task_events e
        WHERE e.task_id = t.id AND e.type IN ('completion', 'cancelled')
        ORDER BY e.id DESC LIMIT 1) AS final_body
FROM tasks t
WHERE t.finished_at IS NOT NULL AND t.hooked_at IS NOT t.finished_at
ORDER BY t.finished_at
LIMIT :limit;

-- name: tasks_mark_hooked
-- :rows = [[id, finished_at as read], ...]; only the finish that was read.
UPDATE tasks SET hooked_at = tasks.finished_at
FROM json_each(:rows) AS m
WHERE tasks.id = m.value ->> 0 AND tasks.finished_at = m.value ->> 1;

-- name: event_append
INSERT INTO task_events (task_id, type, body, created_at)
SELECT t.id, :type, json(:body), strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM tasks t WHERE t.id = :task_id
RETURNING task_id;

-- name: flag_set
INSERT INTO cluster_flags (name, detail, set_by, set_at)
VALUES (:flag, json(:detail), :set_by, strftime('%Y-%m-%d %H:%M:%f', 'now'))
ON CONFLICT (name) DO UPDATE
SET detail = excluded.detail, set_by = excluded.set_by, set_at = excluded.set_at;

-- name: flag_clear
DELETE FROM cluster_flags WHERE name = :flag RETURNING name;

-- name: flags_list
SELECT name, detail, set_by, set_at FROM cluster_flags ORDER BY name;

-- name: queue_overview
SELECT coalesce(sum(status = 'open'), 0) AS open,
       coalesce(sum(status = 'open' AND (run_after IS NULL
                     OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'))), 0) AS claimable,
       coalesce(sum(status = 'processing'), 0) AS processing,
       coalesce(sum(status = 'processing'
                    AND heartbeat_at < strftime('%Y-%m-%d %H:%M:%f', 'now',
                                                printf('%+.3f seconds', -:stale_after))), 0)
           AS stale,
       (julianday('now') - julianday(min(CASE WHEN status = 'open' AND (run_after IS NULL
                     OR run_after <= strftime('%Y-%m-%d %H:%M:%f', 'now'))
                     THEN coalesce(run_after, created_at) END))) * 86400.0 AS oldest_open_age
FROM tasks WHERE status IN ('open', 'processing');

-- name: tasks_troubled
SELECT t.id, t.status, t.created_by, t.attempt, t.claimed_by, t.created_at,
       (julianday('now') - julianday(t.heartbeat_at)) * 86400.0 AS heartbeat_age,
       (SELECT max(e.created_at) FROM task_events e
        WHERE e.task_id = t.id AND e.type = 'recovered') AS recovered_at,
       json_extract(t.spec, '$.templateInfo.entityRef') AS template
FROM tasks t
WHERE (t.status = 'processing'
       AND (t.heartbeat_at < strftime('%Y-%m-%d %H:%M:%f', 'now',
                                      printf('%+.3f seconds', -:stale_after))
            OR t.attempt > 1))
   OR (t.status = 'open' AND t.attempt > 0)
ORDER BY t.seq
LIMIT :limit;


-- name: audit_expire
DELETE FROM audit_events WHERE id IN (
    SELECT id FROM audit_events
    WHERE at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:older_than))
    ORDER BY id LIMIT :limit)
RETURNING id;
