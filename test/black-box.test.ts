import {describe, expect, it} from 'vitest'
import {canonicalJson, checkBlackBox, createBlackBoxTracker, type OrderAnswer} from '../src/sim/invariants/black-box.js'

type A = Omit<OrderAnswer, 'body'>
const ack = (atMs: number, user: number, key: string, orderId: number | null, units = 1): A => ({atMs, answeredMs: atMs + 5, user, key, status: 201, outcome: 'success', orderId, units})
const soldOut = (atMs: number, user: number, key: string): A => ({atMs, answeredMs: atMs + 5, user, key, status: 409, outcome: 'sold_out', orderId: null, units: 1})
const body = (id: number | null) => JSON.stringify({id, qty: 1})

const results = (stock: number, answers: Array<[A, string]>) => {
  const t = createBlackBoxTracker(stock)
  for (const [a, b] of answers) t.record(a, b)
  return Object.fromEntries(checkBlackBox(t.ledger).map((r) => [r.name, r]))
}

describe('black-box invariants from plain answers', () => {
  it('all hold for a clean sale: replays equal, one order per key, units within the stock', () => {
    const r = results(3, [
      [ack(10, 1, 'k1', 101), body(101)],
      [ack(20, 2, 'k2', 102, 2), body(102)],
      // a replay with the keys in another order is the same answer
      [ack(30, 1, 'k1', 101), JSON.stringify({qty: 1, id: 101})],
      [soldOut(40, 3, 'k3'), '{"error":"sold out"}'],
    ])
    expect(Object.values(r).map((x) => [x.name, x.pass, x.detail])).toEqual([
      ['acked_units_le_stock', true, undefined],
      ['one_order_per_key', true, undefined],
      ['replay_identical', true, undefined],
      ['no_sold_out_then_sale', true, undefined],
    ])
    expect(r.acked_units_le_stock.data).toMatchObject({ackedUnits: 3, orders: 2})
    expect(r.replay_identical.data).toMatchObject({compared: 1, mismatches: 0})
  })

  it('an oversell fails acked_units_le_stock naming the answers past the stock', () => {
    const r = results(2, [
      [ack(10, 1, 'k1', 1), body(1)],
      [ack(11, 2, 'k2', 2), body(2)],
      [ack(12, 3, 'k3', 3), body(3)],
    ])
    expect(r.acked_units_le_stock.pass).toBe(false)
    expect(r.acked_units_le_stock.detail).toBe('3 units acknowledged in 3 orders, stock 2; past the stock: 0.012s user 3 key k3 → 201 {"id":3,"qty":1}')
  })

  it('a replay that placed a second order fails one_order_per_key and replay_identical, and counts both orders', () => {
    const r = results(10, [
      [ack(10, 7, 'k1', 1), body(1)],
      [ack(50, 7, 'k1', 2), body(2)],
      // the same key from another user is another request
      [ack(60, 8, 'k1', 3), body(3)],
    ])
    expect(r.one_order_per_key.pass).toBe(false)
    expect(r.one_order_per_key.detail).toBe('1 repeated key(s) acknowledged with another order id: first 0.010s user 7 key k1 → 201 {"id":1,"qty":1}; then 0.050s user 7 key k1 → 201 {"id":2,"qty":1}')
    expect(r.replay_identical.pass).toBe(false)
    expect(r.acked_units_le_stock.data).toMatchObject({ackedUnits: 3, orders: 3})
  })

  it('a sale sent after a sold-out answer arrived is a warning, never a failure; one sent before is not', () => {
    const r = results(10, [
      [soldOut(100, 1, 'k1'), '{}'],
      [ack(104, 2, 'k2', 2), body(2)],
      [ack(200, 3, 'k3', 3), body(3)],
    ])
    expect(r.no_sold_out_then_sale).toMatchObject({pass: true, data: {warning: true, sales: 1}})
    expect(r.no_sold_out_then_sale.detail).toMatch(/^warning: 1 sale\(s\) sent after a sold-out answer .*then 0\.200s user 3 key k3/)
  })

  it('answers without order ids are counted by key; bodies are cut for the report but compared whole', () => {
    const long = 'x'.repeat(1000)
    const t = createBlackBoxTracker(1)
    t.record(ack(1, 1, 'k', null), JSON.stringify({long, n: 1}))
    t.record(ack(2, 1, 'k', null), JSON.stringify({long, n: 2}))
    const r = Object.fromEntries(checkBlackBox(t.ledger).map((x) => [x.name, x]))
    expect(r.acked_units_le_stock).toMatchObject({pass: true, data: {ackedUnits: 1, withoutOrderId: 2}})
    expect(r.replay_identical.pass).toBe(false)
    expect(t.ledger.replayMismatches[0].then.body.length).toBeLessThan(400)
    expect(canonicalJson('{"b":[{"d":1,"c":2}],"a":null}')).toBe('{"a":null,"b":[{"c":2,"d":1}]}')
    expect(canonicalJson('not json')).toBe('not json')
  })
})
