-- Child workflows know their parent (its run is told when they finish), and an operator can
-- ask a running run to pause after its current step.

ALTER TABLE durable.runs ADD COLUMN parent_run_id uuid REFERENCES durable.runs (id) ON DELETE CASCADE;
ALTER TABLE durable.runs ADD COLUMN pause_requested boolean NOT NULL DEFAULT false;
CREATE INDEX runs_children ON durable.runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
