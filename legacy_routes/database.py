"""The legacy app's session dependency.

A real legacy app has its own engine and `get_db`; the example uses the gateway's sync
Session so both sides share one database URL (GATEWAY_DATABASE_URL).
"""

from gateway.database import get_session as get_db

__all__ = ["get_db"]
