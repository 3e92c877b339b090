"""The baseline for `feedback_ingest.py`: a FastAPI app whose feedback endpoint does no work.

It answers the same path with the same reply, under the same uvicorn, so the ratio of the real
service's rate to this one's says how much of the budget the service's own work takes.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/cds-services/{service_id}/feedback")
async def feedback(service_id: str) -> dict[str, int]:
    return {"stored": 1, "duplicates": 0}
