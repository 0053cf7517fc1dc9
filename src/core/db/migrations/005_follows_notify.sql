-- A pull-delivered (celebrity) event still pushes to followers who asked to be notified ("notify
-- me", about 1%): this index lets it walk those few instead of every follower.
CREATE INDEX follows_notify_idx ON follows (creator_id, user_id) WHERE notify;
