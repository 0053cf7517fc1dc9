import {Faker, en} from '@faker-js/faker'
import {createHash} from 'node:crypto'
import {checkWholeNumber, NotEmptyError, sqlState, throwUsageErrors, TooLargeError, UsageError} from '../errors.js'
import {createRandom, randomInt} from '../random.js'
import {holdsData, resetSchema} from '../db/migrate.js'
import type {CopyColumn, CopyValue, Db, Queryable} from '../db/types.js'

export interface SeedOptions {
  /** Users with profiles. Raised when celebrities need more followers than there are users. Default 1,000. */
  users: number
  /** Creators, celebrities included; creator k is user k. Default 20. */
  creators: number
  /** How many of the creators are celebrities. Default 1. */
  celebrities: number
  /** Followers of each celebrity. Default 500. */
  celebrityFollowers: number
  /** Products per creator. Default 3. */
  productsPerCreator: number
  /** PRNG seed: the same seed gives the same data. Default 42. */
  seed: number
  /** Wipe and re-migrate a non-empty database first. Default false. */
  reset: boolean
}

export const SEED_DEFAULTS: SeedOptions = {
  users: 1000,
  creators: 20,
  celebrities: 1,
  celebrityFollowers: 500,
  productsPerCreator: 3,
  seed: 42,
  reset: false,
}

export interface SeedProgress {
  table: string
  done: number
  total: number
}

export interface SeedResult {
  rows: Record<string, number>
  /** Seconds each table's load took. */
  tableSeconds: Record<string, number>
  seconds: number
  rowsPerSecond: number
  /** Set when users were raised so the celebrities could have their followers. */
  usersRaisedTo?: number
}

const BATCH = 10_000

/** Names the data seed() makes from these options (the same options give the same rows). Example: 'a3f9c0d21b7e'. */
export function datasetFingerprint(o: Omit<SeedOptions, 'reset'>): string {
  const canonical = [o.users, o.creators, o.celebrities, o.celebrityFollowers, o.productsPerCreator, o.seed].join('/')
  return createHash('sha256').update(`seed-v1/${canonical}`).digest('hex').slice(0, 12)
}

/** The fingerprint of the dataset seed() last completed in this database, or null. */
export async function seededFingerprint(db: Db): Promise<string | null> {
  const {rows} = await db.query<{fingerprint: string}>('SELECT fingerprint FROM livedrop_dataset ORDER BY seeded_at DESC LIMIT 1')
  return rows[0]?.fingerprint ?? null
}

export function validateSeedOptions(o: SeedOptions): void {
  const errors: UsageError[] = []
  const positive = (field: string, v: number, min: number) => checkWholeNumber(errors, field, v, min)
  positive('--users', o.users, 1)
  positive('--creators', o.creators, 1)
  positive('--celebrities', o.celebrities, 0)
  positive('--celebrity-followers', o.celebrityFollowers, 0)
  positive('--products-per-creator', o.productsPerCreator, 0)
  positive('--seed', o.seed, 0)
  if (o.celebrities > o.creators) errors.push(new UsageError('--celebrities', `cannot exceed --creators (${o.creators})`))
  if (o.creators > o.users) errors.push(new UsageError('--creators', `cannot exceed --users (${o.users}): every creator is a user`))
  throwUsageErrors(errors)
}

/** Bytes per row on disk, indexes included: Postgres 15 after a seed of 300,000 users and 628,000 follows. */
const DISK_BYTES_PER_ROW = {users: 180, creators: 200, follows: 130, products: 280} as const
/** WAL and free space on top of the rows while COPY runs. */
const DISK_SLACK = 1.25
/** This process's heap before the dataset's own: code, faker, name pools, COPY buffers. */
const HEAP_BASE_BYTES = 150 * 2 ** 20
/** Products and creators are built in memory before they load; one creator's follower ids are held and sorted. */
const HEAP_BYTES = {product: 400, creator: 200, followerId: 16} as const
/** ordinaryFollowerCount's mean (3·E[u^-0.9] = 30) and its largest value (u floored at 1e-6). */
const ORDINARY_FOLLOWERS = {mean: 30, max: Math.floor(3 / 1e-6 ** 0.9)}

/** Rows one seed writes at most: about half an hour at the 250,000 rows/s a 2-core machine loads. */
export const SEED_MAX_ROWS = 500_000_000

export interface SeedEstimate {
  rows: {users: number; creators: number; follows: number; products: number}
  /** On the database server's disk, with WAL slack. */
  diskBytes: number
  /** This process's heap at its peak. */
  memoryBytes: number
  /** The flag that most of the disk, and of the memory, is for. */
  diskFlag: string
  memoryFlag: string
}

