from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def data_root() -> Path:
    """The read-only benchmark folder beside the repository (present on every CI machine)."""
    return SHARED_DATA.resolve()
