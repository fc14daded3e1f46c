-- The strategy lab left the service (issue 16): it is its own crate now (crates/lab), and keeps
-- its tables in a schema of its own (`lab`), migrated by `coupon-lab serve`, never by the service.
--
-- Until then the service's migration 20261121060000_lab.sql created the lab's two tables and its
-- function in every service database, production included. This drops them where they exist:
-- they held only demonstration data (nothing in the issue path ever read or wrote them), and a
-- database migrated by this release holds nothing of the lab's. On a database created by this
-- release there is nothing to drop, hence IF EXISTS.
--
-- The old migration's row in _sqlx_migrations is deleted before the migrator runs
-- (src/store/retired.rs): sqlx refuses to run while the table names a version it does not have.

DROP FUNCTION IF EXISTS lab_give(uuid, text);
-- lab_claims first: it references lab_coupons. Their indexes go with them.
DROP TABLE IF EXISTS lab_claims;
DROP TABLE IF EXISTS lab_coupons;
