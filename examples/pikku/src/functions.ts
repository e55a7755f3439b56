/**
 * The two step functions of the order workflow, ordinary Pikku functions.
 * `chargeCard` fails its first attempt, the way a card gateway times out now
 * and then: the workflow's retry policy, not the function, makes it succeed.
 */
import { pikkuSessionlessFunc } from './pikku/function-types.js'

export const reserveStock = pikkuSessionlessFunc<
  { orderId: string; items: number },
  { reserved: number }
>(async ({ logger }, data) => {
  logger.info(`reserving ${data.items} items for ${data.orderId}`)
  return { reserved: data.items }
})

export const chargeCard = pikkuSessionlessFunc<
  { orderId: string; amount: number },
  { charged: number; attempt: number }
>(async ({ logger }, data, wire) => {
  // The attempt number comes from the workflow engine (the step's attempt
  // count), so "fails once" holds however many processes run the step.
  const attempt = wire.workflowStep?.attemptCount ?? 1
  logger.info(`charging ${data.amount} for ${data.orderId}, attempt ${attempt}`)
  if (attempt === 1) {
    throw new Error('card gateway timed out')
  }
  return { charged: data.amount, attempt }
})
