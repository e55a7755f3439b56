"""The actions: cancel a run, delete a run, retry a failed step. Each is a GET that shows what will
happen and a confirm button, then a POST (with the session's CSRF token, checked before any
handler runs) that does it through the API and redirects. A refusal of the API is shown on the
confirmation page with its code and message."""

from __future__ import annotations

from aiohttp import web

from workflowstate.client import NotFound, RunStatus, StepStatus, WorkflowStateError

from .api import CLIENT
from .responses import describe, redirect, render

routes = web.RouteTableDef()


async def _confirm(request: web.Request, action: str, *, error: WorkflowStateError | None = None, step_id: str | None = None) -> web.Response:
    client = request[CLIENT]
    run_id = request.match_info["run_id"]
    run = await client.get_run(run_id)
    if run is None:
        return render(request, "error.html", status=404, message=f"No run {run_id} (deleted, or never created).")
    step = None
    if step_id is not None:
        step = next((s for s in await client.list_steps(run_id) if s.step_id == step_id), None)
        if step is None:
            return render(request, "error.html", status=404, message=f"The run has no step {step_id}.")
    status, message = describe(error) if error is not None else (200, None)
    return render(request, "confirm.html", status=status, action=action, run=run, step=step, message=message,
                  running=run.status in (RunStatus.RUNNING, RunStatus.SUSPENDED), failed_step=step is not None and step.status is StepStatus.FAILED)  # fmt: skip


@routes.get("/runs/{run_id}/cancel")
async def confirm_cancel(request: web.Request) -> web.Response:
    return await _confirm(request, "cancel")


@routes.post("/runs/{run_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    form = await request.post()
    reason = str(form.get("reason", "")).strip() or "cancelled from the dashboard"
    try:
        await request[CLIENT].cancel_run(run_id, reason=reason)
    except WorkflowStateError as err:
        return await _confirm(request, "cancel", error=err)
    return redirect(f"/runs/{run_id}?done=cancelled")


@routes.get("/runs/{run_id}/delete")
async def confirm_delete(request: web.Request) -> web.Response:
    return await _confirm(request, "delete")


@routes.post("/runs/{run_id}/delete")
async def delete(request: web.Request) -> web.Response:
    run_id = request.match_info["run_id"]
    form = await request.post()
    try:
        await request[CLIENT].delete_run(run_id, force=form.get("force") == "yes")
    except NotFound:
        pass  # gone already (deleted twice, or from elsewhere): what was asked is true
    except WorkflowStateError as err:
        return await _confirm(request, "delete", error=err)
    return redirect("/runs?done=deleted")


@routes.get("/runs/{run_id}/steps/{step_id}/retry")
async def confirm_retry(request: web.Request) -> web.Response:
    return await _confirm(request, "retry", step_id=request.match_info["step_id"])


@routes.post("/runs/{run_id}/steps/{step_id}/retry")
async def retry(request: web.Request) -> web.Response:
    """A new attempt, PENDING, then SCHEDULED for the workers: two calls, not one transaction. Should
    the second fail, the step waits PENDING (the page shows it) and scheduling it again is safe."""
    run_id, step_id = request.match_info["run_id"], request.match_info["step_id"]
    client = request[CLIENT]
    try:
        # The step is named by its id alone in the API: act only if it is this URL's run's (a step
        # never moves to another run, so the check holds until the calls below).
        if all(step.step_id != step_id for step in await client.list_steps(run_id)):
            return render(request, "error.html", status=404, message=f"The run {run_id} has no step {step_id}: nothing was retried.")
        await client.create_retry_attempt(step_id, StepStatus.PENDING)
        await client.set_step_scheduled(step_id)
    except WorkflowStateError as err:
        return await _confirm(request, "retry", error=err, step_id=step_id)
    return redirect(f"/runs/{run_id}?done=retried")
