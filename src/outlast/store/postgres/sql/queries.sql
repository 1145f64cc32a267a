-- The PostgreSQL store's statements, one per "-- name:" block, loaded by queries.py.
-- A record's columns are always selected in this order (store.py's _record reads them by name):
-- id, owner, status, background, stream, store, created_at, previous_response_id, input,
-- snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt, cancel_requested.
-- An unfinished run: status IN ('queued', 'in_progress'). A claimable one: unfinished and
-- worker_id IS NULL (queued, or foreground but created elsewhere).

-- ==== migrations ==========================================================================

-- name: advisory_lock
-- Waits for the lock (migrations: replicas starting together apply them one at a time).
SELECT pg_advisory_lock($1)

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)

-- name: schema_version
SELECT MAX(version) FROM schema_version

-- name: record_schema_version
INSERT INTO schema_version (version) VALUES ($1)

-- ==== a write batch (one transaction) =====================================================

-- name: insert_responses
INSERT INTO responses (id, owner, status, background, stream, store, created_at,
    previous_response_id, input, snapshot, snapshot_seq, ended_at, expires_at, request,
    worker_id, attempt, cancel_requested)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (id) DO NOTHING

-- name: insert_input_items
INSERT INTO input_items (response_id, position, item_id, item)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[])
ON CONFLICT DO NOTHING

-- name: fence_held
-- FOR SHARE waits for a takeover in progress and then sees its outcome.
SELECT id FROM responses WHERE id = ANY($1::text[]) AND worker_id = $2 FOR SHARE

-- name: insert_events
INSERT INTO events (response_id, seq, type, data)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[])
ON CONFLICT DO NOTHING

-- name: write_events
-- A batch of events alone (most batches of a server streaming many runs), in one statement, so
-- in a transaction of its own without a BEGIN and a COMMIT: fenced as fence_held is (the same
-- row locks, so a takeover waits for it or is seen by it), inserted only if this replica holds
-- every response ($1), and announced at commit. No ON CONFLICT: its speculative insertion cost
-- about a tenth of the database's CPU per event; a batch written again (its commit outcome was
-- lost) fails here on the primary key, and is then written as any batch, which skips what is
-- stored. Returns whether the batch was fenced (nothing was written then).
WITH held AS (
    SELECT id FROM responses WHERE id = ANY($1::text[]) AND worker_id = $2 FOR SHARE
), verdict AS (
    SELECT count(*) < cardinality($1::text[]) AS fenced FROM held
), inserted AS (
    INSERT INTO events (response_id, seq, type, data)
    SELECT e.response_id, e.seq, e.type, e.data
    FROM unnest($3::text[], $4::int[], $5::text[], $6::bytea[]) AS e(response_id, seq, type, data),
        verdict
    WHERE NOT verdict.fenced
), notified AS (
    SELECT pg_notify(n.c, n.p) FROM unnest($7::text[], $8::text[]) AS n(c, p), verdict
    WHERE NOT verdict.fenced
)
SELECT verdict.fenced FROM verdict, (SELECT count(*) FROM notified) AS sent

-- name: update_snapshots
UPDATE responses AS r SET status = u.status, snapshot = u.snapshot,
    snapshot_seq = u.seq, ended_at = COALESCE(u.ended, r.ended_at),
    expires_at = COALESCE(u.expires, r.expires_at),
    worker_id = CASE WHEN u.requeue THEN NULL ELSE r.worker_id END,
    attempt = r.attempt + CASE WHEN u.requeue THEN 1 ELSE 0 END
FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int[],
    $5::float8[], $6::float8[], $7::bool[])
    AS u(id, status, snapshot, seq, ended, expires, requeue)
WHERE r.id = u.id

-- name: insert_outbox
INSERT INTO webhook_outbox (id, endpoint, payload, created_at, attempts, next_attempt_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::float8[], $5::int[], $6::float8[])
ON CONFLICT (id) DO NOTHING

-- name: insert_steps
INSERT INTO steps (response_id, position, steps)
SELECT * FROM unnest($1::text[], $2::int[], $3::bytea[])
ON CONFLICT DO NOTHING

