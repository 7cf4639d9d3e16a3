-- Named queries of the Postgres store. Each block starts with "-- name: NAME".
-- Lists of ids arrive as typed array parameters (asyncpg encodes them), lists of
-- rows as one JSON array of arrays read with json_array_elements (postgres.py's
-- _json_rows), JSON values as text made by codec.dumps, so every batch is one
-- statement whatever its size and the statement text never changes (asyncpg's
-- prepared-statement cache keeps working). Multi-row writers lock rows in id
-- order, so they never deadlock.

-- name: ping
SELECT 1;

-- name: schema_revision
SELECT version_num FROM alembic_version;

-- name: tasks_insert
-- Bulk insert, its creates' audit rows and its NOTIFY in one statement (one round
-- trip). :rows is one JSON array of [id, spec as JSON text, secrets, created_by,
-- priority, run_after, recovery, key, act actor, act action, act detail]: the
-- driver encodes a text[] parameter element by element through Python's
-- abstract-type checks, eight arrays per create. With a :cap (NULL: none), a
-- creator's rows beyond :cap open or running tasks are left out, in their order
-- (rows whose idempotency key is taken use no room; under creators_lock, in the
-- same transaction).
WITH r AS (
    SELECT x ->> 0 AS id, x ->> 1 AS spec, x ->> 2 AS secrets, x ->> 3 AS created_by,
           CAST(x ->> 4 AS integer) AS priority, CAST(x ->> 5 AS timestamptz) AS run_after,
           x ->> 6 AS recovery, x ->> 7 AS idempotency_key, x ->> 8 AS actor,
           x ->> 9 AS action, x ->> 10 AS detail, ord
    FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS a(x, ord)
), fresh AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.created_by ORDER BY r.ord) AS rank
    FROM r
    WHERE CAST(:cap AS integer) IS NULL OR r.idempotency_key IS NULL
       OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.idempotency_key = r.idempotency_key)
), allowed AS (
    SELECT f.* FROM fresh AS f
    WHERE CAST(:cap AS integer) IS NULL OR f.created_by IS NULL
       OR f.rank + (SELECT count(*) FROM tasks t
                    WHERE t.created_by = f.created_by AND t.status IN ('open', 'processing'))
          <= CAST(:cap AS integer)
), ins AS (
    INSERT INTO tasks (id, status, spec, secrets, created_by, priority, run_after, recovery,
                       step_state, checkpoints, idempotency_key, created_at)
    SELECT a.id, 'open', CAST(a.spec AS json), a.secrets, a.created_by, a.priority, a.run_after,
           a.recovery, '{}', '{}', a.idempotency_key, now()
    FROM allowed AS a
    ORDER BY a.ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), acts AS (
    INSERT INTO audit_events (at, actor, action, target, detail)
    SELECT now(), r.actor, r.action, r.id, CAST(r.detail AS json)
    FROM r JOIN ins ON ins.id = r.id
    WHERE r.actor IS NOT NULL
    ORDER BY r.ord
), note AS (
    SELECT pg_notify('falsework_tasks', '') AS n FROM ins LIMIT 1
)
SELECT id, (SELECT count(*) FROM note) AS notes FROM ins;

-- name: tasks_insert_uncapped
-- tasks_insert without a cap (the default: max_open_tasks_per_user unset): the
-- same rows, audit rows and NOTIFY without the cap's per-creator ranking and
-- counts. Kept apart because Postgres's generic plan of tasks_insert cannot drop
-- them when :cap is NULL; they cost 0.4 ms per create call (bench.latency's
-- insert_call_p50_ms 1.78-1.98 against 2.18-2.37 ms, 2026-12-07).
WITH r AS (
    SELECT x ->> 0 AS id, x ->> 1 AS spec, x ->> 2 AS secrets, x ->> 3 AS created_by,
           CAST(x ->> 4 AS integer) AS priority, CAST(x ->> 5 AS timestamptz) AS run_after,
           x ->> 6 AS recovery, x ->> 7 AS idempotency_key, x ->> 8 AS actor,
           x ->> 9 AS action, x ->> 10 AS detail, ord
    FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS a(x, ord)
), ins AS (
    INSERT INTO tasks (id, status, spec, secrets, created_by, priority, run_after, recovery,
                       step_state, checkpoints, idempotency_key, created_at)
    SELECT r.id, 'open', CAST(r.spec AS json), r.secrets, r.created_by, r.priority, r.run_after,
           r.recovery, '{}', '{}', r.idempotency_key, now()
    FROM r
    ORDER BY r.ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), acts AS (
    INSERT INTO audit_events (at, actor, action, target, detail)
    SELECT now(), r.actor, r.action, r.id, CAST(r.detail AS json)
    FROM r JOIN ins ON ins.id = r.id
    WHERE r.actor IS NOT NULL
    ORDER BY r.ord
), note AS (
    SELECT pg_notify('falsework_tasks', '') AS n FROM ins LIMIT 1
)
SELECT id, (SELECT count(*) FROM note) AS notes FROM ins;

