import {describe, expect, it} from 'vitest'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {runCli} from './helpers/cli.js'
import {createTestDatabase, dropTestDatabase} from './helpers/db.js'
import {latestVersion} from '../src/core/db/migrate.js'

describe('livedrop CLI foundation', () => {
  it('lists topics and commands with descriptions', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/db\s+Migrate, inspect and reset the database/)
    expect(r.stdout).toMatch(/seed\s+Build a realistic/)
    const seedHelp = await runCli(['seed', '--help'])
    expect(seedHelp.stdout).toContain('EXAMPLES')
    expect(seedHelp.stdout).toContain('--json')
  })

  it('exits 3 naming host:port, password hidden, when Postgres is unreachable', async () => {
    const r = await runCli(['db', 'status', '--db', 'postgres://root:hunter2@127.0.0.1:1/x'])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain('127.0.0.1:1')
    expect(r.stderr).not.toContain('hunter2')
    expect(r.stderr).toMatch(/Hint:/)
  })

  it('exits 2 naming the field for bad values, as JSON with --json', async () => {
    const bad = await runCli(['seed', '--db', 'memory', '--creators', '3', '--celebrities', '5', '--json'])
    expect(bad.code).toBe(2)
    expect(JSON.parse(bad.stdout).error).toMatchObject({code: 'USAGE', exitCode: 2})
    expect(JSON.parse(bad.stdout).error.message).toContain('--celebrities')
    const flag = await runCli(['seed', '--users', 'many'])
    expect(flag.code).toBe(2)
    const scheme = await runCli(['db', 'status', '--db', 'mysql://u@h/db'])
    expect(scheme.code).toBe(2)
    expect(scheme.stderr).toContain('--db')
  })

  it('seeds and reports status on an embedded database directory, and guards reset', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'livedrop-'))
    try {
      const env = {LIVEDROP_DATA_DIR: path.join(dir, 'pg'), DATABASE_URL: undefined}
      const seeded = await runCli(['seed', '--users', '200', '--creators', '5', '--celebrity-followers', '100', '--json'], {env})
      expect(seeded.code).toBe(0)
      expect(JSON.parse(seeded.stdout).rows.users).toBe(200)
      const again = await runCli(['seed'], {env})
      expect(again.code).toBe(2)
      expect(again.stderr).toContain('--reset')
      const status = await runCli(['db', 'status', '--json'], {env})
      expect(JSON.parse(status.stdout)).toMatchObject({kind: 'embedded', version: latestVersion(), pending: [], rows: {users: 200, creators: 5}})
      const refused = await runCli(['db', 'reset'], {env})
      expect(refused.code).toBe(2)
      expect(refused.stderr).toContain('--yes')
      const reset = await runCli(['db', 'reset', '--yes', '--json'], {env})
      expect(reset.code).toBe(0)
      const after = await runCli(['db', 'status', '--json'], {env})
      expect(JSON.parse(after.stdout).rows.users).toBe(0)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('seeds real Postgres with COPY through DATABASE_URL', async () => {
    const {name, url} = await createTestDatabase()
    try {
      const r = await runCli(['seed', '--users', '5000', '--celebrity-followers', '4000', '--json'], {env: {DATABASE_URL: url}})
      expect(r.code).toBe(0)
      const out = JSON.parse(r.stdout)
      expect(out.database).toBe(url)
      expect(out.rows.users).toBe(5000)
      expect(out.rows.follows).toBeGreaterThanOrEqual(4000)
      const status = await runCli(['db', 'status', '--json', '--db', url])
      expect(JSON.parse(status.stdout).rows.follows).toBe(out.rows.follows)
    } finally {
      await dropTestDatabase(name)
    }
  })
})
