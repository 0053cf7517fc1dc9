import {formatThresholdActual, formatThresholdValue, NO_SAMPLES} from '../metrics/thresholds.js'
import type {RunResult} from '../metrics/result.js'
import type {RunComparison} from './compare.js'

const escapeXml = (s: string) =>
  s
    // XML 1.0 forbids most control characters even when escaped
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')

interface Case {
  name: string
  classname: string
  failure?: {message: string; type: string; text: string}
  skipped?: string
}

function suite(name: string, cases: Case[], timestamp: string, seconds: number): string {
  const failures = cases.filter((c) => c.failure).length
  const skipped = cases.filter((c) => c.skipped !== undefined).length
  const body = cases
    .map((c) => {
      const open = `    <testcase name="${escapeXml(c.name)}" classname="${escapeXml(c.classname)}" time="0"`
      if (c.failure) return `${open}>\n      <failure message="${escapeXml(c.failure.message)}" type="${escapeXml(c.failure.type)}">${escapeXml(c.failure.text)}</failure>\n    </testcase>`
      if (c.skipped !== undefined) return `${open}>\n      <skipped message="${escapeXml(c.skipped)}"/>\n    </testcase>`
      return `${open}/>`
    })
    .join('\n')
  return `  <testsuite name="${escapeXml(name)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" timestamp="${escapeXml(timestamp.replace(/Z$/, ''))}" time="${seconds.toFixed(3)}">\n${body}\n  </testsuite>`
}

/**
 * The run's verdicts as JUnit XML, so any CI system lists them: one testcase per threshold
 * (suite "thresholds"), per invariant (suite "invariants"), one for the generator's own health
 * (suite "run": a void run fails it, its message naming any threshold the lateness could have failed) and, with a comparison, one per compared figure that got
 * worse or stayed (suite "compare").
 */
export function renderJUnit(result: RunResult, comparison?: RunComparison): string {
  const scenario = result.scenario.name
  const seconds = result.durationMs / 1000
  const suites: string[] = []

  suites.push(
    suite(
      `${scenario}.run`,
      [
        {
          name: 'the run is valid (no generator stall, and its late sends cannot have caused a failure)',
          classname: `livedrop.${scenario}.run`,
          failure: result.void ? {message: result.void.reason, type: 'void_run', text: JSON.stringify(result.void.detail, null, 2)} : undefined,
        },
      ],
      result.startedAt,
      seconds,
    ),
  )

  suites.push(
    suite(
      `${scenario}.thresholds`,
      result.thresholds.map((t) => {
        const actual = formatThresholdActual(t)
        const limit = formatThresholdValue(t.kind, t.limit)
        return {
          name: `${t.expression} [${t.scope}]`,
          classname: `livedrop.${scenario}.thresholds.${t.scope}`,
          failure: t.pass
            ? undefined
            : {message: t.noData ? `${t.expression}: ${NO_SAMPLES}` : `${t.expression}: actual ${actual}, limit ${t.op} ${limit}`, type: 'threshold_failed', text: `scope ${t.scope}; timing ${t.timing}; actual ${actual}`},
          // an optional threshold (written with ?) on a metric with no samples
          skipped: t.noData && t.pass ? `no data for ${t.metric} in ${t.scope} (optional)` : undefined,
        }
      }),
      result.startedAt,
      seconds,
    ),
  )

  suites.push(
    suite(
      `${scenario}.invariants`,
      result.invariants.map((i) => ({
        name: i.name,
        classname: `livedrop.${scenario}.invariants`,
        failure: i.pass ? undefined : {message: i.detail ?? `${i.name} violated`, type: 'invariant_violated', text: JSON.stringify(i.data ?? {}, null, 2)},
      })),
      result.startedAt,
      seconds,
    ),
  )

  if (comparison) {
    suites.push(
      suite(
        `${scenario}.compare`,
        comparison.rows.flatMap((r) =>
          r.metrics.map((m) => ({
            name: `${r.type} ${m.metric} [${r.phase}]`,
            classname: `livedrop.${scenario}.compare.${r.phase}`,
            failure:
              m.verdict === 'worse'
                ? {message: `${m.metric} regressed: ${m.baseline} → ${m.current} (${m.reason})`, type: 'regression', text: JSON.stringify(m, null, 2)}
                : undefined,
          })),
        ),
        result.startedAt,
        seconds,
      ),
    )
  }

  const tests = (s: string) => Number(/tests="(\d+)"/.exec(s)![1])
  const fails = (s: string) => Number(/failures="(\d+)"/.exec(s)![1])
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="livedrop ${escapeXml(scenario)}" tests="${suites.reduce((n, s) => n + tests(s), 0)}" failures="${suites.reduce((n, s) => n + fails(s), 0)}" errors="0" time="${seconds.toFixed(3)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n')
}
