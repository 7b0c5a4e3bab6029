"""From a study's stored trials to statistics: tidy tables, correlations, the power law in ε, the
Holm-corrected findings and the sentences a report prints. Works on tables alone, never imports torch.

    a = analyze(study)                 # every table behind the report
    a = analyze_table("results.csv")   # the same from a plain table of models (not robustarch's)
    a.tables["correlations"]
"""

from .analyzer import MIN_TRIALS_FOR_STATS, Analysis, analyze, analyze_tables, pareto_front
from .compare import analyze_pair, compare_tables
from .findings import findings_table, holm
from .provenance import provenance_table
from .record import export_table, rescore_table, robustness_table, samples_table, trials_table
from .table import analyze_table

__all__ = [
    "MIN_TRIALS_FOR_STATS",
    "Analysis",
    "analyze",
    "analyze_pair",
    "analyze_table",
    "analyze_tables",
    "compare_tables",
    "export_table",
    "findings_table",
    "holm",
    "pareto_front",
    "provenance_table",
    "rescore_table",
    "robustness_table",
    "samples_table",
    "trials_table",
]
