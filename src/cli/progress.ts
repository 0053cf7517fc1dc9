import cliProgress from 'cli-progress'

export interface ProgressReporter {
  update(label: string, done: number, total: number): void
  stop(): void
}

/**
 * A progress bar on a TTY; plain throttled lines otherwise (CI logs); nothing with --json.
 * Always on stderr so stdout stays the result.
 */
export function createProgress(options: {json: boolean}): ProgressReporter {
  if (options.json) return {update() {}, stop() {}}
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {stream: process.stderr, format: '{label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left', hideCursor: true},
      cliProgress.Presets.shades_classic,
    )
    let current = ''
    return {
      update(label, done, total) {
        if (label !== current) {
          if (current) bar.stop()
          current = label
          bar.start(total, done, {label: label.padEnd(10)})
        } else bar.update(done)
      },
      stop() {
        if (current) bar.stop()
      },
    }
  }
  let lastLine = 0
  return {
    update(label, done, total) {
      const now = Date.now()
      if (done === total || now - lastLine >= 2000) {
        lastLine = now
        process.stderr.write(`${label}: ${done}/${total}\n`)
      }
    },
    stop() {},
  }
}
