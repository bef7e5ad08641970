-- Cancellation is asked of a run, which sees it at its next durable operation and may clean
-- up before it ends; a run may have a deadline, after which it is asked to cancel.

ALTER TABLE runs ADD COLUMN cancel_requested TEXT;
ALTER TABLE runs ADD COLUMN deadline_at INTEGER;
