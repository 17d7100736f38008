"""The example: a legacy users service (`legacy_routes`) and its migration (`async_routes`).

gateway serve example:create_app     # the default app of `gateway serve`

    from example import create_gateway, prepare_database, SEED_USERS
    gw = create_gateway(settings)
    gw.on_startup(lambda g: prepare_database(g, seed_count=len(SEED_USERS)))
    app = gw.build()
"""

from example.app import create_app, create_gateway, vector_unavailable
from example.seed import SEED_ITEMS, SEED_USERS, prepare_database, prepare_items

__all__ = [
    "SEED_ITEMS",
    "SEED_USERS",
    "create_app",
    "create_gateway",
    "prepare_database",
    "prepare_items",
    "vector_unavailable",
]