-- name: delete_events
DELETE FROM events WHERE response_id = ANY($1::text[])

-- name: delete_steps
DELETE FROM steps WHERE response_id = ANY($1::text[])

-- name: delete_input_items
DELETE FROM input_items WHERE response_id = ANY($1::text[])

-- name: delete_responses
DELETE FROM responses WHERE id = ANY($1::text[])

-- name: notify_many
-- Sent by PostgreSQL when the transaction commits, not before.
SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)

-- ==== reads ===============================================================================

-- name: response_exists
SELECT 1 FROM responses WHERE id = $1

-- name: get_response
SELECT id, owner, status, background, stream, store, created_at, previous_response_id, input,
    snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt, cancel_requested
FROM responses WHERE id = $1

-- name: get_owned_response
SELECT id, owner, status, background, stream, store, created_at, previous_response_id, input,
    snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt, cancel_requested
FROM responses WHERE id = $1 AND owner = $2

-- name: read_events
SELECT seq, type, data FROM events WHERE response_id = $1 AND seq > $2 ORDER BY seq LIMIT $3

-- name: read_steps
SELECT steps FROM steps WHERE response_id = $1 ORDER BY position

-- name: input_listable
-- GET …/input_items: the response is the owner's and listable (the listing's rule).
SELECT 1 FROM responses
WHERE id = $1 AND owner = $2 AND store AND (expires_at IS NULL OR expires_at > $3)

-- name: input_cursor_asc
SELECT position FROM input_items WHERE response_id = $1 AND item_id = $2
ORDER BY position LIMIT 1

-- name: input_cursor_desc
SELECT position FROM input_items WHERE response_id = $1 AND item_id = $2
ORDER BY position DESC LIMIT 1

-- name: input_page_asc
-- $2: the cursor's position (-1: from the start).
SELECT item FROM input_items WHERE response_id = $1 AND position > $2
ORDER BY position LIMIT $3

-- name: input_page_desc
-- $2: the cursor's position (NULL: from the end).
SELECT item FROM input_items
WHERE response_id = $1 AND ($2::integer IS NULL OR position < $2)
ORDER BY position DESC LIMIT $3

-- name: listing_cursor
SELECT created_at, id FROM responses WHERE id = $1 AND owner = $2

-- name: unfinished_responses
SELECT id, owner, status, background, stream, store, created_at, previous_response_id, input,
    snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt, cancel_requested
FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY created_at

-- name: expired_response_ids
SELECT id FROM responses WHERE expires_at IS NOT NULL AND expires_at < $1 LIMIT $2

-- name: count_by_status
-- The console's overview: an owner's listable responses (the listing's rule) per status.
SELECT status, count(*) FROM responses
WHERE owner = $1 AND store AND (expires_at IS NULL OR expires_at > $2) GROUP BY status

-- name: count_ended
-- ... and those that ended since $3, per $4-second interval.
SELECT floor((ended_at - $3) / $4)::integer AS i, count(*) FROM responses
WHERE owner = $1 AND store AND (expires_at IS NULL OR expires_at > $2) AND ended_at >= $3
GROUP BY i

-- ==== the webhook outbox ==================================================================

-- name: claim_outbox
-- SKIP LOCKED: replicas claiming at once take different rows; the lease (a later
-- next_attempt_at) hides a claimed row until its attempt has had time to finish.
UPDATE webhook_outbox SET next_attempt_at = $3 + $4 WHERE id IN (
    SELECT id FROM webhook_outbox WHERE endpoint = $1 AND next_attempt_at <= $3
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
) RETURNING id, endpoint, payload, created_at, attempts

-- name: outbox_done
DELETE FROM webhook_outbox WHERE id = $1

-- name: outbox_retry
UPDATE webhook_outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1

-- ==== workers, leases and claims ==========================================================

-- name: register_worker
INSERT INTO workers (id, info, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))

-- name: renew_lease
UPDATE workers SET expires_at = now() + make_interval(secs => $2) WHERE id = $1

