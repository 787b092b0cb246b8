-- The task worker's queue, as SQLite's 0003_task_queue.sql.
CREATE INDEX proj_tasks_by_status ON proj_tasks (status, region, created_at);
