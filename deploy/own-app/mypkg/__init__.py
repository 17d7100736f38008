"""A stand-in for your own project: a legacy FastAPI app and the async twins of its routes."""
