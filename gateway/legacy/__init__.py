"""Serving legacy (`def`) routes: the one-hand-off fast path and the plan that decides it.

- `fast_path`: `LegacyApp`, a legacy route's sync work in one thread hand-off;
- `plan`: which routes take the fast path and why the others keep FastAPI's handler.
- `overrides`: `LayeredOverrides`, the composed app's overrides seen by the legacy routes;
- `solver`: solving a route's dependencies, the async steps on the loop, the rest in the thread.
- `route_class`: custom `APIRoute` classes whose handler wraps FastAPI's, around the fast path.

Public: `fast_path_blocker` (why a route keeps FastAPI's handler) and
`keep_fastapi_handler`, also at the front door.
Imports: the foundations, `request_info` and `concurrency`.
"""

from gateway.legacy.plan import fast_path_blocker, keep_fastapi_handler

__all__ = ["fast_path_blocker", "keep_fastapi_handler"]
