"""Draw the analysis figures of a results directory as PNG files (the seed's visualize_benchmarks.py).

Same as `python -m medbench.reports plots`; run with --help for the options.
"""

import sys

from medbench.reports.cli import main

if __name__ == "__main__":
    sys.exit(main(command="plots", prog="scripts/visualize_benchmarks.py"))
