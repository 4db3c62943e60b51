import gc

gc.set_threshold(100_000, 50, 100)
import stagger  # noqa: E402,F401
import quietq  # noqa: E402,F401
