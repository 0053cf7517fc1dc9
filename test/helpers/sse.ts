import {request} from 'undici'

export interface SseEvent {
  event: string
  data: unknown
}

/**
 * Opens an SSE stream and collects its events until close(). `connected` resolves once the
 * server's opening comment arrived, so events sent after it cannot be missed.
 */
export async function openSse(url: string, headers: Record<string, string>): Promise<{events: SseEvent[]; next: (type: string, timeoutMs: number) => Promise<SseEvent>; close: () => void}> {
  const controller = new AbortController()
  const res = await request(url, {headers, signal: controller.signal})
  if (res.statusCode !== 200) throw new Error(`SSE ${url} answered ${res.statusCode}`)
  const events: SseEvent[] = []
  const waiters: Array<() => void> = []
  let buffer = ''
  let connected!: () => void
  const ready = new Promise<void>((r) => (connected = r))
  ;(async () => {
    try {
      for await (const chunk of res.body) {
        buffer += chunk.toString()
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (block.startsWith(': connected')) connected()
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event && data) {
            events.push({event, data: JSON.parse(data)})
            waiters.splice(0).forEach((w) => w())
          }
        }
      }
    } catch {
      // aborted by close()
    }
  })()
  await ready
  const next = async (type: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = events.find((e) => e.event === type)
      if (found) return found
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${type} event within ${timeoutMs} ms (got ${events.map((e) => e.event).join(', ') || 'none'})`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }
  return {events, next, close: () => controller.abort()}
}