-- name: remove_worker
DELETE FROM workers WHERE id = $1

-- name: take_over_expired
-- Runs of expired workers, and runs of workers that no longer exist at all (a worker removed
-- while it still held runs). One statement: a stale writer's fenced write either committed
-- before it (and is seen) or waits for it (and is refused). The sweeper ($1) never removes
-- itself: it is evidently alive, even if it was paused past its lease.
WITH dead AS (
    DELETE FROM workers WHERE expires_at < now() AND id <> $1 RETURNING id
)
UPDATE responses SET worker_id = $1
WHERE status IN ('queued', 'in_progress') AND worker_id IS NOT NULL AND worker_id <> $1 AND (
    worker_id IN (SELECT id FROM dead)
    OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = responses.worker_id)
) RETURNING id, owner, status, background, stream, store, created_at, previous_response_id,
    input, snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt,
    cancel_requested

-- name: claim_queued
-- The queue's order on every replica, as engine/queue.py's FairQueue orders one process's. A claim
-- runs this statement twice in one transaction: $9 true takes urgent runs, then $9 false takes
-- deferred ones with the slots left. Urgent: no completion window (the bytea test spares those
-- the JSON parse), or one (2h, 8h) whose promotion time, created_at plus half the window, has
-- passed $3 (now). Deferred: the others, each key's by promotion time (the earliest deadline
-- first); their rows' requests are read only when no urgent run could take the slot. Only the
-- chosen branch runs (the other's one-time filter is false).
-- Between keys, start-time fair queueing over queue_turns: a key's k-th waiting run starts at
-- max(its tag, the virtual time) + (k - 1) / weight, the smallest first, ties by age. A key at
-- its running limit (its runs held by any replica) gets no more. $4, $5, $6: the keys with
-- limits of their own (owner, running limit or NULL, weight); $7, $8: every other key's. Only
-- each waiting key's first $2 urgent runs are looked at (a skip scan of the keys, then the
-- responses_queue_owner index), so a claim costs O(keys), not O(queue). Each claimed row comes
-- back with its start tag and weight, for advance_turns. store.py serialises claims with a
-- transaction-level advisory lock, so each claim counts the runs every claim before it took.
WITH RECURSIVE owners AS (
    (SELECT owner FROM responses
    WHERE status IN ('queued', 'in_progress') AND worker_id IS NULL ORDER BY owner LIMIT 1)
    UNION ALL
    SELECT (SELECT r.owner FROM responses AS r
        WHERE r.status IN ('queued', 'in_progress') AND r.worker_id IS NULL
            AND r.owner > o.owner
        ORDER BY r.owner LIMIT 1)
    FROM owners AS o WHERE o.owner IS NOT NULL
), urgent AS (
    SELECT c.id, c.owner, c.created_at AS due FROM owners AS o CROSS JOIN LATERAL (
        SELECT r.id, r.owner, r.created_at FROM responses AS r
        WHERE r.owner = o.owner AND r.status IN ('queued', 'in_progress')
            AND r.worker_id IS NULL
            AND (position('"completion_window":"'::bytea IN r.request) = 0
                OR r.created_at + CASE convert_from(r.request, 'UTF8')::jsonb
                        #>> '{params,background_options,completion_window}'
                    WHEN '2h' THEN 3600 WHEN '8h' THEN 14400 ELSE 0 END <= $3)
        ORDER BY r.created_at LIMIT $2
    ) AS c WHERE o.owner IS NOT NULL
), windowed AS (
    SELECT id, owner, created_at + CASE convert_from(request, 'UTF8')::jsonb
            #>> '{params,background_options,completion_window}'
        WHEN '2h' THEN 3600 WHEN '8h' THEN 14400 ELSE 0 END AS due
    FROM responses WHERE status IN ('queued', 'in_progress') AND worker_id IS NULL
        AND position('"completion_window":"'::bytea IN request) > 0
), candidates AS (
    SELECT id, owner, due FROM urgent WHERE $9::bool
    UNION ALL
    SELECT id, owner, due FROM windowed WHERE NOT $9::bool AND due > $3
), limits AS (
    SELECT * FROM unnest($4::text[], $5::int[], $6::int[]) AS l(owner, running, weight)
), held AS (
    SELECT owner, count(*) AS n FROM responses
    WHERE status IN ('queued', 'in_progress') AND worker_id IS NOT NULL
        AND owner IN (SELECT owner FROM candidates)
    GROUP BY owner
), ranked AS (
    SELECT c.id, c.due,
        row_number() OVER (PARTITION BY c.owner ORDER BY c.due) AS turn,
        CASE WHEN l.owner IS NULL THEN $8::int ELSE l.weight END AS weight,
        (CASE WHEN l.owner IS NULL THEN $7::int ELSE l.running END) - COALESCE(h.n, 0) AS room,
        GREATEST(COALESCE(t.tag, 0),
            COALESCE((SELECT tag FROM queue_turns WHERE owner = '*'), 0)) AS base
    FROM candidates AS c LEFT JOIN limits AS l ON l.owner = c.owner
        LEFT JOIN held AS h ON h.owner = c.owner LEFT JOIN queue_turns AS t ON t.owner = c.owner
), picked AS (
    SELECT id, base + (turn - 1)::float8 / weight AS start, weight FROM ranked
    WHERE room IS NULL OR turn <= room
    ORDER BY base + (turn - 1)::float8 / weight, due LIMIT $2
), locked AS (
    SELECT id FROM responses WHERE id IN (SELECT id FROM picked) AND worker_id IS NULL
    FOR UPDATE SKIP LOCKED
)
UPDATE responses AS r SET worker_id = $1 FROM picked AS p
WHERE r.id = p.id AND r.id IN (SELECT id FROM locked)
RETURNING r.id, r.owner, r.status, r.background, r.stream, r.store, r.created_at,
    r.previous_response_id, r.input, r.snapshot, r.snapshot_seq, r.ended_at, r.expires_at,
    r.request, r.worker_id, r.attempt, r.cancel_requested, p.start, p.weight

