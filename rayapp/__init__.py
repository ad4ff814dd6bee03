"""rayapp: a Ray-native Bitcoin price prediction engine."""

__version__ = "0.1.0"