-- name: creators_lock
-- Serialises the capped creates and retries of the same creators across
-- connections and nodes (a transaction-level lock per creator, taken in a sorted
-- order). The capped statement that follows takes its snapshot after the lock,
-- so it counts what the previous holder committed.
SELECT count(pg_advisory_xact_lock(727340002, hashtext(u)))
FROM (SELECT DISTINCT u FROM unnest(CAST(:creators AS text[])) AS x(u) ORDER BY u) AS s;

-- name: task_ids_by_keys
SELECT idempotency_key, id FROM tasks WHERE idempotency_key = ANY(CAST(:keys AS text[]));

-- name: task_notify
SELECT pg_notify(:channel, :payload);

-- name: task_get
SELECT id, status, spec, created_by, created_at, heartbeat_at, attempt, priority, run_after,
       recovery, claimed_by, cancel_requested, finished_at, step_state
FROM tasks WHERE id = :id;

-- name: task_status
SELECT status FROM tasks WHERE id = :id;

-- name: tasks_status
-- The statuses of many tasks at once (the live streams that read their final
-- events together check together that their tasks are over).
SELECT id, status FROM tasks WHERE id = ANY(CAST(:ids AS text[]));

-- name: task_secrets
SELECT secrets FROM tasks WHERE id = :id;

-- name: task_list
-- Read as task_list_<order>: __ORDER__ is one clause of models.ListOrder, a
-- closed set, put in when the file is loaded (engine/queries.py).
SELECT id, status, spec, created_by, created_at, heartbeat_at, attempt, priority, run_after,
       recovery, claimed_by, cancel_requested, finished_at, step_state
FROM tasks
WHERE (CAST(:created_by AS text) IS NULL OR created_by = CAST(:created_by AS text))
  AND (CAST(:statuses AS text[]) IS NULL OR status = ANY(CAST(:statuses AS text[])))
ORDER BY __ORDER__, seq
LIMIT CAST(:limit AS bigint) OFFSET :offset;

-- name: task_count
SELECT count(*) FROM tasks
WHERE (CAST(:created_by AS text) IS NULL OR created_by = CAST(:created_by AS text))
  AND (CAST(:statuses AS text[]) IS NULL OR status = ANY(CAST(:statuses AS text[])));

-- name: tasks_count_claimable
SELECT count(*) FROM tasks
WHERE status = 'open' AND (run_after IS NULL OR run_after <= now());

-- name: task_lock
SELECT status, created_by FROM tasks WHERE id = :id FOR UPDATE;

-- name: task_cancel_open
-- :announce false (no webhook configured): the finish is marked announced now
UPDATE tasks SET status = 'cancelled', finished_at = now(), cancel_requested = false,
    hooked_at = CASE WHEN CAST(:announce AS boolean) THEN tasks.hooked_at ELSE now() END
WHERE id = :id AND status = 'open';

-- name: task_request_cancel
UPDATE tasks SET cancel_requested = true WHERE id = :id AND status = 'processing';

-- name: task_retry
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    finished_at = NULL, cancel_requested = false,
    step_state = (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                  FROM jsonb_each(tasks.step_state) WHERE value->>'status' = 'completed')
WHERE id = :id
RETURNING id;

-- name: task_retry_capped
-- task_retry unless its creator already has :cap open or running tasks (under
-- creators_lock, in the same transaction).
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    finished_at = NULL, cancel_requested = false,
    step_state = (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                  FROM jsonb_each(tasks.step_state) WHERE value->>'status' = 'completed')
WHERE id = :id
  AND (tasks.created_by IS NULL
       OR (SELECT count(*) FROM tasks t
           WHERE t.created_by = tasks.created_by AND t.status IN ('open', 'processing'))
          < CAST(:cap AS integer))
RETURNING id;

-- name: claim_lock
-- Serialises fair claims so the per-user cap is exact across nodes.
SELECT pg_advisory_xact_lock(727340001);

