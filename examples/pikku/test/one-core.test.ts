/**
 * The app and @workflowstate/pikku load the same @pikku/core. Pikku recognises
 * its exceptions (a cancel, a missing RPC) by class, so a second copy, one for
 * the adapter's base class and one for the app's code, sends them down the
 * ordinary-error path.
 */
import assert from 'node:assert/strict'
import { realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'
import { PikkuWorkflowService } from '@pikku/core/workflow'
import { WorkflowStateService } from '@workflowstate/pikku'

const fromApp = createRequire(import.meta.url)

test('the adapter resolves the same @pikku/core as the app', () => {
  const adapter = realpathSync(fromApp.resolve('@workflowstate/pikku'))
  const adapterCore = realpathSync(createRequire(adapter).resolve('@pikku/core'))
  const appCore = realpathSync(fromApp.resolve('@pikku/core'))
  assert.equal(adapterCore, appCore, `the adapter (${adapter}) loads ${adapterCore}, the app ${appCore}`)
  assert.ok(WorkflowStateService.prototype instanceof PikkuWorkflowService)
})
