import {durationMs} from '../core/duration.js'
import {UsageError} from '../core/errors.js'

/** A duration flag (72h, 10m, 30s, 7d, 500ms) → milliseconds, or a usage error naming the flag. */
export function durationFlag(text: string, flag: string): number {
  const ms = durationMs(text)
  if (ms === null) throw new UsageError(flag, `expected a duration like 72h, 10m or 30s, got ${text}`)
  return ms
}

/** Parses `--qty 1-2` or `--qty 3`. */
export function parseQtyRange(text: string): {qtyMin: number; qtyMax: number} {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim())
  if (!m) throw new UsageError('--qty', `expected N or MIN-MAX, got ${text}`, {hint: 'Example: --qty 1-2'})
  const qtyMin = Number(m[1])
  const qtyMax = m[2] === undefined ? qtyMin : Number(m[2])
  if (qtyMin < 1 || qtyMax < qtyMin) throw new UsageError('--qty', `expected 1 ≤ MIN ≤ MAX, got ${text}`)
  return {qtyMin, qtyMax}
}
