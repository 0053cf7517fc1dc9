import {Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'
import {createTable} from '../../cli/table.js'
import {UsageError, redactUrl} from '../../core/errors.js'
import {DEFAULT_SCENARIO, loadScenario} from '../../sim/scenario/loader.js'
import {checkProfile, type ProfileCheck} from '../../sim/traffic/check.js'
import {loadProfile} from '../../sim/traffic/profile.js'

export default class ProfileCheckCommand extends BaseCommand {
  static override summary = 'Try a target profile: one request of each type, and what the profile reads from each answer'
  static override description = `Prepares the fixture as \`scenario run --profile\` would (setup calls, logins), then sends one request
of each type the profile describes, a replay of the order (the same key again) and the second page of a
paged listing, and shows each answer's status, which answer it matched (success, sold_out, replay,
not_live…) and the values read by the profile's dotted paths. Exit 2 when a request is not answered as
the profile says (the table names what), 3 when the target is unreachable, 4 for an invalid profile file.
The requests are real: the order places an order, remove_product removes a product.`
  static override examples = [
    '<%= config.bin %> profile check --target http://127.0.0.1:3000 --profile profiles/shop.yaml',
    '<%= config.bin %> profile check --target http://127.0.0.1:8080 --profile profiles/livedrop.yaml --fixture drop=1 --secret "$LIVEDROP_SECRET"',
  ]
  static override flags = {
    target: Flags.string({description: 'base URL of the API to try', required: true}),
    profile: Flags.string({description: 'the target profile (YAML or JSON)', required: true}),
    fixture: Flags.string({description: 'a fixture value given instead of made, name=value (e.g. drop=42); repeatable', multiple: true}),
    scenario: Flags.string({description: 'scenario whose quantities, dataset sizes and drop (stock, times) the requests use (default: the shipped celebrity-drop)'}),
    secret: Flags.string({description: 'token secret, for a profile with auth type jwt [env: LIVEDROP_SECRET]'}),
  }

  async run(): Promise<ProfileCheck> {
    const {flags} = await this.parse(ProfileCheckCommand)
    const given: Record<string, string> = {}
    for (const f of flags.fixture ?? []) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(f)
      if (!m) throw new UsageError('--fixture', `expected name=value, got "${f}"`, {hint: 'For example --fixture drop=42.'})
      given[m[1]] = m[2]
    }
    try {
      if (!/^https?:$/.test(new URL(flags.target).protocol)) throw new Error('not http')
    } catch {
      throw new UsageError('--target', `expected http://host:port, got "${redactUrl(flags.target)}"`)
    }
    const profile = await loadProfile(flags.profile)
    const scenario = await loadScenario(flags.scenario ?? DEFAULT_SCENARIO)
    const secret = flags.secret ?? process.env.LIVEDROP_SECRET
    const result = await checkProfile({profile, scenario, target: flags.target, given, secret})
    if (!this.jsonEnabled()) this.log(render(result))
    if (result.failed > 0) {
      const error = new UsageError('--profile', `${result.failed} of ${result.requests.length} requests were not answered as the profile "${profile.name}" says`, {
        hint: 'See the problems column: fix the profile’s ok statuses, answers or read paths.',
      })
      if (this.jsonEnabled()) {
        this.logJson(result)
        return this.exit(error.exitCode)
      }
      throw error
    }
    return result
  }
}

function render(c: ProfileCheck): string {
  const lines = [`Profile ${c.profile} against ${redactUrl(c.target)}`]
  const values = Object.entries(c.fixture).filter(([k]) => !['now', 'startsAt', 'endsAt'].includes(k))
  lines.push(`Fixture: ${values.map(([k, v]) => `${k}=${v}`).join(', ')}${Object.entries(c.lists).map(([k, n]) => `, ${k}: ${n} ids`).join('')}${c.usersLoggedIn ? `; ${c.usersLoggedIn} users logged in` : ''}`)
  const t = createTable(['type', 'request', 'status', 'answer', 'read from the answer', 'problems'])
  for (const r of c.requests) {
    const read = Object.entries(r.read).map(([k, v]) => `${k}=${v === undefined ? '—' : JSON.stringify(v)}`)
    if (r.next !== undefined) read.push(`next=${JSON.stringify(r.next)}`)
    t.push([r.type, `${r.method} ${r.path}${r.body === undefined ? '' : `\n${JSON.stringify(r.body)}`}`, `${r.status} ${r.ok ? 'ok' : 'FAIL'}`, r.outcome ?? '—', read.join('\n') || '—', r.problems.join('\n') || '—'])
  }
  lines.push(t.toString())
  lines.push(c.failed === 0 ? `All ${c.requests.length} requests answered as the profile says.` : `${c.failed} of ${c.requests.length} requests need attention.`)
  return lines.join('\n')
}
