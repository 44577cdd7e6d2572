"""Baseline ``fastapi_min_rps``: a minimal FastAPI route that reads the body.

What FastAPI itself costs per request, before anything of ours (auth, validation, the span,
metrics, Kafka). ``python -m bench.fastapi_min --port 8000``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from bench.baseline_server import serve

app = FastAPI()


@app.post("/v1/events")
async def events(request: Request) -> dict[str, int]:
    """Read the body; answer a small JSON."""
    await request.body()
    return {"accepted": 1}


if __name__ == "__main__":
    serve(app)
