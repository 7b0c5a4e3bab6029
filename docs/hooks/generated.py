"""MkDocs hook: pages whose content comes from the code, so they cannot drift from it.

A page holds a marker comment and the hook replaces it before the Markdown is rendered:
`<!-- generated: cli -->` (every command of the Typer app, with its options), `<!-- generated: api -->`
(one mkdocstrings block per name `robustarch/__init__.py` exports) and `<!-- generated: error-rates -->`
(each claim's test and its simulated size and power, from `robustarch.analysis.claims` and `.errorrates`).
"""

from __future__ import annotations

import math
import re

MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(lambda m: RENDERERS[m.group(1)](), markdown)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _command_markdown(cmd, path: list[str], parent) -> list[str]:
    # Typer ships its own copy of click (typer._click): only the help-record API is used, no isinstance
    ctx = cmd.context_class(cmd, info_name=path[-1], parent=parent)
    lines = [f"## `{' '.join(path)}`", "", cmd.help or cmd.short_help or "", ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines += ["```text", f"{ctx.command_path} {usage}".rstrip(), "```", ""]
    records = [r for p in cmd.params if not getattr(p, "hidden", False) and (r := p.get_help_record(ctx))]
    if records:
        lines += ["| argument / option | what it does |", "| --- | --- |"]
        lines += [f"| `{_cell(names)}` | {_cell(help_text)} |" for names, help_text in records]
        lines.append("")
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            lines += _command_markdown(cmd.get_command(ctx, name), [*path, name], ctx)
    return lines


def cli_reference() -> str:
    import typer

    from robustarch.cli import app

    return "\n".join(_command_markdown(typer.main.get_command(app), ["robustarch"], None))


def api_reference() -> str:
    from robustarch import _EXPORTS

    blocks = []
    for module, names in _EXPORTS.items():
        blocks.append(f"## `robustarch.{module}`\n")
        blocks += [f"::: robustarch.{module}.{name}\n    options:\n      heading_level: 3\n" for name in names]
    return "\n".join(blocks)


def _pct(value) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def error_rates() -> str:
    from robustarch.analysis.claims import CLAIMS
    from robustarch.analysis.errorrates import RATES, SCALES, SUPPORT_SIZES

    lines = []
    for key, claim in CLAIMS.items():
        lines += [
            f"### {claim.title}",
            "",
            f"`{key}` · verdict kind: {claim.kind} · minimum n: {claim.min_n}",
            "",
            f"**Test.** {claim.test}.",
            "",
        ]
        if claim.margin is not None:
            lines += [f"**Margin.** {claim.margin:g}: {claim.margin_reason}.", ""]
        by_scale = RATES.get(key, {})
        if not by_scale:
            lines += ["Not simulated yet: the report says so beside this finding.", ""]
            continue
        support = SUPPORT_SIZES.get(key)
        header = "| simulated study | studies | size | under the null | power | under the alternative |"
        rule = "| --- | --- | --- | --- | --- | --- |"
        if support:
            header, rule = header + ' size of "supported" | on the margin |', rule + " --- | --- |"
        lines += [header, rule]
        for scale in sorted(by_scale):
            size, size_truth, power, power_truth, reps = by_scale[scale][:5]
            row = (
                f"| {SCALES.get(scale, f'{scale} models')} | {reps} | {_pct(size)} | {_cell(size_truth)} | "
                f"{_pct(power)} | {_cell(power_truth)} |"
            )
            if support:
                truth, sizes = support
                row += f" {_pct(sizes.get(scale))} | {_cell(truth)} |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


RENDERERS = {"cli": cli_reference, "api": api_reference, "error-rates": error_rates}
