-- Every product answer carries a version, bumped by each edit and by the removal, so a reader (the
-- load generator's no_stale_reads check) can tell a cached copy older than an acknowledged edit.
-- A constant default is a catalog-only change in Postgres ≥ 11: no table rewrite, even at millions of rows.
ALTER TABLE products ADD COLUMN version integer NOT NULL DEFAULT 1;
