/**
 * A step that calls an RPC the app does not have takes Pikku's not-retryable
 * path, as on Pikku's own backends: the run is suspended ("Deploy the missing
 * function and resume", code RPC_NOT_FOUND) and then fails with Pikku's
 * RPCNotFoundError, after the step's one attempt, however many retries the
 * step allows. The error is recognised by its class, the app's and the
 * adapter's being the same.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { RPCNotFoundError } from '@pikku/core/rpc'
import { WorkflowStateClient } from '@workflowstate/client'
import { reserveStock } from '../src/functions.js'
import { pikkuWorkflowFunc } from '../src/pikku/function-types.js'
import { serverOptions } from '../src/services.js'
import { startApp } from './support/app.js'

// Not among the app's functions: as if the step's function was not deployed.
const MISSING_RPC = 'refundCard'

const refundWorkflow = pikkuWorkflowFunc<{ orderId: string }, void>(async (_services, data, { workflow }) => {
  await workflow!.do('reserve stock', 'reserveStock', { orderId: data.orderId, items: 1 }, { retries: 0 })
  await workflow!.do('refund card', MISSING_RPC, { orderId: data.orderId }, { retries: 2, retryDelay: 0 })
})

const app = await startApp('refundWorkflow', refundWorkflow, { reserveStock })
const { address, options } = serverOptions()
const client = new WorkflowStateClient(address, options)
after(async () => {
  client.close()
  await app.close()
})

test('a step calling a missing RPC suspends the run, then fails it, without a retry', async () => {
  let runId: string | undefined
  await assert.rejects(
    app.rpc.startWorkflow('refundWorkflow', { orderId: `order-${Date.now()}` }, { onRunCreated: (id: string) => (runId = id) }),
    RPCNotFoundError
  )
  assert.ok(runId, 'startWorkflow did not report its run')
  const run = await app.workflowService.getRun(runId)
  assert.equal(run?.status, 'failed', `run ${runId} ended ${run?.status}: ${JSON.stringify(run?.error)}`)
  assert.equal(run?.error?.message, `RPC function not found: ${MISSING_RPC}`)

  // One attempt, never failed and retried: Pikku leaves the step where the missing RPC found it.
  const history = await app.workflowService.getRunHistory(runId)
  assert.deepEqual(
    history.map((a) => [a.stepName, a.attemptCount, a.status]),
    [
      ['reserve stock', 1, 'succeeded'],
      ['refund card', 1, 'running'],
    ]
  )

  const statuses: string[] = []
  for await (const event of client.watchRun(runId)) if (event.runStatus) statuses.push(event.runStatus)
  assert.deepEqual(statuses, ['running', 'suspended', 'failed'])
})
