// The bench's pikku-workflow figure: concurrent inline Pikku workflows of two steps, in a closed
// loop, on one of the two workflow backends a Pikku user chooses between for PostgreSQL:
//
//   node workflows.mjs pg            CONCURRENCY WARMUP_S SECONDS   Pikku's own @pikku/pg (PGHOST... , PG_SCHEMA)
//   node workflows.mjs workflowstate CONCURRENCY WARMUP_S SECONDS   @workflowstate/pikku (WORKFLOWSTATE_TARGET)
//
// Both run the same workflow, registered the way the `pikku` CLI's generated bootstrap does it
// (examples/pikku/src/pikku/bootstrap.ts says why by hand), started as a Pikku function starts
// one, rpc.startWorkflow(), which with no queue service runs it inline to its end. The window has
// the semantics of bench/loop.py: every worker warms up (WARMUP_S and a few workflows), then the
// workflows finishing within SECONDS count. The tally goes to stdout as one JSON line:
// {"count", "seconds", "latencies_ms", "window"}, the shape bench/processes.py reads.
import { pikkuState, setSingletonServices } from '@pikku/core/ecosystem'
import { addFunction } from '@pikku/core/function'
import { rpcService } from '@pikku/core/rpc'
import { addWorkflow } from '@pikku/core/workflow'

const WORKFLOW = 'benchWorkflow'
const GRAPH_HASH = 'bench-workflow-v1'
const MIN_WARMUP_UNITS = 3
const OVERRUN_MS = 60_000

// The two steps: ordinary Pikku functions doing no work of their own, so the figure is the
// workflow engine's cost and its backend's.
const reserve = { func: async (_services, data) => ({ reserved: data.items }) }
const charge = { func: async (_services, data) => ({ charged: data.amount }) }
const workflow = {
  func: async (_services, data, { workflow: wf }) => {
    const stock = await wf.do('reserve', 'reserve', { orderId: data.orderId, items: data.items }, { retries: 0 })
    const payment = await wf.do('charge', 'charge', { orderId: data.orderId, amount: data.amount }, { retries: 0 })
    return { orderId: data.orderId, reserved: stock.reserved, charged: payment.charged }
  },
}

const register = () => {
  const meta = (id) => ({ pikkuFuncId: id, inputSchemaName: null, outputSchemaName: null, sessionless: true })
  pikkuState(null, 'function', 'meta', { reserve: meta('reserve'), charge: meta('charge'), [WORKFLOW]: meta(WORKFLOW) })
  pikkuState(null, 'rpc', 'meta', { reserve: 'reserve', charge: 'charge' })
  pikkuState(null, 'workflows', 'meta', {
    [WORKFLOW]: { name: WORKFLOW, pikkuFuncId: WORKFLOW, source: 'dsl', graphHash: GRAPH_HASH },
  })
  // The orchestrator queue the CLI declares for every workflow; no queue service uses it here
  // (the workflows run inline), but Pikku warns when a workflow has none.
  pikkuState(null, 'queue', 'meta', {
    'wf-orchestrator-bench-workflow': { name: 'wf-orchestrator-bench-workflow', pikkuFuncId: `pikkuWorkflowOrchestrator:${WORKFLOW}` },
  })
  addFunction('reserve', reserve)
  addFunction('charge', charge)
  addWorkflow(WORKFLOW, workflow)
}

const quietLogger = {
  info: () => {}, debug: () => {}, trace: () => {}, warn: (...args) => console.error(...args),
  error: (...args) => console.error(...args), setLevel: () => {},
}

const openBackend = async (backend, concurrency) => {
  if (backend === 'pg') {
    const { default: postgres } = await import('postgres')
    const { PgWorkflowService } = await import('@pikku/pg')
    // Where PostgreSQL is comes in libpq's variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
    // PGDATABASE), which postgres.js reads as psql does: a PGHOST that is a folder is a socket's.
    // Two connections per workflow in flight, so none waits for one: its withRunLock holds a
    // connection of its own for the advisory lock while the workflow's statements use another
    // (with one each, every connection ends up holding a lock and the workflows wait forever).
    const sql = postgres({ max: 2 * concurrency, onnotice: () => {} })
    const service = new PgWorkflowService(sql, process.env.PG_SCHEMA)
    await service.init()
    return { service, close: () => sql.end() }
  }
  if (backend === 'workflowstate') {
    const { WorkflowStateService } = await import('@workflowstate/pikku')
    const service = new WorkflowStateService(process.env.WORKFLOWSTATE_TARGET)
    await service.init()
    return { service, close: () => service.close() }
  }
  throw new Error(`backend: pg or workflowstate, not ${JSON.stringify(backend)}`)
}

const closedLoop = async (unit, concurrency, warmupS, seconds) => {
  const warmUntil = performance.now() + warmupS * 1000
  const window = { cold: concurrency, start: null, end: Infinity, count: 0, latencies: [] }
  const work = async () => {
    let warm = false
    let warmUnits = 0
    for (;;) {
      const began = performance.now()
      await unit()
      const finished = performance.now()
      if (window.start === null) {
        warmUnits += 1
        if (!warm && warmUnits >= MIN_WARMUP_UNITS && finished >= warmUntil) {
          warm = true
          window.cold -= 1
          if (window.cold === 0) {
            window.start = finished
            window.end = finished + seconds * 1000
            // The same moment on CLOCK_MONOTONIC (libuv's hrtime), which the bench's CPU sampler reads.
            window.monotonicStart = Number(process.hrtime.bigint()) / 1e9
          }
        }
        continue
      }
      if (finished > window.end) return
      window.latencies.push(Math.round((finished - began) * 1000) / 1000)
      window.count += 1
    }
  }
  let timer
  const stuck = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('the workflows did not finish in time')), (warmupS + seconds) * 1000 + OVERRUN_MS)
  })
  try {
    await Promise.race([Promise.all(Array.from({ length: concurrency }, work)), stuck])
  } finally {
    clearTimeout(timer)
  }
  const span = window.start === null ? null : [window.monotonicStart, window.monotonicStart + seconds]
  return { count: window.count, seconds, latencies_ms: window.latencies, window: span }
}

const main = async () => {
  const [backend, concurrencyText, warmupText, secondsText] = process.argv.slice(2)
  const concurrency = Number(concurrencyText)
  const [warmupS, seconds] = [Number(warmupText), Number(secondsText)]
  if (!(concurrency >= 1) || !(warmupS >= 0) || !(seconds > 0)) {
    throw new Error('usage: workflows.mjs pg|workflowstate CONCURRENCY WARMUP_S SECONDS')
  }
  register()
  // The singleton services before the workflow service: its constructor wires Pikku's queue
  // workers (none here) and logs through them.
  const services = { config: {}, logger: quietLogger }
  setSingletonServices(services)
  const { service, close } = await openBackend(backend, concurrency)
  try {
    services.workflowService = service
    const rpc = rpcService.getContextRPCService(services, {}, false)
    let order = 0
    const unit = async () => {
      order += 1
      const { runId } = await rpc.startWorkflow(WORKFLOW, { orderId: `order-${order}`, items: 3, amount: 25 })
      if (!runId) throw new Error('startWorkflow returned no run id')
    }
    const tally = await closedLoop(unit, concurrency, warmupS, seconds)
    process.stdout.write(JSON.stringify(tally) + '\n')
  } finally {
    await close()
  }
}

await main()
