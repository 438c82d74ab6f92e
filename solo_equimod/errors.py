"""The library's own exception types."""


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""
