import type {OpenModelOptions} from '../load/open-model.js'
import type {Scenario} from '../scenario/schema.js'

/** The open-model executor's plan from a scenario: its phases (with the scenario's arrival where a phase has none) and generator settings. */
export function openModelPlan(s: Scenario): Pick<OpenModelOptions, 'phases' | 'seed' | 'connections' | 'slackMs' | 'timeoutMs' | 'maxLagMs'> {
  const g = s.generator
  return {
    phases: s.phases.map((p) => ({name: p.name, durationMs: p.duration, arrival: p.arrival ?? s.arrival, rates: p.rates, rampTo: p.rampTo})),
    seed: s.dataset.seed,
    connections: g.connections,
    slackMs: g.slackMs,
    timeoutMs: g.timeout,
    maxLagMs: g.maxLagMs,
  }
}
