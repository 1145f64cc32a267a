-- 5: each response's input items one row apiece, so that GET …/input_items reads a page (by
-- position, from an item's id) instead of parsing the whole list. Existing responses' items are
-- copied from their input column (json, not jsonb: each element keeps its text as stored).
CREATE TABLE input_items (
    response_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    item_id TEXT,
    item BYTEA NOT NULL,
    PRIMARY KEY (response_id, position)
);
CREATE INDEX input_items_by_id ON input_items (response_id, item_id);
INSERT INTO input_items (response_id, position, item_id, item)
SELECT r.id, (e.n - 1)::integer, e.item ->> 'id', convert_to(e.item::text, 'UTF8')
FROM responses AS r,
    json_array_elements(convert_from(r.input, 'UTF8')::json) WITH ORDINALITY AS e(item, n);
