"""``python -m client`` is the same as the ``conda-store`` console script."""

from .cli import main

main()
