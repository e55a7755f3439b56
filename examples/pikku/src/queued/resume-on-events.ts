/**
 * Re-queues a run's orchestrator whenever one of its steps succeeds or fails,
 * until the run ends: the job Pikku's own step worker does after each step,
 * done from workflowstate's run events since a workflowstate Worker runs the
 * steps. A failed attempt that the server retries leaves the step SCHEDULED
 * for its next attempt, so that replay just stops at the step again; an
 * attempt that used the last retry fails the step, and the replay fails the
 * run as Pikku would.
 */
import type { WorkflowStateClient } from '@workflowstate/client'
import type { PikkuWorkflowService } from '@pikku/core/workflow'

export const resumeOnStepEvents = async (
  client: WorkflowStateClient,
  workflowService: PikkuWorkflowService,
  runId: string,
  signal?: AbortSignal
): Promise<void> => {
  // watchRun ends with the event that finishes the run, and resumes by itself
  // after a lost connection, without missing or repeating an event.
  // The signal stops following early (the iteration just ends).
  if (signal?.aborted) return
  for await (const event of client.watchRun(runId, { signal })) {
    const status = event.step?.status
    if (status === 'succeeded' || status === 'failed') {
      await workflowService.resumeWorkflow(runId)
    }
  }
}
