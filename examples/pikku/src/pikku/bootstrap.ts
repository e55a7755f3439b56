/**
 * What `.pikku/pikku-bootstrap.gen.ts` does in a Pikku app built with the
 * `pikku` CLI: record each function's and workflow's metadata in Pikku's state
 * and register their bodies. Written by hand here (README: "Why `src/pikku/`
 * is written by hand"); the shapes are the CLI's (FunctionsRuntimeMeta, RPC
 * name -> function id, WorkflowsRuntimeMeta, the workflow queues' meta) and
 * `addFunction` / `addWorkflow` are Pikku's own.
 *
 * `queuedSteps` marks the QUEUED_FUNCTIONS `workflowQueued`, the function-meta flag
 * with which a Pikku app sends a step to its queue instead of running it in
 * the orchestrator's process (src/run-queued.ts).
 */
import { pikkuState } from '@pikku/core/ecosystem'
import { addFunction } from '@pikku/core/function'
import { addWorkflow } from '@pikku/core/workflow'
import type { FunctionsRuntimeMeta } from '@pikku/core'
import type { WorkflowsRuntimeMeta } from '@pikku/core/workflow'
import { chargeCard, reserveStock } from '../functions.js'
import { orderWorkflow } from '../order.workflow.js'

export const ORDER_WORKFLOW = 'orderWorkflow'

/** The functions whose steps go to the queue in queued mode. */
export const QUEUED_FUNCTIONS = ['chargeCard']

// The CLI hashes the workflow's step graph; a run records the hash it started
// with and a changed hash sends old runs down Pikku's version-mismatch path.
// Bump it when the steps change.
const ORDER_WORKFLOW_GRAPH_HASH = 'order-workflow-v1'

export const bootstrap = (options: { queuedSteps: boolean }): void => {
  const meta = (name: string) => ({
    pikkuFuncId: name,
    inputSchemaName: null,
    outputSchemaName: null,
    sessionless: true,
    workflowQueued: options.queuedSteps && QUEUED_FUNCTIONS.includes(name),
  })
  const functionsMeta: FunctionsRuntimeMeta = {
    reserveStock: meta('reserveStock'),
    chargeCard: meta('chargeCard'),
    [ORDER_WORKFLOW]: meta(ORDER_WORKFLOW),
  }
  pikkuState(null, 'function', 'meta', functionsMeta)
  pikkuState(null, 'rpc', 'meta', { reserveStock: 'reserveStock', chargeCard: 'chargeCard' })

  const workflowsMeta: WorkflowsRuntimeMeta = {
    [ORDER_WORKFLOW]: {
      name: ORDER_WORKFLOW,
      pikkuFuncId: ORDER_WORKFLOW,
      source: 'dsl',
      graphHash: ORDER_WORKFLOW_GRAPH_HASH,
    },
  }
  pikkuState(null, 'workflows', 'meta', workflowsMeta)

  // The queues the CLI declares for a workflow app: one orchestrator queue per
  // workflow and one step-worker queue per `workflowQueued` function. A
  // workflow service wires its queue workers to them when it is constructed.
  const queueMeta: Record<string, { name: string; pikkuFuncId: string }> = {
    'wf-orchestrator-order-workflow': {
      name: 'wf-orchestrator-order-workflow',
      pikkuFuncId: `pikkuWorkflowOrchestrator:${ORDER_WORKFLOW}`,
    },
  }
  if (options.queuedSteps) {
    queueMeta['wf-step-charge-card'] = {
      name: 'wf-step-charge-card',
      pikkuFuncId: 'pikkuWorkflowWorker:chargeCard',
    }
  }
  pikkuState(null, 'queue', 'meta', queueMeta)

  addFunction('reserveStock', reserveStock)
  addFunction('chargeCard', chargeCard)
  addWorkflow(ORDER_WORKFLOW, orderWorkflow)
}
