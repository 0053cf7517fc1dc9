import {describe, expect, it} from 'vitest'
import {Fifo} from './fifo.js'

describe('Fifo', () => {
  it('gives items back in the order they went in, across compactions, and lists what is still queued', () => {
    const q = new Fifo<number>(4)
    const pushed: number[] = []
    const taken: number[] = []
    for (let i = 0; i < 100; i++) {
      for (const item of [i, 1000 + i]) {
        q.push(item)
        pushed.push(item)
      }
      taken.push(q.shift()!)
    }
    expect(taken).toEqual(pushed.slice(0, 100))
    expect(q.size).toBe(100)
    expect([...q]).toEqual(pushed.slice(100))
    while (q.size > 0) taken.push(q.shift()!)
    expect(taken).toEqual(pushed)
    expect(q.shift()).toBeUndefined()
  })
})
