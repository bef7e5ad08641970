-- A fork is a new run that starts from a step of an existing one: the steps before it are
-- copied, the rest run again. It keeps a link to its origin.

ALTER TABLE durable.runs ADD COLUMN forked_from uuid REFERENCES durable.runs (id) ON DELETE SET NULL;
ALTER TABLE durable.runs ADD COLUMN forked_at_seq integer;
