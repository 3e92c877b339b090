"""The review page for clinicians: server-rendered (Jinja2) with a little vanilla JavaScript."""
