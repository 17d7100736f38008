"""The admin surface: the JSON API, its auth, health, the operator's page and the admin port.

- `api`: the admin router (flags, history, report);
- `auth`: admin tokens and how they are checked;
- `health`: liveness and readiness checks;
- `listener`: the admin port (`GATEWAY_ADMIN_PORT`), served from a thread;
- `rollout_api`: the judge's and rollouts' admin routes;
- `rows`: the route table as the admin API and CLI show it;
- `page` and `static/`: the operator's page.

Imports: everything below `app`.
"""
