"""Build the worker's parts from settings: store, client, resolver, dispatcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.elms import OpenElmsClient
from bridge.jobs.dispatch import DispatchConfig, Dispatcher
from bridge.jobs.poll import PollConfig, Poller
from bridge.jobs.scheduler import worker_name
from bridge.metrics import observe_elms_call
from bridge.registry import SourceRegistry
from bridge.resolve import Resolver
from bridge.store.db import Store, create_store
from bridge.store.migrate import upgrade

if TYPE_CHECKING:
    from bridge.config import Settings


def build_dispatcher(settings: Settings) -> tuple[Store, Dispatcher]:
    """Return the store and a dispatcher wired from settings.

    Raises:
        ConfigError: the sources or mappings file has mistakes.
    """
    upgrade(settings.database_url)
    store = create_store(settings.database_url)
    registry = SourceRegistry.from_file(settings.sources_file, store)
    if settings.mappings_file:
        from bridge.mappings import sync_file_mappings

        sync_file_mappings(store, settings.mappings_file)

    client = OpenElmsClient.from_settings(settings, observer=observe_elms_call)
    resolver = Resolver(
        client, store, elms_url=settings.elms_url, cache_ttl=settings.resolve_cache_ttl
    )
    dispatcher = Dispatcher(
        store,
        client,
        resolver,
        registry,
        worker=worker_name(),
        config=DispatchConfig.from_settings(settings),
    )
    return store, dispatcher


def build_poller(settings: Settings, store: Store, worker: str) -> Poller:
    """Return the progress poller wired from settings.

    Its client does not retry by itself: a 503 must reach the poller at once
    so it can slow the whole pass down, honouring ``Retry-After``.
    """
    quiet = OpenElmsClient(
        str(settings.elms_url),
        str(settings.elms_token),
        retries=0,
        connect_timeout=settings.elms_connect_timeout,
        read_timeout=settings.elms_read_timeout,
        observer=observe_elms_call,
    )
    return Poller(
        store, quiet, worker=worker, intervals=PollConfig.from_settings(settings)
    )
