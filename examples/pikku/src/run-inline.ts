/**
 * Runs the order workflow inline: the orchestrator and both steps in this
 * process, every state change stored by the workflow service. The second step
 * fails once and is retried by Pikku's inline retry loop.
 */
import { bootstrap, ORDER_WORKFLOW } from './pikku/bootstrap.js'
import { createLogger, createRPC, createSingletonServices, createWorkflowService } from './services.js'
import { printRun } from './history.js'

const main = async (): Promise<void> => {
  bootstrap({ queuedSteps: false })
  const workflowService = await createWorkflowService()
  try {
    const services = createSingletonServices({ logger: createLogger(), workflowService })
    // As a Pikku function starts a workflow (wire.rpc.startWorkflow). With no
    // queue service among the services, Pikku runs it inline, to its end,
    // before this returns.
    const { runId } = await createRPC(services).startWorkflow(ORDER_WORKFLOW, {
      orderId: `order-${Date.now()}`,
      items: 3,
      amount: 25,
    })
    await printRun(workflowService, runId)
  } finally {
    await workflowService.close()
  }
}

await main()
