"""HTML to PDF with WeasyPrint: a pure-Python renderer of HTML and CSS paged media (page size,
running footers, page counters) that draws through the system's Pango, with no browser to download
or drive. Images in the report are inline data URIs, so nothing is fetched while rendering."""

from __future__ import annotations

import logging
from pathlib import Path


class PdfUnavailableError(RuntimeError):
    """WeasyPrint or the Pango library it draws with is missing."""


def html_to_pdf(html: str, path: Path) -> Path:
    try:
        import weasyprint  # heavy, and loads Pango through cffi: only when a PDF is asked for
    except (ImportError, OSError) as err:
        raise PdfUnavailableError(
            f"PDF output needs WeasyPrint and Pango ({type(err).__name__}); "
            "on Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0"
        ) from None
    # WeasyPrint logs every CSS property it does not support (e.g. `gap`) at WARNING.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    path.parent.mkdir(parents=True, exist_ok=True)
    weasyprint.HTML(string=html).write_pdf(str(path))
    return path
