import quietq  # noqa: F401
