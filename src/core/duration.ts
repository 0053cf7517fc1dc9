/** A duration as people write it: 500ms, 30s, 2m, 72h, 7d. */
export const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
const UNIT_MS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000}

/** "500ms" | "30s" | "2m" | "72h" | "7d" | 1.5 (seconds) → milliseconds; null when it is not a duration. */
export function durationMs(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value * 1000 : null
  const m = DURATION_RE.exec(value.trim())
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null
}
