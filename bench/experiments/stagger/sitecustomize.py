import stagger  # noqa: F401
