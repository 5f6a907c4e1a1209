"""The lifetime every eccl handle class shares: ``close()`` frees the C object (idempotently),
``with`` closes it, and so does garbage collection as a last resort (an error then is dropped:
the interpreter may be shutting down)."""


class Resource:
    def close(self) -> None:  # each class aliases its own verb (destroy, stop) to this
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
