"""Private standard-library names the gateway uses on hot paths (Python 3.11+)."""

from __future__ import annotations

import asyncio

__all__ = ["running_loop"]

# The loop running in this thread or None, without raising (`get_running_loop` raises when
# there is none, which is the common case in a worker thread, once per SQL statement).
running_loop = asyncio._get_running_loop
