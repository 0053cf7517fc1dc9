/** snappyjs ships no types: the two functions livedrop uses (block format, as Prometheus remote write wants). */
declare module 'snappyjs' {
  export function compress(data: Uint8Array): Uint8Array
  export function uncompress(data: Uint8Array, maxLength?: number): Uint8Array
  const snappy: {compress: typeof compress; uncompress: typeof uncompress}
  export default snappy
}
