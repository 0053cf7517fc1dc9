/** Bench command lines: `--name N` numbers with defaults, and `--json`. Example: `--seconds 5 --json`. */
const argv = process.argv.slice(2)

export const JSON_OUT = argv.includes('--json')

export function numberArg(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`)
  const value = i >= 0 ? Number(argv[i + 1]) : fallback
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number, got ${argv[i + 1]}`)
  return value
}
