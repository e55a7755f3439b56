"""The retention page: the policies every server applies, a form to set one, and per policy a
delete behind a confirmation page. Both changes are POSTs with the session's CSRF token (checked
before any handler runs), done through the API with the user's token: a non-admin token is refused
PERMISSION_DENIED by the API, and the page shows that refusal with nothing stored."""

from __future__ import annotations

from aiohttp import web

from workflowstate.client import NotFound, RetentionPolicy, WorkflowStateError

from .api import CLIENT
from .responses import describe, redirect, render
from .retention_form import FINISHED, BadRetentionForm, RetentionForm, parse_keep

routes = web.RouteTableDef()
# What the page says after a change redirected to it (a fixed set: nothing from the URL is echoed).
DONE = {"set": "The retention policy was set.", "deleted": "The retention policy was deleted."}


async def _page(request: web.Request, *, form: RetentionForm | None = None, status: int = 200, message: str | None = None) -> web.Response:
    policies = await request[CLIENT].list_retention_policies()
    return render(request, "retention.html", status=status, policies=policies, form=form or RetentionForm(), finished=FINISHED,
                  message=message, done=DONE.get(request.query.get("done", "")))  # fmt: skip


@routes.get("/retention")
async def retention(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/retention")
async def set_policy(request: web.Request) -> web.Response:
    try:
        form = RetentionForm.from_post(await request.post())
    except BadRetentionForm as err:
        return await _page(request, status=400, message=str(err))
    try:
        keep = parse_keep(form.keep)
    except BadRetentionForm as err:
        return await _page(request, status=400, message=str(err), form=form)
    try:
        await request[CLIENT].set_retention_policy(keep=keep, workflow=form.workflow or None, statuses=form.statuses)
    except WorkflowStateError as err:
        status, message = describe(err)
        return await _page(request, status=status, message=message, form=form)
    return redirect("/retention?done=set")


async def _find(request: web.Request) -> RetentionPolicy | None:
    policy_id = request.match_info["policy_id"]
    policies = await request[CLIENT].list_retention_policies()
    return next((policy for policy in policies if str(policy.policy_id) == policy_id), None)


async def _confirm(request: web.Request, *, error: WorkflowStateError | None = None) -> web.Response:
    policy = await _find(request)
    if policy is None:
        return render(request, "error.html", status=404, message=f"No retention policy {request.match_info['policy_id']} (deleted, or never set).")
    status, message = describe(error) if error is not None else (200, None)
    return render(request, "retention_confirm.html", status=status, policy=policy, message=message)


@routes.get("/retention/{policy_id:[0-9]{1,18}}/delete")
async def confirm_delete(request: web.Request) -> web.Response:
    return await _confirm(request)


@routes.post("/retention/{policy_id:[0-9]{1,18}}/delete")
async def delete_policy(request: web.Request) -> web.Response:
    policy_id = int(request.match_info["policy_id"])
    try:
        await request[CLIENT].delete_retention_policy(policy_id)
    except NotFound:
        pass  # gone already (deleted twice, or from elsewhere): what was asked is true
    except WorkflowStateError as err:
        return await _confirm(request, error=err)
    return redirect("/retention?done=deleted")
