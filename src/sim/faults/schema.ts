import {z} from 'zod'
import {Duration, PositiveDuration} from '../scenario/duration.js'

/** The faults a scenario may cause mid-run; each is real (a signal, a restart, an SQL call). */
export const FAULT_KINDS = ['kill-worker', 'redis-restart', 'pg-terminate-backends', 'cache-node-down'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** How long `cache-node-down` keeps the node down when `for` is not given. */
export const DEFAULT_DOWN_MS = 5_000

export const FaultSchema = z
  .strictObject({
    at: Duration.describe('when, from the start of the run ("25s")'),
    kind: z.enum(FAULT_KINDS).describe('kill-worker: SIGKILL one serve worker (the cluster restarts it); redis-restart: restart the Redis livedrop started; pg-terminate-backends: the server ends the engine\'s Postgres connections (their transactions roll back); cache-node-down: stop one Redis cache node livedrop started, for `for`'),
    for: PositiveDuration.optional().describe(`cache-node-down only: how long the node stays down (default ${DEFAULT_DOWN_MS / 1000}s)`),
    worker: z.int().min(1).optional().describe('kill-worker only: which worker (1…N); default the first one running'),
    node: z.int().min(1).optional().describe('cache-node-down only: which cache node (1…N, in --cache order); default 1'),
  })
  .superRefine((f, ctx) => {
    if (f.for !== undefined && f.kind !== 'cache-node-down') ctx.addIssue({code: 'custom', path: ['for'], message: `only cache-node-down lasts; ${f.kind} happens at once`})
    if (f.worker !== undefined && f.kind !== 'kill-worker') ctx.addIssue({code: 'custom', path: ['worker'], message: 'only kill-worker picks a worker'})
    if (f.node !== undefined && f.kind !== 'cache-node-down') ctx.addIssue({code: 'custom', path: ['node'], message: 'only cache-node-down picks a cache node'})
  })

/** The scenario's `faults:` list; times in milliseconds once parsed. */
export const FaultsSchema = z.array(FaultSchema).describe('faults caused during the run, each at its time; the invariants are checked across all of them')

/** One fault, parsed (milliseconds). */
export type Fault = z.output<typeof FaultSchema>
/** One fault as written in a file. */
export type FaultInput = z.input<typeof FaultSchema>
