"""interplab: a hands-on, auto-graded course in mechanistic interpretability."""

__version__ = "0.1.0"
