import {execFileSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'

const root = path.resolve(import.meta.dirname, '..')

/** Every .ts file under dir, tests excluded. */
function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), {recursive: true, encoding: 'utf8'})
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f))
}

// statements as they start in this code base's SQL (keywords in capitals, as DESIGN.md writes them)
const SQL = /\b(SELECT\s+(?:[\w*(]|DISTINCT)|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX)|pg_terminate_backend)\b/

describe('layering (DESIGN.md, Layout)', () => {
  it('dependency-cruiser: core imports nothing above it, server nothing from sim, sim nothing from the CLI, no cycles', () => {
    let out = ''
    try {
      out = execFileSync(path.join(root, 'node_modules/.bin/depcruise'), ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], {cwd: root, encoding: 'utf8'})
    } catch (err) {
      out = String((err as {stdout?: string}).stdout ?? err)
    }
    expect(out).toMatch(/no dependency violations found/)
  })

  it('SQL text lives only under src/core', () => {
    const outside = sources('src').filter((f) => !f.startsWith(`src${path.sep}core${path.sep}`))
    const offenders = outside.flatMap((f) =>
      readFileSync(path.join(root, f), 'utf8')
        .split('\n')
        .flatMap((line, i) => (SQL.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
    )
    expect(offenders).toEqual([])
  })

  it('the SQL check can fail: it sees the statements in core', () => {
    const inCore = sources('src/core').filter((f) => SQL.test(readFileSync(path.join(root, f), 'utf8')))
    expect(inCore.length).toBeGreaterThan(10)
  })
})
