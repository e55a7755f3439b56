/**
 * The QueueService a Pikku app gives its workflow service to run workflows
 * queued, for workflowstate.
 *
 * Pikku's queued mode puts two kinds of jobs on its queue:
 * - step-worker jobs ({ runId, stepName, rpcName, data }) for the steps whose
 *   function is `workflowQueued`. Pikku marks the step SCHEDULED right after
 *   adding the job (rpcStep -> dispatchStep -> setStepScheduled), and on
 *   workflowstate SetStepScheduled is what hands a step to the workers on
 *   StreamStepTasks, with the step's own retries and retry delay. So the step
 *   is already queued, durably, by the server: there is nothing to add here.
 *   Those steps are run by a workflowstate Worker (see step-worker.ts), not by
 *   Pikku's own step-worker job.
 * - orchestrator jobs ({ runId }): replay the workflow body from the stored
 *   steps and take it as far as it goes. They are run here, in this process,
 *   one at a time per run; `resume-on-events.ts` adds one whenever a step the
 *   workers ran changes, which is the job Pikku's step worker does after a step.
 */
import type { JobOptions, QueueJob, QueueService } from '@pikku/core/queue'
import type { Logger } from '@pikku/core/services'

type Orchestrate = (runId: string) => Promise<void>
type OnFailure = (runId: string, error: unknown) => void

export class WorkflowStateQueueService implements QueueService {
  readonly supportsResults = false
  private readonly runs = new Map<string, Promise<void>>()
  private nextJobId = 0

  /**
   * `orchestrate` runs one orchestrator job (Pikku's orchestrateWorkflow);
   * `onFailure` hears of a job that threw: the run failed (Pikku has marked it
   * failed) or the job could not finish (the run waits for the next job).
   */
  constructor(
    private readonly orchestrate: Orchestrate,
    private readonly logger: Logger,
    private readonly onFailure: OnFailure = () => {}
  ) {}

  async add<T>(_queueName: string, data: T, options?: JobOptions): Promise<string> {
    const job = data as { runId?: unknown; stepName?: unknown }
    if (typeof job.runId !== 'string') {
      throw new Error(`not a workflow job: ${JSON.stringify(data)}`)
    }
    const jobId = `${++this.nextJobId}`
    if (typeof job.stepName === 'string') {
      return jobId // a step: workflowstate queues it at setStepScheduled (see above)
    }
    this.enqueue(job.runId, options?.delay ?? 0)
    return jobId
  }

  async getJob<T, R>(): Promise<QueueJob<T, R> | null> {
    return null // supportsResults is false: nobody waits on a job's result
  }

  /** Resolves once every orchestrator job added so far has run. */
  async idle(): Promise<void> {
    while (this.runs.size > 0) {
      await Promise.all(this.runs.values())
    }
  }

  private enqueue(runId: string, delayMs: number): void {
    // Chained per run: two replays of one run never overlap in this process
    // (across processes the workflow service's run lock keeps them apart).
    const previous = this.runs.get(runId) ?? Promise.resolve()
    const next = previous
      .then(() => (delayMs > 0 ? new Promise((r) => setTimeout(r, delayMs)) : undefined))
      .then(() => this.orchestrate(runId))
      .catch((error: unknown) => {
        this.logger.error(`orchestrating run ${runId} failed`, error)
        this.onFailure(runId, error)
      })
      .finally(() => {
        if (this.runs.get(runId) === next) this.runs.delete(runId)
      })
    this.runs.set(runId, next)
  }
}
