"""Shared fixtures: the real MNIST, loaded once, and an isolated, offline data environment."""

from __future__ import annotations

import socket

import pytest

import utils.data as data


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST through the normal source chain (the project cache after `make setup`)."""
    return data.load_mnist()


@pytest.fixture
def no_network(monkeypatch):
    """Make every outgoing connection fail at once, as it would on a machine with no internet."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def isolated_sources(tmp_path, monkeypatch, no_network):
    """Empty Keras home and project cache under tmp_path, no path override, network blocked."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("AE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(data.MNIST_PATH_ENV, raising=False)
    monkeypatch.delenv(data.MNIST_MIRROR_ENV, raising=False)
    return tmp_path
