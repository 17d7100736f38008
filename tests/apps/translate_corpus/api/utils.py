"""The same file name as crud/utils.py: a paging helper with a keyword-only session."""

from ..models import User


def page_of_users(*, db_session, skip=0, limit=10):
    return db_session.query(User).order_by(User.id).offset(skip).limit(limit).all()
