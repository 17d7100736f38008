"""Helpers with unannotated sessions, found by how they use them."""

from ..models import Post


def titles(db, owner_id):
    return [p.title for p in db.query(Post).filter(Post.owner_id == owner_id).order_by(Post.id)]


def search(db, *, title=None, owner_id=None):
    q = db.query(Post)
    if title is not None:
        q = q.filter(Post.title.contains(title))
    if owner_id is not None:
        q = q.filter(Post.owner_id == owner_id)
    return q.order_by(Post.id).all()
