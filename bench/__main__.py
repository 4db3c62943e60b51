import sys

if "--storm" in sys.argv[1:]:  # the reconnect storm after a restart (bench/storm.py)
    from .storm import main as storm

    sys.exit(storm([a for a in sys.argv[1:] if a != "--storm"]))

from .run import main

sys.exit(main())
