import {createRandom, createZipf} from '../random.js'
import {hash32} from '../hash.js'
import {BoundedLoads, HashRing, DEFAULT_VNODES} from './ring.js'

export interface RingSimOptions {
  /** Cache nodes. Default 8. */
  nodes?: number
  /** Virtual nodes per node. Default 160. */
  vnodes?: number
  /** Distinct keys. Default 1,000,000. */
  keys?: number
  /** Requests drawn over the keys. Default: as many as keys. */
  requests?: number
  /** Zipf exponent of key popularity (key k has weight 1/k^s); 0 or unset = uniform. */
  zipf?: number
  /** ε of bounded loads, compared beside plain hashing. Default 0.25. */
  bounded?: number
  /** Nodes added (measures keys moved). Default 0. */
  add?: number
  /** Nodes removed (measures keys moved). Default 0. */
  remove?: number
  /** Nodes failed at the start: the most loaded ones (the worst case). Default 0. */
  fail?: number
  /** Fail, in rounds, every node pushed over capacity until none is. Default false. */
  cascade?: boolean
  /** Node capacity as a multiple of the average request load with all nodes up. Default 1.3. */
  capacity?: number
  /** PRNG seed for the request draw. Default 1. */
  seed?: number
}

export interface NodeShare {
  node: string
  /** Fractions of all keys / requests, plain consistent hashing. */
  keys: number
  requests: number
  /** The same under bounded loads (keys and requests placed as balls). */
  boundedKeys: number
  boundedRequests: number
}

export interface Spread {
  /** max share ÷ average share */
  maxOverAvg: number
  /** standard deviation of shares ÷ average share */
  cv: number
}

export interface CascadeResult {
  /** Nodes alive at the end. */
  survivors: number
  /** Rounds of failures after the initial ones. */
  rounds: number
  /** Node names in the order they failed (initial failures first). */
  failed: string[]
  /** Highest node load seen ÷ capacity, in the final state (0 when all failed). */
  peakLoadOverCapacity: number
}

export interface RingSimResult {
  options: Required<Omit<RingSimOptions, 'requests'>> & {requests: number}
  shares: NodeShare[]
  spread: {keys: Spread; requests: Spread; boundedKeys: Spread; boundedRequests: Spread}
  /** Theory: spread of shares ≈ 1/√vnodes. */
  expectedCv: number
  /** The hottest key's share of requests. */
  hottestKeyShare: number
  moved?: {nodesAdded: number; nodesRemoved: number; plain: number; bounded: number; expected: number}
  failure?: {capacityRequests: number; plain: CascadeResult; bounded: CascadeResult}
}

function spread(counts: ArrayLike<number>): Spread {
  const xs = Array.from(counts)
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length
  if (mean === 0) return {maxOverAvg: 0, cv: 0}
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length)
  return {maxOverAvg: Math.max(...xs) / mean, cv: sd / mean}
}

/** Draws request key indexes: uniform, or Zipf(s) by inverse CDF with binary search. */
function drawRequests(keys: number, requests: number, zipf: number, seed: number): Int32Array {
  const random = createRandom(seed)
  const out = new Int32Array(requests)
  if (!(zipf > 0)) {
    for (let i = 0; i < requests; i++) out[i] = Math.floor(random() * keys)
    return out
  }
  const rank = createZipf(keys, zipf)
  for (let i = 0; i < requests; i++) out[i] = rank(random) - 1
  return out
}

/** Node index of each hash under plain hashing. */
function plainOwners(ring: HashRing, hashes: Uint32Array): Int32Array {
  const out = new Int32Array(hashes.length)
  for (let i = 0; i < hashes.length; i++) out[i] = ring.lookupIndex(hashes[i])
  return out
}

/** Node index of each ball (in order) under bounded loads. */
function boundedOwners(ring: HashRing, hashes: Uint32Array, epsilon: number): Int32Array {
  const b = new BoundedLoads(ring, epsilon)
  const out = new Int32Array(hashes.length)
  for (let i = 0; i < hashes.length; i++) out[i] = b.assignHash(hashes[i])
  return out
}

function countBy(owners: Int32Array, n: number): Float64Array {
  const c = new Float64Array(n)
  for (let i = 0; i < owners.length; i++) c[owners[i]]++
  return c
}

/** Loads per node (by name) of requests over the alive nodes. */
function requestLoads(alive: string[], vnodes: number, requestHashes: Uint32Array, epsilon: number | null): Map<string, number> {
  const ring = new HashRing(alive, {vnodes})
  const owners = epsilon === null ? plainOwners(ring, requestHashes) : boundedOwners(ring, requestHashes, epsilon)
  const counts = countBy(owners, ring.size)
  return new Map(ring.nodes.map((name, i) => [name, counts[i]]))
}

/**
 * The domino effect: the initial nodes fail, their requests move on; every node then over
 * capacity fails too, round after round, until the survivors hold (or none is left).
 */
function cascade(all: string[], initial: string[], vnodes: number, requestHashes: Uint32Array, capacity: number, epsilon: number | null, rounds: boolean): CascadeResult {
  const failed = [...initial]
  let alive = all.filter((n) => !failed.includes(n))
  let round = 0
  let loads = alive.length ? requestLoads(alive, vnodes, requestHashes, epsilon) : new Map<string, number>()
  while (rounds && alive.length > 0) {
    const over = alive.filter((n) => (loads.get(n) ?? 0) > capacity)
    if (over.length === 0) break
    round++
    failed.push(...over)
    alive = alive.filter((n) => !over.includes(n))
    loads = alive.length ? requestLoads(alive, vnodes, requestHashes, epsilon) : new Map()
  }
  const peak = alive.length ? Math.max(...alive.map((n) => loads.get(n) ?? 0)) / capacity : 0
  return {survivors: alive.length, rounds: round, failed, peakLoadOverCapacity: peak}
}

