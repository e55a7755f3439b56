/**
 * A workflow that cancels itself (throws Pikku's WorkflowCancelledException)
 * ends CANCELLED on the server, as on Pikku's own backends: the exception is
 * recognised by its class, the app's and the adapter's being the same.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { WorkflowCancelledException } from '@pikku/core/workflow'
import { reserveStock } from '../src/functions.js'
import { pikkuWorkflowFunc } from '../src/pikku/function-types.js'
import { startApp } from './support/app.js'

const REASON = 'the customer withdrew the order'

const withdrawnOrderWorkflow = pikkuWorkflowFunc<{ orderId: string }, void>(async (_services, data, { workflow }) => {
  await workflow!.do('reserve stock', 'reserveStock', { orderId: data.orderId, items: 1 }, { retries: 0 })
  throw new WorkflowCancelledException(workflow!.runId, REASON)
})

const app = await startApp('withdrawnOrderWorkflow', withdrawnOrderWorkflow, { reserveStock })
after(() => app.close())

test('a workflow that cancels itself ends cancelled, with its reason', async () => {
  const { runId } = await app.rpc.startWorkflow('withdrawnOrderWorkflow', { orderId: `order-${Date.now()}` })
  const run = await app.workflowService.getRun(runId)
  assert.equal(run?.status, 'cancelled', `run ${runId} ended ${run?.status}: ${JSON.stringify(run?.error)}`)
  assert.equal(run?.error?.message, REASON)
  assert.equal(run?.error?.code, 'WORKFLOW_CANCELLED')
  const history = await app.workflowService.getRunHistory(runId)
  assert.deepEqual(
    history.map((a) => [a.stepName, a.attemptCount, a.status]),
    [['reserve stock', 1, 'succeeded']]
  )
})
