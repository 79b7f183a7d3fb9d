import pytest

from assistants import knowledge


@pytest.fixture(autouse=True)
def _fresh_vector_cache():
    """Each test starts without cached knowledge vectors: rolled-back test transactions let
    SQLite hand out the same chunk ids again, which a real database never does after a commit."""
    knowledge.vector_cache_clear()
    yield
