"""Page controllers: each parses a request, calls hub services, renders a template."""
