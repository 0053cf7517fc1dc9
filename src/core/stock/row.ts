import type {Queryable} from '../db/types.js'
import {withRetry} from '../orders/retry.js'
import {
  COMPLETE_KEY_CTE,
  Fenced,
  NotTaken,
  ORDER_CTES,
  PRIOR_CTE,
  dropState,
  emitDrop,
  eventsCte,
  freshAnswerCtes,
  freshResponse,
  notLive,
  queryFresh,
  utcDay,
  WARM_UP_ORDER,
  type FreshRow,
} from '../orders/write.js'
import type {DropStatus} from '../events.js'
import type {Placed} from '../orders/types.js'
import type {ClaimedOrder, FreshOrder, OrderContext, StockStrategy} from './types.js'

/**
 * The `row` strategy: one conditional UPDATE of the drop's row takes the units, in the same
 * statement as the order, its events and the stored answer, so the hot row lock is held only for
 * the rest of that statement and the COMMIT. The order that takes the last unit moves the drop to
 * sold_out and writes sold_out right there; the one that crosses the low-stock threshold (or the
 * first sale of a drop that starts at or below it: available only goes down, so exactly one order
 * does) writes stock_low. `redis-gate` takes stock the same way (see rowTaking).
 */

/**
 * CTE `took`: the take, one row when the units were taken. `also` adds conditions (SQL starting
 * with AND). $2 drop, $3 qty.
 */
function takeCte(strategy: string, also = ''): string {
  return `took AS (
      UPDATE drops SET available = available - $3::int,
        status = CASE WHEN available = $3::int THEN 'sold_out' ELSE status END,
        low_stock_notified = low_stock_notified OR available - $3::int <= low_stock_threshold,
        updated_at = now()
      WHERE id = $2::bigint AND strategy = '${strategy}' AND status = 'live' AND available >= $3::int ${also}
      RETURNING id, creator_id, product_id, available, status, low_stock_threshold,
        (available + $3::int > low_stock_threshold OR available + $3::int = stock_total) AND available <= low_stock_threshold AS crossed)`
}

/** The events the take itself owes, beside order_confirmed. */
const TAKE_EVENTS = [
  `SELECT 'stock_low', id, creator_id, NULL, jsonb_build_object('productId', product_id, 'available', available, 'threshold', low_stock_threshold) FROM took WHERE crossed`,
  `SELECT 'sold_out', id, creator_id, NULL, jsonb_build_object('productId', product_id) FROM took WHERE status = 'sold_out'`,
]

/** What the take returns about the drop: its status after the take and whether it crossed the threshold. */
interface Took {
  new_status: DropStatus | null
  crossed: boolean | null
}

function statements(strategy: string) {
  return {
    /** $6 fingerprint, $7 now, $8 the sold-out body. */
    fresh: {
      name: `orders.fresh.${strategy}`,
      text: `WITH ${PRIOR_CTE},
    snap AS (SELECT status, available FROM drops WHERE id = $2::bigint AND strategy = '${strategy}'),
    ${takeCte(strategy, 'AND NOT EXISTS (SELECT 1 FROM prior)')},
    d AS (SELECT id, creator_id FROM took),
    ${ORDER_CTES},
    sold AS (
      SELECT $8::jsonb AS b FROM snap
      WHERE NOT EXISTS (SELECT 1 FROM took) AND NOT EXISTS (SELECT 1 FROM prior)
        AND (snap.status = 'sold_out' OR (snap.status = 'live' AND snap.available < $3::int))),
    ${freshAnswerCtes('$7')},
    ${eventsCte(...TAKE_EVENTS)}
    SELECT (SELECT count(*) FROM prior)::int AS prior, snap.status AS snap_status, answer.status AS response_status, answer.b AS body,
      took.status AS new_status, took.crossed
    FROM (SELECT 1) one LEFT JOIN snap ON true LEFT JOIN answer ON true LEFT JOIN took ON true`,
    },
    /** A claimed key: $5 key day, $6 the claim's token. */
    claimed: {
      name: `orders.claimed.${strategy}`,
      text: `WITH ${takeCte(strategy)},
    d AS (SELECT id, creator_id FROM took),
    ${ORDER_CTES},
    ${COMPLETE_KEY_CTE},
    ${eventsCte(...TAKE_EVENTS)}
    SELECT took.status AS new_status, took.crossed, body.b AS body, (SELECT count(*) FROM k)::int AS keyed
    FROM took LEFT JOIN body ON true`,
    },
  }
}

function emitTake(order: OrderContext, took: Took): void {
  if (took.crossed) emitDrop(order.deps, order.info, took.new_status!, 'stock_low')
  if (took.new_status === 'sold_out') emitDrop(order.deps, order.info, 'sold_out', 'sold_out')
}

/** The fresh-key statement's parameters for an order (listed above `fresh`). */
function freshParams({input, fingerprint, now, soldOut}: FreshOrder): unknown[] {
  return [input.userId, input.dropId, input.qty, input.idempotencyKey, utcDay(now), fingerprint, now, JSON.stringify(soldOut.body)]
}

/** The stock and order hooks of a strategy that takes stock from the drop's row (`row`, and `redis-gate` behind its gate). */
export function rowTaking(strategy: string): Pick<StockStrategy, 'bucketCount' | 'available' | 'placeFresh' | 'warmFresh' | 'placeClaimed'> {
  const sql = statements(strategy)
  return {
    bucketCount: () => 1,
    available: (d) => `${d}.available`,

    async placeFresh(order: OrderContext): Promise<Placed | null> {
      const {input} = order
      const r = await queryFresh<FreshRow & Took>(order.deps.db, sql.fresh, freshParams(order))
      const response = r && freshResponse(r, input.dropId)
      if (!r || !response) return null
      emitTake(order, r)
      return {response, replay: false, pgSoldOut: r.new_status === 'sold_out' || (response.status === 409 && r.snap_status === 'sold_out')}
    },

    async warmFresh(q: Queryable): Promise<void> {
      await q.query(sql.fresh, freshParams(WARM_UP_ORDER))
    },

    async placeClaimed(order: ClaimedOrder): Promise<Placed> {
      const {deps, input, owned} = order
      type Row = Took & {body: Record<string, unknown>; keyed: number}
      try {
        const row = await withRetry(() =>
          deps.db.transaction(async (tx) => {
            const {rows} = await tx.query<Row>(sql.claimed, [input.userId, input.dropId, input.qty, input.idempotencyKey, owned.day, owned.token])
            if (!rows.length) throw new NotTaken()
            if (rows[0].keyed !== 1) throw new Fenced()
            return rows[0]
          }),
        )
        emitTake(order, row)
        return {response: {status: 201, body: row.body}, replay: false, pgSoldOut: row.new_status === 'sold_out'}
      } catch (err) {
        if (!(err instanceof NotTaken)) throw err
      }
      // not live any more, or fewer units than asked: read why
      const state = await dropState(deps.db, input.dropId)
      if (state.status === 'sold_out' || (state.status === 'live' && state.available < input.qty)) {
        return {response: await order.storeSoldOut(deps.db), replay: false, pgSoldOut: state.status === 'sold_out'}
      }
      throw notLive(input.dropId, state.status)
    },
  }
}

export const row: StockStrategy = {name: 'row', ...rowTaking('row')}
