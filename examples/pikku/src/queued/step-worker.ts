/**
 * A workflowstate Worker that runs the app's `workflowQueued` step functions.
 * The server hands it each due attempt of a step whose rpc name it serves; the
 * handler runs the Pikku function through Pikku's RPC service with the wire a
 * Pikku step worker gives it (`workflowStep`: run, step, attempt), and its
 * result or error is the attempt's outcome. The server applies the step's
 * retry policy to a failure.
 */
import { Worker } from '@workflowstate/client'
import type { StepTask, WorkflowStateClient } from '@workflowstate/client'
import { deriveInvocationId } from '@pikku/core/workflow'
import type { PikkuRPC } from '@pikku/core/rpc'

export const createStepWorker = (
  client: WorkflowStateClient,
  rpc: PikkuRPC,
  rpcNames: string[]
): Worker => {
  const runStep = (task: StepTask): Promise<unknown> => {
    console.log(`worker ${worker.workerId} runs "${task.stepName}" attempt ${task.attempt}`)
    return rpc.rpcWithWire(task.rpcName, task.data, {
      workflowStep: {
        runId: task.runId,
        stepId: task.stepId,
        invocationId: deriveInvocationId(task.runId, task.stepName),
        attemptCount: task.attempt,
      },
    })
  }
  const worker = new Worker(client, Object.fromEntries(rpcNames.map((name) => [name, runStep])), {
    maxInFlight: 4,
  })
  return worker
}
