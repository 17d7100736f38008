from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException
from sqlalchemy.orm import Session

from .. import crud
from ..crud.utils import search, titles
from ..database import SessionLocal, get_db
from ..models import Post, User
from ..schemas import PostCreate, PostOut, PostWithVotes
from .deps import get_current_active_user

router = APIRouter()


@router.get("/votes", response_model=list[PostWithVotes])
def posts_with_votes(db: Session = Depends(get_db), limit: int = 10):
    return crud.post.with_votes(db, limit=limit)


@router.post("/", response_model=PostOut)
def create_post(
    post_in: PostCreate,
    db: Session = Depends(get_db),
    current_user: User = Depends(get_current_active_user),
):
    return crud.post.create_with_owner(db, obj_in=post_in, owner_id=current_user.id)


@router.get("/search", response_model=list[PostOut])
def search_posts(title: str | None = None, owner_id: int | None = None, db=Depends(get_db)):
    return search(db, title=title, owner_id=owner_id)


@router.get("/mine/titles")
def my_titles(db: Session = Depends(get_db), current_user: User = Depends(get_current_active_user)):
    return {"titles": titles(db, current_user.id)}


@router.get("/mine/count")
async def count_mine(
    db: Session = Depends(get_db), current_user: User = Depends(get_current_active_user)
):
    return {"count": crud.post.count_by_owner(db, owner_id=current_user.id)}


@router.get("/{post_id}/tags")
def post_tags(post_id: int, db: Session = Depends(get_db)):
    post = db.query(Post).filter(Post.id == post_id).first()
    if post is None:
        raise HTTPException(status_code=404, detail="no such post")
    return {"tags": sorted(t.name for t in post.tags)}


def record_view(post_id: int) -> None:
    db = SessionLocal()
    try:
        post = crud.post.get(db, id=post_id)
        if post is not None:
            post.views += 1
            db.commit()
    finally:
        db.close()


@router.post("/{post_id}/view")
def view_post(post_id: int, background_tasks: BackgroundTasks, db: Session = Depends(get_db)):
    if crud.post.get(db, id=post_id) is None:
        raise HTTPException(status_code=404, detail="no such post")
    background_tasks.add_task(record_view, post_id)
    return {"queued": post_id}


@router.delete("/{post_id}", response_model=PostOut)
def delete_post(
    post_id: int,
    db: Session = Depends(get_db),
    current_user: User = Depends(get_current_active_user),
):
    post = crud.post.get(db, id=post_id)
    if post is None or post.owner_id != current_user.id:
        raise HTTPException(status_code=404, detail="no such post of yours")
    return crud.post.remove(db, id=post_id)
