/**
 * A workflow that cancels itself (throws Pikku's WorkflowCancelledException)
 * ends cancelled on the server, as on Pikku's own in-memory backend: Pikku
 * recognises the exception by its class, the app's and the adapter's being
 * the same.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InMemoryWorkflowService } from '@pikku/core/services'
import { WorkflowCancelledException } from '@pikku/core/workflow'
import { reserveStock } from '../src/functions.js'
import { pikkuWorkflowFunc } from '../src/pikku/function-types.js'
import { outcomeOf, registerWorkflow, startApp, type TestApp } from './support/app.js'

const REASON = 'the customer withdrew the order'

const withdrawnOrderWorkflow = pikkuWorkflowFunc<{ orderId: string }, void>(async (_services, data, { workflow }) => {
  await workflow!.do('reserve stock', 'reserveStock', { orderId: data.orderId, items: 1 }, { retries: 0 })
  throw new WorkflowCancelledException(workflow!.runId, REASON)
})

registerWorkflow('withdrawnOrderWorkflow', withdrawnOrderWorkflow, { reserveStock })

const runOn = async (app: TestApp) => {
  try {
    const { runId } = await app.rpc.startWorkflow('withdrawnOrderWorkflow', { orderId: `order-${Date.now()}` })
    return { runId, ...(await outcomeOf(app.workflowService, runId)) }
  } finally {
    await app.close()
  }
}

test('a workflow that cancels itself ends cancelled, with its reason, as on Pikku\'s own backend', async () => {
  const { runId: _reference, ...expected } = await runOn(await startApp(new InMemoryWorkflowService()))
  assert.deepEqual(expected, {
    status: 'cancelled',
    error: { message: REASON, code: 'WORKFLOW_CANCELLED' },
    attempts: [['reserve stock', 1, 'succeeded']],
  })
  const { runId, ...stored } = await runOn(await startApp())
  assert.deepEqual(stored, expected, `run ${runId} on the server`)
})