/**
 * Simulates key and request placement on a ring: shares per node (plain and bounded loads),
 * keys moved by adding/removing nodes, and the failure cascade. Pure and deterministic.
 */
export function simulateRing(options: RingSimOptions = {}): RingSimResult {
  const o = {
    nodes: options.nodes ?? 8,
    vnodes: options.vnodes ?? DEFAULT_VNODES,
    keys: options.keys ?? 1_000_000,
    requests: options.requests ?? options.keys ?? 1_000_000,
    zipf: options.zipf ?? 0,
    bounded: options.bounded ?? 0.25,
    add: options.add ?? 0,
    remove: options.remove ?? 0,
    fail: options.fail ?? 0,
    cascade: options.cascade ?? false,
    capacity: options.capacity ?? 1.3,
    seed: options.seed ?? 1,
  }
  for (const [name, v, min] of [['nodes', o.nodes, 1], ['vnodes', o.vnodes, 1], ['keys', o.keys, 1], ['requests', o.requests, 1], ['add', o.add, 0], ['remove', o.remove, 0], ['fail', o.fail, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be a whole number ≥ ${min}, got ${v}`)
  }
  if (o.remove >= o.nodes) throw new RangeError(`remove must leave at least one node (nodes ${o.nodes})`)
  if (o.fail > o.nodes) throw new RangeError(`fail cannot exceed nodes (${o.nodes})`)
  if (!(o.bounded > 0)) throw new RangeError(`bounded (ε) must be > 0, got ${o.bounded}`)
  if (!(o.capacity > 0)) throw new RangeError(`capacity must be > 0, got ${o.capacity}`)
  if (o.zipf < 0) throw new RangeError(`zipf must be ≥ 0, got ${o.zipf}`)

  const names = Array.from({length: o.nodes}, (_, i) => `node-${i}`)
  const ring = new HashRing(names, {vnodes: o.vnodes})
  const keyHashes = new Uint32Array(o.keys)
  for (let k = 0; k < o.keys; k++) keyHashes[k] = hash32(`key:${k}`)
  const requestKeys = drawRequests(o.keys, o.requests, o.zipf, o.seed)
  const requestHashes = Uint32Array.from(requestKeys, (k) => keyHashes[k])

  const plainKeys = plainOwners(ring, keyHashes)
  const boundedKeys = boundedOwners(ring, keyHashes, o.bounded)
  const keyCounts = countBy(plainKeys, o.nodes)
  const boundedKeyCounts = countBy(boundedKeys, o.nodes)
  const reqCounts = countBy(plainOwners(ring, requestHashes), o.nodes)
  const boundedReqCounts = countBy(boundedOwners(ring, requestHashes, o.bounded), o.nodes)
  const keyHits = countBy(requestKeys, o.keys)

  const result: RingSimResult = {
    options: o,
    shares: names.map((node, i) => ({
      node,
      keys: keyCounts[i] / o.keys,
      requests: reqCounts[i] / o.requests,
      boundedKeys: boundedKeyCounts[i] / o.keys,
      boundedRequests: boundedReqCounts[i] / o.requests,
    })),
    spread: {keys: spread(keyCounts), requests: spread(reqCounts), boundedKeys: spread(boundedKeyCounts), boundedRequests: spread(boundedReqCounts)},
    expectedCv: 1 / Math.sqrt(o.vnodes),
    hottestKeyShare: keyHits.reduce((a, b) => Math.max(a, b), 0) / o.requests,
  }

  if (o.add > 0 || o.remove > 0) {
    const after = names.slice(0, o.nodes - o.remove).concat(Array.from({length: o.add}, (_, i) => `node-${o.nodes + i}`))
    const ring2 = new HashRing(after, {vnodes: o.vnodes})
    const plain2 = plainOwners(ring2, keyHashes)
    const bounded2 = boundedOwners(ring2, keyHashes, o.bounded)
    let movedPlain = 0
    let movedBounded = 0
    for (let k = 0; k < o.keys; k++) {
      if (ring.nodes[plainKeys[k]] !== ring2.nodes[plain2[k]]) movedPlain++
      if (ring.nodes[boundedKeys[k]] !== ring2.nodes[bounded2[k]]) movedBounded++
    }
    // removing r of n moves r/n; adding a to n moves a/(n+a); both: the removed plus the new share
    const m = o.nodes - o.remove + o.add
    const expected = o.remove / o.nodes + (o.add / m) * (1 - o.remove / o.nodes)
    result.moved = {nodesAdded: o.add, nodesRemoved: o.remove, plain: movedPlain / o.keys, bounded: movedBounded / o.keys, expected}
  }

  if (o.fail > 0 || o.cascade) {
    const capacityRequests = (o.capacity * o.requests) / o.nodes
    // the worst case: the most loaded nodes under plain hashing fail first
    const initial = names
      .map((n, i) => [n, reqCounts[i]] as const)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, o.fail)
      .map(([n]) => n)
    result.failure = {
      capacityRequests,
      plain: cascade(names, initial, o.vnodes, requestHashes, capacityRequests, null, o.cascade),
      bounded: cascade(names, initial, o.vnodes, requestHashes, capacityRequests, o.bounded, o.cascade),
    }
  }
  return result
}
