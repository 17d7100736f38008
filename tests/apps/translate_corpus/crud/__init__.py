from .crud_post import post
from .crud_user import user

__all__ = ["post", "user"]
