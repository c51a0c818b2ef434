"""The browser UI: Jinja2 pages, htmx, the Drawflow flow editor (see ``ui.app``)."""
