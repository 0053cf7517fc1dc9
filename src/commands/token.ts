import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {UsageError} from '../core/errors.js'
import {durationFlag} from '../cli/parse.js'
import {DEFAULT_TOKEN_TTL_SECONDS, isUserId, mintToken} from '../core/tokens.js'

/** The longest --ttl: a token that outlives a year is a password, not a test credential. */
const MAX_TTL_SECONDS = 365 * 24 * 3600

export default class Token extends BaseCommand {
  static override summary = 'Mint a bearer token for a user (for tests, scenarios and curl)'
  static override description = `A JWT (HS256) signed with --secret / LIVEDROP_SECRET, the same secret \`livedrop serve\` verifies with.
It expires after --ttl (default 24h); the server tolerates 60 s of clock difference.`
  static override examples = [
    '<%= config.bin %> token --user 42',
    'curl -H "Authorization: Bearer $(<%= config.bin %> token --user 42)" http://127.0.0.1:8080/me/orders',
    '<%= config.bin %> token --user 42 --ttl 15m --secret "$LIVEDROP_SECRET" --json',
  ]
  static override flags = {
    // a string, so that every id the server would refuse gets the same error and hint
    user: Flags.string({description: 'user id the token speaks for (1 to 2^53 − 1)', required: true}),
    ttl: Flags.string({description: 'how long the token is valid: 30s, 15m, 24h, 7d (at most 365d)', default: `${DEFAULT_TOKEN_TTL_SECONDS / 3600}h`}),
    secret: Flags.string({description: 'signing secret [env: LIVEDROP_SECRET; default: the development secret]'}),
  }

  async run(): Promise<{token: string; userId: number; expiresAt: string}> {
    const {flags} = await this.parse(Token)
    const userId = /^[0-9]+$/.test(flags.user) ? Number(flags.user) : Number.NaN
    if (!isUserId(userId)) {
      throw new UsageError('--user', `must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got ${flags.user}`, {hint: 'Pass the id of a user in the database, e.g. --user 42.'})
    }
    let ttlSeconds = Number.NaN
    try {
      ttlSeconds = durationFlag(flags.ttl, '--ttl') / 1000
    } catch {
      // reported below, with the range and a hint
    }
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
      throw new UsageError('--ttl', `must be a duration of whole seconds from 1s to 365d, got ${flags.ttl}`, {hint: 'Example: --ttl 15m, --ttl 24h or --ttl 7d.'})
    }
    const issuedAt = new Date()
    const token = mintToken(userId, this.config_(flags).secret, issuedAt, ttlSeconds)
    this.log(token)
    return {token, userId, expiresAt: new Date((Math.floor(issuedAt.getTime() / 1000) + ttlSeconds) * 1000).toISOString()}
  }
}
