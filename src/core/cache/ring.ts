import {hash32} from '../hash.js'

export interface RingOptions {
  /** Virtual nodes (points on the ring) per node. Default 160. */
  vnodes?: number
}

export const DEFAULT_VNODES = 160
const SLICE_BITS = 12
const SLICES = 1 << SLICE_BITS

/**
 * Consistent hashing with virtual nodes: each node owns `vnodes` points on a 32-bit circle and a
 * key belongs to the first point clockwise of its hash (binary search, O(log n·vnodes)).
 * Adding or removing one of n nodes moves about 1/n of the keys; shares spread ~1/√vnodes.
 */
export class HashRing {
  readonly vnodes: number
  private names: string[] = []
  private points = new Uint32Array(0)
  /** owners[i]: index into names of the node owning points[i]. */
  private owners = new Int32Array(0)
  /**
   * starts[b]: index of the first point ≥ b·2^20 (the circle cut into 4096 equal slices), so a
   * lookup binary-searches only the few points of its slice instead of all of them.
   */
  private starts = new Int32Array(SLICES + 1)

  constructor(nodes: Iterable<string> = [], options: RingOptions = {}) {
    this.vnodes = options.vnodes ?? DEFAULT_VNODES
    if (!Number.isInteger(this.vnodes) || this.vnodes < 1) throw new RangeError(`vnodes must be a whole number ≥ 1, got ${this.vnodes}`)
    for (const n of nodes) if (!this.names.includes(n)) this.names.push(n)
    this.rebuild()
  }

  get nodes(): readonly string[] {
    return this.names
  }

  get size(): number {
    return this.names.length
  }

  add(node: string): void {
    if (this.names.includes(node)) return
    this.names.push(node)
    this.rebuild()
  }

  /** Removes a node; returns false when it was not on the ring. */
  remove(node: string): boolean {
    const i = this.names.indexOf(node)
    if (i < 0) return false
    this.names.splice(i, 1)
    this.rebuild()
    return true
  }

  private rebuild(): void {
    const entries: Array<[number, number]> = []
    this.names.forEach((name, owner) => {
      for (let v = 0; v < this.vnodes; v++) entries.push([hash32(`${name}#${v}`), owner])
    })
    // ties (rare) broken by node name so every process builds the same ring
    entries.sort((a, b) => a[0] - b[0] || (this.names[a[1]] < this.names[b[1]] ? -1 : 1))
    this.points = Uint32Array.from(entries, (e) => e[0])
    this.owners = Int32Array.from(entries, (e) => e[1])
    const starts = new Int32Array(SLICES + 1)
    let p = 0
    for (let b = 0; b < SLICES; b++) {
      const from = b * 2 ** (32 - SLICE_BITS)
      while (p < this.points.length && this.points[p] < from) p++
      starts[b] = p
    }
    starts[SLICES] = this.points.length
    this.starts = starts
  }

