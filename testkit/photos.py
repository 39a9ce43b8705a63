"""The session fixture `photos`: 40 generated camera-size JPEGs, fire vs no fire, with labels.csv.

The photos themselves are drawn by stack.demo_photos (`make run` seeds its data root with them).
"""

from __future__ import annotations

import pytest

from stack.demo_photos import LABELS_FILE, PhotoSet, make_photos

__all__ = ["LABELS_FILE", "PhotoSet", "make_photos", "photos"]


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> PhotoSet:
    """40 photos of mixed sizes, half of them fire, with labels.csv; shared by the session."""
    return make_photos(tmp_path_factory.mktemp("photos"), 40, seed=12)
