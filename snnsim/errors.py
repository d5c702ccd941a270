"""Errors of the user's input that the command line reports as one line."""


class ConfigError(ValueError):
    """A config that cannot be used, with the reason a user can act on."""
