/**
 * The app's singleton services, the object every Pikku function receives.
 * A Pikku app builds it in its `pikkuServices` factory; this example has only
 * the services the workflow needs: a logger, the workflow service and, in
 * queued mode, a queue service.
 */
import { ConsoleLogger } from '@pikku/core/services'
import { WorkflowStateService } from '@workflowstate/pikku'
import { setSingletonServices } from '@pikku/core/ecosystem'
import { rpcService } from '@pikku/core/rpc'
import type { CoreSingletonServices } from '@pikku/core'
import type { Logger } from '@pikku/core/services'
import type { PikkuRPC } from '@pikku/core/rpc'
import type { QueueService } from '@pikku/core/queue'
import type { PikkuWorkflowService } from '@pikku/core/workflow'

export type AppServices = CoreSingletonServices & {
  workflowService: PikkuWorkflowService
}

/** Which workflowstate server: WORKFLOWSTATE_TARGET and WORKFLOWSTATE_TOKEN, as clients/typescript/examples read them. */
export const serverOptions = (): { address: string; options: { token?: string } } => {
  const token = process.env.WORKFLOWSTATE_TOKEN
  return {
    address: process.env.WORKFLOWSTATE_TARGET || '127.0.0.1:50051',
    options: token ? { token } : {},
  }
}

/**
 * Pikku's workflow service backed by the workflowstate server, built as
 * Pikku's own backends are. Build it after bootstrap(): its constructor wires
 * Pikku's workflow queue workers from the registered meta.
 */
export const createWorkflowService = async (): Promise<WorkflowStateService> => {
  const { address, options } = serverOptions()
  const service = new WorkflowStateService(address, options)
  await service.init()
  return service
}

export const createLogger = (): Logger => new ConsoleLogger()

export const createSingletonServices = (services: {
  logger: Logger
  workflowService: PikkuWorkflowService
  queueService?: QueueService
}): AppServices => {
  const singletonServices = { config: {}, ...services } as unknown as AppServices
  // Pikku's workflow runtime reads the singleton services from its own state
  // (the generated `pikkuServices` wrapper registers them the same way).
  setSingletonServices(singletonServices)
  return singletonServices
}

/** The RPC client a function would get as `wire.rpc`, for code outside any function. */
export const createRPC = (services: AppServices): PikkuRPC =>
  rpcService.getContextRPCService(services, {}, false)
