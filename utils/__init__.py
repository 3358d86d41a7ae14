"""Helpers for the *Autoencoders on MNIST with Keras* course, one module per job.

``course`` (the Setup cell's call), ``config`` (run-wide settings), ``files`` (atomic writes, checksums),
``checks`` (argument checks), ``data`` (offline MNIST and Fashion-MNIST), ``preprocessing`` (scaling, splits,
noise), ``models``, ``training``, ``saving`` (a trained model and its record), ``weights`` (the shipped
weights), ``recipes`` (every trained model of the series), ``metrics``, ``codec``, ``plotting``, ``widgets``.
"""

__version__ = "0.2.0"
