-- The task worker's queue: pending (and, after a restart, processing) tasks of a region, oldest
-- first, read from the task read model without scanning finished tasks.
CREATE INDEX proj_tasks_by_status ON proj_tasks (status, region, created_at);
