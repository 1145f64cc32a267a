-- 7: the queue's turns between keys (owners), kept across claims and replicas: each owner's
-- virtual finish tag, and under owner '*' (no owner id has that form) the virtual time, the tag
-- the last claimed run started at. The claim query orders waiting runs by them (start-time fair
-- queueing, as engine/queue.py's FairQueue does in one process); one row per key ever served.
CREATE TABLE queue_turns (
    owner TEXT PRIMARY KEY,
    tag DOUBLE PRECISION NOT NULL
);
