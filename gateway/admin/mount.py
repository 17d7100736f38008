"""The admin surface of a composed app: its routes first, each behind a prefix guard.

    api = mount_admin(app, prefix="/_gateway", access=access, health=health, ...)
    api        # the admin API's router (flips, history, routes, report): the admin port's too

The gateway's own routes go first, so that no legacy catch-all can shadow them, and each is
wrapped in a PrefixGuard, so that every other request skips them with one startswith.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI

from gateway._process.workers import admin_port_in_supervisor
from gateway.admin.api import ShadowResultsView, admin_router
from gateway.admin.auth import AdminAccess, refuse_query_tokens
from gateway.admin.page import page_router
from gateway.admin.rollout_api import rollout_router
from gateway.canary.judge import CanaryJudge
from gateway.flags.follower import FlagFollower
from gateway.routing.dispatch import PrefixGuard
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.admin.listener import AdminListener

__all__ = ["admin_listener", "mount_admin"]

Rows = list[dict[str, Any]]


def mount_admin(
    app: FastAPI,
    *,
    prefix: str,
    access: AdminAccess,
    health: APIRouter,
    follower: FlagFollower,
    describe_routes: Callable[[], Rows],
    report: Callable[[float], dict[str, Any]] | None,
    shadow: ShadowResultsView | None,
    judge: CanaryJudge | None,
) -> APIRouter:
    """Mount health, the admin API, the judge's routes and the page under `prefix`, ahead
    of every other route of `app`; return the admin API's router."""
    admin = APIRouter(
        prefix=prefix, include_in_schema=False, dependencies=[Depends(refuse_query_tokens)]
    )
    admin.include_router(health)
    describe = describe_routes
    if judge is not None:

        def describe() -> Rows:
            return judge.describe(describe_routes())

        admin.include_router(rollout_router(judge, access))
    after_flip = judge.after_flip if judge is not None else None
    api = admin_router(follower, access, describe, report, shadow, after_flip)
    admin.include_router(api)
    # The page's first HTML holds the route table only where reading it needs no token.
    admin.include_router(page_router(prefix, None if access.reads_need_token else describe))
    mounted = len(app.router.routes)
    app.include_router(admin)
    guarded = [PrefixGuard(prefix, route) for route in app.router.routes[mounted:]]
    app.router.routes[:] = guarded + app.router.routes[:mounted]
    return api


def admin_listener(
    api: APIRouter, app: FastAPI, settings: Settings, follower: FlagFollower
) -> AdminListener | None:
    """The admin API on GATEWAY_ADMIN_PORT, on a loop of its own (None when unset, and in
    the supervisor of `gateway serve`, which serves it for all its workers)."""
    if settings.admin_port is None or admin_port_in_supervisor():
        return None
    # Imported here: it brings uvicorn's server (and click, watchfiles, dotenv) into a
    # process that may be served by something else, for a port that is off by default.
    from gateway.admin.listener import AdminListener

    return AdminListener(
        api,
        app,
        prefix=settings.admin_prefix,
        host=settings.admin_host,
        port=settings.admin_port,
        opening=follower.open_store_here,
        closing=follower.close_store_here,
    )
