import {durationMs} from '../core/duration.js'
import {UsageError} from '../core/errors.js'

/** A duration flag (72h, 10m, 30s, 7d, 500ms) → milliseconds, or a usage error naming the flag. */
export function durationFlag(text: string, flag: string): number {
  const ms = durationMs(text)
  if (ms === null) throw new UsageError(flag, `expected a duration like 72h, 10m or 30s, got ${text}`)
  return ms
}
