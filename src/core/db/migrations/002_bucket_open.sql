-- buckets strategy: ending a drop closes each of its bucket rows. An order locks its bucket and
-- writes the order in one statement; when that lock waits behind the end, Postgres re-checks the
-- locked row's own columns (EvalPlanQual), not other tables, so the "is the drop live" fact must
-- live on the bucket row for the order to see the end.
ALTER TABLE drop_stock_buckets ADD COLUMN open boolean NOT NULL DEFAULT true;
