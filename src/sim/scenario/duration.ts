import {z} from 'zod'
import {DURATION_RE, durationMs} from '../../core/duration.js'

const durationMessage = 'expected a duration such as "500ms", "30s", "2m", or a number of seconds'

/** A duration in a file ("30s", "500ms", "2m", or seconds as a number); milliseconds once parsed. */
export const Duration = z
  .union([z.number({error: durationMessage}).nonnegative({error: durationMessage}), z.string().regex(DURATION_RE, {error: durationMessage})], {error: durationMessage})
  .transform((value) => durationMs(value)!)

export const PositiveDuration = Duration.refine((ms) => ms > 0, {error: 'must be longer than 0'})
