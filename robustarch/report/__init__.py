"""The HTML report of a study (or two, compared): SVG figures drawn from the analysis tables, a
jinja2 template with autoescaping, and the export of every table behind the page.

    write_report(study)                # reports/<study>.html
"""

from .html import (
    FORMATS,
    analysis_tables,
    build_comparison,
    build_report,
    comparison_path,
    default_path,
    export_tables,
    write_analysis,
    write_comparison,
    write_report,
)

__all__ = [
    "FORMATS",
    "analysis_tables",
    "build_comparison",
    "build_report",
    "comparison_path",
    "default_path",
    "export_tables",
    "write_analysis",
    "write_comparison",
    "write_report",
]
