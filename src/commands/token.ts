import {Flags} from '@oclif/core'
import {BaseCommand} from '../cli/base-command.js'
import {mintToken} from '../server/auth.js'

export default class Token extends BaseCommand {
  static override summary = 'Mint a bearer token for a user (for tests, scenarios and curl)'
  static override description = 'Signed with --secret / LIVEDROP_SECRET, the same secret `livedrop serve` verifies with.'
  static override examples = [
    '<%= config.bin %> token --user 42',
    'curl -H "Authorization: Bearer $(<%= config.bin %> token --user 42)" http://127.0.0.1:8080/me/orders',
    '<%= config.bin %> token --user 42 --secret "$LIVEDROP_SECRET" --json',
  ]
  static override flags = {
    user: Flags.integer({description: 'user id the token speaks for', required: true, min: 1}),
    secret: Flags.string({description: 'signing secret [env: LIVEDROP_SECRET; default: the development secret]'}),
  }

  async run(): Promise<{token: string}> {
    const {flags} = await this.parse(Token)
    const token = mintToken(flags.user, this.config_(flags).secret)
    this.log(token)
    return {token}
  }
}
