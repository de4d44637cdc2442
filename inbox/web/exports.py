"""Manager exports over HTTP (filled in by the export work)."""

route_handlers: list = []
