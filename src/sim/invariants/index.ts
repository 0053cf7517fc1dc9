import {checkDropInvariants, type AcknowledgedOrder} from '../../core/audit/drop.js'
import type {Queryable} from '../../core/db/types.js'
import {phaseTypes} from '../load/arrivals.js'
import type {InvariantResult} from '../metrics/result.js'
import type {Scenario} from '../scenario/schema.js'
import {checkStaleReads, type StaleReadLedger} from '../traffic/stale-reads.js'
import {checkBlackBox, type BlackBoxLedger} from './black-box.js'

// checked on every run with a drop, whatever the scenario lists: a run that loses stock means nothing
const ALWAYS_CHECKED = ['stock_conserved']
// the request types whose answers the stale-read check follows
const EDITS = new Set(['edit_product', 'remove_product'])

/** What the generator learnt from the answers, for the checks after the run. */
export interface AnswerLedger {
  acknowledged: AcknowledgedOrder[]
  /** The smallest quantity answered "sold out" (see checkDropInvariants). */
  minSoldOutQty: number | undefined
  staleReads?: StaleReadLedger
  /** The order answers the black-box invariants judge (checkBlackBox). */
  blackBox?: BlackBoxLedger
}

/**
 * The invariants of a run with a drop, in the run file's shape: those the scenario lists, checked
 * in the database after the run; no_stale_reads from the answers when the scenario edits or
 * removes products; and the black-box invariants from the order answers (./black-box.ts), the
 * same ones a run against another API with no database gets, in the same table.
 */
export async function runInvariants(db: Queryable, dropId: number, s: Scenario, answers: AnswerLedger): Promise<InvariantResult[]> {
  const checks = await checkDropInvariants(db, dropId, answers.acknowledged, {minSoldOutQty: answers.minSoldOutQty})
  const names = new Set<string>([...s.invariants, ...ALWAYS_CHECKED])
  const edits = s.phases.some((p) => phaseTypes(p).some((t) => EDITS.has(t)))
  const inDatabase: InvariantResult[] = [...checks.filter((c) => names.has(c.name)), ...(edits ? [checkStaleReads(answers)] : [])].map((c) => ({
    name: c.name,
    pass: c.ok,
    detail: c.ok ? undefined : JSON.stringify(c.details),
    data: c.details,
  }))
  return [...inDatabase, ...(answers.blackBox ? checkBlackBox(answers.blackBox) : [])]
}
