"""The package's version, in a module of its own: any part (the code generator's file header) reads it here
without importing the package, whose `__init__` opens the API."""

__version__ = "0.1.0"
