-- The dataset `seed` loaded, by a fingerprint of its options: a scenario run whose dataset has
-- the same fingerprint reuses the data instead of seeding again.
CREATE TABLE livedrop_dataset (
  fingerprint text NOT NULL,
  seeded_at timestamptz NOT NULL DEFAULT now()
);
