-- Sharded events: one event day's stock split over several Redis buckets (issue 7).
--
-- One event's keys share one hash slot, so one event can never go faster than one Redis core.
-- An event created with `shards: N` (1 to 64) keeps its day's stock in N buckets, each under its
-- own hash tag, each holding its share of the daily limit and numbering its own coupons from 1
-- (see src/issuing/walk.rs). So a coupon's number is only unique within its bucket: the
-- constraint "one holder per number" becomes "one holder per number per bucket". "One coupon
-- per user per day" stays as it was, over the whole event: the walk over buckets guarantees it,
-- and this constraint checks it.
--
-- Existing events and coupons are unsharded: one bucket, number 0, which keeps every key and
-- every number exactly as it was.

ALTER TABLE events
    ADD COLUMN shards smallint NOT NULL DEFAULT 1 CHECK (shards BETWEEN 1 AND 64);

ALTER TABLE coupons
    ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 63);

ALTER TABLE coupons
    DROP CONSTRAINT coupons_one_per_seq,
    ADD CONSTRAINT coupons_one_per_seq UNIQUE (event_id, day, shard, seq);
