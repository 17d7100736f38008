"""The example app's migrated routes: `async def`, AsyncSession, `select(...)` style."""