-- name: task_claim
WITH picked AS (
    SELECT id FROM tasks
    WHERE status = 'open' AND (run_after IS NULL OR run_after <= now())
      -- the cluster-wide maintenance switch (engine/cluster.py)
      AND NOT EXISTS (SELECT 1 FROM cluster_flags WHERE name = 'paused')
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
      AND NOT EXISTS (SELECT 1 FROM cluster_flags WHERE name = 'paused')
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

-- name: heartbeat
-- A worker's whole heartbeat in one autocommit statement (no transaction waits
-- on a round trip): its tasks' leases and its own row. Each id drives one
-- primary-key lookup (LATERAL), so the statement stays linear in the number of
-- running tasks whatever the planner's statistics say; rows are locked in id
-- order (the ids come sorted), like every multi-row writer, so a heartbeat and
-- a flush never deadlock. Rows with a null id carry the worker's limit.
WITH mine AS (
    UPDATE tasks SET heartbeat_at = now()
    FROM (SELECT t.id
          FROM unnest(CAST(:ids AS text[])) AS x(id)
          CROSS JOIN LATERAL (SELECT id FROM tasks
                              WHERE tasks.id = x.id AND claimed_by = :worker
                                AND status = 'processing'
                              FOR UPDATE) AS t) AS m
    WHERE tasks.id = m.id
    RETURNING tasks.id, tasks.claim_token, tasks.cancel_requested
), me AS (
    UPDATE workers
    SET heartbeat_at = now(), running = :running,
        concurrency_limit = coalesce(CAST(:new_limit AS integer), concurrency_limit)
    WHERE id = :worker
    RETURNING concurrency_limit
)
SELECT id, claim_token, cancel_requested, NULL AS concurrency_limit FROM mine
UNION ALL
SELECT NULL, NULL, NULL, concurrency_limit FROM me;

-- name: flush_done
-- What a flush already written refused (its retry answers the same).
SELECT refused FROM flushes WHERE id = :flush;

