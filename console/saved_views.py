"""Saved views of the runs list: named (filter, search text, sort) kept in a small JSON file
in the operator's config folder, so they follow the operator across databases.

The file is ``$ONWARD_CONSOLE_VIEWS`` if set, else ``$XDG_CONFIG_HOME/onward/views.json``
(``~/.config/onward/views.json``). A file that cannot be read is reported, never rewritten."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class View:
    """What the runs list shows: a status or filter, the filter bar's text and the sort."""

    filter: str = "all"
    text: str = ""
    sort: str = "attention"


class ViewsError(Exception):
    """The views file is unreadable or not in the expected shape (message names it)."""


def views_path() -> Path:
    """Where saved views live."""
    if os.environ.get("ONWARD_CONSOLE_VIEWS"):
        return Path(os.environ["ONWARD_CONSOLE_VIEWS"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "onward" / "views.json"


def load_views(path: Path | None = None) -> dict[str, View]:
    """The saved views by name ({} when there is no file yet).

    Raises: ViewsError naming the file when it is not JSON of the expected shape."""
    path = path or views_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ViewsError(f"{path}: cannot read saved views ({err})") from err
    if not isinstance(raw, dict):
        raise ViewsError(f"{path}: saved views must be a JSON object of name -> view")
    views: dict[str, View] = {}
    for name, value in raw.items():
        if not isinstance(value, dict) or not all(
                isinstance(value.get(k, ""), str) for k in ("filter", "text", "sort")):
            raise ViewsError(f"{path}: view {name!r} must be an object with string "
                             "filter, text and sort")
        views[str(name)] = View(filter=value.get("filter", "all"), text=value.get("text", ""),
                                sort=value.get("sort", "attention"))
    return views


def save_view(name: str, view: View, path: Path | None = None) -> dict[str, View]:
    """Add or replace the view ``name`` (written atomically); the views afterwards.

    Raises: ViewsError for an empty name or an unreadable existing file."""
    name = name.strip()
    if not name:
        raise ViewsError("a saved view needs a name")
    path = path or views_path()
    views = load_views(path)
    views[name] = view
    _write(path, views)
    return views


def delete_view(name: str, path: Path | None = None) -> dict[str, View]:
    """Forget the view ``name`` (nothing happens if there is none); the views afterwards."""
    path = path or views_path()
    views = load_views(path)
    if views.pop(name, None) is not None:
        _write(path, views)
    return views


def _write(path: Path, views: dict[str, View]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps({n: asdict(v) for n, v in sorted(views.items())}, indent=2)
                       + "\n", encoding="utf-8")
    scratch.replace(path)
