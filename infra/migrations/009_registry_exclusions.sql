-- Participants whose privacy budget is spent are not selected again (issue: differential privacy).
ALTER TABLE registry_state ADD COLUMN excluded text[] NOT NULL DEFAULT '{}';
