/** What fastify itself sends with a serialized object; JSON text a route sends as is carries the same. */
export const JSON_TYPE = 'application/json; charset=utf-8'

/** JSON schemas shared by the routes. Path and query values arrive as strings (no coercion). */
export const idString = {type: 'string', pattern: '^[1-9][0-9]{0,14}$'} as const

export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: {id: idString},
} as const

export const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cursor: {type: 'string', maxLength: 512},
    limit: {type: 'string', pattern: '^[1-9][0-9]{0,3}$'},
  },
} as const

/** The query of a route that takes no parameters (every route without a querystring schema gets it). */
export const noQuery = {type: 'object', additionalProperties: false, properties: {}} as const

/** Parses a validated id or limit string. */
export function int(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number.parseInt(value, 10)
}

/** PATCH /products/:id: the fields an edit may change, at least one (limits as the core validates them). */
export const productPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    title: {type: 'string', minLength: 1, maxLength: 200},
    description: {type: 'string', maxLength: 10_000},
    priceCents: {type: 'integer', minimum: 0, maximum: 2 ** 31 - 1},
    imageUrl: {type: ['string', 'null'], maxLength: 2048},
  },
} as const
