"""edgeapp: the HTTP model-inference service of EdgeBoard boards."""

__version__ = "0.1.0"
