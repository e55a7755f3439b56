"""Leases: holding one (the Lease stream, its session in lease_session.py), and reading who holds
which (GetLease, ListLeases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..leases.manager import LeaseManager
from . import convert, page_tokens, validation
from .handlers import handles
from .lease_session import MAX_KEY_LENGTH, LeaseSession
from .reply_bounds import ReplyBound


class LeaseRpcs:
    """The leases' calls, over this server's lease manager."""

    def __init__(self, leases: LeaseManager, reply_bound: ReplyBound) -> None:
        self._leases = leases
        self._reply_bound = reply_bound

    @handles("Lease")
    async def lease(
        self, request_iterator: AsyncIterator[pb.LeaseRequest], context: grpc.aio.ServicerContext[pb.LeaseRequest, pb.LeaseResponse]
    ) -> None:
        await LeaseSession(self._leases, context).run()

    @handles("GetLease")
    async def get_lease(
        self, request: pb.GetLeaseRequest, context: grpc.aio.ServicerContext[pb.GetLeaseRequest, pb.GetLeaseResponse]
    ) -> pb.GetLeaseResponse:
        key = validation.check_name("key", request.key, max_length=MAX_KEY_LENGTH)
        row = await self._leases.get(key)
        if row is None:
            raise errors.NotFound(f"nobody holds the lease {key!r}")
        return pb.GetLeaseResponse(lease=convert.lease_to_proto(row))

    @handles("ListLeases")
    async def list_leases(
        self, request: pb.ListLeasesRequest, context: grpc.aio.ServicerContext[pb.ListLeasesRequest, pb.ListLeasesResponse]
    ) -> pb.ListLeasesResponse:
        prefix = validation.check_name("key_prefix", request.key_prefix, required=False, max_length=MAX_KEY_LENGTH)
        page_size = page_tokens.page_size(request.page_size)
        query = page_tokens.leases_query(prefix)
        after = page_tokens.decode_lease_position(request.page_token, query)

        async def fetch(after: str | None, limit: int) -> list[Any]:
            return await self._leases.held(prefix or None, after, limit)

        page, last = await self._reply_bound.page(
            fetch, lambda row: row["key"], convert.lease_to_proto, after=after, page_size=page_size, row_bytes=self._reply_bound.row_bytes(payload_fields=0)
        )
        next_token = page_tokens.encode_lease_position(last, query) if last is not None else ""
        return pb.ListLeasesResponse(leases=page, next_page_token=next_token)


__all__ = ["LeaseRpcs"]
