"""Print the analysis of a results directory and write its task_analysis.csv (the seed's analyze_benchmarks.py).

Same as `python -m medbench.reports analyze --task-csv`: the tables on the terminal, and
task_analysis.csv into <results_dir>/report/ (or --out). Run with --help for the options.
"""

import sys

from medbench.reports.cli import main

if __name__ == "__main__":
    sys.exit(main(["--task-csv", *sys.argv[1:]], command="analyze", prog="scripts/analyze_benchmarks.py"))
