/**
 * A one-workflow Pikku app for the example's tests: `registerWorkflow`
 * registers the workflow and its step functions as src/pikku/bootstrap.ts
 * registers the order workflow; `startApp` builds the app's services on a
 * workflow service, by default the example's own (WorkflowStateService on
 * WORKFLOWSTATE_TARGET), or on another, such as Pikku's own in-memory backend,
 * to compare with.
 */
import { pikkuState } from '@pikku/core/ecosystem'
import { addFunction } from '@pikku/core/function'
import { addWorkflow } from '@pikku/core/workflow'
import type { FunctionsRuntimeMeta } from '@pikku/core'
import type { CorePikkuFunctionSessionless, CorePikkuSessionlessFunctionConfig } from '@pikku/core/function'
import type { PikkuRPC } from '@pikku/core/rpc'
import type { PikkuWorkflowService } from '@pikku/core/workflow'
import { createLogger, createRPC, createSingletonServices, createWorkflowService } from '../../src/services.js'

type Func = CorePikkuSessionlessFunctionConfig<CorePikkuFunctionSessionless<any, any>>

export type TestApp = { rpc: PikkuRPC; workflowService: PikkuWorkflowService; close(): Promise<void> }

/** Registers `workflow` under `name` with its step `functions`. */
export const registerWorkflow = (name: string, workflow: Func, functions: Record<string, Func>): void => {
  const meta = (id: string) => ({ pikkuFuncId: id, inputSchemaName: null, outputSchemaName: null, sessionless: true })
  const functionsMeta: FunctionsRuntimeMeta = { [name]: meta(name) }
  for (const id of Object.keys(functions)) functionsMeta[id] = meta(id)
  pikkuState(null, 'function', 'meta', functionsMeta)
  pikkuState(null, 'rpc', 'meta', Object.fromEntries(Object.keys(functions).map((id) => [id, id])))
  // The graph hash is the CLI's; any fixed string does for a workflow that does not change.
  pikkuState(null, 'workflows', 'meta', {
    [name]: { name, pikkuFuncId: name, source: 'dsl', graphHash: `${name}-v1` },
  })
  // The workflow's orchestrator queue, as the CLI declares it (src/pikku/bootstrap.ts).
  const queue = `wf-orchestrator-${name}`
  pikkuState(null, 'queue', 'meta', { [queue]: { name: queue, pikkuFuncId: `pikkuWorkflowOrchestrator:${name}` } })
  for (const [id, func] of Object.entries(functions)) addFunction(id, func)
  addWorkflow(name, workflow)
}

/**
 * The app's services on `workflowService` (built after registerWorkflow: its
 * constructor wires Pikku's queue workers from the registered meta). The
 * services are Pikku's singletons: one app at a time.
 */
export const startApp = async (workflowService?: PikkuWorkflowService): Promise<TestApp> => {
  const service = workflowService ?? (await createWorkflowService())
  const services = createSingletonServices({ logger: createLogger(), workflowService: service })
  return { rpc: createRPC(services), workflowService: service, close: () => service.close() }
}

/** What a workflow service stored of a run: its status and error, and every attempt of its steps. */
export const outcomeOf = async (workflowService: PikkuWorkflowService, runId: string) => {
  const run = await workflowService.getRun(runId)
  const history = await workflowService.getRunHistory(runId)
  return {
    status: run?.status,
    error: run?.error && { message: run.error.message, code: run.error.code },
    attempts: history.map((a) => [a.stepName, a.attemptCount, a.status]),
  }
}
