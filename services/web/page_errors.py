"""Errors of the compliance pages: a browser gets an HTML page (or, not logged in, the login form),
every other client the OperationOutcome the API always answers with.

A browser is a caller that asks for HTML and sends no bearer token; tools keep their JSON.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import RedirectResponse, Response

from services.errors import APIError, outcome_response, validation_error
from services.urls import public_url
from services.web.auth import bearer_of
from services.web.routes import TEMPLATES, wants_html

TITLES = {401: "Please log in", 403: "Not for this account", 404: "Not found", 409: "Not done"}


class PageError(APIError):
    """An APIError raised by a page route: HTML for a browser, an OperationOutcome otherwise."""


def is_browser(request: Request) -> bool:
    return wants_html(request) and bearer_of(request) is None


def error_page(request: Request, status: int, message: str) -> Response:
    context = {"status": status, "title": TITLES.get(status, "Something went wrong"), "message": message}
    context |= {"csrf": "", "script": None}
    response = TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    if not is_browser(request):
        return outcome_response(exc.status, exc.message, code=exc.code, headers=exc.headers)
    if exc.status == 401:
        return RedirectResponse(public_url(request, "login_page"), status_code=303)
    return error_page(request, exc.status, exc.message)


PAGES = ("/compliance", "/review")  # the pages a browser opens; the API's own routes keep JSON


async def _page_validation_error(request: Request, exc: Exception) -> Response:
    """A malformed address typed or followed in a browser (a run id that is not one) is a page."""
    if is_browser(request) and request.url.path.startswith(PAGES):
        return error_page(request, 404, "There is nothing at this address: check the link you followed.")
    return await validation_error(request, exc)


def install_page_errors(app: FastAPI) -> None:
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(RequestValidationError, _page_validation_error)
