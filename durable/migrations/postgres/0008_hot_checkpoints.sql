-- A step's checkpoint rewrites its run's row, lease included. An index on the lease's expiry
-- made every such update write every index of the table; without it, and with room left on
-- each page, the update is a heap-only (HOT) one: no index is touched.
--
-- Expired leases are still found through an index: the runs that are running are few (at
-- most the workers' slots), and this one does not change while a run steps.

DROP INDEX durable.runs_leased;
CREATE INDEX runs_running ON durable.runs (created_at) WHERE status = 'running';
ALTER TABLE durable.runs SET (fillfactor = 70);
