"""What `hybi.connect`, `hybi.serve` and `hybi.gateway.serve` share: each is awaited for
the object it opens, or entered with `async with`, which closes that object at the end."""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["AwaitableOpening"]

T = TypeVar("T")


class AwaitableOpening(Generic[T]):
    """`await x` or `async with x as opened`: `_enter` opens, `_exit` closes what it opened."""

    async def _enter(self) -> T:
        raise NotImplementedError

    async def _exit(self) -> None:
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, T]:
        return self._enter().__await__()

    async def __aenter__(self) -> T:
        return await self._enter()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._exit()
