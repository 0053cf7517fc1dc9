import pg from 'pg'
import {from as copyFrom} from 'pg-copy-streams'
import {pipeline} from 'node:stream/promises'
import {Readable} from 'node:stream'
import {ConnectionLostError, ServiceUnreachableError, isConnectionError, redactUrl, sqlState} from '../errors.js'
import type {CopyColumn, CopyValue, Db, QueryResult, Queryable, Sql} from './types.js'

// int8 as JS number: ids and counts here stay far below 2^53
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10))
// numeric (sum/avg results) as number
pg.types.setTypeParser(1700, (v) => Number.parseFloat(v))

export interface PostgresOptions {
  /** Pool size. Default 10. */
  max?: number
  /** Fail a connection attempt after this many ms. Default 5000. */
  connectTimeoutMs?: number
  /** application_name, shown in pg_stat_activity. Default 'livedrop'. */
  applicationName?: string
  /** What `label` says instead of the URL (the embedded server). Default: the URL, password hidden. */
  label?: string
  /** Runs after the pool has ended (the embedded server is left then). */
  onClose?: () => Promise<void>
}

function toConfig(sql: Sql, params?: unknown[]): pg.QueryConfig {
  return typeof sql === 'string' ? {text: sql, values: params} : {name: sql.name, text: sql.text, values: params}
}

/** Encodes one value for COPY's text format. */
function copyField(value: CopyValue): string {
  if (value === null) return '\\N'
  if (value instanceof Date) return value.toISOString()
  if (typeof value !== 'string') return String(value)
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'))
}

const ignore = () => {}

/**
 * Makes the pool hand out its longest-idle client instead of the most recently released one. pg-pool
 * keeps idle clients on a stack (its private `_idle`, popped), so a quiet spell runs on one or two
 * backends and a burst then wakes the others cold: each parses, plans and loads the catalog for
 * every statement at once (an order's first statement takes 6–10 ms in a fresh backend, 1–2 ms
 * after). That was the drop's first second. Taken in turn, every backend stays warm. The pool's
 * own tests (test/db-pool-order.test.ts) fail if a pg-pool upgrade changes that list.
 */
function useLongestIdleFirst(pool: pg.Pool): void {
  const idle = (pool as unknown as {_idle?: unknown[]})._idle
  if (!Array.isArray(idle)) throw new Error('pg-pool changed: no idle list to take clients from in turn (see useLongestIdleFirst)')
  idle.pop = idle.shift
}

/** The Queryable face of one checked-out client. */
function clientQueryable(client: pg.PoolClient): Queryable {
  return {
    async query<R>(sql: Sql, params?: unknown[]) {
      const result = await client.query(toConfig(sql, params))
      return {rows: result.rows as R[], rowCount: result.rowCount ?? 0}
    },
    async exec(script: string) {
      await client.query(script)
    },
  }
}

export class PostgresDb implements Db {
  readonly label: string
  readonly pool: pg.Pool
  private readonly onClose?: () => Promise<void>

