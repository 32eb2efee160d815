"""User-facing errors: one clear line, non-zero exit, never a traceback."""


class AutoAttendError(Exception):
    """An error caused by the user's input (config, data, architecture file).

    Entry points print ``error: <message>`` on one line and exit with status 2.
    The message must say which file or key is wrong and what was expected.
    """


class DataNotFoundError(AutoAttendError):
    """A dataset is neither on disk nor reachable on the hub."""


class InvalidArchitectureError(AutoAttendError):
    """An architecture violates the search space; names the layer and the field."""

    def __init__(self, message: str, layer: int | None = None, field: str | None = None):
        where = []
        if layer is not None:
            where.append(f"layer {layer}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = f"invalid architecture ({', '.join(where)}): " if where else "invalid architecture: "
        super().__init__(prefix + message)
        self.layer = layer
        self.field = field
