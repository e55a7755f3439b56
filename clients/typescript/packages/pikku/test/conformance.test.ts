// Pikku's own conformance suites for a workflow backend (@pikku/core/testing), unmodified,
// run through the adapter against a real workflowstate server.
import { after } from "node:test";
import { defineServiceTests } from "@pikku/core/testing";
import { WorkflowStateRunService, WorkflowStateService } from "../src/index.js";

const address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
if (!address) throw new Error("WORKFLOWSTATE_TS_TEST_ADDRESS is not set: run the tests with `npm test`");

const opened: Array<{ close(): Promise<void> }> = [];
after(async () => {
  for (const service of opened) await service.close();
});

defineServiceTests({
  name: "workflowstate",
  services: {
    workflowService: async () => {
      const service = new WorkflowStateService(address);
      await service.init();
      opened.push(service);
      return service;
    },
    workflowRunService: async () => {
      const service = new WorkflowStateRunService(address);
      await service.init();
      opened.push(service);
      return service;
    },
  },
});
