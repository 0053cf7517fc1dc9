import {execFileSync, spawn} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {ROOT} from './helpers/cli.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {REDIS_URL} from './helpers/env.js'
import {freePort} from '../src/core/net.js'

/**
 * The README, run top to bottom, works: every ```sh block after the README's
 * `<!-- readme-test: … -->` comment runs, in order, in ONE bash process in an empty directory,
 * with the substitutions that comment lists (`from → to`, applied in one pass, longest `from`
 * first; `to` may name the variables this test exports: ROOT, PORT, TEST_REDIS_URL,
 * TEST_DATABASE_URL). Each command must exit 0, or the code(s) its comment names
 * (`# exits 97`, `# … exits 0 or 97`); the checks below hold the README to what its text promises.
 */

const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const MARKER = '<!-- readme-test:'

export interface ReadmeCommand {
  /** The command as the README shows it (continuation lines joined, comment kept). */
  readonly original: string
  /** What runs: the substitutions applied. */
  readonly run: string
  /** Exit codes its comment allows (default: 0). */
  readonly exits: number[]
}

export function parseReadme(text: string): {substitutions: Array<[string, string]>; commands: ReadmeCommand[]} {
  const start = text.indexOf(MARKER)
  if (start < 0) throw new Error(`README.md has no ${MARKER} comment`)
  const end = text.indexOf('-->', start)
  const substitutions: Array<[string, string]> = []
  for (const line of text.slice(start + MARKER.length, end).split('\n')) {
    const m = /^\s*(\S.*?)\s+→\s+(.*?)\s*$/.exec(line)
    if (m) substitutions.push([m[1], m[2]])
  }
  const byLength = [...substitutions].sort((a, b) => b[0].length - a[0].length)
  const pattern = new RegExp(byLength.map(([from]) => from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')
  const substitute = (s: string) => s.replace(pattern, (m) => byLength.find(([from]) => from === m)![1])

  const commands: ReadmeCommand[] = []
  for (const block of text.slice(end).matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    let pending = ''
    for (const line of block[1].split('\n')) {
      if (!pending && (line.trim() === '' || line.trim().startsWith('#'))) continue
      pending += (pending ? '\n' : '') + line
      if (line.endsWith('\\')) continue
      const exits = /#[^'"]*\bexits ((?:\d+)(?:,? or \d+)*)/.exec(pending)?.[1].split(/,? or /).map(Number) ?? [0]
      commands.push({original: pending, run: substitute(pending), exits})
      pending = ''
    }
  }
  return {substitutions, commands}
}

/** The script: each command between markers on stdout and stderr, its exit code checked at once. */
function buildScript(commands: ReadmeCommand[]): string {
  const lines = ['shopt -s expand_aliases', 'exec </dev/null', 'stop_jobs() { for j in $(jobs -p); do kill "$j" 2>/dev/null; done; wait; }']
  commands.forEach((c, i) => {
    lines.push(`printf '\\n@@cmd ${i}\\n'; printf '\\n@@cmd ${i}\\n' >&2; __t=$EPOCHREALTIME`)
    lines.push(c.run)
    lines.push(`__rc=$?; printf '\\n@@rc ${i} %d %s %s\\n' "$__rc" "$__t" "$EPOCHREALTIME"`)
    lines.push(`case " ${c.exits.join(' ')} " in *" $__rc "*) ;; *) printf '\\n@@failed ${i}\\n'; stop_jobs; exit 1 ;; esac`)
  })
  lines.push('stop_jobs', "printf '\\n@@done\\n'")
  return lines.join('\n') + '\n'
}

/** postgres processes whose command line names dir (their -D is under it). */
function postgresOf(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', dir], {encoding: 'utf8'}).split('\n').filter((l) => l.trim() && !l.includes('pgrep'))
  } catch {
    return []
  }
}

/** stdout or stderr split by the script's markers: command index → its output. */
function sections(text: string): Map<number, string> {
  const out = new Map<number, string>()
  const parts = text.split(/\n@@cmd (\d+)\n/)
  for (let i = 1; i < parts.length; i += 2) out.set(Number(parts[i]), parts[i + 1].replace(/\n@@(rc|failed|done)[^\n]*\n?/g, ''))
  return out
}

const {commands} = parseReadme(README)

describe('README, run top to bottom', () => {
  let scratch = ''
  let database: {name: string; url: string} | null = null
  let stdout = ''
  let stderr = ''
  let code: number | null = null
  let leftover: string[] = []

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'livedrop-readme-'))
    // as root the embedded server runs as `postgres`, which must reach the data directory
    chmodSync(scratch, 0o755)
    database = await createTestDatabase()
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(DATABASE_URL|REDIS_URL|LIVEDROP_)/.test(k)) env[k] = v
    Object.assign(env, {
      ROOT: ROOT.replace(/\/$/, ''),
      PORT: String(await freePort()),
      TEST_REDIS_URL: REDIS_URL,
      TEST_DATABASE_URL: database.url,
    })
    const script = path.join(scratch, '.readme.sh')
    writeFileSync(script, buildScript(commands))
    const child = spawn('bash', [script], {cwd: scratch, env, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    // the whole README at a small scale takes ~2 min alone; the full suite runs beside it on 2 cores
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 360_000)
    code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
    clearTimeout(timer)
    // whatever the script left (a background job after a failure): its whole process group
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {}
    // the embedded servers stop when their last command ends; give a stopping one a moment
    for (let i = 0; i < 50 && postgresOf(scratch).length; i++) await new Promise((r) => setTimeout(r, 100))
    leftover = postgresOf(scratch)
  }, 400_000)

  afterAll(async () => {
    // a server left behind fails the test below; stop it here so nothing outlives the run
    for (const line of postgresOf(scratch)) {
      try {
        process.kill(Number(line.split(' ')[0]), 'SIGTERM')
      } catch {}
    }
    if (scratch) rmSync(scratch, {recursive: true, force: true})
    if (database) await dropTestDatabase(database.name)
  })

  it('finds the commands and the substitutions', () => {
    expect(commands.length).toBeGreaterThan(40)
    expect(commands[0].run).toContain('$ROOT/bin/run.js')
    // nothing the test cannot run is left unsubstituted
    for (const c of commands) expect(c.run).not.toMatch(/scenarios\/celebrity-drop\.yaml|:6379|:5432|\b8080\b/)
  })

  it('runs every command to its promised exit code', () => {
    const failed = /\n@@failed (\d+)/.exec(stdout)
    if (failed) {
      const i = Number(failed[1])
      const rc = new RegExp(`@@rc ${i} (\\d+)`).exec(stdout)?.[1]
      const serveLog = path.join(scratch, 'serve.log')
      const log = existsSync(serveLog) ? `\n--- serve.log:\n${readFileSync(serveLog, 'utf8').slice(-3000)}` : ''
      throw new Error(`README command ${i + 1} exited ${rc}, expected ${commands[i].exits.join(' or ')}:\n${commands[i].original}\n--- ran:\n${commands[i].run}\n--- stdout:\n${sections(stdout).get(i)}\n--- stderr:\n${sections(stderr).get(i)}${log}`)
    }
    expect(code, `bash exited ${code}; stderr tail:\n${stderr.slice(-3000)}`).toBe(0)
    expect(stdout).toContain('@@done')
  })

  it('keeps every command short', () => {
    const seconds = [...stdout.matchAll(/@@rc (\d+) \d+ ([\d.]+) ([\d.]+)/g)].map((m) => ({i: Number(m[1]), s: Number(m[3]) - Number(m[2])}))
    const slowest = seconds.sort((a, b) => b.s - a.s).slice(0, 5)
    if (process.env.README_TIMES) for (const x of [...seconds].sort((a, b) => a.i - b.i)) console.log(x.s.toFixed(2), commands[x.i].original.split('\n')[0].slice(0, 90))
    console.log(`README commands: ${seconds.length}, ${seconds.reduce((a, b) => a + b.s, 0).toFixed(1)} s in all; slowest: ${slowest.map((x) => `${x.s.toFixed(1)} s ${commands[x.i].original.split('\n')[0].slice(0, 60)}`).join(' | ')}`)
    // at this tiny scale no command should take long (a scenario run is about 5 s)
    for (const x of slowest) expect(x.s, commands[x.i].original).toBeLessThan(30)
  })

  it('leaves no postgres process of its directory', () => {
    expect(leftover).toEqual([])
  })

  it('does what the text says', () => {
    const out = sections(stdout)
    const err = sections(stderr)
    /** The output of the one command whose README line matches `pattern` (comment included). */
    const of = (pattern: RegExp, stream: Map<number, string> = out): string => {
      const found = commands.flatMap((c, i) => (pattern.test(c.original) ? [i] : []))
      expect(found, `one README command matching ${pattern}`).toHaveLength(1)
      return stream.get(found[0]) ?? ''
    }

    expect(of(/^livedrop db status\s+# "none yet"/)).toMatch(/none yet/)
    expect(of(/^LIVEDROP_DATA_DIR=elsewhere/)).toMatch(/none yet at .*elsewhere/)
    expect(existsSync(path.join(scratch, 'elsewhere')), 'a read-only command created a directory').toBe(false)
    const status = of(/^livedrop db status\s+# server started/)
    expect(status).toMatch(/started for this command/)
    expect(status).toMatch(/fsync=off/)
    expect(of(/^livedrop db migrate\s+# "up to date"/)).toMatch(/up to date/)

    const drop = JSON.parse(of(/drop status \$ID --json/))
    expect(drop).toMatchObject({status: 'live', strategy: 'buckets', total: 500})
    expect(of(/drop reconcile \$GATE/)).toMatch(/Gate set to 100 tokens/)
    expect(of(/drop end \$GATE/)).toMatch(/ended/)
    expect(of(/^livedrop drop run --db memory/)).toMatch(/no_oversell\s*│\s*PASS/)

    expect(of(/^livedrop fanout status/)).toMatch(/drop_started/)
    expect(of(/fanout run --drop \$ID/)).toMatch(/events delivered\s*│\s*[1-9]/)

    expect(of(/\/healthz/)).toMatch(/"ok":true/)
    expect(of(/^livedrop db status\s+# "shared/)).toMatch(/shared with another livedrop process/)
    expect(of(/^TOKEN=/, err)).toBe('')
    const orders = commands.flatMap((c, i) => (/\/orders\s+#/.test(c.original) ? [out.get(i) ?? ''] : []))
    expect(orders).toHaveLength(2)
    expect(orders[0]).toMatch(/"status":"confirmed"/)
    expect(orders[1]).toMatch(/^HTTP\/1\.1 201/m)
    expect(orders[1]).toMatch(/^idempotent-replayed: true/im)
    expect(of(/\/me\/orders/)).toMatch(/"items":\[\{/)
    expect(of(/^livedrop drop status \$ID\s+# sold 1/)).toMatch(/sold\s*│\s*1\s*│/)
    expect(of(/steady-browse.yaml --target/)).toMatch(/^PASS/m)

    const baseline = of(/--out baseline.json/)
    expect(baseline).toMatch(/^generator: .*late.*worst lag.*CPU/m)
    expect(baseline).toMatch(/^PASS/m)
    expect(of(/--out run.json/, err)).toMatch(/reusing the dataset/)
    expect(of(/scenario validate/)).toMatch(/celebrity-drop.*OK[\s\S]*steady-browse.*OK/)

    expect(of(/report merge/, err)).toMatch(/Merged 2 file/)
    for (const file of ['baseline.json', 'run.json', 'gen-a.json', 'gen-b.json', 'merged.json', 'report.html', 'results.xml', 'drop.k6.ts']) {
      expect(existsSync(path.join(scratch, file)), `${file} written`).toBe(true)
    }

    expect(of(/idempotency stats/)).toMatch(/completed/)
    expect(of(/purge --older-than 72h --dry-run/)).toMatch(/Would delete/)
    expect(JSON.parse(of(/purge .* --json/))).toMatchObject({complete: true})
    expect(of(/--older-than 1h/, err)).toMatch(/24 h floor/)

    expect(of(/^livedrop db status\s+# the server's URL/)).toMatch(/^Database:\s+postgres:\/\//m)
    expect(of(/drop run .*--strategy redis-gate/)).toMatch(/no_oversell\s*│\s*PASS/)
    expect(of(/cache stats/)).toMatch(/hit/i)
  })

  it('writes only files .gitignore ignores', () => {
    const written = readdirSync(scratch).filter((f) => f !== '.readme.sh' && f !== 'elsewhere')
    expect(written.length).toBeGreaterThan(5)
    const notIgnored = written.filter((f) => {
      try {
        execFileSync('git', ['-C', ROOT, 'check-ignore', '-q', '--no-index', f])
        return false
      } catch {
        return true
      }
    })
    expect(notIgnored).toEqual([])
  })
})