/** What a seed will take, before anything is written; `livedrop seed` refuses what cannot fit. */
export function estimateSeed(o: Omit<SeedOptions, 'seed' | 'reset'>): SeedEstimate {
  const users = Math.max(o.users, o.celebrities > 0 ? o.celebrityFollowers + 1 : 0)
  const celebrityFollows = Math.min(o.celebrityFollowers, users - 1)
  const rows = {
    users,
    creators: o.creators,
    follows: o.celebrities * celebrityFollows + (o.creators - o.celebrities) * Math.min(ORDINARY_FOLLOWERS.mean, users - 1),
    products: o.creators * o.productsPerCreator,
  }
  const disk = (Object.keys(rows) as Array<keyof typeof rows>).map((t) => [t, rows[t] * DISK_BYTES_PER_ROW[t]] as const)
  const biggestList = Math.max(o.celebrities > 0 ? celebrityFollows : 0, Math.min(ORDINARY_FOLLOWERS.max, users - 1))
  const heap = {products: rows.products * HEAP_BYTES.product, creators: rows.creators * HEAP_BYTES.creator, follows: biggestList * HEAP_BYTES.followerId}
  const flagOf = (t: string) =>
    ({users: users > o.users ? '--celebrity-followers' : '--users', creators: '--creators', follows: o.celebrities > 0 ? '--celebrity-followers' : '--creators', products: '--products-per-creator'})[t]!
  const top = <T extends readonly [string, number]>(xs: T[]) => xs.reduce((a, b) => (b[1] > a[1] ? b : a))[0]
  return {
    rows,
    diskBytes: Math.round(disk.reduce((a, [, b]) => a + b, 0) * DISK_SLACK),
    memoryBytes: HEAP_BASE_BYTES + heap.products + heap.creators + heap.follows,
    diskFlag: flagOf(top(disk)),
    memoryFlag: flagOf(top(Object.entries(heap))),
  }
}

/** Throws TooLargeError, with the estimate, when a seed cannot fit the memory (or the known free disk) it has. */
export function checkSeedFits(e: SeedEstimate, budget: {memoryBytes: number; freeDiskBytes?: number; diskWhere?: string}): void {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`
  const details = {estimate: e, budget}
  const rows = Object.entries(e.rows).map(([t, n]) => `${n.toLocaleString('en-US')} ${t}`).join(', ')
  if (e.memoryBytes > budget.memoryBytes) {
    throw new TooLargeError(e.memoryFlag, `the seed needs about ${gib(e.memoryBytes)} of memory (${rows}); this process may use ${gib(budget.memoryBytes)}`, {
      hint: `Seed less (lower ${e.memoryFlag}), or raise Node's heap limit: NODE_OPTIONS=--max-old-space-size=<MiB>.`,
      details,
    })
  }
  if (budget.freeDiskBytes !== undefined && e.diskBytes > budget.freeDiskBytes) {
    throw new TooLargeError(e.diskFlag, `the seed needs about ${gib(e.diskBytes)} of disk (${rows}); ${budget.diskWhere ?? 'the data directory'} has ${gib(budget.freeDiskBytes)} free`, {
      hint: `Seed less (lower ${e.diskFlag}), free disk space, or point --db at a Postgres with room.`,
      details,
    })
  }
  const total = Object.values(e.rows).reduce((a, n) => a + n, 0)
  if (total > SEED_MAX_ROWS) {
    throw new TooLargeError(e.diskFlag, `the seed would write ${total.toLocaleString('en-US')} rows (${rows}, about ${gib(e.diskBytes)} of disk); at most ${SEED_MAX_ROWS.toLocaleString('en-US')} load in reasonable time here`, {
      hint: `Seed less (lower ${e.diskFlag}); ${SEED_MAX_ROWS.toLocaleString('en-US')} rows take about half an hour at 250,000 rows/s.`,
      details,
    })
  }
}

/** CHECKPOINT where the role may (superuser or pg_checkpoint); elsewhere the seed goes on without it. */
async function checkpoint(db: Db): Promise<void> {
  try {
    await db.exec('CHECKPOINT')
  } catch (err) {
    if (sqlState(err) !== '42501') throw err
  }
}

/** Follower counts of ordinary creators: heavy-tailed, mostly a handful, rarely thousands. */
function ordinaryFollowerCount(random: () => number, users: number): number {
  const u = Math.max(random(), 1e-6)
  return Math.min(users - 1, Math.floor(3 / u ** 0.9))
}

