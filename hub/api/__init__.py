"""HTTP layer: thin Litestar handlers that parse, call one service, shape the answer."""