  constructor(readonly url: string, options: PostgresOptions = {}) {
    this.label = options.label ?? redactUrl(url)
    this.onClose = options.onClose
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      application_name: options.applicationName ?? 'livedrop',
      // idle connections stay until close: a burst after a quiet spell must not pay for new
      // connections (backend start, authentication, statements prepared again) all at once
      idleTimeoutMillis: 0,
    })
    // an idle client losing its server must not crash the process; the next query reports it
    this.pool.on('error', () => {})
    useLongestIdleFirst(this.pool)
  }

  /**
   * Translates connection failures into ServiceUnreachableError naming host:port. `connecting`: the
   * error came from opening a connection, where anything without a SQLSTATE (a login refusal has
   * one) means the server was not reached.
   */
  private translate(err: unknown, connecting = false): unknown {
    if ((isConnectionError(err) || connecting) && !sqlState(err)) {
      const where = (() => {
        try {
          const u = new URL(this.url)
          // a Unix socket: postgres:///db?host=/var/run/postgresql
          const socketDir = u.searchParams.get('host')
          return socketDir?.startsWith('/') ? `${socketDir}/.s.PGSQL.${u.port || 5432}` : `${u.hostname}:${u.port || 5432}`
        } catch {
          return this.label
        }
      })()
      return new ServiceUnreachableError(`cannot reach Postgres at ${where} (${this.label}): ${(err as Error).message}`, {
        hint: 'Start Postgres or point --db / DATABASE_URL at a running server.',
        cause: err,
      })
    }
    if (sqlState(err) === '3D000') {
      return new ServiceUnreachableError(`database does not exist: ${this.label}`, {
        hint: 'Create it (createdb NAME) or point --db at an existing database.',
        cause: err,
      })
    }
    return err
  }

  // on a pooled client (not pool.query): a connection lost under the statement is told apart by the
  // client's state, and a statement's ordinary error (a unique violation) keeps the connection
  async query<R>(sql: Sql, params?: unknown[]): Promise<QueryResult<R>> {
    try {
      const result = await this.withClient((client) => client.query(toConfig(sql, params)))
      return {rows: result.rows as R[], rowCount: result.rowCount ?? 0}
    } catch (err) {
      throw this.translate(err)
    }
  }

  async exec(script: string): Promise<void> {
    try {
      await this.withClient((client) => client.query(script))
    } catch (err) {
      throw this.translate(err)
    }
  }

  /**
   * Runs fn on one pooled client. A backend killed meanwhile makes the client emit 'error'; the
   * listener keeps that from crashing the process (the failure reaches fn through its next query),
   * and a client whose connection failed is destroyed, never handed to the next caller.
   */
  private async withClient<T>(fn: (client: pg.PoolClient, markBroken: () => void) => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (err) {
      throw this.translate(err, true)
    }
    client.on('error', ignore)
    let broken = false
    try {
      return await fn(client, () => (broken = true))
    } catch (err) {
      // node-postgres reports a connection lost under a statement without a code; the client knows
      const lost = !(client as unknown as {_queryable?: boolean})._queryable && (err as {code?: unknown})?.code === undefined
      if (lost || isConnectionError(err)) broken = true
      if (!lost) throw err
      throw new ConnectionLostError(`lost the connection to Postgres (${this.label}): ${(err as Error).message}`, {
        hint: 'Postgres went away (restarted, killed, or the network dropped): check it is up, then retry.',
        cause: err,
      })
    } finally {
      client.off('error', ignore)
      client.release(broken ? true : undefined)
    }
  }

  /** Opens every pooled connection now, so the first burst finds them ready, and runs `warm` on each (see engine start). */
  async prewarm(warm?: (session: Queryable) => Promise<void>): Promise<void> {
    const clients = await Promise.all(Array.from({length: this.pool.options.max}, () => this.pool.connect().catch((err: unknown) => {
      throw this.translate(err, true)
    })))
    try {
      if (warm) await Promise.all(clients.map((client) => warm(clientQueryable(client))))
    } catch (err) {
      throw this.translate(err)
    } finally {
      for (const client of clients) client.release()
    }
  }

  async withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T> {
    return this.withClient((client) => fn(clientQueryable(client)))
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.withClient(async (client, markBroken) => {
      try {
        await client.query('BEGIN')
        const value = await fn(clientQueryable(client))
        await client.query('COMMIT')
        return value
      } catch (err) {
        if (!isConnectionError(err)) await client.query('ROLLBACK').catch(markBroken)
        throw err
      }
    })
  }

  async copyRows(table: string, columns: CopyColumn[], batches: Iterable<CopyValue[][]> | AsyncIterable<CopyValue[][]>): Promise<number> {
    let count = 0
    async function* lines() {
      for await (const batch of batches) {
        let chunk = ''
        for (const row of batch) {
          chunk += row.map(copyField).join('\t') + '\n'
          count++
        }
        yield chunk
      }
    }
    const names = columns.map((c) => `"${c.name}"`).join(', ')
    await this.withClient((client) => pipeline(Readable.from(lines()), client.query(copyFrom(`COPY ${table} (${names}) FROM STDIN`))))
    return count
  }

  async close(): Promise<void> {
    try {
      await this.pool.end()
    } finally {
      await this.onClose?.()
    }
  }
}
