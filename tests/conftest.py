"""Shared test settings and helpers: quiet, deterministic, CPU unless a test asks for CUDA."""

import hashlib

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def _tree_digest(path):
    """sha256 over every file's name and bytes: equal digests mean nothing on disk changed."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def tree_digest():
    """The digest function, for tests that check a refused command left the disk unchanged."""
    return _tree_digest
