"""The access log names the route, never the path as sent: a path can carry a patient's name or an
identifier (`/fhir/QuestionnaireResponse/<anything>`, a mistyped URL), and the log outlives the
request. A real uvicorn server logs here, as `clinrlhf serve` would."""

from __future__ import annotations

import logging

import httpx

from clinrlhf.settings import Settings

NAME = "Jane-Q-Public-1961-04-02"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_paths_are_logged_as_route_templates(live_server, api_settings: Settings, auth) -> None:
    access_log, logger = Records(), logging.getLogger("uvicorn.access")
    with live_server(api_settings) as live:
        # After the server configured logging (which replaces the logger's handlers): listen in.
        logger.setLevel(logging.INFO)
        logger.addHandler(access_log)
        with httpx.Client(base_url=live.url, headers=auth("compliance"), timeout=30) as client:
            assert client.get(f"/fhir/QuestionnaireResponse/{NAME}?name={NAME}").status_code == 404
            assert client.get(f"/no-such-route/{NAME}").status_code == 404
            assert client.get("/healthz").status_code == 200
        logger.removeHandler(access_log)
    assert len(access_log.messages) == 3, access_log.messages
    assert not any(NAME in m for m in access_log.messages), access_log.messages
    assert "GET /fhir/QuestionnaireResponse/{review_id} HTTP/1.1" in access_log.messages[0]
    assert "GET /healthz HTTP/1.1" in access_log.messages[2]