-- name: flushes_prune
WITH gone AS (
    DELETE FROM flushes WHERE created_at < now() - make_interval(secs => :older_than)
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: batch_write
-- A worker's flush in one autocommit statement (one round trip): what
-- lease.plan_writes allowed of a batch *given* its tasks' (claim_token, status)
-- as :expected (nulls: no such task), written only if that is what the
-- batch's tasks hold now. The tasks are locked in id order (the ids come sorted)
-- through primary-key lookups before anything is written, and compared with what
-- the plan assumed; on any difference nothing is written (not even the flush's
-- id) and the caller plans again from the rows returned. Otherwise the flush's id
-- goes in (a flush retried after an ambiguous commit finds it there and writes
-- nothing: the insert waits for a first try still running), then the events in
-- order, step state and checkpoints merged, final statuses and releases (status
-- 'open'), and the NOTIFYs. Returns the locked (id, claim_token, status) rows
-- and a last row of nulls whose ``written`` says whether the plan went in.
-- Each list comes as one JSON array of rows (``[id, token, status]``,
-- ``[task, type, body]``, ...): the driver encodes a text[] parameter element by
-- element through Python's abstract-type checks, several per task per flush.
WITH expected AS (
    SELECT x ->> 0 AS id, x ->> 1 AS claim_token, x ->> 2 AS status, ord
    FROM json_array_elements(CAST(:expected AS json)) WITH ORDINALITY AS a(x, ord)
), locked AS (
    SELECT t.id, t.claim_token, t.status, t.recovery
    FROM (SELECT id FROM expected ORDER BY ord) AS x
    CROSS JOIN LATERAL (SELECT id, claim_token, status, recovery FROM tasks
                        WHERE tasks.id = x.id FOR UPDATE) AS t
), same AS (
    -- an aggregate over the whole join: every row is locked before the verdict
    SELECT coalesce(bool_and((l.claim_token, l.status)
                             IS NOT DISTINCT FROM (e.claim_token, e.status)), true) AS ok
    FROM expected e LEFT JOIN locked l ON l.id = e.id
), flush AS (
    INSERT INTO flushes (id, refused, created_at)
    SELECT :flush, :refused, now() FROM same WHERE same.ok
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), ins AS (
    INSERT INTO task_events (task_id, type, body, created_at)
    SELECT e ->> 0, e ->> 1, CAST(e ->> 2 AS json), now()
    FROM json_array_elements(CAST(:events AS json)) WITH ORDINALITY AS a(e, ord)
    WHERE EXISTS (SELECT 1 FROM flush)
    ORDER BY a.ord
    RETURNING id, task_id, type, body
), steps AS (
    SELECT s ->> 0 AS task_id, jsonb_object_agg(s ->> 1, CAST(s ->> 2 AS jsonb)) AS value
    FROM json_array_elements(CAST(:steps AS json)) AS a(s)
    GROUP BY s ->> 0
), cps AS (
    SELECT c ->> 0 AS task_id, jsonb_object_agg(c ->> 1, CAST(c ->> 2 AS jsonb)) AS value
    FROM json_array_elements(CAST(:checkpoints AS json)) AS a(c)
    GROUP BY c ->> 0
), ends AS (
    SELECT f ->> 0 AS task_id, f ->> 1 AS status, CAST(f ->> 2 AS boolean) AS keep_secrets
    FROM json_array_elements(CAST(:ends AS json)) AS a(f)
), touched AS (
    -- each touched task's changes in one row (hash joins of the small lists)
    SELECT t.task_id, steps.value AS step_value, cps.value AS cp_value, ends.status,
           ends.keep_secrets
    FROM (SELECT task_id FROM steps UNION SELECT task_id FROM cps
          UNION SELECT task_id FROM ends) AS t
    LEFT JOIN steps ON steps.task_id = t.task_id
    LEFT JOIN cps ON cps.task_id = t.task_id
    LEFT JOIN ends ON ends.task_id = t.task_id
), upd AS (
    UPDATE tasks
    SET step_state = tasks.step_state || coalesce(c.step_value, '{}'),
        checkpoints = tasks.checkpoints || coalesce(c.cp_value, '{}'),
        status = coalesce(c.status, tasks.status),
        finished_at = CASE WHEN c.status IN ('completed', 'failed', 'cancelled')
                           THEN now() ELSE tasks.finished_at END,
        hooked_at = CASE WHEN c.status IN ('completed', 'failed', 'cancelled')
                              AND NOT CAST(:announce AS boolean)
                         THEN now() ELSE tasks.hooked_at END,
        heartbeat_at = CASE WHEN c.status IS NULL THEN tasks.heartbeat_at
                            WHEN c.status = 'open' THEN NULL ELSE now() END,
        claim_token = CASE WHEN c.status IS NULL THEN tasks.claim_token END,
        claimed_by = CASE WHEN c.status = 'open' THEN NULL ELSE tasks.claimed_by END,
        -- a release keeps a pending cancel request: the next claimer honours it
        cancel_requested = CASE WHEN c.status IS NULL OR c.status = 'open'
                                THEN tasks.cancel_requested ELSE false END,
        secrets = CASE WHEN c.status IS NULL OR c.keep_secrets THEN tasks.secrets END
    FROM touched AS c
    -- the ANY drives primary-key lookups: joined on touched alone, whose size the
    -- planner guesses (100 rows a JSON array), it read the whole table instead
    WHERE tasks.id = c.task_id AND tasks.id = ANY(ARRAY(SELECT task_id FROM touched))
      AND EXISTS (SELECT 1 FROM flush)
    RETURNING tasks.id, tasks.status
), quiet AS (
    -- true when no process streams: no listener holds its share of this lock
    -- (PgListener's presence; one of 16 keys, so flushes of other connections
    -- seldom try the same one). A quiet flush sends no notification at all:
    -- the listener takes this key only after the flush commits, and once it
    -- holds every key its streams read (Hub.any_events), so a stream that
    -- started meanwhile reads what the flush wrote.
    SELECT pg_try_advisory_xact_lock(727340003, pg_backend_pid() % 16) AS yes
), carried AS (
    -- each task's new events whole, for the processes streaming them (read
    -- by engine/feed.py, where the channel's wire format is written down): [task id, the id of its event before these (the
    -- statement's snapshot has none of this flush's), its status now, its
    -- recovery, created_at in µs since the epoch, [[id, type, body], ...]];
    -- only [task id] when that is too long to carry; nothing when nobody
    -- streams (quiet)
    SELECT i.task_id, json_build_array(
               i.task_id,
               -- below this flush's first event of the task: the index scan
               -- starts past the rows just inserted (not in the statement's
               -- snapshot, each one a heap visit to find that out)
               coalesce((SELECT max(te.id) FROM task_events te
                         WHERE te.task_id = i.task_id AND te.id < min(i.id)), 0),
               coalesce(max(u.status), max(l.status)),
               max(l.recovery),
               CAST(round(extract(epoch FROM now()) * 1000000) AS bigint),
               json_agg(json_build_array(i.id, i.type, i.body) ORDER BY i.id)
           )::text AS whole
    FROM ins i
    JOIN locked l ON l.id = i.task_id
    LEFT JOIN upd u ON u.id = i.task_id
    GROUP BY i.task_id
), parts AS (
    SELECT task_id, CASE WHEN octet_length(whole) <= 3000 THEN whole
                         ELSE json_build_array(task_id)::text END AS part
    FROM carried
    WHERE NOT (SELECT yes FROM quiet)  -- a one-time filter: not built when quiet
), note_events AS (
    -- payloads under Postgres' 8,000 bytes: a chunk is at most 4,500 bytes
    -- plus one part of at most 3,000
    SELECT pg_notify('falsework_events', '[' || string_agg(part, ',') || ']') AS n
    FROM (SELECT part, sum(octet_length(part) + 1) OVER (ORDER BY task_id) / 4500 AS chunk
          FROM parts) AS c
    GROUP BY chunk
), note_tasks AS (
    SELECT pg_notify('falsework_tasks', '') AS n FROM upd WHERE status = 'open' LIMIT 1
)
SELECT id, claim_token, status, NULL AS written FROM locked
UNION ALL
SELECT NULL, NULL, NULL,
       EXISTS (SELECT 1 FROM flush)
       AND (SELECT count(*) FROM note_events) + (SELECT count(*) FROM note_tasks) >= 0;

