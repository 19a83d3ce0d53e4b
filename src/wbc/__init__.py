"""wbc: white blood cell classification from stained blood-smear images."""

__version__ = "0.29.0"
