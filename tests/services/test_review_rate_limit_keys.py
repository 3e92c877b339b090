"""Who counts as one client for the review page's rate limit: a sealed session, else the peer
address. A bearer token that has not been verified names no one, so it must not choose the bucket:
otherwise every request with fresh junk in `Authorization` would start with a full bucket (no limit
at all) and write a `rate_buckets` row of its own."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clinrlhf.settings import Settings
from clinrlhf.store import deployment_store
from clinrlhf.store.models import RateBucket
from services.api.app import create_app

BURST = 5


def test_junk_bearer_tokens_share_their_address_bucket(tmp_path: Path, policy_dir: Path) -> None:
    settings = Settings(
        home=tmp_path, policy=policy_dir, review_rate_burst=BURST, review_rate_per_second=0.001
    )
    with TestClient(create_app(settings)) as client:
        statuses = [
            client.get(
                "/review/login", headers={"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}
            ).status_code
            for _ in range(4 * BURST)
        ]
    assert statuses[:BURST] == [200] * BURST
    assert set(statuses[BURST:]) == {429}
    with deployment_store(settings)() as session:
        rows = session.scalar(select(func.count()).select_from(RateBucket))
    assert rows == 1  # one client, one row: junk cannot fill the table
