"""GET /: where the API is. A browser gets a small page linking GraphiQL; anything else a
JSON object naming the endpoints, so that a first request to the bare address is no dead end."""

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

__all__ = ["home"]

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{app}: graphql-ledger</title></head>
<body style="font-family: sans-serif; margin: 3em">
<h1>{app}'s credit ledger</h1>
<p>The GraphQL API is at <a href="{root}/graphql"><code>{root}/graphql</code></a>:
open it in this browser for GraphiQL; programs POST JSON there.</p>
<p>Operators: <a href="{root}/healthz">/healthz</a>, <a href="{root}/readyz">/readyz</a>,
<a href="{root}/metrics">/metrics</a>.</p>
</body>
</html>
"""


async def home(request: Request) -> Response:
    app: str = request.app.state.name
    root: str = request.scope.get("root_path", "")
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_PAGE.format(app=html.escape(app), root=html.escape(root)))
    return JSONResponse(
        {
            "app": app,
            "graphql": f"{root}/graphql",
            "message": f"{app}'s GraphQL API is at {root}/graphql (GraphiQL in a browser)",
            "health": f"{root}/healthz",
            "ready": f"{root}/readyz",
            "metrics": f"{root}/metrics",
        }
    )
