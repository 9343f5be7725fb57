"""Turn user mistakes into one clear line and a non-zero exit, never a stack trace."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

err_console = Console(stderr=True)
M = TypeVar("M", bound=BaseModel)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def describe_validation(exc: ValidationError) -> str:
    """``key: rule`` lines from a pydantic error, the way a config file's author thinks of them."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(file)"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a known setting"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def load_toml_model(path: Path, model: type[M]) -> M:
    """A settings model from a TOML file, with file and key named in every error."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        fail(f"{path} is not valid TOML: {exc}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fail(f"{path}: {describe_validation(exc)}")
