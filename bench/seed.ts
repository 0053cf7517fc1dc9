/**
 * bench:seed — seeds 100,000 users and a celebrity with 1,000,000 followers into real Postgres,
 * then, in the same run, loads the same follows rows with a plain COPY from a file (the baseline).
 */
import {createReadStream, createWriteStream, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {from as copyFrom, to as copyTo} from 'pg-copy-streams'
import {seed} from '../src/core/catalog/seed.js'
import {benchDatabase} from './db.js'
import {JSON_OUT} from './args.js'

const json = JSON_OUT
const {db, drop} = await benchDatabase('seed')
const file = path.join(tmpdir(), `livedrop-follows-${process.pid}.tsv`)
try {
  const result = await seed(db, {users: 100_000, creators: 200, celebrities: 1, celebrityFollowers: 1_000_000, productsPerCreator: 3, seed: 42, reset: false})
  const follows = result.rows.follows

  // baseline: the very same rows, dumped to a file and loaded back with a bare COPY
  const client = await db.pool.connect()
  try {
    await pipeline(client.query(copyTo('COPY (SELECT creator_id, user_id, notify FROM follows) TO STDOUT')), createWriteStream(file))
    await client.query('TRUNCATE follows')
    const t0 = performance.now()
    await pipeline(createReadStream(file), client.query(copyFrom('COPY follows (creator_id, user_id, notify) FROM STDIN')))
    var rawSeconds = (performance.now() - t0) / 1000
  } finally {
    client.release()
  }

  const seedRate = follows / result.tableSeconds.follows
  const rawRate = follows / rawSeconds
  const figures = {
    users: result.rows.users,
    follows,
    seedSeconds: Number(result.seconds.toFixed(2)),
    seedFollowsRowsPerSecond: Math.round(seedRate),
    rawCopyFollowsRowsPerSecond: Math.round(rawRate),
    ratio: Number((seedRate / rawRate).toFixed(2)),
    seedAllRowsPerSecond: result.rowsPerSecond,
  }
  if (json) console.log(JSON.stringify(figures, null, 2))
  else {
    console.log(`seed: ${figures.users.toLocaleString()} users, ${follows.toLocaleString()} follows in ${figures.seedSeconds} s (${figures.seedAllRowsPerSecond.toLocaleString()} rows/s overall)`)
    console.log(`follows via livedrop seed: ${figures.seedFollowsRowsPerSecond.toLocaleString()} rows/s`)
    console.log(`follows via raw COPY file: ${figures.rawCopyFollowsRowsPerSecond.toLocaleString()} rows/s`)
    console.log(`ratio: ${figures.ratio}× (target ≥ 0.5×); whole seed ${figures.seedSeconds} s (target < 10 s)`)
  }
} finally {
  rmSync(file, {force: true})
  await drop()
}
