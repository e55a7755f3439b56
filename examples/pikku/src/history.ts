/**
 * Prints a run and every attempt of its steps, as the workflow service stores
 * them, and makes the process exit 1 unless the run completed.
 */
import type { PikkuWorkflowService } from '@pikku/core/workflow'

export const printRun = async (
  workflowService: PikkuWorkflowService,
  runId: string
): Promise<void> => {
  const run = await workflowService.getRun(runId)
  console.log(`run ${runId} ${run?.status} output=${JSON.stringify(run?.output)}`)
  if (run?.status !== 'completed') process.exitCode = 1
  for (const attempt of await workflowService.getRunHistory(runId)) {
    const outcome =
      attempt.status === 'failed'
        ? `error=${JSON.stringify(attempt.error?.message)}`
        : `result=${JSON.stringify(attempt.result)}`
    console.log(
      `  step "${attempt.stepName}" attempt ${attempt.attemptCount} ${attempt.status} ${outcome}`
    )
  }
}
