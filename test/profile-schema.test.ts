import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {ScenarioInvalidError} from '../src/core/errors.js'
import type {ScenarioProblem} from '../src/sim/scenario/loader.js'
import {defaultProfile, fillJson, fillPathQuery, livedropProfileYaml, loadProfile, parseProfile, profileJsonSchema, readPath} from '../src/sim/traffic/profile.js'
import {ROOT} from './helpers/cli.js'

const PROFILES = path.join(ROOT, 'profiles')

function problems(text: string, file = 'bad.yaml'): ScenarioProblem[] {
  try {
    parseProfile(text, file)
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioInvalidError)
    expect((err as ScenarioInvalidError).exitCode).toBe(4)
    return (err as ScenarioInvalidError).details!.problems as ScenarioProblem[]
  }
  throw new Error('expected the profile to be refused')
}

describe('target profiles: files', () => {
  it('profiles/schema.json is the one generated from the zod schema; profiles/livedrop.yaml is the route table', async () => {
    const schema = JSON.stringify(profileJsonSchema(), null, 2) + '\n'
    const livedrop = livedropProfileYaml()
    // regenerate with: LIVEDROP_WRITE_SCHEMA=1 npx vitest run test/profile-schema.test.ts
    if (process.env.LIVEDROP_WRITE_SCHEMA === '1') {
      writeFileSync(path.join(PROFILES, 'schema.json'), schema)
      writeFileSync(path.join(PROFILES, 'livedrop.yaml'), livedrop)
    }
    expect(readFileSync(path.join(PROFILES, 'schema.json'), 'utf8')).toBe(schema)
    expect(readFileSync(path.join(PROFILES, 'livedrop.yaml'), 'utf8')).toBe(livedrop)
    const json = JSON.parse(schema)
    expect(json.required).toEqual(expect.arrayContaining(['name', 'requests']))
    expect(json.properties.requests.properties).toHaveProperty('order')
    // the shipped file reads back as the built-in profile itself
    expect(await loadProfile(path.join(PROFILES, 'livedrop.yaml'))).toEqual(defaultProfile())
  })

  it('the built-in profile is the route table: paths, bodies, answers', () => {
    const p = defaultProfile()
    expect(p.requests.order).toMatchObject({
      method: 'POST',
      path: '/orders',
      headers: {'Idempotency-Key': '{key}'},
      body: {dropId: '{drop}', qty: '{qty}'},
      answers: [
        {status: 201, outcome: 'success'},
        {status: 409, when: {'error.code': 'SOLD_OUT'}, outcome: 'sold_out'},
        {status: 409, when: {'error.code': 'DROP_NOT_LIVE'}, outcome: 'not_live'},
      ],
      read: {orderId: 'id', units: 'qty'},
    })
    expect(p.requests.list_followers).toMatchObject({path: '/creators/{creator}/followers', query: {limit: 100}, paging: {cursor: {param: 'cursor', field: 'nextCursor'}}})
    expect(p.requests.browse_product?.okIfSent).toEqual({remove_product: [404]})
  })

  it('the shipped example profile is valid', async () => {
    const shop = await loadProfile(path.join(PROFILES, 'shop.yaml'))
    expect(shop.auth).toMatchObject({type: 'login', token: 'token', userId: 'user.id', users: 40, header: 'Authorization', prefix: 'Bearer '})
    expect(shop.fixture.setup.map((s) => Object.keys(s.save ?? {}))).toEqual([['creator'], ['product'], ['drop']])
  })

  it('names every problem as file:line:column with the field, exit 4', () => {
    const found = problems(
      [
        'name: bad',
        'auth: {type: login, request: {method: POST, path: /login}}',
        'requests:',
        '  order:',
        '    method: FETCH',
        '    path: /drops/{drop}/buy',
        '    body: {qty: "{quantity}"}',
        '    read: {orderId: "a..b"}',
        '  browse_products:',
        '    method: GET',
        '    path: /p',
      ].join('\n'),
    )
    const at = (field: string) => found.find((p) => p.field === field)
    expect(at('auth.token')).toMatchObject({line: 2, message: expect.stringMatching(/required/)})
    expect(at('requests.order.method')).toMatchObject({line: 5, column: 13})
    expect(at('requests.order.read.orderId')).toMatchObject({line: 8, message: expect.stringMatching(/dotted path/)})
    expect(at('requests.browse_products')).toMatchObject({line: 9, column: 3})
    // a placeholder naming nothing is caught when the file is read (once the shape is right)
    const typo = problems('name: t\nrequests:\n  order:\n    method: POST\n    path: /buy\n    body: {qty: "{quantity}"}\n')
    expect(typo).toEqual([{file: 'bad.yaml', line: 6, column: 11, field: 'requests.order.body', message: expect.stringMatching(/\{quantity\} names no value/)}])
  })

  it('fills templates and reads dotted paths', () => {
    const values = {drop: 'a-b', qty: 2, key: 'k1'}
    expect(fillJson({d: '{drop}', q: '{qty}', s: 'x-{qty}', list: ['{key}', 3]}, values)).toEqual({d: 'a-b', q: 2, s: 'x-2', list: ['k1', 3]})
    expect(fillPathQuery({path: '/drops/{drop}', query: {page: 1, who: '{key}'}}, values)).toBe('/drops/a-b?page=1&who=k1')
    const body = {data: {items: [{id: 'x'}, {id: 'y'}]}, n: 0}
    expect(readPath(body, 'data.items.*.id')).toEqual(['x', 'y'])
    expect(readPath(body, 'data.items.1.id')).toBe('y')
    expect(readPath(body, 'n')).toBe(0)
    expect(readPath(body, 'data.missing.id')).toBeUndefined()
  })
})
