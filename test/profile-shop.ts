import {randomUUID} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {SignJWT, jwtVerify} from 'jose'

/**
 * A small flash-sale API shaped unlike livedrop, for the profile tests: uuid ids, user ids in paths
 * and bodies, page/limit listings, a dev-login that answers a JWT, 410 for sold out, 200 for a
 * replayed purchase. `broken` adds the two bugs the black-box invariants must catch: stock read,
 * then written after an await (lost updates under concurrency: oversell), and purchases that
 * ignore their requestId (a retry places a second order).
 */
export interface ShopOptions {
  broken?: boolean
  /** The await inside a purchase, ms: the window concurrent purchases overlap in. Default 10. */
  ioMs?: number
}

export interface Shop {
  url: string
  /** Orders placed and units sold, as the shop's own state holds them. */
  state(): {orders: number; unitsSold: number; stockLeft: Record<string, number>}
  close(): Promise<void>
}

const KEY = new TextEncoder().encode('shop-signing-key-0123456789abcdef')

interface Drop {
  id: string
  productId: string
  stock: number
  startsAt: number
  endsAt: number
}

export async function startShop(options: ShopOptions = {}): Promise<Shop> {
  const ioMs = options.ioMs ?? 10
  const users = new Map<string, string>() // username → id
  const creators = new Map<string, {id: string; owner: string; handle: string}>()
  const products = new Map<string, {id: string; creatorId: string; title: string; price: number; version: number}>()
  const drops = new Map<string, Drop>()
  const follows = new Map<string, Set<string>>() // creator → users
  const purchases = new Map<string, Promise<{status: number; body: string}>>() // user + requestId → first answer
  let orders = 0
  let unitsSold = 0
  const io = () => new Promise((r) => setTimeout(r, ioMs))

  const send = (res: ServerResponse, status: number, body?: unknown) => {
    const text = body === undefined ? '' : JSON.stringify(body)
    res.writeHead(status, body === undefined ? {} : {'content-type': 'application/json'}).end(text)
  }
  const readBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    let text = ''
    for await (const chunk of req) text += chunk
    return text ? JSON.parse(text) : {}
  }
  const userOf = async (req: IncomingMessage): Promise<string | null> => {
    const h = req.headers.authorization
    if (!h?.startsWith('Bearer ')) return null
    try {
      return (await jwtVerify(h.slice(7), KEY)).payload.sub ?? null
    } catch {
      return null
    }
  }

  async function purchase(d: Drop, qty: number): Promise<{status: number; body: string}> {
    if (Date.now() < d.startsAt) return {status: 425, body: JSON.stringify({error: 'not_started'})}
    let answer: {status: number; body: unknown}
    if (options.broken) {
      // the bug: read, await, write back what was read minus qty
      const seen = d.stock
      await io()
      if (seen < qty) answer = {status: 410, body: {error: 'sold_out'}}
      else {
        d.stock = seen - qty
        answer = {status: 201, body: {purchase: {id: randomUUID(), quantity: qty, remaining: d.stock}}}
      }
    } else {
      await io()
      // check and take in one step: nothing else runs in between
      if (d.stock < qty) answer = {status: 410, body: {error: 'sold_out'}}
      else {
        d.stock -= qty
        answer = {status: 201, body: {purchase: {id: randomUUID(), quantity: qty, remaining: d.stock}}}
      }
    }
    if (answer.status === 201) {
      orders++
      unitsSold += qty
    }
    return {status: answer.status, body: JSON.stringify(answer.body)}
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, 'http://shop')
    const p = url.pathname.split('/').filter(Boolean)
    const m = req.method
    if (m === 'POST' && url.pathname === '/auth/dev-login') {
      const {username} = await readBody(req)
      if (typeof username !== 'string') return send(res, 400, {error: 'username required'})
      let id = users.get(username)
      if (!id) users.set(username, (id = randomUUID()))
      const token = await new SignJWT({}).setProtectedHeader({alg: 'HS256'}).setSubject(id).setIssuedAt().setExpirationTime('1h').sign(KEY)
      return send(res, 200, {token, user: {id, username}})
    }
    const me = await userOf(req)
    // /api/…
    if (p[0] === 'api') {
      if (m === 'POST' && p[1] === 'creators' && p.length === 2) {
        if (!me) return send(res, 401, {error: 'login required'})
        const {handle} = await readBody(req)
        const c = {id: randomUUID(), owner: me, handle: String(handle)}
        creators.set(c.id, c)
        return send(res, 201, {data: c})
      }
      if (m === 'POST' && p[1] === 'creators' && p[3] === 'products') {
        const c = creators.get(p[2])
        if (!c) return send(res, 404, {error: 'no such creator'})
        if (me !== c.owner) return send(res, 403, {error: 'not yours'})
        const {title, price} = await readBody(req)
        const product = {id: randomUUID(), creatorId: c.id, title: String(title), price: Number(price), version: 1}
        products.set(product.id, product)
        return send(res, 201, {data: product})
      }
      if (m === 'GET' && p[1] === 'products' && p.length === 3) {
        const product = products.get(p[2])
        return product ? send(res, 200, {data: product}) : send(res, 404, {error: 'not found'})
      }
      if (m === 'GET' && p[1] === 'creators' && p[3] === 'followers') {
        const page = Number(url.searchParams.get('page') ?? 1)
        const limit = Number(url.searchParams.get('limit') ?? 20)
        const all = [...(follows.get(p[2]) ?? [])].sort()
        return send(res, 200, {data: all.slice((page - 1) * limit, page * limit).map((id) => ({userId: id})), page, hasMore: all.length > page * limit})
      }
      if (m === 'POST' && p[1] === 'drops' && p.length === 2) {
        if (!me) return send(res, 401, {error: 'login required'})
        const b = await readBody(req)
        if (!products.has(String(b.productId))) return send(res, 404, {error: 'no such product'})
        const drop: Drop = {id: randomUUID(), productId: String(b.productId), stock: Number(b.stock), startsAt: Date.parse(String(b.startsAt)), endsAt: Date.parse(String(b.endsAt))}
        drops.set(drop.id, drop)
        return send(res, 201, {data: {id: drop.id, stock: drop.stock}})
      }
      if (m === 'GET' && p[1] === 'drops' && p.length === 3) {
        const d = drops.get(p[2])
        return d ? send(res, 200, {data: {id: d.id, remaining: d.stock, live: Date.now() >= d.startsAt}}) : send(res, 404, {error: 'not found'})
      }
      if (m === 'POST' && p[1] === 'drops' && p[3] === 'purchase') {
        const d = drops.get(p[2])
        if (!d) return send(res, 404, {error: 'no such drop'})
        const b = await readBody(req)
        const userId = String(b.userId)
        if (me !== userId) return send(res, 403, {error: 'not you'})
        const qty = Number(b.quantity)
        const replayKey = `${userId}/${String(b.requestId)}`
        const reply = (a: {status: number; body: string}, replay: boolean) => {
          res.writeHead(replay && a.status === 201 ? 200 : a.status, {'content-type': 'application/json'}).end(a.body)
        }
        if (!options.broken) {
          // a retry while the first attempt is still in flight waits for its answer
          const earlier = purchases.get(replayKey)
          if (earlier) return reply(await earlier, true)
        }
        const attempt = purchase(d, qty)
        purchases.set(replayKey, attempt)
        return reply(await attempt, false)
      }
    }
    // /users/{userId}/…: ids in the path, checked against the token
    if (p[0] === 'users') {
      if (me !== p[1]) return send(res, 403, {error: 'not you'})
      if (p[2] === 'follow' && p[3]) {
        if (!creators.has(p[3])) return send(res, 404, {error: 'no such creator'})
        let set = follows.get(p[3])
        if (!set) follows.set(p[3], (set = new Set()))
        if (m === 'POST') {
          const fresh = !set.has(me)
          set.add(me)
          return send(res, fresh ? 201 : 200, {following: true})
        }
        if (m === 'DELETE') return set.delete(me) ? send(res, 204) : send(res, 404, {error: 'not following'})
      }
      if (m === 'GET' && p[2] === 'notifications') return send(res, 200, {data: [], page: Number(url.searchParams.get('page') ?? 1)})
    }
    send(res, 404, {error: 'no such route'})
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, {error: String(err)}))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const {port} = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    state: () => ({orders, unitsSold, stockLeft: Object.fromEntries([...drops.values()].map((d) => [d.id, d.stock]))}),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
