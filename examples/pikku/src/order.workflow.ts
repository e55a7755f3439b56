/**
 * The order workflow: two steps, each an RPC to a Pikku function. The second
 * has a retry policy (Pikku's inline retry loop stops once the attempt count
 * reaches `retries`, so `retries: 2` allows exactly one retry there) and a
 * short retry delay so the example finishes quickly.
 */
import { pikkuWorkflowFunc } from './pikku/function-types.js'

export type OrderInput = { orderId: string; items: number; amount: number }
export type OrderOutput = { orderId: string; reserved: number; charged: number }

export const orderWorkflow = pikkuWorkflowFunc<OrderInput, OrderOutput>(
  async (_services, data, { workflow }) => {
    const stock = await workflow!.do<{ reserved: number }>(
      'reserve stock',
      'reserveStock',
      { orderId: data.orderId, items: data.items },
      { retries: 0 }
    )
    const payment = await workflow!.do<{ charged: number }>(
      'charge card',
      'chargeCard',
      { orderId: data.orderId, amount: data.amount },
      { retries: 2, retryDelay: 200 }
    )
    return {
      orderId: data.orderId,
      reserved: stock.reserved,
      charged: payment.charged,
    }
  }
)
