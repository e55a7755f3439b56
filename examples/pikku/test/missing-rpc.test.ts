/**
 * A step that calls an RPC the app does not have takes Pikku's not-retryable
 * path, as on Pikku's own in-memory backend: the run is suspended ("Deploy the
 * missing function and resume", code RPC_NOT_FOUND) and then fails with
 * Pikku's RPCNotFoundError, after the step's one attempt, however many retries
 * the step allows. Pikku recognises the error by its class, the app's and the
 * adapter's being the same.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { RPCNotFoundError } from '@pikku/core/rpc'
import { InMemoryWorkflowService } from '@pikku/core/services'
import { WorkflowStateClient } from '@workflowstate/client'
import { reserveStock } from '../src/functions.js'
import { pikkuWorkflowFunc } from '../src/pikku/function-types.js'
import { serverOptions } from '../src/services.js'
import { outcomeOf, registerWorkflow, startApp, type TestApp } from './support/app.js'

// Not among the app's functions: as if the step's function was not deployed.
const MISSING_RPC = 'refundCard'

const refundWorkflow = pikkuWorkflowFunc<{ orderId: string }, void>(async (_services, data, { workflow }) => {
  await workflow!.do('reserve stock', 'reserveStock', { orderId: data.orderId, items: 1 }, { retries: 0 })
  await workflow!.do('refund card', MISSING_RPC, { orderId: data.orderId }, { retries: 2, retryDelay: 0 })
})

registerWorkflow('refundWorkflow', refundWorkflow, { reserveStock })

const { address, options } = serverOptions()
const client = new WorkflowStateClient(address, options)
after(() => client.close())

const runOn = async (app: TestApp) => {
  try {
    let runId: string | undefined
    await assert.rejects(
      app.rpc.startWorkflow('refundWorkflow', { orderId: `order-${Date.now()}` }, { onRunCreated: (id: string) => (runId = id) }),
      RPCNotFoundError
    )
    assert.ok(runId, 'startWorkflow did not report its run')
    return { runId, ...(await outcomeOf(app.workflowService, runId)) }
  } finally {
    await app.close()
  }
}

test('a step calling a missing RPC suspends the run, then fails it, without a retry, as on Pikku\'s own backend', async () => {
  const { runId: _reference, ...expected } = await runOn(await startApp(new InMemoryWorkflowService()))
  // One attempt, neither failed nor retried: Pikku leaves the step where the missing RPC found it.
  assert.deepEqual(expected, {
    status: 'failed',
    error: { message: `RPC function not found: ${MISSING_RPC}`, code: undefined },
    attempts: [
      ['reserve stock', 1, 'succeeded'],
      ['refund card', 1, 'running'],
    ],
  })
  const { runId, ...stored } = await runOn(await startApp())
  assert.deepEqual(stored, expected, `run ${runId} on the server`)

  // The suspension, which the run's final state does not show, is in its events.
  const statuses: string[] = []
  for await (const event of client.watchRun(runId)) if (event.runStatus) statuses.push(event.runStatus)
  assert.deepEqual(statuses, ['running', 'suspended', 'failed'])
})
