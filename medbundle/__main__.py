"""``python -m medbundle``: the ``medbundle`` command line where the console script is not on the PATH."""

from medbundle.cli import main

if __name__ == "__main__":
    main()
