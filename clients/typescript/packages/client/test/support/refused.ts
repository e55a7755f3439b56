// How a test of a refusal checks it: by its error class and the reason it names (with the context
// in its metadata), never by the words of its message, which are for people.
import assert from "node:assert/strict";
import type { WorkflowStateError } from "../../src/index.js";

type ErrorKind = abstract new (...args: never[]) => WorkflowStateError;

/** An assertion for `assert.rejects`: an error of `kind` naming `reason`, whose metadata holds `metadata`. */
export function refusedWith(kind: ErrorKind, reason: string, metadata: Record<string, string> = {}) {
  return (err: unknown) => {
    assert.ok(err instanceof kind, `${String(err)} is not a ${kind.name}`);
    assert.equal(err.reason, reason, err.message);
    for (const [key, value] of Object.entries(metadata)) {
      assert.equal(err.metadata[key], value, `${key} in ${JSON.stringify(err.metadata)}`);
    }
    return true;
  };
}
