// @workflowstate/pikku: Pikku's workflow backend over a workflowstate server.
export { WorkflowStateService } from "./workflow-service.js";
export type { WorkflowStateServiceOptions } from "./workflow-service.js";
export { WorkflowStateRunService } from "./run-service.js";
export type { WorkflowStateConnectOptions } from "./options.js";
