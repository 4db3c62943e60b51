"""Producer pages (placeholder until the producer pages land)."""


def routes() -> list:
    return []
