import {readFileSync} from 'node:fs'
import pg from 'pg'
import {describe, expect, it} from 'vitest'
import {openEmbedded} from '../src/core/db/embedded.js'
import {cpuSource, startCpuSampler} from '../src/sim/metrics/cpu.js'

describe("the embedded database's CPU", () => {
  it('is the postmaster and every backend, backends connected during the sampling included', async () => {
    const cluster = await openEmbedded(null)
    try {
      const pid = cluster.postmasterPid()
      expect(pid).toBeGreaterThan(0)
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('postgres')

      const sampler = startCpuSampler({database: cpuSource.processTree(pid!), postmasterOnly: cpuSource.processTree(pid!, false)}, {intervalMs: 500})
      // a backend born after the sampler started does the work
      const client = new pg.Client({connectionString: cluster.url})
      await client.connect()
      const {rows} = await client.query<{backend: number}>('SELECT pg_backend_pid() AS backend')
      const deadline = Date.now() + 1500
      while (Date.now() < deadline) await client.query('SELECT count(*) FROM generate_series(1, 300000)')
      const r = sampler.stop()
      const backendStat = readFileSync(`/proc/${rows[0].backend}/stat`, 'utf8')
      await client.end()

      // the backend is the postmaster's child and was busy for 1.5 s of wall time (less CPU on a shared machine)
      expect(Number(backendStat.slice(backendStat.lastIndexOf(')') + 2).split(' ')[1])).toBe(pid)
      expect(r.components.database.cpuSeconds).toBeGreaterThanOrEqual(0.3)
      expect(r.components.database.note).toBeUndefined()
      // the backend is still running at the end, so the postmaster alone has not seen its CPU
      expect(r.components.postmasterOnly.cpuSeconds!).toBeLessThan(r.components.database.cpuSeconds! / 3)
    } finally {
      await cluster.release()
    }
    expect(cluster.postmasterPid()).toBeNull()
  })
})
