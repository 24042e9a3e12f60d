"""Progress bars (tqdm) for the long commands: on a terminal, never in a pipe, never with ``--quiet``."""

from __future__ import annotations

from typing import Any, Iterable


def progress_bar(iterable: Iterable | None = None, *, show: bool | None = None, **options: Any):
    """A tqdm bar on stderr around ``iterable``.

    ``show=None`` shows it only when stderr is a terminal (so logs and pipes
    stay clean), ``True`` always, ``False`` never.  The bar disappears when
    done (``leave=False``); ``options`` go to :class:`tqdm.tqdm` (``desc``,
    ``total``, ``unit``, ...).
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None if show is None else not show, leave=False, dynamic_ncols=True, **options)
