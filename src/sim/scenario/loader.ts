import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document, type Node as YamlNode} from 'yaml'
import type {z} from 'zod'
import {ScenarioInvalidError} from '../../core/errors.js'
import {ScenarioSchema, limitProblems, scaleScenario, type Scenario} from './schema.js'

/** One problem in a scenario file, located for editors and humans. */
export interface ScenarioProblem {
  file: string
  line: number
  column: number
  /** The field's path, e.g. `phases[1].rates.order`; empty for the document itself. */
  field: string
  message: string
}

export interface LoadOptions {
  /** Multiplies rates and sizes (see scaleScenario). Default 1. */
  scale?: number
}

/** A scenario is a page of YAML; a bigger file is a mistake (or an attack on the parser). */
export const MAX_SCENARIO_BYTES = 1 << 20

/** Reads and validates a scenario file (YAML, or JSON, which YAML 1.2 reads with positions). */
export async function loadScenario(file: string, options: LoadOptions = {}): Promise<Scenario> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const message = `cannot read the scenario file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    throw scenarioError([{file, line: 1, column: 1, field: '', message}], 'Check the path; shipped scenarios live in scenarios/ (e.g. scenarios/celebrity-drop.yaml).')
  }
  return parseScenario(text, file, options)
}

/** Validates scenario text; every problem is reported at once as file:line:column field: message. */
export function parseScenario(text: string, file = '<scenario>', options: LoadOptions = {}): Scenario {
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_SCENARIO_BYTES) {
    throw scenarioError([{file, line: 1, column: 1, field: '', message: `the file is ${bytes.toLocaleString('en-US')} bytes; a scenario is at most ${MAX_SCENARIO_BYTES.toLocaleString('en-US')}`}])
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  const problems: ScenarioProblem[] = []
  const at = (offset: number) => lineCounter.linePos(offset)
  for (const e of doc.errors) {
    const pos = at(e.pos[0])
    problems.push({file, line: pos.line, column: pos.col, field: '', message: e.message.split('\n')[0]})
  }
  let limits = false
  if (problems.length === 0) {
    const value = toJS(doc, file, at, problems)
    const parsed = problems.length === 0 ? ScenarioSchema.safeParse(value ?? {}) : undefined
    if (parsed?.success) {
      const scale = options.scale ?? 1
      const s = scaleScenario(parsed.data, scale)
      const over = limitProblems(s, scale)
      if (over.length === 0) return s
      limits = true
      for (const o of over) problems.push(...locateIssue({code: 'custom', path: o.path, message: o.message, input: undefined}, doc, file, at))
    } else if (parsed) {
      for (const issue of parsed.error.issues) problems.push(...locateIssue(issue, doc, file, at))
    }
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column)
  throw scenarioError(
    problems,
    limits ? 'The limits fit one 2-core, 24 GiB machine running the generator and the stack: lower the fields named (or --scale), or split the load over several generators and merge their runs with `livedrop report merge`.' : undefined,
  )
}

/**
 * The document as plain data. yaml stops expanding aliases past maxAliasCount, so a "billion
 * laughs" file (aliases of aliases) is refused in microseconds instead of filling memory.
 */
function toJS(doc: Document, file: string, at: (o: number) => {line: number; col: number}, problems: ScenarioProblem[]): unknown {
  try {
    return doc.toJS({maxAliasCount: 100})
  } catch (err) {
    let alias: {node: YamlNode; field: string} | undefined
    visit(doc, {
      Alias(_key, node, ancestors) {
        alias = {node, field: ancestors.filter(isPair).map((p) => String(isScalar(p.key) ? p.key.value : p.key)).join('.')}
        return visit.BREAK
      },
    })
    const pos = alias?.node.range ? at(alias.node.range[0]) : {line: 1, col: 1}
    problems.push({file, line: pos.line, column: pos.col, field: alias?.field ?? '', message: `aliases expand too far (a "billion laughs" alias bomb?): ${(err as Error).message}`})
    return undefined
  }
}

export function scenarioError(problems: ScenarioProblem[], hint = 'Fix the fields named above; scenarios/schema.json describes every field (editors autocomplete with it).'): ScenarioInvalidError {
  const lines = problems.map(formatProblem)
  const file = problems[0]?.file ?? '<scenario>'
  return new ScenarioInvalidError(problems.length === 1 ? lines[0] : `${problems.length} problems in ${path.basename(file)}:\n  ${lines.join('\n  ')}`, {hint, details: {problems}})
}

export function formatProblem(p: ScenarioProblem): string {
  return `${p.file}:${p.line}:${p.column}${p.field ? ` ${p.field}` : ''}: ${p.message}`
}

/** `['phases', 1, 'rates', 'order']` → `phases[1].rates.order`. */
export function fieldName(pathParts: ReadonlyArray<PropertyKey>): string {
  return pathParts.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${String(k)}` : String(k)), '')
}

interface Found {
  /** The deepest node on the path that exists. */
  node: YamlNode | null
  /** The key node of the last pair walked through, so a missing value points at its key. */
  key: YamlNode | null
  /** How many path parts were found. */
  depth: number
}

function walk(doc: Document, parts: ReadonlyArray<PropertyKey>): Found {
  let node = doc.contents as YamlNode | null
  let key: YamlNode | null = null
  let depth = 0
  for (const part of parts) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(part))
      if (!pair) break
      key = pair.key as YamlNode
      node = (pair.value as YamlNode | null) ?? key
    } else if (isSeq(node) && typeof part === 'number' && node.items[part] !== undefined) {
      node = node.items[part] as YamlNode
      key = null
    } else break
    depth++
  }
  return {node, key, depth}
}

export function locateIssue(issue: z.core.$ZodIssue, doc: Document, file: string, at: (o: number) => {line: number; col: number}): ScenarioProblem[] {
  const parts = issue.path as PropertyKey[]
  const place = (node: YamlNode | null | undefined) => {
    const pos = node?.range ? at(node.range[0]) : {line: 1, col: 1}
    return {file, line: pos.line, column: pos.col}
  }
  if (issue.code === 'unrecognized_keys') {
    const parent = walk(doc, parts).node
    return issue.keys.map((k) => {
      const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === k) : undefined
      return {...place((pair?.key as YamlNode) ?? parent), field: fieldName([...parts, k]), message: `unknown field "${k}"`}
    })
  }
  const found = walk(doc, parts)
  const field = fieldName(parts)
  if (found.depth < parts.length) {
    // the field is absent: point at the map that should hold it
    const missing = issue.code === 'invalid_type' && (issue as {input?: unknown}).input === undefined
    return [{...place(found.node), field, message: missing ? `required field is missing (expected ${(issue as {expected?: string}).expected})` : issue.message}]
  }
  // point at a record's bad key rather than its value
  const node = issue.code === 'invalid_key' ? found.key : found.node
  return [{...place(node), field, message: describeIssue(issue)}]
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') return `invalid key: ${issue.issues.map((i) => i.message).join('; ')}`
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
  return issue.message
}

/** scenarios/ of this package (the same from src/ under tsx and from dist/). */
export const SHIPPED_SCENARIOS_DIR = fileURLToPath(new URL('../../../scenarios/', import.meta.url))

/** The shipped scenario `npm start` and a bare `livedrop scenario run` use. */
export const DEFAULT_SCENARIO = path.join(SHIPPED_SCENARIOS_DIR, 'celebrity-drop.yaml')
