"""The async twins of some of the app's routes, as its migration writes them.

Same file and function names as `app/api/api_v1/endpoints/`; pydantic 1 models like the app
(its own schemas); AsyncSession from the gateway (`AsyncDB`) instead of `deps.get_db`.
"""