/**
 * Builds a realistic dataset: users, creators (the first `celebrities` of them celebrities),
 * skewed follows, products. Ids are assigned here (1..n) so the same seed gives the same rows.
 */
export async function seed(db: Db, options: SeedOptions, onProgress: (p: SeedProgress) => void = () => {}): Promise<SeedResult> {
  validateSeedOptions(options)
  const started = performance.now()
  if (await holdsData(db)) {
    if (!options.reset) {
      throw new NotEmptyError(`the database already holds data (${db.label})`, {
        hint: 'Add --reset to wipe it and seed afresh, or pick another database with --db.',
      })
    }
    await resetSchema(db)
  }

  const users = Math.max(options.users, options.celebrities > 0 ? options.celebrityFollowers + 1 : 0)
  const faker = new Faker({locale: [en], seed: options.seed})
  const random = createRandom(options.seed)
  // name pools drawn once from faker keep a million users fast and still realistic
  const firstNames = Array.from({length: 500}, () => faker.person.firstName())
  const lastNames = Array.from({length: 500}, () => faker.person.lastName())

  const rows: Record<string, number> = {}
  const tableSeconds: Record<string, number> = {}
  const done: Record<string, number> = {}
  /** Loads batches into a table; several loads of one table add up (parallel COPY streams). */
  const load = async (table: string, columns: CopyColumn[], total: number, batches: Iterable<CopyValue[][]>) => {
    done[table] ??= 0
    onProgress({table, done: done[table], total})
    function* tracked() {
      for (const batch of batches) {
        yield batch
        done[table] += batch.length
        onProgress({table, done: done[table], total})
      }
    }
    const t0 = performance.now()
    const n = await db.copyRows(table, columns, tracked())
    rows[table] = (rows[table] ?? 0) + n
    tableSeconds[table] = Math.max(tableSeconds[table] ?? 0, (performance.now() - t0) / 1000)
  }

  // Each batch and each creator draws from its own PRNG, so the data does not depend on how
  // many loads run in parallel or in which order they interleave.
  const streamRandom = (stream: number, k: number) => createRandom((Math.imul(options.seed + 1, 2654435761) ^ Math.imul(stream, 40503) ^ k) >>> 0)

  function* userBatches(firstBatch: number, endBatch: number): Iterable<CopyValue[][]> {
    for (let b = firstBatch; b < endBatch; b++) {
      const r = streamRandom(1, b)
      const batch: CopyValue[][] = []
      for (let id = b * BATCH + 1; id <= Math.min((b + 1) * BATCH, users); id++) {
        const first = firstNames[Math.floor(r() * firstNames.length)]
        const last = lastNames[Math.floor(r() * lastNames.length)]
        batch.push([id, `${first.toLowerCase()}.${last.toLowerCase()}.${id}`, `${first} ${last}`])
      }
      yield batch
    }
  }

  // follower sets first, so creators carry their follower_count
  const followerRanges: Array<{creator: number; start: number; count: number}> = []
  for (let creator = 1; creator <= options.creators; creator++) {
    const celebrity = creator <= options.celebrities
    const count = celebrity ? Math.min(options.celebrityFollowers, users - 1) : ordinaryFollowerCount(random, users)
    // a contiguous run of user ids (wrapping, skipping the creator) is distinct and cheap to sort
    followerRanges.push({creator, start: randomInt(random, 1, users), count})
  }
  const creatorRows: CopyValue[][] = followerRanges.map(({creator, count}) => [
    creator,
    creator,
    faker.company.name(),
    creator <= options.celebrities,
    count,
  ])
  const productRows: CopyValue[][] = []
  for (let creator = 1; creator <= options.creators; creator++) {
    for (let p = 0; p < options.productsPerCreator; p++) {
      productRows.push([
        productRows.length + 1,
        creator,
        faker.commerce.productName(),
        faker.commerce.productDescription(),
        randomInt(random, 500, 50_000),
        `https://img.example/${productRows.length + 1}.jpg`,
      ])
    }
  }

  const totalFollows = followerRanges.reduce((n, r) => n + r.count, 0)
  function* followBatches(): Iterable<CopyValue[][]> {
    for (const {creator, start, count} of followerRanges) {
      const r = streamRandom(2, creator)
      // the run's user ids, sorted, so each creator's rows arrive in primary-key order
      const ids: number[] = []
      let id = start
      while (ids.length < count) {
        if (id !== creator) ids.push(id)
        id = id === users ? 1 : id + 1
      }
      ids.sort((a, b) => a - b)
      for (let i = 0; i < ids.length; i += BATCH) {
        yield ids.slice(i, i + BATCH).map((user) => [creator, user, r() < 0.01])
      }
    }
  }

  const userColumns: CopyColumn[] = [{name: 'id', type: 'bigint'}, {name: 'handle', type: 'text'}, {name: 'display_name', type: 'text'}]
  const userBatchCount = Math.ceil(users / BATCH)
  // Follows carry no foreign keys, so they load first, alone (the largest table at full COPY
  // speed); then users in two COPY streams on Postgres (two backends, two cores).
  const userStreams = userBatchCount > 1 ? 2 : 1
  const splitAt = Math.ceil(userBatchCount / userStreams)
  const usersCreatorsProducts = async () => {
    await Promise.all(
      Array.from({length: userStreams}, (_, i) => load('users', userColumns, users, userBatches(i * splitAt, Math.min(userBatchCount, (i + 1) * splitAt)))),
    )
    await load(
      'creators',
      [
        {name: 'id', type: 'bigint'},
        {name: 'user_id', type: 'bigint'},
        {name: 'name', type: 'text'},
        {name: 'is_celebrity', type: 'boolean'},
        {name: 'follower_count', type: 'bigint'},
      ],
      creatorRows.length,
      [creatorRows],
    )
    await load(
      'products',
      [
        {name: 'id', type: 'bigint'},
        {name: 'creator_id', type: 'bigint'},
        {name: 'title', type: 'text'},
        {name: 'description', type: 'text'},
        {name: 'price_cents', type: 'integer'},
        {name: 'image_url', type: 'text'},
      ],
      productRows.length,
      [productRows],
    )
  }
  const follows = () =>
    load(
      'follows',
      [
        {name: 'creator_id', type: 'bigint'},
        {name: 'user_id', type: 'bigint'},
        {name: 'notify', type: 'boolean'},
      ],
      totalFollows,
      followBatches(),
    )
  await follows()
  await usersCreatorsProducts()

  // explicit ids were inserted: move the identity sequences past them
  await db.exec(`
    SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST((SELECT max(id) FROM users), 1));
    SELECT setval(pg_get_serial_sequence('creators', 'id'), GREATEST((SELECT max(id) FROM creators), 1));
    SELECT setval(pg_get_serial_sequence('products', 'id'), GREATEST((SELECT max(id) FROM products), 1));`)
  // Vacuumed now, not by autovacuum during the first run: a million freshly copied rows would have
  // it (and the run's first reads) setting their hint bits while the drop opens. VACUUM also marks
  // the pages all-visible, so index-only scans of follows (a celebrity's followers, a fan-out page)
  // skip the heap: seen on PostgreSQL 15 and 17, it does so right after a load only after a CHECKPOINT
  // (the load's dirty pages are still being written out, and a page VACUUM cannot lock for
  // cleanup stays unmarked) and without ANALYZE in the same command (with it the partitions of
  // follows stayed unmarked). The seed test checks the visibility map. Each its own exec: VACUUM
  // cannot run inside a multi-statement string.
  await checkpoint(db)
  await db.exec('VACUUM users, creators, follows, products')
  await db.exec('ANALYZE users, creators, follows, products')
  // written last: a seed that died half-way has no fingerprint, so a scenario run seeds again
  await db.query('INSERT INTO livedrop_dataset (fingerprint) VALUES ($1)', [datasetFingerprint(options)])

  const seconds = (performance.now() - started) / 1000
  const total = Object.values(rows).reduce((a, b) => a + b, 0)
  return {
    rows,
    tableSeconds,
    seconds,
    rowsPerSecond: Math.round(total / seconds),
    ...(users > options.users ? {usersRaisedTo: users} : {}),
  }
}

const DATASET_BOUNDS = {
  name: 'seed.bounds',
  text: `SELECT (SELECT max(id) FROM users) AS users, (SELECT max(id) FROM creators) AS creators, (SELECT max(id) FROM products) AS products,
      (SELECT min(id) FROM products WHERE creator_id = 1 AND deleted_at IS NULL) AS product`,
}

/** The highest ids of a seeded dataset and the celebrity's (creator 1) first live product, null when it has none. */
export async function datasetBounds(db: Queryable): Promise<{users: number; creators: number; products: number; celebrityProduct: number | null}> {
  const {rows} = await db.query<{users: number; creators: number; products: number; product: number | null}>(DATASET_BOUNDS)
  const r = rows[0]
  return {users: Number(r.users), creators: Number(r.creators), products: Number(r.products), celebrityProduct: r.product === null ? null : Number(r.product)}
}
