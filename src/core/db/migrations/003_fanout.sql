-- Fan-out (issue 5): pending follower events (not order_confirmed) are few even while a drop's
-- order confirmations pile up; the feed reads them for every user and workers claim them first.
CREATE INDEX outbox_pending_followers_idx ON outbox (id) WHERE processed_at IS NULL AND event_type <> 'order_confirmed';
