"""Shared helpers for the *Autoencoders on MNIST with Keras* tutorial series.

One module per concern: ``config`` (quick mode, output folders), ``data``
(offline MNIST and Fashion-MNIST), ``models``, ``training``, ``metrics``,
``codec`` and ``plotting``. Import the one you need, e.g. ``import utils.data``.
"""

__version__ = "0.1.0"