-- name: events_insert
INSERT INTO task_events (task_id, type, body, created_at)
SELECT e.task_id, e.type, CAST(e.body AS json), now()
FROM unnest(CAST(:event_tasks AS text[]), CAST(:event_types AS text[]),
            CAST(:event_bodies AS text[])) WITH ORDINALITY AS e(task_id, type, body, ord)
ORDER BY e.ord;

-- name: tasks_end
-- Final statuses (and releases: status 'open') of tasks locked by the caller.
UPDATE tasks
SET status = f.status,
    finished_at = CASE WHEN f.status = 'open' THEN NULL ELSE now() END,
    hooked_at = CASE WHEN f.status = 'open' OR CAST(:announce AS boolean)
                     THEN tasks.hooked_at ELSE now() END,
    heartbeat_at = CASE WHEN f.status = 'open' THEN NULL ELSE now() END,
    claim_token = NULL,
    claimed_by = CASE WHEN f.status = 'open' THEN NULL ELSE tasks.claimed_by END,
    cancel_requested = CASE WHEN f.status = 'open' THEN tasks.cancel_requested ELSE false END,
    secrets = CASE WHEN f.keep_secrets THEN tasks.secrets END
FROM unnest(CAST(:end_tasks AS text[]), CAST(:end_statuses AS text[]),
            CAST(:end_keep AS boolean[])) AS f(task_id, status, keep_secrets)
WHERE tasks.id = f.task_id;

-- name: tasks_select_stale
-- Processing tasks whose heartbeat is older than :older_than seconds by the
-- database's clock (negative: a horizon in the future, for tests).
SELECT id, recovery, cancel_requested FROM tasks
WHERE status = 'processing' AND heartbeat_at < now() - make_interval(secs => :older_than)
ORDER BY id LIMIT 500
FOR UPDATE SKIP LOCKED;

-- name: tasks_reopen
UPDATE tasks
SET status = 'open', claimed_by = NULL, claim_token = NULL, heartbeat_at = NULL,
    cancel_requested = false,
    step_state = CASE WHEN recovery = 'startOver' THEN '{}' ELSE
                 (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                  FROM jsonb_each(tasks.step_state) WHERE value->>'status' = 'completed') END
WHERE id = ANY(CAST(:ids AS text[]));

-- name: tasks_erase_secrets
UPDATE tasks SET secrets = NULL
WHERE secrets IS NOT NULL AND status IN ('failed', 'cancelled')
  AND finished_at < now() - make_interval(secs => :older_than)
RETURNING id;