  /** Index of the first point at or clockwise of hash (wrapping to 0). */
  pointIndex(hash: number): number {
    const points = this.points
    const slice = hash >>> (32 - SLICE_BITS)
    let lo = this.starts[slice]
    let hi = this.starts[slice + 1]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid] < hash) lo = mid + 1
      else hi = mid
    }
    return lo === points.length ? 0 : lo
  }

  get pointCount(): number {
    return this.points.length
  }

  /** Node index owning the point at position p (0 ≤ p < pointCount). */
  ownerAt(p: number): number {
    return this.owners[p]
  }

  /** Each node's exact share of the circle (arc lengths owned), in `nodes` order. */
  arcShares(): number[] {
    const shares = new Array<number>(this.names.length).fill(0)
    const n = this.points.length
    for (let i = 0; i < n; i++) {
      // the arc (points[i-1], points[i]] belongs to points[i]'s owner; the first arc wraps
      const prev = i === 0 ? this.points[n - 1] - 2 ** 32 : this.points[i - 1]
      shares[this.owners[i]] += (this.points[i] - prev) / 2 ** 32
    }
    return shares
  }

  /** The node owning a key. Throws on an empty ring. */
  lookup(key: string): string {
    return this.names[this.lookupIndex(hash32(key))]
  }

  /** Index (into `nodes`) of the node owning a hash. */
  lookupIndex(hash: number): number {
    if (this.points.length === 0) throw new RangeError('the ring has no nodes')
    return this.owners[this.pointIndex(hash)]
  }

  /**
   * Node indexes in clockwise order from a hash, each node once: the owner first, then where its
   * keys move if it is full or down. Up to `limit` nodes (default all).
   */
  walkIndexes(hash: number, limit = this.names.length): number[] {
    const out: number[] = []
    const n = this.points.length
    if (n === 0) return out
    const want = Math.min(limit, this.names.length)
    const seen = new Uint8Array(this.names.length)
    for (let i = this.pointIndex(hash), steps = 0; out.length < want && steps < n; i = (i + 1) % n, steps++) {
      const owner = this.owners[i]
      if (!seen[owner]) {
        seen[owner] = 1
        out.push(owner)
      }
    }
    return out
  }

  /** The first `count` distinct nodes clockwise of a key (replica placement, failover order). */
  successors(key: string, count: number): string[] {
    return this.walkIndexes(hash32(key), count).map((i) => this.names[i])
  }
}

/** ⌈(1+ε)·m/n⌉: the most balls any of n nodes may hold when m are placed (Mirrokni et al.). */
export function boundedCapacity(epsilon: number, balls: number, nodes: number): number {
  // the tiny slack keeps float error ((1+0.1)·10/11 = 1.0000000000000002) from adding a whole ball
  return Math.max(1, Math.ceil(((1 + epsilon) * balls) / nodes - 1e-9))
}

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam 2018): a ball goes to
 * the first node clockwise of its hash whose load is below ⌈(1+ε)·m/n⌉, m counting this ball.
 * Since the cap only grows with m, no node ever holds more than ⌈(1+ε)·m/n⌉ of the m balls placed.
 * Placement depends on arrival order, so it is for one process's own assignments (a simulation,
 * a request router), not for agreeing on a key's home across processes.
 */
export class BoundedLoads {
  readonly epsilon: number
  /** loads[i]: balls held by ring.nodes[i]. */
  readonly loads: Float64Array
  private total = 0

  /** @param epsilon imbalance allowed over the average; default 0.25. */
  constructor(readonly ring: HashRing, epsilon = 0.25) {
    if (!(epsilon > 0)) throw new RangeError(`epsilon must be > 0, got ${epsilon}`)
    this.epsilon = epsilon
    this.loads = new Float64Array(ring.size)
  }

  get balls(): number {
    return this.total
  }

  /** The cap once one more ball is placed. */
  capacity(): number {
    return boundedCapacity(this.epsilon, this.total + 1, this.ring.size)
  }

  /** Places one ball with this hash; returns the node index. */
  assignHash(hash: number): number {
    const cap = this.capacity()
    const ring = this.ring
    // fast path: the owner has room (most balls)
    const owner = ring.lookupIndex(hash)
    if (this.loads[owner] < cap) return this.place(owner)
    // walk clockwise point by point: a full node's later points are skipped by the same test
    const n = ring.pointCount
    for (let p = ring.pointIndex(hash), steps = 0; steps < n; p = (p + 1) % n, steps++) {
      const i = ring.ownerAt(p)
      if (this.loads[i] < cap) return this.place(i)
    }
    // unreachable: n·cap ≥ m, so some node is below the cap
    throw new Error('bounded loads: no node below capacity')
  }

  assign(key: string): string {
    return this.ring.nodes[this.assignHash(hash32(key))]
  }

  private place(i: number): number {
    this.loads[i]++
    this.total++
    return i
  }

  /** Takes one ball off a node (a request finished, a key was dropped). */
  release(index: number): void {
    if (this.loads[index] <= 0) throw new RangeError(`node ${index} holds no balls`)
    this.loads[index]--
    this.total--
  }
}
