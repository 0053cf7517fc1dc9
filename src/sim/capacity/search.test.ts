import fc from 'fast-check'
import {describe, expect, it} from 'vitest'
import {findCapacity, roundScale, rung, type StepOutcome, type StepVerdict} from './search.js'

/** A fake target: passes below `threshold`, fails at or above it; void from `voidAt` (the generator's limit). */
function fakeJudge(threshold: number, opts: {voidAt?: number; invariantAt?: number} = {}) {
  const calls: number[] = []
  const judge = async (scale: number): Promise<StepOutcome<{scale: number}>> => {
    calls.push(scale)
    let verdict: StepVerdict = scale < threshold ? 'pass' : 'fail'
    if (opts.voidAt !== undefined && scale >= opts.voidAt) verdict = 'void'
    if (opts.invariantAt !== undefined && scale >= opts.invariantAt) verdict = 'invariant'
    return {verdict, reason: verdict === 'fail' ? 'read.p95 < 200ms' : undefined, data: {scale}}
  }
  return {judge, calls}
}

describe('the ladder', () => {
  it('is 1, 1.5, 2, 3, 4, 6, 8, 12 up and 0.75, 0.5, 0.375 down', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(rung)).toEqual([1, 1.5, 2, 3, 4, 6, 8, 12])
    expect([-1, -2, -3, -4].map(rung)).toEqual([0.75, 0.5, 0.375, 0.25])
  })
})

