/**
 * Runs the order workflow queued: the orchestrator replays in this process,
 * and the second step, `workflowQueued`, goes to workflowstate's worker
 * stream, where a workflowstate Worker runs it (README: "Queued"): one in this
 * process, or, with `--external-worker`, those of `npm run worker`.
 */
import { WorkflowStateClient } from '@workflowstate/client'
import { bootstrap, ORDER_WORKFLOW, QUEUED_FUNCTIONS } from './pikku/bootstrap.js'
import {
  createLogger,
  createRPC,
  createSingletonServices,
  createWorkflowService,
  serverOptions,
} from './services.js'
import { WorkflowStateQueueService } from './queued/queue-service.js'
import { createStepWorker } from './queued/step-worker.js'
import { resumeOnStepEvents } from './queued/resume-on-events.js'
import { printRun } from './history.js'

const main = async (externalWorker: boolean): Promise<void> => {
  bootstrap({ queuedSteps: true })
  const { address, options } = serverOptions()
  const client = new WorkflowStateClient(address, options)
  const workflowService = await createWorkflowService()
  const logger = createLogger()
  // An orchestrator job that throws ends the wait for the run: a failed run is
  // over, and one whose job could not finish would wait for ever here.
  const following = new AbortController()
  try {
    // `rpc` is built from the services, which hold the queue; the queue runs
    // its first job only after startWorkflow, by which time `rpc` is set.
    const queueService = new WorkflowStateQueueService(
      (runId) => workflowService.orchestrateWorkflow(runId, rpc),
      logger,
      () => following.abort()
    )
    const services = createSingletonServices({ logger, workflowService, queueService })
    const rpc = createRPC(services)
    const worker = externalWorker ? undefined : createStepWorker(client, rpc, QUEUED_FUNCTIONS)
    const working = worker?.run()
    try {
      // As a Pikku function starts a workflow (wire.rpc.startWorkflow). With a
      // queue service, Pikku starts the run queued: it adds the first
      // orchestrator job and returns.
      const { runId } = await rpc.startWorkflow(ORDER_WORKFLOW, {
        orderId: `order-${Date.now()}`,
        items: 3,
        amount: 25,
      })
      await resumeOnStepEvents(client, workflowService, runId, following.signal)
      await queueService.idle()
      await printRun(workflowService, runId)
    } finally {
      await worker?.stop()
      await working
    }
  } finally {
    await workflowService.close()
    client.close()
  }
}

await main(process.argv.includes('--external-worker'))
