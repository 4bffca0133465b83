"""Training scripts for the models the course ships (deterministic, a few minutes on a CPU each)."""

from collections.abc import Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable, desc: str, show: bool = True, **kwargs) -> tqdm:
    """A progress bar over ``iterable``. ``show=False`` hides it, and so does ``TQDM_DISABLE=1``:
    tqdm reads its environment only for keywords not passed, so ``disable`` is passed only to hide."""
    return tqdm(iterable, desc=desc, **kwargs, **({} if show else {"disable": True}))
