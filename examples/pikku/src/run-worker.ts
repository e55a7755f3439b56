/**
 * Runs only the step worker: a workflowstate Worker serving the app's
 * `workflowQueued` functions, until SIGTERM or Ctrl-C (then it finishes the
 * attempts it holds and exits). Start one or more beside
 * `npm run queued -- --external-worker`; the server hands each attempt to
 * exactly one of them.
 */
import { WorkflowStateClient } from '@workflowstate/client'
import { bootstrap, QUEUED_FUNCTIONS } from './pikku/bootstrap.js'
import {
  createLogger,
  createRPC,
  createSingletonServices,
  createWorkflowService,
  serverOptions,
} from './services.js'
import { createStepWorker } from './queued/step-worker.js'

const main = async (): Promise<void> => {
  bootstrap({ queuedSteps: true })
  const { address, options } = serverOptions()
  const client = new WorkflowStateClient(address, options)
  const workflowService = await createWorkflowService()
  try {
    const services = createSingletonServices({ logger: createLogger(), workflowService })
    const worker = createStepWorker(client, createRPC(services), QUEUED_FUNCTIONS)
    console.log(`worker ${worker.workerId} serves ${QUEUED_FUNCTIONS.join(', ')}`)
    await worker.run() // until SIGTERM / SIGINT, which drain it
    console.log(`worker ${worker.workerId} stopped`)
  } finally {
    await workflowService.close()
    client.close()
  }
}

await main()
