"""``serbench submissions list``."""

from __future__ import annotations

from typing import Any

import typer

from .common import JsonOpt, err, escape, print_json, show, table

submissions_app = typer.Typer(help="List the discoverable submissions.", no_args_is_help=True)


@submissions_app.command("list")
def submissions_list(json_out: JsonOpt = False) -> None:
    """Submissions from submissions/, SERBENCH_SUBMISSIONS_DIR and the entry-point group."""
    from ..params import declared
    from ..plugins import available, broken

    rows: list[dict[str, Any]] = []
    for name, (cls, where) in sorted(available().items()):
        options = declared(cls)
        rows.append({"name": name, "version": cls.version,
                     "class": f"{cls.__module__}.{cls.__qualname__}", "trains": cls.trains(),
                     "source": where,
                     "options": None if options is None else
                     {p.name: p.describe() for p in options.values()}})
    failed = broken()  # listed with why, as `tasks list` lists a broken task file
    rows += [{"file": path, "error": why} for path, why in sorted(failed.items())]
    if json_out:
        print_json(rows)
        return
    show(table("name", "version", "trains", "class", "from",
                    rows=[[r["name"], r["version"], "yes" if r["trains"] else "no", r["class"],
                           r["source"]] for r in rows if "error" not in r], ident=1))
    for path, why in sorted(failed.items()):
        err.print(f"[yellow]{escape(path)} could not be imported:[/] {escape(why)}")
