import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

/** A small race: sells out within the run, with retries, browsing and follows around it. */
export const SMALL = `
name: small-race
dataset: {users: 600, creators: 5, celebrityFollowers: 300, productsPerCreator: 2, seed: 7}
drop: {stock: 40, startOffset: 1s, lowStock: 5}
order: {retryRate: 0.2, qty: {1: 0.8, 2: 0.2}}
notify: {sample: 5}
phases:
  - name: browse
    duration: 1s
    rates: {browse_product: 20, browse_drop: 10}
  - name: race
    duration: 3s
    rates: {browse_product: 20, browse_drop: 20, list_followers: 5, follow: 3, unfollow: 1, notifications: 5, order: 40}
thresholds:
  - read.p95 < 2s
  - order.p95 < 2s
  - notify.p95 < 5s
  - errors.rate < 1%
`

/** Loose generator budgets: these tests check wiring and verdicts on a shared 2-core machine, not speed. */
export const RELAXED = `generator: {slackMs: 200, maxLateFraction: 0.5, maxLagMs: 2000}\n`

export function scenarioFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'scenario-')), 'scenario.yaml')
  writeFileSync(file, text)
  return file
}
