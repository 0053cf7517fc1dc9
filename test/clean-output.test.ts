import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'
import {runCli, ROOT} from './helpers/cli.js'
import {usePostgres} from './helpers/db.js'
import {scenarioFile} from './helpers/scenario.js'

const pg = usePostgres()

/**
 * The shipped celebrity drop with its phases shortened: everything else as shipped, including
 * the 20 followers whose SSE streams time the notifications (20 streams once made Node warn of an
 * AbortSignal listener leak on every run).
 */
function shortCelebrityDrop(): string {
  const s = parse(readFileSync(`${ROOT}scenarios/celebrity-drop.yaml`, 'utf8'))
  s.drop.startOffset = '2s'
  for (const p of s.phases) p.duration = '2s'
  return stringify(s)
}

describe('clean output', () => {
  it('a normal `scenario run` prints no Node warning, and reports the generator health on one line', async () => {
    const r = await runCli(['scenario', 'run', scenarioFile(shortCelebrityDrop()), '--db', pg.url!, '--scale', '0.05'], {timeoutMs: 120_000})
    expect(r.stderr).not.toMatch(/Warning/)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^generator: \d+\.\d\d% of sends late \(\d+ > \d+ms\), worst lag [\d.]+m?s, CPU \d+% of its thread$/m)
    expect(r.stdout).toMatch(/^PASS: /) // the verdict leads the report
  })
})
