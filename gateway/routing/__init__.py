"""Finding routes on both sides, pairing them, and dispatching each request to one side.

- `dispatch`: route keys, `RouteEntry`, `PathGroup` and the pairing of both apps;
- `overlaps`: routes one side shadows on the other;
- `openapi`: the composed app's schema and the routes it serves;
- `facts` and `contract`: what a route checks and accepts, and the pairing contract that
  holds each twin to its legacy route's at build;
- `server_errors`: the implementation header on unhandled-exception 500s.

Imports: the foundations, `flags` and `request_info`.
"""
