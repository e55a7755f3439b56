/**
 * The typed helpers a Pikku app gets from its generated `.pikku/` folder
 * (`#pikku/function`, `#pikku/workflow`). The `pikku` CLI writes them from the
 * app's own service types; this example writes them by hand (README: "Why
 * `src/pikku/` is written by hand"), with the bodies the CLI emits: a bare
 * function becomes `{ func }`, a config is returned as it is.
 */
import type {
  CorePikkuFunctionSessionless,
  CorePikkuSessionlessFunctionConfig,
} from '@pikku/core/function'

type SessionlessConfig<In, Out> = CorePikkuSessionlessFunctionConfig<
  CorePikkuFunctionSessionless<In, Out>
>

export function pikkuSessionlessFunc<In, Out>(
  func: CorePikkuFunctionSessionless<In, Out> | SessionlessConfig<In, Out>
): SessionlessConfig<In, Out> {
  return typeof func === 'function' ? { func } : func
}

export function pikkuWorkflowFunc<In, Out>(
  func: CorePikkuFunctionSessionless<In, Out> | SessionlessConfig<In, Out>
): SessionlessConfig<In, Out> {
  return typeof func === 'function' ? { func } : func
}