-- name: advance_turns
-- After a claim: each served key's tag moves past its last claimed run, and the virtual time
-- ('*') to the last start; never backwards (a claim sees every claim before it).
INSERT INTO queue_turns (owner, tag) SELECT * FROM unnest($1::text[], $2::float8[])
ON CONFLICT (owner) DO UPDATE SET tag = GREATEST(queue_turns.tag, EXCLUDED.tag)

-- name: claim
UPDATE responses SET worker_id = $2
WHERE id = $1 AND status IN ('queued', 'in_progress') AND worker_id IS NULL
RETURNING id, owner, status, background, stream, store, created_at, previous_response_id,
    input, snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt,
    cancel_requested

-- name: release
UPDATE responses SET worker_id = NULL
WHERE id = ANY($2::text[]) AND worker_id = $1 AND status IN ('queued', 'in_progress')

-- name: held_unfinished
SELECT id, owner, status, background, stream, store, created_at, previous_response_id, input,
    snapshot, snapshot_seq, ended_at, expires_at, request, worker_id, attempt, cancel_requested
FROM responses WHERE worker_id = $1 AND status IN ('queued', 'in_progress')

-- name: request_cancel
UPDATE responses SET cancel_requested = TRUE
WHERE id = $1 AND status IN ('queued', 'in_progress')

-- name: queue_counts
-- The waiting runs a create is admitted against: of every key, of key $1, and how many keys.
SELECT count(*), count(*) FILTER (WHERE owner = $1), count(DISTINCT owner)
FROM responses WHERE status IN ('queued', 'in_progress') AND worker_id IS NULL

-- name: claim_lock
-- Held until the claim's transaction ends: claims happen one at a time across replicas.
SELECT pg_advisory_xact_lock($1)

-- name: notify
SELECT pg_notify($1, $2)

-- name: try_advisory_lock
SELECT pg_try_advisory_lock($1)

-- name: advisory_unlock
SELECT pg_advisory_unlock($1)

-- name: ping
SELECT 1
