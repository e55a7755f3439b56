// With Pikku: workflowstate as the workflow backend of a Pikku app. The service is built like
// Pikku's own backends and handed to Pikku as its workflowService (and the run service as its
// workflowRunService, for the console). Here it is driven by hand to show what it stores.
// Run it against a server: WORKFLOWSTATE_TARGET=127.0.0.1:50051 node examples/dist/pikku.js
import { WorkflowStateRunService, WorkflowStateService } from "@workflowstate/pikku";

const address = process.env.WORKFLOWSTATE_TARGET ?? "127.0.0.1:50051";
const token = process.env.WORKFLOWSTATE_TOKEN; // for a server started with --auth-tokens

const workflowService = new WorkflowStateService(address, { token });
const workflowRunService = new WorkflowStateRunService(address, { token });
await workflowService.init();
await workflowRunService.init();
// In an app: createSingletonServices returns { ..., workflowService, workflowRunService }.

const runId = await workflowService.createRun("onboarding", { email: "a@example.com" }, false, "graph-v1", {
  type: "http",
});
const step = await workflowService.insertStepState(runId, "sendWelcome", "sendEmail", { to: "a@example.com" }, {
  retries: 2,
  retryDelay: "5s",
});
await workflowService.setStepRunning(step.stepId);
await workflowService.setStepResult(step.stepId, { sent: true });
await workflowService.updateRunStatus(runId, "completed", { ok: true });

const status = await workflowService.getRunStatus(runId);
console.log(status?.status, status?.steps.map((s) => `${s.name}:${s.status}`).join(","));
const runs = await workflowRunService.listRuns({ workflowName: "onboarding", limit: 1 });
console.log(`latest onboarding run: ${runs[0]?.id === runId}`);

await workflowRunService.close();
await workflowService.close();
