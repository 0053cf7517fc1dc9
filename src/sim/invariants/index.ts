import {checkDropInvariants, type AcknowledgedOrder} from '../../core/audit/drop.js'
import type {Queryable} from '../../core/db/types.js'
import type {InvariantResult} from '../metrics/result.js'

// checked on every run with a drop, whatever the scenario lists: a run that loses stock means nothing
const ALWAYS_CHECKED = ['stock_conserved']

/**
 * The database-backed invariants a scenario asks for, checked on its drop after the run, in the
 * run file's shape. `minSoldOutQty`: the smallest quantity answered "sold out" (see checkDropInvariants).
 */
export async function databaseInvariants(
  db: Queryable,
  dropId: number,
  wanted: readonly string[],
  answers: {acknowledged: AcknowledgedOrder[]; minSoldOutQty: number | undefined},
): Promise<InvariantResult[]> {
  const checks = await checkDropInvariants(db, dropId, answers.acknowledged, {minSoldOutQty: answers.minSoldOutQty})
  const names = new Set<string>([...wanted, ...ALWAYS_CHECKED])
  return checks.filter((c) => names.has(c.name)).map((c) => ({name: c.name, pass: c.ok, detail: c.ok ? undefined : JSON.stringify(c.details), data: c.details}))
}
