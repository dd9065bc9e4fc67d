"""``parkstream api``: the HTTP face of parkstream (FastAPI).

Every write becomes a command on ``space-commands`` that the fold decides; every read
comes from the PostgreSQL read model; every call is scoped to the tenant of its API key.
"""
