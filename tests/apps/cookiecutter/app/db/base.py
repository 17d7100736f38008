# Import all the models, so that Base has them before being imported by create_all.
from app.db.base_class import Base  # noqa: F401
from app.models.item import Item  # noqa: F401
from app.models.user import User  # noqa: F401
