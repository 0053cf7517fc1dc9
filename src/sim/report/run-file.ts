import {readFile, writeFile} from 'node:fs/promises'
import {UsageError} from '../../core/errors.js'
import type {CapacityResult} from '../capacity/result.js'
import type {RunResult} from '../metrics/result.js'

/** Writes a run (histograms encoded) or a capacity search as JSON for `--out`; `livedrop report` reads it back. */
export async function writeRunFile(file: string, result: RunResult | CapacityResult): Promise<void> {
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
}

/** Reads a run file written by writeRunFile; refuses anything else with a usage error (exit 2). */
export async function readRunFile(file: string): Promise<RunResult> {
  return parseRunFile(await readText(file), file)
}

/** Reads what `scenario run --out` wrote: a run file, or the steps of a capacity search (`--mode capacity`). */
export async function readResultFile(file: string): Promise<RunResult | CapacityResult> {
  const text = await readText(file)
  try {
    const data = JSON.parse(text) as {kind?: unknown; version?: unknown}
    if (data?.kind === 'livedrop-capacity') {
      if (data.version !== 1) throw new UsageError(file, `capacity file version ${String(data.version)} is not supported (this livedrop reads version 1)`)
      return data as CapacityResult
    }
  } catch (err) {
    if (err instanceof UsageError) throw err
  }
  return parseRunFile(text, file)
}

async function readText(file: string): Promise<string> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(file, `cannot read the run file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {hint: 'Pass a file written by `livedrop scenario run --out`.'})
  }
  return text
}

export function parseRunFile(text: string, file = '<run>'): RunResult {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new UsageError(file, `not JSON: ${(err as Error).message}`, {hint: 'Pass a file written by `livedrop scenario run --out`.'})
  }
  const r = data as Partial<RunResult> | null
  if (!r || r.kind !== 'livedrop-run') throw new UsageError(file, 'not a livedrop run file (kind is not "livedrop-run")', {hint: 'Pass a file written by `livedrop scenario run --out`.'})
  if (r.version !== 1) throw new UsageError(file, `run file version ${String(r.version)} is not supported (this livedrop reads version 1)`, {hint: 'Re-run the scenario with this livedrop, or use the livedrop that wrote it.'})
  const missing = (['scenario', 'generator', 'phases', 'series', 'metrics', 'thresholds', 'invariants', 'stats', 'verdict'] as const).filter((k) => r[k] === undefined)
  if (missing.length) throw new UsageError(file, `run file is missing ${missing.join(', ')}`, {hint: 'The file is truncated or was edited; re-run the scenario.'})
  return r as RunResult
}
