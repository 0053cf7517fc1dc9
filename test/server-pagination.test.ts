import {describe, expect, it} from 'vitest'
import {seedWorld, useServer} from './helpers/server.js'

describe('follower pages under concurrent follows', () => {
  const s = useServer('postgres', {rateLimitPerSecond: 1e6, rateLimitBurst: 1e6})

  it('pages deterministically: no duplicates, every earlier follower exactly once', async () => {
    await seedWorld(s.engine, {users: 3000, stock: 1})
    // even users follow creator 1 before paging; odd users follow while the pages are read
    await s.engine.db.exec(`INSERT INTO follows (creator_id, user_id) SELECT 1, g FROM generate_series(2, 3000, 2) g;
      UPDATE creators SET follower_count = 1500 WHERE id = 1`)
    let writing = true
    const writer = (async () => {
      for (let user = 3; user <= 3000 && writing; user += 2) {
        await s.app.inject({method: 'POST', url: '/creators/1/follow', headers: s.auth(user)})
      }
    })()
    const seen: number[] = []
    let cursor: string | null = null
    do {
      const res = await s.app.inject({method: 'GET', url: `/creators/1/followers?limit=97${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`})
      expect(res.statusCode).toBe(200)
      const page = res.json() as {items: Array<{userId: number}>; nextCursor: string | null}
      seen.push(...page.items.map((i) => i.userId))
      cursor = page.nextCursor
    } while (cursor)
    writing = false
    await writer
    expect(new Set(seen).size).toBe(seen.length)
    expect([...seen].sort((a, b) => a - b)).toEqual(seen)
    const before = seen.filter((u) => u % 2 === 0)
    expect(before).toHaveLength(1500)
    // a second pass after the writes sees everyone, in the same order
    const all: number[] = []
    cursor = null
    do {
      const page = (await s.app.inject({method: 'GET', url: `/creators/1/followers?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`})).json() as {items: Array<{userId: number}>; nextCursor: string | null}
      all.push(...page.items.map((i) => i.userId))
      cursor = page.nextCursor
    } while (cursor)
    expect(all.filter((u) => u % 2 === 0)).toEqual(before)
  })
})