-- name: tasks_expire
-- One retention batch: the oldest tasks of :status finished more than
-- :older_than seconds ago and not kept (ix_tasks_expiry), skipping those another
-- janitor holds, deleted; their events go in the next statement of the same
-- transaction (events_delete_of_tasks), whose snapshot is taken once these rows
-- are locked: an event a writer committed just before (every writer of events
-- locks the task's row, and task_events has no foreign key) is gone with them.
WITH doomed AS (
    SELECT id FROM tasks
    WHERE status = :status AND finished_at IS NOT NULL AND NOT keep
      AND finished_at < now() - make_interval(secs => :older_than)
    ORDER BY finished_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
DELETE FROM tasks t USING doomed WHERE t.id = doomed.id
RETURNING t.id;

-- name: events_delete_of_tasks
WITH gone AS (
    DELETE FROM task_events WHERE task_id = ANY(CAST(:ids AS text[])) RETURNING 1
)
SELECT count(*) FROM gone;

-- name: task_keep
UPDATE tasks SET keep = :keep WHERE id = :id RETURNING id;

-- name: events_after
SELECT e.id, e.task_id, e.type, e.body, e.created_at, t.recovery
FROM task_events e JOIN tasks t ON t.id = e.task_id
WHERE e.task_id = :task_id AND e.id > :after
ORDER BY e.id LIMIT :limit;

-- name: events_after_many
-- The events after a cursor for many (task, cursor) pairs in one statement: the
-- live streams a NOTIFY batch wakes together read together. ``ord`` is the
-- pair's 1-based position in the lists.
SELECT c.ord, e.id, e.task_id, e.type, e.body, e.created_at, t.recovery
FROM unnest(CAST(:task_ids AS text[]), CAST(:afters AS bigint[]))
     WITH ORDINALITY AS c(task_id, after_id, ord)
CROSS JOIN LATERAL (
    SELECT id, task_id, type, body, created_at FROM task_events
    WHERE task_id = c.task_id AND id > c.after_id
    ORDER BY id LIMIT :limit
) AS e
JOIN tasks t ON t.id = e.task_id
ORDER BY c.ord, e.id;

-- name: worker_insert
INSERT INTO workers (id, host, pid, concurrency_limit, running, started_at, heartbeat_at)
VALUES (:id, :host, :pid, :limit, 0, now(), now())
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now();

-- name: worker_list
SELECT id, host, pid, concurrency_limit, running, started_at, heartbeat_at,
       EXTRACT(EPOCH FROM now() - heartbeat_at) AS age
FROM workers ORDER BY started_at, id;

-- name: worker_set_limit
UPDATE workers SET concurrency_limit = :limit WHERE id = :id RETURNING id;

-- name: worker_delete
DELETE FROM workers WHERE id = :id;

-- name: workers_prune
DELETE FROM workers WHERE heartbeat_at < now() - make_interval(secs => :older_than)
RETURNING id;

-- name: lease_take
-- A named turn: taken when free or expired, renewed by its holder.
INSERT INTO leases (name, holder, expires_at)
VALUES (:lease, :holder, now() + make_interval(secs => :ttl))
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.expires_at <= now() OR leases.holder = excluded.holder
RETURNING name;

-- name: metrics_task_counts
SELECT status, count(*) AS n FROM tasks GROUP BY status;

-- name: metrics_oldest_open
-- Seconds since the oldest claimable open task became claimable (ix_tasks_claim).
SELECT coalesce(EXTRACT(EPOCH FROM now() - min(greatest(created_at,
                                                        coalesce(run_after, created_at)))), 0)
FROM tasks
WHERE status = 'open' AND (run_after IS NULL OR run_after <= now());

-- name: metrics_workers
SELECT count(*) AS alive, coalesce(sum(concurrency_limit), 0) AS capacity FROM workers
WHERE heartbeat_at >= now() - make_interval(secs => :alive_within);

-- name: metrics_last_event
SELECT coalesce(max(id), 0) FROM task_events;

-- name: metrics_scan_end
-- The last of up to :limit events after :after older than :lag seconds: an event
-- younger than that may still have an older neighbour committing.
SELECT coalesce(max(id), CAST(:after AS bigint)) FROM (
    SELECT id FROM task_events
    WHERE id > :after AND created_at < now() - make_interval(secs => :lag)
    ORDER BY id LIMIT :limit
) AS s;

-- name: metrics_marks
-- Runs (a final event) and steps (an event with a stepId and a final step status)
-- that ended in (:after, :until], each with when it started: a run at the first
-- event after the task's previous final event, a step at its last 'processing'
-- event after its previous end. Labels: the template's entity ref, the step's
-- action (steps without an id are step-N, as the runner names them).
WITH ends AS (
    SELECT e.id, e.task_id, e.type, e.created_at, e.body ->> 'stepId' AS step_id,
           CASE WHEN e.type = 'cancelled' THEN 'cancelled'
                WHEN e.type = 'completion' AND e.body -> 'error' IS NOT NULL THEN 'failed'
                WHEN e.type = 'completion' THEN 'completed'
                ELSE e.body ->> 'status' END AS status
    FROM task_events e
    WHERE e.id > :after AND e.id <= :until
      AND (e.type IN ('completion', 'cancelled')
           OR (e.type = 'log' AND e.body ->> 'stepId' IS NOT NULL
               AND e.body ->> 'status' IN ('completed', 'failed', 'cancelled', 'skipped')))
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
             AND s.body ->> 'stepId' = ends.step_id AND s.body ->> 'status' = 'processing'
             AND s.id > coalesce((SELECT max(p.id) FROM task_events p
                                  WHERE p.task_id = ends.task_id AND p.id < ends.id
                                    AND p.type = 'log' AND p.body ->> 'stepId' = ends.step_id
                                    AND p.body ->> 'status' IN ('completed', 'failed',
                                                                'cancelled', 'skipped')), 0)
           ORDER BY s.id DESC LIMIT 1)
       END AS started_at,
       CASE WHEN ends.type <> 'log' THEN t.spec -> 'templateInfo' ->> 'entityRef'
       ELSE (SELECT x.step ->> 'action'
             FROM json_array_elements(CASE WHEN json_typeof(t.spec -> 'steps') = 'array'
                                           THEN t.spec -> 'steps' ELSE '[]' END)
                  WITH ORDINALITY AS x(step, ord)
             WHERE coalesce(x.step ->> 'id', 'step-' || x.ord) = ends.step_id
             LIMIT 1)
       END AS label
FROM ends JOIN tasks t ON t.id = ends.task_id
ORDER BY ends.id;

-- name: metrics_snapshot_get
SELECT last_event_id, body, EXTRACT(EPOCH FROM now() - computed_at) AS age
FROM cluster_metrics WHERE name = :snapshot;

-- name: metrics_snapshot_put
-- Compare and set on last_event_id: a snapshot computed by a node whose turn
-- ran out is dropped, never merged twice.
INSERT INTO cluster_metrics (name, last_event_id, body, computed_at)
VALUES (:snapshot, :last_event_id, CAST(:body AS json), now())
ON CONFLICT (name) DO UPDATE
SET last_event_id = excluded.last_event_id, body = excluded.body,
    computed_at = excluded.computed_at
WHERE cluster_metrics.last_event_id = CAST(:expected AS bigint)
RETURNING name;

-- name: audit_insert
-- One row per entry, stamped by the database's clock, in the entries' order.
-- :rows = [[actor, action, target, detail as JSON text], ...]
INSERT INTO audit_events (at, actor, action, target, detail)
SELECT now(), x ->> 0, x ->> 1, x ->> 2, CAST(x ->> 3 AS json)
FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS a(x, ord)
ORDER BY a.ord;

-- name: scaffold_upsert
INSERT INTO scaffolds (repository, template_ref, version, record, task_id, created_by, updated_at)
VALUES (:repository, :template_ref, :version, CAST(:record AS json), :task_id, :created_by, now())
ON CONFLICT (repository) DO UPDATE SET
  template_ref = excluded.template_ref, version = excluded.version, record = excluded.record,
  task_id = excluded.task_id, created_by = excluded.created_by, updated_at = excluded.updated_at;

-- name: scaffold_list
SELECT repository, template_ref, version, record, task_id, created_by, updated_at
FROM scaffolds
WHERE (CAST(:template_ref AS text) IS NULL OR template_ref = :template_ref)
ORDER BY template_ref, repository
LIMIT :limit OFFSET :offset;

-- name: scaffold_get
SELECT repository, template_ref, version, record, task_id, created_by, updated_at
FROM scaffolds WHERE repository = :repository;

-- name: audit_list
SELECT id, at, actor, action, target, detail FROM audit_events
WHERE (CAST(:actor AS text) IS NULL OR actor = :actor)
  AND (CAST(:action AS text) IS NULL OR action = :action)
  AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)
  AND (CAST(:before AS bigint) IS NULL OR id < :before)
ORDER BY id DESC
LIMIT :limit;

-- name: tasks_unhooked
-- The webhooks' outbox (falsework/webhooks.py): tasks finished, or finished again
-- after a retry, since their webhooks were dispatched; oldest first, each with the
-- body of its final event. Of the spec only what a dispatcher looks at (a spec may
-- weigh many kilobytes), and no step state.
SELECT t.id, t.status,
       json_build_object('apiVersion', t.spec -> 'apiVersion', 'kind', t.spec -> 'kind',
                         'templateInfo',
                         json_build_object('entityRef', t.spec -> 'templateInfo' -> 'entityRef'))
           AS spec,
       t.created_by, t.created_at, t.heartbeat_at, t.attempt,
       t.priority, t.run_after, t.recovery, t.claimed_by, t.cancel_requested, t.finished_at,
       CAST('{}' AS jsonb) AS step_state,
       (SELECT e.body FROM task_events e
        WHERE e.task_id = t.id AND e.type IN ('completion', 'cancelled')
        ORDER BY e.id DESC LIMIT 1) AS final_body
FROM tasks t
WHERE t.finished_at IS NOT NULL AND t.hooked_at IS DISTINCT FROM t.finished_at
ORDER BY t.finished_at
LIMIT :limit;

-- name: tasks_mark_hooked
-- Only the finish that was read: a task retried and finished again meanwhile
-- stays in the outbox.
UPDATE tasks SET hooked_at = tasks.finished_at
FROM unnest(CAST(:ids AS text[]), CAST(:finished AS timestamptz[])) AS m(id, finished_at)
WHERE tasks.id = m.id AND tasks.finished_at = m.finished_at;

-- name: event_append
-- One event on a task whatever its status (unfenced: webhook deliveries report on
-- the task they announce), and its NOTIFY; nothing when the task is gone. The
-- key-share lock waits for a retention delete of the task under way and then
-- finds it gone, so no event outlives its task (task_events has no foreign key).
WITH ins AS (
    INSERT INTO task_events (task_id, type, body, created_at)
    SELECT t.id, :type, CAST(:body AS json), now() FROM tasks t WHERE t.id = :task_id
    FOR KEY SHARE
    RETURNING task_id
)
SELECT pg_notify('falsework_events', task_id) FROM ins;

-- name: flag_set
INSERT INTO cluster_flags (name, detail, set_by, set_at)
VALUES (:flag, CAST(:detail AS json), :set_by, now())
ON CONFLICT (name) DO UPDATE
SET detail = excluded.detail, set_by = excluded.set_by, set_at = excluded.set_at;

-- name: flag_clear
-- and wake every worker: a cleared 'paused' lets them claim at once
WITH d AS (DELETE FROM cluster_flags WHERE name = :flag RETURNING name)
SELECT name, pg_notify('falsework_tasks', '') FROM d;

-- name: flags_list
SELECT name, detail, set_by, set_at FROM cluster_flags ORDER BY name;

-- name: queue_overview
-- The admin page's numbers, from the small open/processing part of tasks.
SELECT count(*) FILTER (WHERE status = 'open') AS open,
       count(*) FILTER (WHERE status = 'open' AND (run_after IS NULL OR run_after <= now()))
           AS claimable,
       count(*) FILTER (WHERE status = 'processing') AS processing,
       count(*) FILTER (WHERE status = 'processing'
                          AND heartbeat_at < now() - make_interval(secs => :stale_after)) AS stale,
       EXTRACT(EPOCH FROM now() - min(coalesce(run_after, created_at))
                                   FILTER (WHERE status = 'open'
                                             AND (run_after IS NULL OR run_after <= now())))
           AS oldest_open_age
FROM tasks WHERE status IN ('open', 'processing');

-- name: tasks_troubled
-- Tasks in flight that are stale (no heartbeat for :stale_after seconds) or that
-- run again (attempt beyond the first claim), with their last recovery if any.
SELECT t.id, t.status, t.created_by, t.attempt, t.claimed_by, t.created_at,
       EXTRACT(EPOCH FROM now() - t.heartbeat_at) AS heartbeat_age,
       (SELECT max(e.created_at) FROM task_events e
        WHERE e.task_id = t.id AND e.type = 'recovered') AS recovered_at,
       t.spec -> 'templateInfo' ->> 'entityRef' AS template
FROM tasks t
WHERE (t.status = 'processing'
       AND (t.heartbeat_at < now() - make_interval(secs => :stale_after) OR t.attempt > 1))
   OR (t.status = 'open' AND t.attempt > 0)
ORDER BY t.seq
LIMIT :limit;


-- name: audit_expire
WITH gone AS (
    DELETE FROM audit_events WHERE id IN (
        SELECT id FROM audit_events
        WHERE at < now() - make_interval(secs => :older_than)
        ORDER BY id LIMIT :limit)
    RETURNING 1
)
SELECT count(*) FROM gone;
