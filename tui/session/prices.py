"""What a run cost, in US dollars: from its usage and its session's model (and provider).

The price comes from the session's own ``price`` table when it has one, else from the list
prices of the ``genai-prices`` package (its bundled snapshot: no network). The package is
imported only when a list price is first needed (:func:`load_list_prices` does it off the
event loop), so start-up never pays for it. The provider is the one the base URL names
(``api.openai.com`` is OpenAI) when genai-prices knows that URL; a gateway it does not know
is priced by the model name alone (``gpt-5`` through a gateway at OpenAI's list price).

Never a guess: the simulator, a server on this machine or a private network (a self-hosted
model has no list price), a model genai-prices does not know and a run whose server reported
no usage (an estimated token count) all cost "unknown" (None).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tui.config.schema import Price, is_simulator_url

if TYPE_CHECKING:
    from tui.config import SessionConfig

log = logging.getLogger(__name__)

__all__ = ["PriceSource", "is_local_url", "load_list_prices", "run_cost"]

PER_TOKENS = 1_000_000
"""Prices are per million tokens."""


@dataclass(frozen=True, slots=True)
class PriceSource:
    """What a run's price depends on: the model, the server, and the session's own price."""

    model: str
    base_url: str
    price: Price | None = None
    """The session's ``price`` table (wins over any list price)."""

    @classmethod
    def of(cls, session: SessionConfig) -> PriceSource:
        """The price source of a configured session."""
        return cls(session.model, session.base_url, session.price)

    @property
    def listed(self) -> bool:
        """True when the price must come from genai-prices (no own price, a public server;
        an unknown server, empty, has none)."""
        return (
            self.price is None
            and bool(self.base_url)
            and not is_simulator_url(self.base_url)
            and not is_local_url(self.base_url)
        )


def is_local_url(base_url: str) -> bool:
    """True for a server on this machine or a private network (``localhost``, loopback,
    private and link-local addresses), which no list price describes."""
    try:
        host = (urlsplit(base_url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def own_cost(price: Price, input_tokens: int, output_tokens: int, cached: int | None) -> float:
    """A run's cost at the session's own price (cached input tokens are part of
    ``input_tokens``, as OpenAI-compatible servers count them)."""
    cached_tokens = min(max(cached or 0, 0), input_tokens)
    cached_rate = price.input_per_mtok
    if price.cached_input_per_mtok is not None:
        cached_rate = price.cached_input_per_mtok
    return (
        (input_tokens - cached_tokens) * price.input_per_mtok
        + cached_tokens * cached_rate
        + output_tokens * price.output_per_mtok
    ) / PER_TOKENS


def run_cost(
    source: PriceSource,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int | None = None,
) -> float | None:
    """One run's cost in USD, or None when its price or its server-reported usage is unknown
    (see the module docstring)."""
    if input_tokens is None or output_tokens is None:
        return None
    if source.price is not None:
        return own_cost(source.price, input_tokens, output_tokens, cached_tokens)
    if not source.listed:
        return None
    return _list_cost(source.model, source.base_url, input_tokens, output_tokens, cached_tokens)


async def load_list_prices() -> None:
    """Import genai-prices in a worker thread (about half a second), so that the first cost
    computed on the event loop does not stall it. Never raises."""
    try:
        await asyncio.to_thread(_import)
    except Exception:
        log.exception("genai-prices cannot be imported: list prices are unknown")


def _import() -> None:
    import genai_prices  # noqa: F401


def _list_cost(
    model: str, base_url: str, input_tokens: int, output_tokens: int, cached: int | None
) -> float | None:
    """genai-prices' cost of the usage of ``model`` at the provider ``base_url`` names, else
    at the provider its model name suggests; None when it knows neither."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=min(max(cached or 0, 0), input_tokens) or None,
    )
    try:
        try:
            found = calc_price(usage, model, provider_api_url=base_url)
        except LookupError:  # a server genai-prices does not know (a gateway): by model name
            found = calc_price(usage, model)
    except LookupError:
        return None
    except Exception:  # a problem inside the package's data: unknown, never a crash
        log.exception("genai-prices failed on model %r", model)
        return None
    return float(found.total_price)
