import {saturate, saturationPlan, type SaturateResult, type SaturateStep} from '../load/saturate.js'
import {createBuilders} from '../traffic/builders.js'
import {REQUEST_GROUPS, type Scenario} from '../scenario/schema.js'
import {createRunDrop, startDrop, type Stack} from './stack.js'

/**
 * `--mode saturate`: autocannon climbs through connection counts with the scenario's read mix on
 * a live drop and reports the highest throughput at which the read thresholds hold. A closed
 * model slows down with the server: this is a throughput ceiling, never the capacity.
 */
export async function saturateRun(stack: Stack, s: Scenario, o: {stepSeconds?: number; onStep?: (step: SaturateStep) => void}): Promise<SaturateResult> {
  const dropId = await createRunDrop(stack, s)
  await startDrop(stack.engine.deps, dropId)
  const {builders} = createBuilders(s, {users: stack.data.users, creators: stack.data.creators, products: stack.data.products, dropId, secret: stack.secret})
  const plan = saturationPlan(s, REQUEST_GROUPS.read)
  return saturate({target: stack.target, builders, weights: plan.weights, thresholds: plan.thresholds, seed: s.dataset.seed, stepSeconds: o.stepSeconds, onStep: o.onStep})
}
