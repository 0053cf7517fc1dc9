-- A fan-out page inserts a row for each "notify me" follower who followed before the event
-- (created_at < the event's time). With created_at in the partial index the page is an index-only
-- scan; without it every one of a page's 5,000 followers cost a heap page read (36 ms a page on a
-- freshly started server, against about 2 ms).
DROP INDEX follows_notify_idx;
CREATE INDEX follows_notify_idx ON follows (creator_id, user_id) INCLUDE (created_at) WHERE notify;
