// WorkflowStateRunService: Pikku's read side of workflow runs (WorkflowRunService) over a
// workflowstate server.
import type { StepState as PikkuStep, WorkflowRun, WorkflowRunService, WorkflowStatus } from "@pikku/core/workflow";
import { InvalidArgument, NotFound, type StepState, WorkflowStateClient } from "@workflowstate/client";
import { pikkuAttemptOf, pikkuRunOf, pikkuStepOf } from "./convert.js";
import { clientOf, type WorkflowStateConnectOptions } from "./options.js";

/** The most runs one ListRuns page carries (the server's limit). */
const MAX_PAGE = 1000;

export class WorkflowStateRunService implements WorkflowRunService {
  readonly client: WorkflowStateClient;
  private readonly ownsClient: boolean;

  constructor(address: string | WorkflowStateClient, options: WorkflowStateConnectOptions = {}) {
    this.client = clientOf(address, options);
    this.ownsClient = typeof address === "string";
  }

  /** Checks that the server answers (nothing to create: the server owns its schema). */
  async init(): Promise<void> {
    await this.client.listWorkflows();
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.close();
  }

  /** Runs newest first, with payloads; offset walks the server's pages. */
  async listRuns(options: { workflowName?: string; status?: string; limit?: number; offset?: number } = {}): Promise<WorkflowRun[]> {
    const limit = options.limit ?? 50;
    let skip = options.offset ?? 0;
    const runs: WorkflowRun[] = [];
    if (limit <= 0) return runs;
    let pageToken: string | undefined;
    do {
      const page = await this.client.listRuns({
        workflow: options.workflowName,
        statuses: options.status ? [options.status as WorkflowStatus] : undefined,
        full: true,
        pageSize: Math.min(MAX_PAGE, skip + limit - runs.length),
        pageToken,
      });
      for (const run of page.runs) {
        if (skip > 0) skip -= 1;
        else if (runs.length < limit) runs.push(pikkuRunOf(run));
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined && runs.length < limit);
    return runs;
  }

  /** The run, or null when missing (also for an id that is not a UUID, which no run has). */
  async getRun(id: string): Promise<WorkflowRun | null> {
    try {
      const run = await this.client.getRun(id);
      return run === undefined ? null : pikkuRunOf(run);
    } catch (err) {
      if (err instanceof InvalidArgument) return null;
      throw err;
    }
  }

  async getRunSteps(runId: string): Promise<Array<PikkuStep & { stepName: string; rpcName?: string; data?: unknown }>> {
    const steps = await this.client.listSteps(runId);
    return steps.map((step) => ({ ...pikkuStepOf(step), rpcName: step.rpcName || undefined }));
  }

  /** Every attempt of every step, oldest first, each with its own times. */
  async getRunHistory(runId: string): Promise<Array<PikkuStep & { stepName: string }>> {
    const [attempts, steps] = await Promise.all([this.client.getRunHistory(runId), this.client.listSteps(runId)]);
    const byId = new Map<string, StepState>(steps.map((s) => [s.stepId, s]));
    return attempts.map((attempt) => pikkuAttemptOf(attempt, byId.get(attempt.stepId)));
  }

  async getDistinctWorkflowNames(): Promise<string[]> {
    return (await this.client.listWorkflows()).map((w) => w.workflow);
  }

  /** The version's graph and source, or null when the workflow has none of that hash. */
  async getWorkflowVersion(name: string, graphHash: string): Promise<{ graph: unknown; source: string } | null> {
    try {
      const version = await this.client.getWorkflowVersion(name, graphHash);
      return { graph: version.graph, source: version.source };
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
  }

  /** Erases the run (also a running one); false when there is no such run. */
  async deleteRun(id: string): Promise<boolean> {
    try {
      await this.client.deleteRun(id, { force: true });
      return true;
    } catch (err) {
      if (err instanceof NotFound || err instanceof InvalidArgument) return false;
      throw err;
    }
  }
}