describe('findCapacity', () => {
  it('climbs to the first fail, then bisects to within 10%', async () => {
    const {judge, calls} = fakeJudge(2.5)
    const r = await findCapacity(judge)
    expect(calls.slice(0, 5)).toEqual([1, 1.5, 2, 3, roundScale(Math.sqrt(6))])
    expect(r.limit).toBe('target')
    expect(r.capacity!).toBeLessThan(2.5)
    expect(r.firstFail!).toBeGreaterThanOrEqual(2.5)
    expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual(1.1)
    expect(r.steps.map((s) => s.why)).toEqual(['start', 'climb', 'climb', 'climb', ...r.steps.slice(4).map(() => 'bisect')])
    expect(r.steps.every((s, i) => s.index === i && s.data.scale === s.scale)).toBe(true)
    expect(r.atLeast).toBe(false)
    expect(new Set(calls).size).toBe(calls.length)
  })

  it('descends below a failing start', async () => {
    const {judge, calls} = fakeJudge(0.4)
    const r = await findCapacity(judge)
    expect(calls.slice(0, 4)).toEqual([1, 0.75, 0.5, 0.375])
    expect(r.steps[1].why).toBe('descend')
    expect(r.capacity!).toBeLessThan(0.4)
    expect(r.firstFail!).toBeGreaterThanOrEqual(0.4)
    expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual(1.1)
  })

  it('stops at minScale: a fail there means the capacity is below it (the CI gate)', async () => {
    const {judge, calls} = fakeJudge(0.5)
    const r = await findCapacity(judge, {minScale: 0.8})
    expect(calls).toEqual([1, 0.8])
    expect(r).toMatchObject({capacity: null, firstFail: 0.8, belowMin: true, limit: 'target'})
  })

  it('starts at minScale when it is above the start, and tries nothing below it', async () => {
    const {judge, calls} = fakeJudge(1.5)
    const r = await findCapacity(judge, {minScale: 2})
    expect(calls).toEqual([2])
    expect(r).toMatchObject({capacity: null, firstFail: 2, belowMin: true})
  })

  it('ends with "at least" when maxScale passes, trying maxScale itself', async () => {
    const {judge, calls} = fakeJudge(100)
    const r = await findCapacity(judge, {maxScale: 5})
    expect(calls).toEqual([1, 1.5, 2, 3, 4, 5])
    expect(r).toMatchObject({capacity: 5, firstFail: null, limit: 'max-scale', atLeast: true})
  })

  it("reports a void step as the generator's limit, never as the target's", async () => {
    const {judge, calls} = fakeJudge(10, {voidAt: 3})
    const r = await findCapacity(judge)
    expect(calls).toEqual([1, 1.5, 2, 3])
    expect(r).toMatchObject({capacity: 2, firstFail: null, limit: 'generator', atLeast: true})
    expect(r.steps.at(-1)!.verdict).toBe('void')
  })

  it('a void start leaves no capacity at all, still limited by the generator', async () => {
    const {judge} = fakeJudge(10, {voidAt: 0})
    const r = await findCapacity(judge)
    expect(r).toMatchObject({capacity: null, firstFail: null, limit: 'generator', belowMin: false})
  })

  it('stops at an invariant violation', async () => {
    const {judge, calls} = fakeJudge(10, {invariantAt: 1.5})
    const r = await findCapacity(judge)
    expect(calls).toEqual([1, 1.5])
    expect(r).toMatchObject({capacity: 1, limit: 'invariant', atLeast: false})
  })

  it('tries a failing hint right after the start and descends from it instead of climbing', async () => {
    const {judge, calls} = fakeJudge(7)
    const r = await findCapacity(judge, {upperHint: 10})
    expect(calls.slice(0, 3)).toEqual([1, 10, 10 * 0.75])
    expect(r.steps[1].why).toBe('hint')
    expect(r.hint).toEqual({scale: 10, effect: 'bracketed'})
    expect(r.capacity!).toBeLessThan(7)
    expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual(1.1)
    // the ladder alone needs more steps for the same answer
    const plain = fakeJudge(7)
    const without = await findCapacity(plain.judge)
    expect(r.steps.length).toBeLessThan(without.steps.length)
  })

  it('rounds an unround hint and the steps below it to three significant digits', async () => {
    const {judge, calls} = fakeJudge(2)
    const r = await findCapacity(judge, {upperHint: 3.036963696369637})
    expect(calls.slice(0, 3)).toEqual([1, 3.04, 2.28])
    for (const c of calls) expect(c).toBe(Number(c.toPrecision(3)))
    expect(String(r.capacity)).toMatch(/^\d(\.\d{1,2})?$/)
  })

  it('climbs past a hint that passes', async () => {
    const {judge, calls} = fakeJudge(20)
    const r = await findCapacity(judge, {upperHint: 5})
    expect(calls.slice(0, 4)).toEqual([1, 5, 6, 8])
    expect(r.hint!.effect).toBe('passed')
    expect(r.capacity!).toBeLessThan(20)
    expect(r.firstFail!).toBeGreaterThanOrEqual(20)
  })

  it('ignores a hint at or below the start', async () => {
    const {judge, calls} = fakeJudge(1.8)
    const r = await findCapacity(judge, {upperHint: 1})
    expect(calls.slice(0, 3)).toEqual([1, 1.5, 2])
    expect(r.hint!.effect).toBe('ignored')
  })

  it('stops before the next step when aborted, keeping what it found', async () => {
    const controller = new AbortController()
    const {judge, calls} = fakeJudge(100)
    const r = await findCapacity(judge, {signal: controller.signal, onStep: (s) => s.index === 2 && controller.abort()})
    expect(calls).toEqual([1, 1.5, 2])
    expect(r).toMatchObject({capacity: 2, limit: 'aborted', atLeast: true})
  })

  it('refuses a maxScale below minScale', async () => {
    await expect(findCapacity(fakeJudge(1).judge, {minScale: 2, maxScale: 1})).rejects.toThrow(RangeError)
  })

  it('brackets any boundary within the tolerance, never calls a scale twice, and stays in [minScale, maxScale]', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({min: 0.05, max: 200, noNaN: true}),
        fc.double({min: 0.02, max: 0.5, noNaN: true}),
        fc.option(fc.double({min: 0.1, max: 400, noNaN: true}), {nil: undefined}),
        async (threshold, tolerance, upperHint) => {
          const {judge, calls} = fakeJudge(threshold)
          const r = await findCapacity(judge, {tolerance, upperHint, minScale: 0.01, maxScale: 1000, maxSteps: 60})
          expect(new Set(calls).size).toBe(calls.length)
          expect(calls.every((s) => s >= 0.01 && s <= 1000)).toBe(true)
          expect(r.limit).toBe('target')
          expect(r.capacity!).toBeLessThan(threshold)
          expect(r.firstFail!).toBeGreaterThanOrEqual(threshold)
          // 3-digit rounding of bisection points may stop a hair short of the tolerance
          expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual((1 + tolerance) * 1.01)
        },
      ),
      {numRuns: 300},
    )
  })

  it('with a flaky band around the boundary, the answer is a real pass below a real fail near the band', async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({min: 0.5, max: 50, noNaN: true}), fc.integer({min: 1, max: 2 ** 30}), async (threshold, seed) => {
        // within ±5% of the threshold the verdict is a coin toss (a noisy target)
        let state = seed
        const coin = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) & 1) === 1
        const seen = new Map<number, StepVerdict>()
        const judge = async (scale: number): Promise<StepOutcome<null>> => {
          const verdict: StepVerdict = scale < threshold * 0.95 ? 'pass' : scale >= threshold * 1.05 ? 'fail' : coin() ? 'pass' : 'fail'
          seen.set(scale, verdict)
          return {verdict, data: null}
        }
        const r = await findCapacity(judge, {minScale: 0.01, maxScale: 1000})
        expect(seen.get(r.capacity!)).toBe('pass')
        expect(seen.get(r.firstFail!)).toBe('fail')
        expect(r.capacity!).toBeLessThan(threshold * 1.05)
        expect(r.firstFail!).toBeGreaterThanOrEqual(threshold * 0.95)
        expect(r.firstFail! / r.capacity!).toBeLessThanOrEqual(1.1 * 1.01)
      }),
      {numRuns: 200},
    )
  })
})
