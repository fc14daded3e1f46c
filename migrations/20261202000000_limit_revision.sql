-- A revision number for an event's daily limit, so that Redis keeps the newest limit whatever
-- order the writes reach it in.
--
-- Postgres decides what the limit is; Redis holds a copy the issue script reads. Copies are
-- written by a limit change (PATCH) and by every publish (start-up, or a republish after Redis
-- lost the event), each from an event read out of Postgres a moment earlier. A publish that read
-- the event just before a change, or a raise still waiting out its fence, could reach Redis
-- after a later change and put the older limit back: a lowered limit raised again, behind the
-- admin's back. Each change now adds one to `limit_revision` in the same UPDATE, every copy
-- carries the revision it was read with, and lua/set_limit.lua only writes a limit whose
-- revision is at least the one Redis holds.
--
-- Existing events start at 0, and settings in Redis without a revision accept any.

ALTER TABLE events
    ADD COLUMN limit_revision bigint NOT NULL DEFAULT 0 CHECK (limit_revision >= 0);
